import io

import pytest

from depthapp.errors import Cancelled
from depthapp.jobs import CancelToken, Progress, TerminalProgress, format_seconds, track


class Terminal(io.StringIO):
    """A stream that says it is a terminal (bars are drawn in place)."""

    def isatty(self):
        return True


def test_track_reports_progress_and_eta():
    seen = []
    assert list(track(range(4), callback=seen.append)) == [0, 1, 2, 3]
    assert [p.done for p in seen] == [0, 1, 2, 3, 4] and seen[-1].total == 4
    progress = Progress(done=2, total=10, elapsed=4.0)
    assert progress.eta == pytest.approx(16.0) and progress.fraction == 0.2


def test_cancel_stops_after_the_current_item():
    token = CancelToken()
    done = []
    with pytest.raises(Cancelled):
        for item in track(range(10), cancel=token):
            done.append(item)
            if item == 2:
                token.cancel()
    assert done == [0, 1, 2]


def test_terminal_progress_prints_bar_with_eta():
    stream = io.StringIO()
    bar = TerminalProgress("eval", stream=stream, min_interval=0)
    for p in (Progress(0, 4, 0.0), Progress(2, 4, 2.0), Progress(4, 4, 4.0)):
        bar(p)
    lines = stream.getvalue().splitlines()
    assert lines[-1].startswith("eval [") and "4/4" in lines[-1] and "100%" in lines[-1]
    assert "ETA 00:02" in lines[1]
    assert format_seconds(3725) == "1:02:05"


def test_stage_progress_turns_stage_shares_into_an_eta(monkeypatch):
    from depthapp import jobs
    from depthapp.jobs import StageProgress

    clock = iter([0.0, 1.0, 2.0, 5.0, 6.0])
    monkeypatch.setattr(jobs.time, "perf_counter", lambda: next(clock))
    seen = []
    stages = StageProgress(seen.append, {"load": 10, "network": 80, "finish": 10})  # started at 0 s
    stages.start("load")      # 1 s
    stages.start("network")   # 2 s: load's 10 % took 2 s
    stages.start("finish")    # 5 s
    stages.complete()         # 6 s
    assert [p.stage for p in seen] == ["load", "network", "finish", "done"]
    assert [p.fraction for p in seen] == [0.0, 0.1, 0.9, 1.0]
    assert seen[0].eta is None and seen[1].eta == pytest.approx(18.0)
    assert seen[2].eta == pytest.approx(5.0 / 0.9 * 0.1) and seen[-1].eta == 0.0
    assert not any(p.counted for p in seen)


def test_stage_progress_without_shares_names_stages_without_an_eta():
    from depthapp.jobs import StageProgress

    seen = []
    stages = StageProgress(seen.append)
    stages.start("match")
    stages.complete()
    assert [(p.stage, p.total, p.eta) for p in seen] == [("match", None, None), ("done", None, None)]


def test_terminal_progress_writes_a_line_per_stage_with_percent_only_for_shares():
    from depthapp.jobs import StageProgress

    stream = io.StringIO()
    bar = TerminalProgress("run net", stream=stream, min_interval=60)
    stages = StageProgress(bar, {"features": 25, "aggregation": 75})
    stages.start("features")
    stages.start("aggregation")  # within min_interval, but a new stage is always shown
    stages.complete()
    lines = stream.getvalue().splitlines()
    assert [line.split(" [")[0] for line in lines] == ["run net: features", "run net: aggregation",
                                                      "run net: done"]
    assert " 25% " in lines[1] and "ETA 00:00" in lines[1] and "/" not in lines[1]


def test_terminal_progress_rewrites_one_line_on_a_terminal_and_ends_each_finished_stage():
    stream = Terminal()
    bar = TerminalProgress("adapt", stream=stream, min_interval=0)
    for progress in (Progress(0, 2, 0.0, stage="before"), Progress(2, 2, 1.0, stage="before"),
                     Progress(0, 5, 0.0, stage="training"), Progress(1, 5, 1.0, stage="training")):
        bar(progress)
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.startswith("\radapt: before [")
    assert text.split("\n")[1].startswith("\radapt: training [") and "1/5" in text.split("\n")[1]


def test_clearing_an_unfinished_terminal_line_lets_other_output_start_clean():
    stream = Terminal()
    bar = TerminalProgress("export", stream=stream, min_interval=60)
    bar(Progress(0, 4, 0.0, stage="loading"))
    drawn = len(stream.getvalue()) - 1
    bar.clear()
    assert stream.getvalue().endswith("\r" + " " * drawn + "\r")
    bar(Progress(1, 4, 1.0, stage="loading"))  # drawn again although within min_interval
    assert stream.getvalue().endswith("\rexport: loading [" + "#" * 7 + "-" * 21 + "] 1/4  25% elapsed 00:01 ETA 00:03")


def test_an_open_terminal_line_ticks_between_reports():
    now = [100.0]
    stream = Terminal()
    bar = TerminalProgress("run net", stream=stream, tick=0, clock=lambda: now[0])
    bar(Progress(25, 100, 10.0, stage="aggregation", counted=False))  # ETA 30 s
    assert stream.getvalue().endswith("elapsed 00:10 ETA 00:30")
    now[0] += 12.0
    bar.tick()
    assert stream.getvalue().endswith("\rrun net: aggregation [#######---------------------]  25% "
                                      "elapsed 00:22 ETA 00:18")
    now[0] += 60.0
    bar.tick()
    assert stream.getvalue().endswith("elapsed 01:22 ETA 00:00")
    bar(Progress(100, 100, 80.0, stage="done", counted=False))
    finished = stream.getvalue()
    bar.tick()  # nothing open: nothing drawn
    assert stream.getvalue() == finished and finished.endswith("\n")
