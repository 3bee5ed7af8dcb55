"""CameraLoop and Recorder on real video files: results, rectification, stopping, recording."""

from __future__ import annotations

import csv
import threading
import time

import numpy as np
import pytest

from depthapp.backends import create_backend
from depthapp.calibration.model import StereoCalibration
from depthapp.camera import CameraLoop, Recorder
from depthapp.data import StereoPair
from depthapp.errors import OutputExistsError
from depthapp.geometry import disparity_to_depth
from depthapp.io import read_rgb
from depthapp.sources import EndOfStream, ImageFolderSource, LiveSource, VideoFilesSource, find_pairs

from video_fixtures import HEIGHT, WIDTH, FakeClock, crop_frames, paced_source


def bm(max_disp=64):
    return create_backend("opencv-bm", max_disp=max_disp, block_size=11)


def crop_calibration(calibration: StereoCalibration, x: int, y: int, size) -> StereoCalibration:
    """The rectified calibration of a ``size`` window at ``(x, y)`` of the calibrated images."""
    return StereoCalibration.from_rectified(
        calibration.focal, calibration.baseline, calibration.cx_left - x, calibration.cy - y,
        size, cx_right=calibration.cx_right - x, source="crop")


def test_loop_computes_every_pair_of_a_file_exactly_as_the_backend_does(stereo_videos):
    results = []
    loop = CameraLoop(VideoFilesSource(stereo_videos.left, stereo_videos.right), bm(),
                      on_frame=results.append)
    stats = loop.run()
    assert stats.end_reason == "end of source"
    assert stats.processed == len(results) == len(stereo_videos.frames)
    assert [r.number for r in results] == list(range(1, len(results) + 1))
    backend = bm()
    for live, (left, right) in zip(results, stereo_videos.frames):
        assert live.disparity.shape == (HEIGHT, WIDTH)
        assert live.depth is None  # no calibration: disparity only
        expected = backend.compute(StereoPair(left, right)).disparity
        np.testing.assert_array_equal(live.disparity, expected)
    assert 0.3 < np.mean([r.result.density for r in results]) <= 1.0
    assert stats.processing_fps > 0 and stats.mean_fps > 0 and stats.compute_ms > 0
    assert not loop.source.is_open


def test_frame_limit_and_stop_end_the_loop(stereo_videos):
    stats = CameraLoop(VideoFilesSource(stereo_videos.left, stereo_videos.right), bm(),
                       max_frames=3).run()
    assert (stats.processed, stats.end_reason) == (3, "frame limit")

    loop = CameraLoop(VideoFilesSource(stereo_videos.left, stereo_videos.right), bm())
    loop.on_frame = lambda live: loop.stop() if live.number == 2 else None
    stats = loop.run()
    assert (stats.processed, stats.end_reason) == (2, "stopped")


def test_stop_from_another_thread_ends_a_loop_waiting_for_a_silent_camera():
    release = threading.Event()

    def silent_camera():
        def grab():
            release.wait(10.0)
            raise EndOfStream()
        return grab

    statuses = []
    loop = CameraLoop(LiveSource([silent_camera], on_close=release.set), bm(),
                      on_status=statuses.append, poll_interval=0.05)
    worker = threading.Thread(target=loop.run)
    worker.start()
    time.sleep(0.3)  # let the loop start waiting
    loop.stop()
    worker.join(5.0)  # a hang guard: stop() must end the wait
    assert not worker.is_alive()
    assert loop.stats().end_reason == "stopped"


def test_rectified_calibration_gives_depth_in_metres(stereo_videos, motorcycle_session):
    calibration = crop_calibration(motorcycle_session.calibration, 150, 120, (WIDTH, HEIGHT))
    results = []
    CameraLoop(VideoFilesSource(stereo_videos.left, stereo_videos.right), bm(80), calibration,
               on_frame=results.append, max_frames=1).run()
    live = results[0]
    assert live.pair.calibration is calibration
    np.testing.assert_array_equal(live.depth, disparity_to_depth(live.disparity, calibration))
    # The Motorcycle is about 2-3 m from the Middlebury rig.
    assert 1.0 < np.nanmedian(live.depth) < 5.0


