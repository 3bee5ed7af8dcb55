"""The live view's Qt-free model driven by a real camera loop over the Motorcycle stream: what
it colours and over which range, the values under the cursor, the rates it reports, recording
and snapshots."""

from __future__ import annotations

import numpy as np
import pytest

from depthapp.backends import create_backend
from depthapp.camera import CameraLoop, LoopStats
from depthapp.camera.live_view import LiveViewModel
from depthapp.errors import InputError, OutputExistsError
from depthapp.io import read_pfm, read_rgb
from depthapp.sources import SourceStats, VideoFilesSource, find_pairs
from depthapp.visualize import colorize

from video_fixtures import HEIGHT, WIDTH
from test_camera_loop import crop_calibration


def bm():
    return create_backend("opencv-bm", max_disp=64, block_size=11)


@pytest.fixture(scope="module")
def calibration(motorcycle_session):
    return crop_calibration(motorcycle_session.calibration, 150, 120, (WIDTH, HEIGHT))


@pytest.fixture(scope="module")
def live_frames(stereo_videos, calibration):
    """Four processed pairs of the stream, with depth (the calibration of the crop)."""
    frames = []
    CameraLoop(VideoFilesSource(stereo_videos.left, stereo_videos.right), bm(), calibration,
               on_frame=frames.append, max_frames=4).run()
    assert len(frames) == 4 and frames[0].depth is not None
    return frames


def test_auto_range_follows_each_map_and_a_fixed_range_holds(live_frames):
    model = LiveViewModel(max_disp=64)
    changes = []
    model.changed.connect(lambda: changes.append(1))
    assert model.render() is None and model.readout(0, 0) is None
    model.show_frame(live_frames[0])
    disparity = live_frames[0].disparity
    low, high = np.percentile(disparity[np.isfinite(disparity)], [1, 99])
    assert model.value_range() == pytest.approx((low, high))
    images = model.render()
    np.testing.assert_array_equal(images.left, live_frames[0].pair.left)
    np.testing.assert_array_equal(images.coloured, colorize(disparity, low, high, "turbo"))
    assert (images.legend.vmin, images.legend.vmax) == pytest.approx((low, high))
    assert images.legend.label == "disparity [px]"

    model.set_range("fixed", 5.0, 40.0)
    model.show_frame(live_frames[1])  # a new map does not move a fixed range
    assert model.value_range() == (5.0, 40.0)
    np.testing.assert_array_equal(model.render().coloured,
                                  colorize(live_frames[1].disparity, 5.0, 40.0, "turbo"))
    for bad in ((40.0, 5.0), (3.0, 3.0), (float("nan"), 10.0)):
        with pytest.raises(InputError, match="min < max"):
            model.set_range("fixed", *bad)
    assert model.value_range() == (5.0, 40.0) and model.range_mode == "fixed"

    model.set_quantity("depth")  # each quantity keeps its own fixed range, in its own unit
    assert model.value_range() == (0.5, 10.0)
    with pytest.raises(InputError, match="never negative"):
        model.set_range("fixed", -1.0, 3.0)
    model.set_range("fixed", 1.0, 3.0)
    images = model.render()
    depth = live_frames[1].depth
    np.testing.assert_array_equal(images.coloured, colorize(depth, 1.0, 3.0, "turbo", invert=True))
    assert images.legend.label.startswith("depth [m]")
    model.set_quantity("disparity")
    assert model.value_range() == (5.0, 40.0)
    model.set_range("auto")
    assert model.value_range() == pytest.approx(tuple(np.percentile(
        live_frames[1].disparity[np.isfinite(live_frames[1].disparity)], [1, 99])))
    with pytest.raises(InputError):
        model.set_quantity("confidence")
    with pytest.raises(InputError):
        model.set_range("log")
    assert len(changes) == 7  # one per accepted change; refused ones change nothing


