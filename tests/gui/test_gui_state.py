"""The viewer model (ViewerState), sources and rendering, driven without any window."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import cv2
import numpy as np
import pytest

from depthapp.backends import create_backend
from depthapp.errors import Cancelled, CalibrationError, InputError, OutputExistsError, UsageError
from depthapp.geometry import disparity_to_depth, pixel_to_point
from depthapp.gui.render import VIEW_KINDS, render_view
from depthapp.gui.open_plan import plan_open
from depthapp.sources import VideoSequence
from depthapp.gui.state import COMPARE, PRIMARY, ViewerState, depth_to_png_mm, score
from depthapp.jobs import CancelToken
from depthapp.io import (read_disparity, read_image, read_kitti_disparity, read_pfm, read_ply,
                         write_image, write_pfm)
from depthapp.pipeline import run_pipeline


class Recorder:
    """Collects every emission of the signals it is attached to."""

    def __init__(self, state: ViewerState, *names: str):
        self.events: list[tuple] = []
        for name in names:
            getattr(state, name).connect(lambda *args, name=name: self.events.append((name,) + args))

    def names(self) -> list[str]:
        return [event[0] for event in self.events]


class HeldExecutor:
    """Keeps submitted requests so a test decides when (and whether) each finishes."""

    def __init__(self):
        self.pending = []

    def submit(self, request, on_stage, on_done):
        self.pending.append((request, on_stage, on_done))

    def finish(self, index: int, ignore_cancel: bool = False) -> None:
        """Run request ``index`` and deliver its outcome; ``ignore_cancel`` plays a backend
        that never polls its token (OpenCV) and so finishes although cancelled."""
        request, on_stage, on_done = self.pending[index]
        runnable = dataclasses.replace(request, cancel=CancelToken()) if ignore_cancel else request
        try:
            outcome = runnable.run(lambda stage: on_stage(request, stage))
        except Cancelled as error:
            on_done(request, None, error)
            return
        on_done(request, outcome, None)


@pytest.fixture
def state():
    viewer = ViewerState()
    viewer.open_sample()
    return viewer


def test_model_modules_import_no_qt():
    code = ("import sys\nimport depthapp.gui.state, depthapp.gui.render, depthapp.gui.open_plan, depthapp.sources, "
            "depthapp.events, depthapp.calibration.wizard\n"
            "bad = sorted(m for m in sys.modules if m.startswith(('PyQt6', 'PySide')))\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_compute_matches_the_pipeline_and_scores_against_gt(state, motorcycle):
    events = Recorder(state, "busy_changed", "stage", "result_changed")
    state.compute()
    outcome = state.outputs[PRIMARY]
    # The same backend through the library directly gives the same disparity.
    direct = run_pipeline(motorcycle, create_backend("opencv-sgbm", max_disp=outcome.max_disp))
    np.testing.assert_array_equal(outcome.disparity, direct.result.disparity)
    np.testing.assert_allclose(outcome.output.depth, direct.depth, equal_nan=True)
    assert outcome.max_disp == 80 and "ndisp" in outcome.max_disp_origin  # 68 rounded up to 16s
    assert set(outcome.timings) >= {"match", "depth", "points"}
    # busy on, stages reported, result, busy off
    names = events.names()
    assert names[0] == "busy_changed" and names[-1] == "result_changed"
    assert ("busy_changed", False) in events.events
    assert any(e[0] == "stage" and e[2] == "match" for e in events.events)
    # bad-2 / EPE by hand over GT-valid pixels (missing predictions count as bad in "all")
    gt = motorcycle.gt_disparity
    known = np.isfinite(gt)
    error = np.abs(outcome.disparity[known] - gt[known])
    filled = np.isfinite(error)
    metrics = outcome.metrics
    assert metrics.bad_all == pytest.approx(100 * np.mean(~(error <= 2)), abs=1e-9)
    assert metrics.epe == pytest.approx(np.mean(error[filled]), rel=1e-6)
    assert metrics.density == pytest.approx(100 * filled.mean())
    assert 10 < metrics.bad_all < 35 and metrics.epe < 3  # SGBM on Motorcycle, not garbage
    # changing N rescores without recomputing
    state.set_display(bad_threshold=4.0)
    assert state.outputs[PRIMARY].metrics.bad_all < metrics.bad_all
    assert state.outputs[PRIMARY] is outcome


def test_readout_depth_is_the_geometry_of_that_pixel(state):
    state.compute()
    outcome = state.outputs[PRIMARY]
    calibration = outcome.output.pair.calibration
    ys, xs = np.nonzero(np.isfinite(outcome.disparity))
    x, y = int(xs[len(xs) // 2]), int(ys[len(ys) // 2])
    readout = state.readout(x, y)
    d = float(outcome.disparity[y, x])
    expected = pixel_to_point(x, y, d, calibration)
    assert readout.disparity == d
    assert readout.point == pytest.approx(expected)
    assert readout.depth == pytest.approx(calibration.focal * calibration.baseline / (d + calibration.doffs))
    assert readout.depth == pytest.approx(float(disparity_to_depth(outcome.disparity, calibration)[y, x]), rel=1e-6)
    assert f"Z {readout.depth:.3f} m" in readout.text()
    assert readout.gt == pytest.approx(float(outcome.output.pair.gt_disparity[y, x]), nan_ok=True)
    assert state.readout(-1, 0) is None and state.readout(741, 0) is None
    invalid = np.argwhere(~np.isfinite(outcome.disparity))[0]
    blank = state.readout(int(invalid[1]), int(invalid[0]))
    assert blank.depth is None and "d invalid" in blank.text()


def test_parameter_change_changes_the_result(state):
    state.compute()
    before = state.outputs[PRIMARY].disparity.copy()
    events = Recorder(state, "parameters_changed")
    state.set_parameter("block_size", 11)
    assert events.events[-1][2]["block_size"] == 11
    state.compute()
    after = state.outputs[PRIMARY]
    assert after.params["block_size"] == 11
    assert np.mean(np.abs(np.nan_to_num(after.disparity) - np.nan_to_num(before)) > 1) > 0.02
    with pytest.raises(UsageError, match="odd"):
        state.set_parameter("block_size", 4)
    with pytest.raises(InputError, match="no parameter"):
        state.set_parameter("p3", 1)
    state.reset_parameters()
    assert state.parameters()["block_size"] == 5


def test_cancelled_and_superseded_results_are_discarded(state):
    executor = HeldExecutor()
    state.executor = executor
    events = Recorder(state, "cancelled", "result_changed", "busy_changed")
    state.compute()
    assert state.busy
    assert state.cancel()
    assert executor.pending[0][0].cancel.cancelled  # the worker is told to stop
    executor.finish(0, ignore_cancel=True)  # ...and if it finishes anyway, nothing is shown
    assert PRIMARY not in state.outputs and not state.busy
    executor.finish(0)  # a backend that polls: Cancelled, delivered late, ignored quietly
    assert events.names().count("cancelled") == 1 and "result_changed" not in events.names()
    # a newer request wins over an older one that finishes late
    state.set_parameter("block_size", 3)
    state.compute()
    state.set_parameter("block_size", 7)
    state.compute()
    executor.finish(1)
    assert PRIMARY not in state.outputs
    executor.finish(2)
    assert state.outputs[PRIMARY].params["block_size"] == 7 and not state.busy


def test_backend_errors_become_error_events(state):
    errors = Recorder(state, "error")
    state.set_parameter("p1", 500)
    state.set_parameter("p2", 100)
    state.compute()
    assert errors.events and "p2 (100) must be larger than p1 (500)" in errors.events[0][2]
    assert "--p2" not in errors.events[0][2]  # the viewer names parameters, not CLI flags
    assert not state.busy and PRIMARY not in state.outputs


def test_bad_files_raise_clear_errors(state, tmp_path):
    bad = tmp_path / "left.png"
    bad.write_text("not an image")
    with pytest.raises(InputError, match="left.png: not a readable image"):
        state.open_files(bad, bad)
    assert state.pair.name.startswith("middlebury")  # the old pair is still shown
    text = tmp_path / "calib.txt"
    text.write_text("hello\n")
    with pytest.raises(CalibrationError, match="calib.txt"):
        state.open_calibration(text)
    with pytest.raises(InputError, match="not an image, video"):
        plan_open([tmp_path / "notes.docx"])


def test_manual_calibration_gives_depth_without_recompute(state):
    state.compute()
    outcome = state.outputs[PRIMARY]
    state.set_manual_calibration(focal=1000.0, baseline=0.1, doffs=10.0)
    assert state.outputs[PRIMARY] is outcome  # same disparity, new geometry
    d = outcome.disparity
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = 1000.0 * 0.1 / (d + 10.0)
    np.testing.assert_allclose(outcome.output.depth, expected, rtol=1e-5, equal_nan=True)
    assert outcome.output.pair.calibration.source == "manual entry"
    small = state.calibration.scaled(0.37)  # not a uniform resize of 741x500 any more
    small.image_size = (300, 300)
    with pytest.raises(CalibrationError, match="300x300"):
        state.set_calibration(small)
    state.set_calibration(None)
    assert outcome.output.depth is None and state.readout(10, 10).depth is None


def test_save_every_output_and_read_it_back(state, tmp_path):
    state.compute()
    outcome = state.outputs[PRIMARY]
    disparity, depth, cloud = outcome.disparity, outcome.output.depth, outcome.output.cloud
    state.save_disparity(tmp_path / "d.pfm")
    np.testing.assert_array_equal(read_disparity(tmp_path / "d.pfm"), disparity)
    state.save_disparity(tmp_path / "d.png")
    kitti = read_kitti_disparity(tmp_path / "d.png")
    assert np.array_equal(np.isfinite(kitti), np.isfinite(disparity))
    # KITTI devkit: round(d * 256), and a valid 0 is stored as 1 so it stays valid
    np.testing.assert_array_equal(kitti, np.maximum(np.round(disparity * 256), 1) / 256)
    state.save_depth(tmp_path / "z.pfm")
    stored = read_pfm(tmp_path / "z.pfm")
    np.testing.assert_array_equal(np.where(np.isinf(stored), np.nan, stored), depth)
    state.save_depth(tmp_path / "z.png")
    millimetres = read_image(tmp_path / "z.png")
    assert millimetres.dtype == np.uint16
    valid = np.isfinite(depth)
    assert np.array_equal(millimetres > 0, valid)
    assert np.abs(millimetres[valid] / 1000.0 - depth[valid]).max() <= 0.0005 + 1e-7
    state.save_cloud(tmp_path / "c.ply")
    points, colours = read_ply(tmp_path / "c.ply")
    np.testing.assert_array_equal(points, cloud.points)
    np.testing.assert_array_equal(colours, cloud.colors)
    with pytest.raises(OutputExistsError):
        state.save_disparity(tmp_path / "d.pfm")
    state.save_disparity(tmp_path / "d.pfm", overwrite=True)
    with pytest.raises(InputError, match="unknown depth format"):
        state.save_depth(tmp_path / "z.tif")


def test_depth_png_convention():
    depth = np.array([[np.nan, 0.0, 1.2344, 70.0]], np.float32)
    np.testing.assert_array_equal(depth_to_png_mm(depth), [[0, 0, 1234, 65535]])


def _write_folder(root, motorcycle, count=3):
    (root / "left").mkdir(parents=True)
    (root / "right").mkdir()
    for i in range(count):
        crop = slice(10 * i, 10 * i + 200)
        write_image(root / "left" / f"{i:03d}.png", motorcycle.left[crop, :320])
        write_image(root / "right" / f"{i:03d}.png", motorcycle.right[crop, :320])


def test_folder_sequence_navigation(tmp_path, motorcycle):
    _write_folder(tmp_path / "seq", motorcycle)
    state = ViewerState()
    events = Recorder(state, "sequence_changed")
    state.open_folder(tmp_path / "seq")
    assert len(state.sequence) == 3 and state.index == 0
    np.testing.assert_array_equal(state.pair.left, motorcycle.left[0:200, :320])
    state.next_pair()
    state.next_pair()
    state.next_pair()  # clamps at the end
    assert state.index == 2 and state.sequence_label() == "002 (3/3)"
    np.testing.assert_array_equal(state.pair.right, motorcycle.right[20:220, :320])
    state.previous_pair()
    assert state.index == 1 and events.events[-1] == ("sequence_changed", 1, 3)
    state.open_sample()  # a single pair closes the sequence
    assert state.sequence is None


def test_middlebury_folder_brings_calibration_and_gt(tmp_path, motorcycle):
    from depthapp.sample import sample_calibration_path

    scene = tmp_path / "Motorcycle"
    scene.mkdir()
    write_image(scene / "im0.png", motorcycle.left)
    write_image(scene / "im1.png", motorcycle.right)
    write_pfm(scene / "disp0GT.pfm", motorcycle.gt_disparity)
    (scene / "calib.txt").write_text(sample_calibration_path().read_text())
    state = ViewerState()
    state.open_folder(scene)
    assert state.pair.name == "Motorcycle"
    assert state.pair.calibration.focal == pytest.approx(motorcycle.calibration.focal)
    np.testing.assert_array_equal(state.pair.gt_disparity, motorcycle.gt_disparity)


def test_side_by_side_video(tmp_path, motorcycle):
    path = tmp_path / "sbs.avi"
    height, width = 200, 320
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (2 * width, height))
    assert writer.isOpened()
    for i in range(4):
        frame = np.hstack([motorcycle.left[10 * i:10 * i + height, :width],
                           motorcycle.right[10 * i:10 * i + height, :width]])
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    sequence = VideoSequence(path)
    assert len(sequence) == 4
    pair = sequence.load(2)
    assert pair.size == (width, height)
    # MJPG is lossy: close to the frame written, not identical
    assert np.abs(pair.left.astype(int) - motorcycle.left[20:220, :width]).mean() < 6
    assert np.abs(sequence.load(0).right.astype(int) - motorcycle.right[0:200, :width]).mean() < 6
    sequence.close()
    state = ViewerState()
    state.open_video(path)
    state.go_to(3)
    assert state.pair.name == "sbs#000004" and state.sequence_label() == "frame 4/4"


def test_plan_open_sorts_dropped_paths(tmp_path):
    for name in ("scene_right.png", "scene_left.png", "calib.txt", "gt.pfm", "a.mp4"):
        (tmp_path / name).write_bytes(b"x")
    plan = plan_open([tmp_path / "scene_right.png", tmp_path / "scene_left.png",
                      tmp_path / "calib.txt", tmp_path / "gt.pfm"])
    assert plan.kind == "pair" and [p.name for p in plan.images] == ["scene_left.png", "scene_right.png"]
    assert plan.calibration.name == "calib.txt" and plan.ground_truth.name == "gt.pfm"
    assert plan_open([tmp_path]).kind == "folder"
    assert plan_open([tmp_path / "a.mp4"]).kind == "video"
    assert plan_open([tmp_path / "scene_left.png"]).kind == "sbs"
    with pytest.raises(InputError, match="not a mix"):
        plan_open([tmp_path / "a.mp4", tmp_path / "scene_left.png"])


def test_compare_mode_runs_both_backends(state):
    state.set_compare_backend("opencv-bm")
    state.compute()
    primary, compare = state.outputs[PRIMARY], state.outputs[COMPARE]
    assert (primary.backend, compare.backend) == ("opencv-sgbm", "opencv-bm")
    assert primary.metrics.bad_all < compare.metrics.bad_all  # SGBM beats BM on Motorcycle
    readout = state.readout(400, 250)
    assert readout.compare_disparity == pytest.approx(float(compare.disparity[250, 400]), nan_ok=True)
    views = {kind: render_view(state, kind) for kind in VIEW_KINDS}
    assert all(view is not None for view in views.values())
    state.set_compare_backend(None)
    assert COMPARE not in state.outputs and render_view(state, "disparity:compare") is None


def test_sgm_backend_through_the_viewer(state):
    state.set_backend("sgm")
    state.apply_preset("fast")
    state.compute()
    outcome = state.outputs[PRIMARY]
    assert outcome.backend == "sgm" and outcome.params["paths"] == 4
    assert outcome.metrics.bad_all < 30 and outcome.metrics.density > 80


def test_rendered_views_mark_invalid_pixels(state):
    assert render_view(state, "disparity") is None  # nothing computed yet
    assert render_view(state, "left").rgb is state.pair.left
    state.compute()
    invalid = ~np.isfinite(state.outputs[PRIMARY].disparity)
    view = render_view(state, "disparity")
    assert view.rgb.shape == (500, 741, 3) and view.legend.label == "disparity [px]"
    magenta = (view.rgb[..., 0] > view.rgb[..., 1] + 40) & (view.rgb[..., 2] > view.rgb[..., 1] + 40)
    assert magenta[invalid].mean() > 0.95
    state.set_display(show_invalid=False)
    assert (render_view(state, "disparity").rgb[invalid] == 0).all()
    state.set_display(range_mode="manual", vmin=10.0, vmax=20.0)
    assert state.disparity_range() == (10.0, 20.0)
    error = render_view(state, "error")
    assert error.legend.vmax == state.display.max_error and "bad-2" in error.caption


def test_settings_round_trip(state):
    state.set_backend("opencv-bm")
    state.set_parameter("block_size", 21)
    state.set_compare_backend("opencv-sgbm")
    state.set_display(colormap="viridis", bad_threshold=3.0)
    snapshot = state.settings_snapshot()
    restored = ViewerState()
    assert restored.restore_settings(snapshot) == []
    assert restored.backend == "opencv-bm" and restored.parameters()["block_size"] == 21
    assert restored.compare_backend == "opencv-sgbm"
    assert restored.display.colormap == "viridis" and restored.display.bad_threshold == 3.0
    snapshot["backend"] = "no-such-backend"
    assert "no-such-backend" in ViewerState().restore_settings(snapshot)[0]


def test_score_counts_missing_predictions_as_bad():
    gt = np.array([[1.0, 2.0, np.nan, 4.0]], np.float32)
    disparity = np.array([[1.5, np.nan, 9.0, 8.0]], np.float32)
    metrics = score(disparity, gt, 1.0)
    assert metrics.gt_pixels == 3
    assert metrics.bad_all == pytest.approx(200 / 3)  # missing + 4 px error
    assert metrics.bad_filled == pytest.approx(50.0)
    assert metrics.epe == pytest.approx(2.25)


def test_a_learned_backend_reports_each_stage_with_its_share_and_eta(motorcycle_session):
    """The viewer's compute requests get the backends' stage progress (the same hook as the CLI):
    the status bar shows the stage, the share done and the ETA."""
    import re

    from depthapp.data import StereoPair
    from depthapp.gui.state import ComputeRequest

    pair = StereoPair(np.ascontiguousarray(motorcycle_session.left[200:264, 300:396]),
                      np.ascontiguousarray(motorcycle_session.right[200:264, 300:396]), name="crop")
    stages = []
    ComputeRequest(1, PRIMARY, pair, "mccnn", {}, device="cpu", max_disp=16).run(stages.append)
    assert stages[:3] == ["prepare pair", "load mccnn", "features"], stages
    with_eta = [s for s in stages if re.fullmatch(r"[a-z -]+ \(\d+ %, ETA \d\d:\d\d\)", s)]
    assert [s.split(" (")[0] for s in with_eta][:2] == ["cost volume", "sgm"], stages
    assert stages[-1] == "done (100 %, ETA 00:00)"
