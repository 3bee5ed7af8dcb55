import io

import pytest

from depthapp.errors import Cancelled
from depthapp.jobs import CancelToken, Progress, TerminalProgress, format_seconds, track


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