def test_raw_calibration_builds_the_rectifier_once_and_rectifies_every_pair(stereo_videos):
    from depthapp.calibration.rectify import Rectifier

    raw = raw_calibration()
    loop = CameraLoop(VideoFilesSource(stereo_videos.left, stereo_videos.right), bm(), raw,
                      max_frames=3)
    rectifiers, pairs = [], []
    loop.on_frame = lambda live: (rectifiers.append(loop.rectifier), pairs.append(live))
    loop.run()
    assert len(rectifiers) == 3 and all(r is rectifiers[0] for r in rectifiers)
    reference = Rectifier(raw)
    for live in pairs:
        expected = reference.rectify_pair(StereoPair(live.frame.left, live.frame.right, raw))
        np.testing.assert_array_equal(live.pair.left, expected.left)
        np.testing.assert_array_equal(live.pair.right, expected.right)
        assert live.pair.calibration.rectified and live.depth is not None
    assert not np.array_equal(pairs[0].pair.left, pairs[0].frame.left), "distortion was removed"


def raw_calibration() -> StereoCalibration:
    """A raw 320x240 rig: 6 cm baseline, slight barrel distortion, a 0.3 degree toe-in."""
    k = np.array([[400.0, 0, 160], [0, 400.0, 120], [0, 0, 1]])
    angle = np.deg2rad(0.3)
    rotation = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    return StereoCalibration(image_size=(WIDTH, HEIGHT), K1=k, D1=[-0.05, 0, 0, 0, 0], K2=k,
                             D2=[-0.04, 0, 0, 0, 0], R=rotation, T=[-0.06, 0, 0], rectified=False,
                             source="test rig")


# Recording ------------------------------------------------------------------------------------

def record(stereo_videos, folder, **loop_options):
    results = []
    recorder = Recorder(folder)
    stats = CameraLoop(VideoFilesSource(stereo_videos.left, stereo_videos.right),
                       loop_options.pop("backend", None) or bm(), on_frame=results.append,
                       recorder=recorder, **loop_options).run()
    return results, recorder, stats