def test_cursor_readout_gives_disparity_and_depth_in_metres(live_frames, calibration):
    model = LiveViewModel()
    frame = live_frames[2]
    model.show_frame(frame)
    ys, xs = np.nonzero(np.isfinite(frame.disparity))
    x, y = int(xs[len(xs) // 2]), int(ys[len(ys) // 2])
    readout = model.readout(x, y)
    d = float(frame.disparity[y, x])
    assert readout.disparity == d
    # Z = f B / (d + doffs), from the calibration itself
    expected = calibration.focal * calibration.baseline / (d + calibration.doffs)
    assert readout.depth == pytest.approx(expected, rel=1e-5)
    assert f"disparity {d:.2f} px" in readout.text() and f"depth {expected:.3f} m" in readout.text()
    invalid = np.argwhere(~np.isfinite(frame.disparity))[0]
    assert "disparity invalid" in model.readout(int(invalid[1]), int(invalid[0])).text()
    assert model.readout(WIDTH, 0) is None and model.readout(-1, 5) is None


def test_without_calibration_there_is_no_depth(stereo_videos):
    frames = []
    CameraLoop(VideoFilesSource(stereo_videos.left, stereo_videos.right), bm(),
               on_frame=frames.append, max_frames=1).run()
    model = LiveViewModel()
    model.show_frame(frames[0])
    assert not model.has_depth and model.readout(100, 100).depth is None
    model.set_quantity("depth")
    images = model.render()
    assert images.coloured is None and "calibration" in images.caption


def test_rates_latency_and_drops_are_reported(live_frames):
    model = LiveViewModel()
    assert "waiting" in model.status_text()
    model.show_frame(live_frames[0])
    model.show_frame(live_frames[3])  # pairs 2 and 3 were processed but never drawn
    assert (model.shown, model.not_shown) == (2, 2)
    text = model.status_text()
    assert "latency - (file source)" in text and "no frame dropped by the source, 2 not drawn" in text
    assert f"{live_frames[3].stats.processed} pairs" in text
    camera = SourceStats(delivered=40, captured=(50, 51), dropped=(4, 5), capture_fps=(30.0, 29.5),
                         live=True, reconnects=1, state="reconnecting")
    model.set_stats(LoopStats(processed=40, processing_fps=12.5, compute_ms=61.0, latency_ms=48.4,
                              source=camera))
    text = model.status_text()
    for part in ("12.5 fps (capture 30.0/29.5)", "latency 48 ms", "dropped 9 by the source, 2 not drawn",
                 "compute 61 ms", "40 pairs", "reconnects 1", "reconnecting..."):
        assert part in text, (part, text)


def test_recording_starts_and_stops_between_pairs_of_a_running_loop(tmp_path, stereo_videos):
    model = LiveViewModel()
    folder = tmp_path / "clip"
    seen = []

    def on_frame(frame):
        # what the Record button does while the stream runs (the loop's own thread here)
        seen.append(frame)
        model.show_frame(frame)
        if frame.number == 1:
            model.start_recording(folder)
        elif frame.number == 3:
            assert model.stop_recording() == 2

    loop = CameraLoop(VideoFilesSource(stereo_videos.left, stereo_videos.right), bm(),
                      on_frame=on_frame, max_frames=5)
    model.attach(loop)
    recording = []
    model.recording_changed.connect(recording.append)
    loop.run()
    assert recording == [True, False] and not model.recording
    pairs = find_pairs(folder)
    assert len(pairs) == 2  # the pairs after the start, up to the stop
    for pair, frame in zip(pairs, seen[1:3]):
        np.testing.assert_array_equal(read_rgb(pair.left), frame.frame.left)
        np.testing.assert_array_equal(read_rgb(pair.right), frame.frame.right)
    with pytest.raises(OutputExistsError, match="is not empty"):
        model.start_recording(folder)  # never over a recording without being told
    assert not model.recording
    model.start_recording(folder, overwrite=True)
    with pytest.raises(InputError, match="already recording"):
        model.start_recording(tmp_path / "other")
    assert model.stop_recording() == 0 and model.stop_recording() is None
    assert not (folder / "left" / "000000.png").exists()  # the old recording was replaced


def test_snapshot_writes_every_map_and_never_overwrites_unasked(tmp_path, live_frames):
    model = LiveViewModel(snapshot_dir=tmp_path)
    with pytest.raises(InputError, match="no pair"):
        model.snapshot()
    frame = live_frames[1]
    model.show_frame(frame)
    model.set_quantity("depth")
    written = model.snapshot()
    stem = f"snapshot-{frame.frame.index:06d}"
    assert sorted(p.name for p in written) == sorted(
        f"{stem}-{kind}" for kind in ("left.png", "right.png", "disparity.pfm", "depth.pfm", "depth.png"))
    np.testing.assert_array_equal(read_rgb(tmp_path / f"{stem}-left.png"), frame.pair.left)
    np.testing.assert_array_equal(read_rgb(tmp_path / f"{stem}-right.png"), frame.pair.right)
    disparity = read_pfm(tmp_path / f"{stem}-disparity.pfm")
    valid = np.isfinite(frame.disparity)
    np.testing.assert_array_equal(np.isfinite(disparity), valid)
    np.testing.assert_array_equal(disparity[valid], frame.disparity[valid])
    depth = read_pfm(tmp_path / f"{stem}-depth.pfm")
    np.testing.assert_allclose(depth[np.isfinite(frame.depth)], frame.depth[np.isfinite(frame.depth)])
    np.testing.assert_array_equal(read_rgb(tmp_path / f"{stem}-depth.png"), model.render().coloured)

    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    (tmp_path / f"{stem}-left.png").unlink()  # one file gone, the others still there
    with pytest.raises(OutputExistsError, match="already exists"):
        model.snapshot()
    assert not (tmp_path / f"{stem}-left.png").exists(), "all or nothing: nothing was written"
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == {
        name: time for name, time in before.items() if name != f"{stem}-left.png"}
    assert len(model.snapshot(overwrite=True)) == 5
    other = model.snapshot(tmp_path / "elsewhere")
    assert all(path.parent == tmp_path / "elsewhere" for path in other)
