"""``depthapp calibrate`` and ``depthapp rectify`` end to end on the real opencv-doc pairs."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from depthapp.calibration import read_calibration
from depthapp.calibration.rectify import measure_rectification_error
from depthapp.cli import main
from depthapp.calibration.wizard.files import pair_by_name
from depthapp.io.images import read_rgb, write_image


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def rig(chessboard_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("rig")
    code = main(["calibrate", "--left", str(chessboard_dir / "left[0-9]*.jpg"),
                 "--right", str(chessboard_dir / "right[0-9]*.jpg"), "--pattern", "9x6",
                 "--square", "25", "--units", "mm", "--out", str(out / "rig.yaml"),
                 str(out / "rig.json"), "--ros-out", str(out / "ros")])
    assert code == 0
    return out


def test_calibrate_writes_both_formats_that_read_back(rig):
    from_yaml = read_calibration(rig / "rig.yaml")  # units recorded in the file: no --calib-units
    from_json = read_calibration(rig / "rig.json")
    assert from_yaml.extra["target_units"] == "mm"
    assert not from_yaml.rectified and not from_json.rectified
    for name in ("K1", "D1", "K2", "D2", "R", "T", "P1", "P2", "R1", "R2", "Q"):
        np.testing.assert_allclose(getattr(from_yaml, name), getattr(from_json, name),
                                   rtol=1e-9, atol=1e-12, err_msg=name)
    assert from_json.baseline == pytest.approx(0.0832, abs=0.001)
    storage = cv2.FileStorage(str(rig / "rig.yaml"), cv2.FileStorage_READ)
    assert np.linalg.norm(storage.getNode("T").mat()) == pytest.approx(83.2, abs=1.0)  # in mm
    for name in ("M1", "D1", "M2", "D2", "R", "T", "E", "F", "R1", "R2", "P1", "P2", "Q"):
        assert not storage.getNode(name).empty(), name
    storage.release()


def test_calibrate_writes_ros_camera_info_yaml_that_reads_back_as_the_rig(rig):
    """cameracalibrator's left.yaml/right.yaml hold K D R P per camera; depthapp rebuilds the
    rig's R and T from them (R = R2^T R1, T = R2^T t) and rectifies with ROS's own R and P."""
    reference = read_calibration(rig / "rig.json")
    for given in (rig / "ros" / "left.yaml", f"{rig / 'ros' / 'left.yaml'},{rig / 'ros' / 'right.yaml'}",
                  rig / "ros"):
        from_ros = read_calibration(given)
        assert from_ros.extra["format"] == "ros" and not from_ros.rectified
        for name in ("K1", "D1", "K2", "D2", "R1", "R2", "P1", "P2"):
            np.testing.assert_allclose(getattr(from_ros, name), getattr(reference, name),
                                       rtol=1e-12, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(from_ros.R, reference.R, atol=1e-9)
        np.testing.assert_allclose(from_ros.T, reference.T, atol=1e-9)
    text = (rig / "ros" / "right.yaml").read_text()
    assert "camera_name: right" in text and "distortion_model: plumb_bob" in text


@pytest.fixture
def boards_and_a_stranger(chessboard_dir, tmp_path, motorcycle) -> Path:
    """The chessboard pairs plus left.jpg/right.jpg, a pair of another scene (the Motorcycle)
    that the same globs match and that has no chessboard."""
    folder = tmp_path / "images"
    folder.mkdir()
    for path in chessboard_dir.glob("*[0-9][0-9].jpg"):
        (folder / path.name).symlink_to(path)
    write_image(folder / "left.jpg", motorcycle.left)
    write_image(folder / "right.jpg", motorcycle.right)
    return folder


def test_calibrate_output_text(boards_and_a_stranger, tmp_path, capsys):
    images = boards_and_a_stranger
    code, out, err = run_cli(capsys, "calibrate", "--left", images / "left*.jpg",
                             "--right", images / "right*.jpg", "--pattern", "9x6",
                             "--square", "2.5", "--units", "cm", "--out", tmp_path / "rig.yaml")
    assert code == 0, err
    assert "skipped left.jpg: no 9x6 chessboard in the left image" in out
    assert "left01.jpg" in out and "RMS reprojection error" in out and "epipolar error" in out
    assert "baseline 8.3" in out and " cm" in out
    # Only what --out names is written.
    assert f"wrote {tmp_path / 'rig.yaml'}" in out and "rig.json" not in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "rig.yaml"]
    assert read_calibration(tmp_path / "rig.yaml").extra["target_units"] == "cm"
    # Again without --force: refused before any work, files untouched.
    before = (tmp_path / "rig.yaml").read_bytes()
    code, out, err = run_cli(capsys, "calibrate", "--left", images / "left*.jpg",
                             "--right", images / "right*.jpg", "--pattern", "9x6",
                             "--square", "25", "--out", tmp_path / "rig.json", tmp_path / "rig.yaml")
    assert code == 1 and "rig.yaml: already exists (pass --force" in err
    assert (tmp_path / "rig.yaml").read_bytes() == before and not (tmp_path / "rig.json").exists()


@pytest.mark.parametrize("argv, code, message", [
    (["--pattern", "9by6", "--square", "25"], 2, "COLSxROWS"),
    (["--pattern", "9x6", "--square", "0.025"], 2, "pass --units m"),
    (["--square", "25"], 2, "give --pattern"),
    (["--pattern", "9x6", "--square", "25", "--out", "rig.txt"], 2, ".yaml, .yml, .xml"),
    (["--pattern", "9x6", "--square", "25", "--charuco", "DICT_5X5_100:7x5:40"], 2, "DICT:COLSxROWS"),
])
def test_calibrate_usage_errors(chessboard_dir, tmp_path, capsys, argv, code, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result, out, err = run_cli(capsys, "calibrate", "--left", chessboard_dir / "left0*.jpg",
                               "--right", chessboard_dir / "right0*.jpg", *argv)
    assert result == code
    assert message in err and err.startswith("depthapp: error:") and "Traceback" not in err


def test_calibrate_no_matching_files(tmp_path, capsys):
    code, _, err = run_cli(capsys, "calibrate", "--left", tmp_path / "nothing*.png", "--right",
                           tmp_path / "none*.png", "--pattern", "9x6", "--square", "25",
                           "--out", tmp_path / "c.yaml")
    assert code == 1 and "no files match" in err


def test_pair_by_name():
    lefts = [Path(f"cam/left{n:02d}.jpg") for n in (1, 2, 3)]
    rights = [Path(f"cam/right{n:02d}.jpg") for n in (1, 3, 4)]
    pairs, notes = pair_by_name(lefts, rights)
    assert [(name, r.name) for name, _, r in pairs] == [("left01.jpg", "right01.jpg"), ("left03.jpg", "right03.jpg")]
    assert notes == ["cam/left02.jpg: no right image with a matching name",
                     "cam/right04.jpg: no left image with a matching name"]
    pairs, _ = pair_by_name([Path("a/cam0_0007.png"), Path("a/cam0_0010.png")],
                            [Path("b/cam1_0010.png"), Path("b/cam1_0007.png")])
    assert [(l.name, r.name) for _, l, r in pairs] == [("cam0_0007.png", "cam1_0007.png"),
                                                       ("cam0_0010.png", "cam1_0010.png")]


def test_rectify_command(rig, chessboard_dir, tmp_path, capsys):
    out = tmp_path / "rect"
    code, stdout, err = run_cli(capsys, "rectify", chessboard_dir / "left03.jpg",
                                chessboard_dir / "right03.jpg", "--calib", rig / "rig.yaml", "--out", out)
    assert code == 0, err
    assert "check: matched features" in stdout
    left, right = read_rgb(out / "left.png"), read_rgb(out / "right.png")
    assert left.shape == (480, 640, 3)
    offset, count = measure_rectification_error(left, right)
    assert count > 50 and offset < 1.0
    rectified = read_calibration(out / "calibration.json")
    assert rectified.rectified
    assert rectified.baseline == pytest.approx(read_calibration(rig / "rig.json").baseline)
    # Existing outputs are kept unless --force.
    code, _, err = run_cli(capsys, "rectify", chessboard_dir / "left03.jpg", chessboard_dir / "right03.jpg",
                           "--calib", rig / "rig.yaml", "--out", out)
    assert code == 1 and "pass --force" in err
    # A calibration of rectified images has nothing to rectify.
    code, _, err = run_cli(capsys, "rectify", chessboard_dir / "left03.jpg", chessboard_dir / "right03.jpg",
                           "--calib", out / "calibration.json", "--out", tmp_path / "again")
    assert code == 1 and "already rectified" in err


def test_rectify_folder_of_pairs(rig, chessboard_dir, tmp_path, capsys):
    source = tmp_path / "raw"
    for side in ("left", "right"):
        (source / side).mkdir(parents=True)
        for n in ("05", "06"):
            shutil.copy(chessboard_dir / f"{side}{n}.jpg", source / side / f"{n}.jpg")
    code, _, err = run_cli(capsys, "rectify", source, "--calib", rig / "rig.json",
                           "--out", tmp_path / "out", "--alpha", "1")
    assert code == 0, err
    for side in ("left", "right"):
        assert sorted(p.name for p in (tmp_path / "out" / side).iterdir()) == ["05.png", "06.png"]
    assert read_calibration(tmp_path / "out" / "calibration.json").extra["rectify_alpha"] == 1.0


def test_calibrate_charuco_files(tmp_path, capsys):
    from charuco_rendering import render_charuco_rig

    from depthapp.io.images import write_image

    _, pairs, truth = render_charuco_rig(count=8)
    for name, left, right in pairs:
        write_image(tmp_path / f"{name}_left.png", left)
        write_image(tmp_path / f"{name}_right.png", right)
    code, out, err = run_cli(capsys, "calibrate", "--left", tmp_path / "*_left.png",
                             "--right", tmp_path / "*_right.png", "--charuco", "DICT_5X5_100:7x5:40:30",
                             "--units", "mm", "--out", tmp_path / "rig.xml")
    assert code == 0, err
    assert "ChArUco DICT_5X5_100 7x5 squares" in out
    calibration = read_calibration(tmp_path / "rig.xml")
    assert calibration.extra["target_units"] == "mm"
    assert calibration.baseline == pytest.approx(np.linalg.norm(truth["T"]), rel=0.01)


def test_rectify_with_opencv_stereo_calib_files(chessboard_dir, tmp_path, capsys):
    """calib/opencv_stereo_calib holds what OpenCV's sample writes: no units, no image size."""
    calib = Path(__file__).resolve().parents[2] / "calib" / "opencv_stereo_calib"
    args = ["rectify", chessboard_dir / "left07.jpg", chessboard_dir / "right07.jpg", "--calib", calib]
    code, _, err = run_cli(capsys, *args, "--out", tmp_path / "a")
    assert code == 1 and "--calib-units" in err
    code, out, err = run_cli(capsys, *args, "--calib-units", "mm", "--out", tmp_path / "b")
    assert code == 0, err
    offset, count = measure_rectification_error(read_rgb(tmp_path / "b" / "left.png"),
                                                read_rgb(tmp_path / "b" / "right.png"))
    assert count > 30 and offset < 1.0
    rectified = read_calibration(tmp_path / "b" / "calibration.json")
    assert rectified.image_size == (640, 480)  # the estimate replaced by the real size