def test_recording_reads_back_identically_through_find_pairs_and_the_folder_source(tmp_path, stereo_videos):
    folder = tmp_path / "rec"
    results, recorder, stats = record(stereo_videos, folder)
    count = len(stereo_videos.frames)
    assert recorder.frames_written == count
    pairs = find_pairs(folder)
    assert [p.name for p in pairs] == [f"{k:06d}" for k in range(count)]
    for files, (left, right) in zip(pairs, stereo_videos.frames):
        np.testing.assert_array_equal(read_rgb(files.left), left)
        np.testing.assert_array_equal(read_rgb(files.right), right)
    with open(folder / "timestamps.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["frame"] for r in rows] == [p.name for p in pairs]
    assert [int(r["index"]) for r in rows] == [r.frame.index for r in results]
    np.testing.assert_allclose([float(r["t_left"]) for r in rows],
                               [k / stereo_videos.fps for k in range(count)], atol=1e-6)
    # Played back, the recording is the same stream: same images, same timestamps.
    with ImageFolderSource(folder) as source:
        replay = list(source)
    assert len(replay) == count
    for again, live in zip(replay, results):
        np.testing.assert_array_equal(again.left, live.frame.left)
        assert again.t_right == pytest.approx(live.frame.t_right, abs=1e-6)


def test_recorder_refuses_a_non_empty_folder_unless_forced(tmp_path, stereo_videos):
    folder = tmp_path / "rec"
    record(stereo_videos, folder)
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(OutputExistsError, match="rec: is not empty"):
        Recorder(folder).check()
    with pytest.raises(OutputExistsError):
        record(stereo_videos, folder)
    # Forced: the old recording is replaced (no stale frames left), other files are kept.
    recorder = Recorder(folder, overwrite=True)
    CameraLoop(VideoFilesSource(stereo_videos.left, stereo_videos.right), bm(), recorder=recorder,
               max_frames=2).run()
    assert [p.name for p in find_pairs(folder)] == ["000000", "000001"]
    assert (folder / "notes.txt").read_text() == "keep me"


def test_realtime_recording_keeps_every_processed_pair(tmp_path, stereo_videos):
    folder = tmp_path / "rec"
    results = []
    fake = FakeClock()
    source = paced_source([stereo_videos.left, stereo_videos.right], fake)

    def slow(live):
        results.append(live)
        # Each pair takes two frame periods of the source's clock: the cameras run on meanwhile.
        fake.advance_to(fake.now() + 2 / stereo_videos.fps)

    stats = CameraLoop(source, bm(), on_frame=slow, recorder=Recorder(folder), now=fake.now).run()
    assert stats.source.total_dropped > 0, "a slow consumer of a live source drops frames"
    pairs = find_pairs(folder)
    assert len(pairs) == len(results) == stats.processed
    for files, live in zip(pairs, results):
        np.testing.assert_array_equal(read_rgb(files.left), live.frame.left)
        np.testing.assert_array_equal(read_rgb(files.right), live.frame.right)
    assert stats.latency_ms is not None and stats.latency_ms > 0


def test_recording_reads_back_through_depthapp_run_with_the_same_disparity(tmp_path, stereo_videos):
    from depthapp.calibration import write_calibration
    from depthapp.cli import main
    from depthapp.io import read_disparity

    raw = raw_calibration()
    calib_file = write_calibration(raw, tmp_path / "rig.json")
    folder = tmp_path / "rec"
    results = []
    recorder = Recorder(folder, calibration_file=calib_file)
    CameraLoop(VideoFilesSource(stereo_videos.left, stereo_videos.right), bm(), raw,
               on_frame=results.append, recorder=recorder, max_frames=4).run()
    assert (folder / "calib.json").read_bytes() == calib_file.read_bytes()
    for number in (0, 3):
        out = tmp_path / f"run{number}"
        code = main(["run", str(folder / "left" / f"{number:06d}.png"),
                     str(folder / "right" / f"{number:06d}.png"), "--calib", str(folder / "calib.json"),
                     "--backend", "opencv-bm", "--max-disp", "64", "--block-size", "11",
                     "--out", str(out)])
        assert code == 0
        np.testing.assert_array_equal(read_disparity(out / "disparity.pfm"), results[number].disparity)
        np.testing.assert_allclose(read_disparity(out / "depth.pfm"), results[number].depth, rtol=1e-6)


def test_recording_reads_back_through_eval_dataset_folder(tmp_path, stereo_videos, motorcycle_session):
    import json

    from depthapp.cli import main
    from depthapp.io import write_disparity

    folder = tmp_path / "rec"
    results, _, _ = record(stereo_videos, folder, max_frames=4)
    # Ground truth of each recorded frame: the same window of the Middlebury ground truth.
    gt = crop_frames(motorcycle_session.gt_disparity, motorcycle_session.gt_disparity, 4)
    predictions = tmp_path / "loop-disparities"
    for k, live in enumerate(results):
        write_disparity(folder / "disp" / f"{k:06d}.pfm", gt[k][0])
        write_disparity(predictions / f"{k:06d}.pfm", live.disparity)
    common = ["eval", "--dataset", "folder", "--root", str(folder), "--error-maps", "0"]
    assert main(common + ["--backend", "opencv-bm", "--max-disp", "64", "--block-size", "11",
                          "--out", str(tmp_path / "eval-backend")]) == 0
    assert main(common + ["--predictions", str(predictions), "--out", str(tmp_path / "eval-loop")]) == 0
    by_backend = json.loads((tmp_path / "eval-backend" / "summary.json").read_text())
    by_loop = json.loads((tmp_path / "eval-loop" / "summary.json").read_text())
    assert by_backend["images"] == by_loop["images"] == 4
    metrics = ("epe", "bad_1", "bad_2", "bad_3", "d1_all", "density")
    assert {m: by_backend[m] for m in metrics} == {m: by_loop[m] for m in metrics}
    assert 0 < by_loop["bad_3"] < 50 and by_loop["density"] > 30  # scored against the real GT


def test_recording_can_start_and_stop_while_the_loop_runs(tmp_path, stereo_videos):
    # The viewer's record button: set_recorder from the on_frame callback's thread or any other.
    folder = tmp_path / "clip"
    loop = CameraLoop(VideoFilesSource(stereo_videos.left, stereo_videos.right), bm())
    recorder = Recorder(folder).open()

    def on_frame(live):
        if live.number == 3:
            loop.set_recorder(recorder)
        elif live.number == 8:
            loop.set_recorder(None)

    loop.on_frame = on_frame
    loop.run()
    assert not recorder.is_open and recorder.frames_written == 5
    pairs = find_pairs(folder)
    assert len(pairs) == 5
    for files, k in zip(pairs, range(3, 8)):
        np.testing.assert_array_equal(read_rgb(files.left), stereo_videos.frames[k][0])
    with open(folder / "timestamps.csv", newline="") as handle:
        assert [int(row["index"]) for row in csv.DictReader(handle)] == [3, 4, 5, 6, 7]