def test_raw_bag_is_rectified_with_its_camera_info_like_the_raw_calibration(rig, chessboard_dir, tmp_path):
    """A bag of raw images (image_raw) with cameracalibrator's camera_info: the camera loop
    rectifies each pair exactly as the same rig read from depthapp's JSON does."""
    pytest.importorskip("rosbags", reason="needs rosbags (pip install 'depthapp[ros]')")
    from depthapp.calibration.rectify import Rectifier
    from depthapp.calibration.ros import camera_infos_from_stereo
    from depthapp.camera.loop import CameraLoop
    from depthapp.backends import create_backend
    from depthapp.robotics import messages
    from depthapp.sources.bag import BagSource, effective_calibration
    from depthapp.robotics.bags import BagWriter

    ros_rig = read_calibration(rig / "ros")
    infos = camera_infos_from_stereo(ros_rig, ("left", "right"))
    names = ("01", "02")
    with BagWriter(tmp_path / "raw", storage="sqlite3") as writer:
        for index, name in enumerate(names):
            t = 10_000_000_000 + index * 100_000_000
            for side, info in zip(("left", "right"), infos):
                image = read_rgb(chessboard_dir / f"{side}{name}.jpg")
                writer.write(f"/cam/{side}/image_raw", messages.IMAGE, t,
                             messages.image_message(writer.store, t, side, image))
                writer.write(f"/cam/{side}/camera_info", messages.CAMERA_INFO, t,
                             messages.camera_info_message(writer.store, t, info))
    reference = Rectifier(read_calibration(rig / "rig.json"))
    with BagSource(tmp_path / "raw") as source:
        assert not source.topics.rectified and not source.calibration.rectified
        loop = CameraLoop(source, create_backend("opencv-bm", max_disp=64), source.calibration)
        for name, frame in zip(names, source):
            pair = loop.prepare(frame)
            left, right = reference.rectify_images(read_rgb(chessboard_dir / f"left{name}.jpg"),
                                                   read_rgb(chessboard_dir / f"right{name}.jpg"))
            np.testing.assert_array_equal(pair.left, left)
            np.testing.assert_array_equal(pair.right, right)
            assert pair.calibration.rectified
        # cameracalibrator's YAML given for image_rect topics describes them through P
        rect_topics = type(source.topics)("/cam/left/image_rect", "/cam/right/image_rect", None, None)
        assert effective_calibration(ros_rig, None, rect_topics).rectified
        assert not effective_calibration(ros_rig, None, source.topics).rectified
