"""Bags as a stereo source: ROS 1, ROS 2 sqlite3 and MCAP written by rosbags from real pairs."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rosbags", reason="needs rosbags (pip install 'depthapp[ros]')")

from bag_fixtures import (compressed_png, mono8_message, read_all, stamp,  # noqa: E402
                          write_stereo_bag)

from depthapp.calibration import read_calibration  # noqa: E402
from depthapp.errors import InputError, UsageError  # noqa: E402
from depthapp.sources.bag import BagSource  # noqa: E402
from depthapp.robotics.bags import find_stereo_topics  # noqa: E402
from depthapp.sample import sample_calibration_path  # noqa: E402

LAYOUTS = {"ros1": "pairs.bag", "sqlite3": "pairs_sqlite3", "mcap": "pairs_mcap"}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_motorcycle_bag_plays_back_with_its_middlebury_calibration(layout, tmp_path, motorcycle):
    path = write_stereo_bag(tmp_path / LAYOUTS[layout], [motorcycle.left] * 2, [motorcycle.right] * 2,
                            motorcycle.calibration, storage="sqlite3" if layout == "sqlite3" else "mcap",
                            right_offset=2_000_000)
    with BagSource(path) as source:
        frames = list(source)
        stats = source.stats()
        calibration = source.calibration
    assert len(frames) == 2
    for index, frame in enumerate(frames):
        np.testing.assert_array_equal(frame.left, motorcycle.left)
        np.testing.assert_array_equal(frame.right, motorcycle.right)
        assert (frame.stamp_left, frame.stamp_right) == (stamp(index), stamp(index) + 2_000_000)
        assert frame.frame_ids == ("left_camera_optical_frame", "right_camera_optical_frame")
    assert stats.skew.maximum == pytest.approx(0.002, abs=1e-12) and stats.dropped == (0, 0)
    middlebury = read_calibration(str(sample_calibration_path()))
    assert calibration.rectified
    np.testing.assert_array_equal(calibration.P1, middlebury.P1)
    np.testing.assert_array_equal(calibration.P2, middlebury.P2)
    assert calibration.image_size == middlebury.image_size


def test_oakd_mono8_bag_in_the_ros2_driver_layout(tmp_path, oakd):
    lefts, rights, calibration = oakd
    path = write_stereo_bag(tmp_path / "oak", lefts, rights, calibration, namespace="/oak",
                            encode=mono8_message, frame_ids=("oak_left_camera_optical_frame",
                                                             "oak_right_camera_optical_frame"))
    with BagSource(path) as source:
        frames = list(source)
        assert source.topics.left == "/oak/left/image_rect"
        assert source.calibration.baseline == pytest.approx(0.075)
    assert len(frames) == len(lefts)
    for frame, left, right in zip(frames, lefts, rights):
        assert frame.left.shape == (480, 640, 3)
        np.testing.assert_array_equal(frame.left[:, :, 0], left)
        np.testing.assert_array_equal(frame.right[:, :, 2], right)


def test_mono16_bag_is_scaled_by_the_bit_depth_it_uses(tmp_path, oakd):
    """A 12-bit camera published as mono16 (big-endian, as some drivers do) reads as its 8 bits."""
    from depthapp.robotics import messages

    lefts, rights, calibration = oakd

    def mono16_message(store, t, frame_id, grey):
        twelve_bit = (grey.astype(np.uint16) << 4).astype(">u2")
        return messages.IMAGE, messages.build(
            store, messages.IMAGE, header=messages.header(store, t, frame_id), height=grey.shape[0],
            width=grey.shape[1], encoding="mono16", is_bigendian=1, step=2 * grey.shape[1],
            data=twelve_bit.view(np.uint8).ravel())

    path = write_stereo_bag(tmp_path / "mono16", lefts[:2], rights[:2], calibration, encode=mono16_message)
    with BagSource(path) as source:
        frames = list(source)
    for frame, left, right in zip(frames, lefts, rights):
        np.testing.assert_array_equal(frame.left[:, :, 1], left)
        np.testing.assert_array_equal(frame.right[:, :, 1], right)


def test_compressed_images_decode_to_the_same_pixels(tmp_path, motorcycle):
    path = write_stereo_bag(tmp_path / "compressed", [motorcycle.left], [motorcycle.right],
                            motorcycle.calibration, encode=compressed_png)
    with BagSource(path) as source:
        assert source.topics.left == "/stereo/left/image_rect/compressed"
        assert source.topics.left_info == "/stereo/left/camera_info"
        (frame,) = list(source)
    np.testing.assert_array_equal(frame.left, motorcycle.left)
    np.testing.assert_array_equal(frame.right, motorcycle.right)


def test_missing_right_frame_is_skipped_and_counted(tmp_path, oakd):
    lefts, rights, calibration = oakd
    path = write_stereo_bag(tmp_path / "gap", lefts, rights, calibration, encode=mono8_message,
                            skip_right=(1,))
    notes = []
    with BagSource(path, on_status=notes.append) as source:
        frames = list(source)
        stats = source.stats()
    assert [f.stamp_left for f in frames] == [stamp(0), stamp(2)]
    np.testing.assert_array_equal(frames[1].left[:, :, 0], lefts[2])
    np.testing.assert_array_equal(frames[1].right[:, :, 0], rights[2])
    assert stats.captured == (3, 2) and stats.dropped == (1, 0)
    assert notes == [f"/stereo/left/image_rect: frame stamped {stamp(1) // 10**9}.{stamp(1) % 10**9:09d} s "
                     "has no partner within 10 ms; skipped"]


def test_topic_detection_prefers_rectified_and_lists_ambiguous_pairs(tmp_path, oakd):
    lefts, rights, calibration = oakd
    topics = {f"/cam/{side}/{name}": "sensor_msgs/msg/Image"
              for side in ("left", "right") for name in ("image_raw", "image_rect")}
    topics.update({f"/cam/{side}/camera_info": "sensor_msgs/msg/CameraInfo" for side in ("left", "right")})
    chosen = find_stereo_topics(tmp_path, topics)
    assert (chosen.left, chosen.right, chosen.left_info) == ("/cam/left/image_rect", "/cam/right/image_rect",
                                                             "/cam/left/camera_info")
    assert chosen.rectified
    realsense = {f"/camera/{name}": "sensor_msgs/msg/Image"
                 for name in ("infra1/image_rect_raw", "infra2/image_rect_raw", "color/image_raw",
                              "depth/image_rect_raw")}
    realsense.update({f"/camera/{cam}/camera_info": "sensor_msgs/msg/CameraInfo" for cam in ("infra1", "infra2")})
    chosen = find_stereo_topics(tmp_path, realsense)
    assert (chosen.left, chosen.right, chosen.right_info) == ("/camera/infra1/image_rect_raw",
                                                              "/camera/infra2/image_rect_raw",
                                                              "/camera/infra2/camera_info")
    two = write_stereo_bag(tmp_path / "two", lefts[:1], rights[:1], calibration, namespace="/front",
                           encode=mono8_message)
    both = read_all(two)
    assert sorted(both) == ["/front/left/camera_info", "/front/left/image_rect",
                            "/front/right/camera_info", "/front/right/image_rect"]
    topics = {f"/{ns}/{side}/image_rect": "sensor_msgs/msg/Image" for ns in ("front", "rear")
              for side in ("left", "right")}
    with pytest.raises(UsageError) as error:
        find_stereo_topics(tmp_path / "bag", topics)
    message = str(error.value)
    assert "\n" not in message
    assert "/front/left/image_rect + /front/right/image_rect" in message
    assert "/rear/left/image_rect + /rear/right/image_rect" in message and "--left-topic" in message
    with pytest.raises(InputError, match="no topic /nope"):
        find_stereo_topics(tmp_path, topics, "/nope", "/front/right/image_rect")


def test_truncated_bags_fail_with_one_line(tmp_path, motorcycle):
    for layout in ("pairs.bag", "pairs_mcap"):
        path = write_stereo_bag(tmp_path / layout, [motorcycle.left] * 2, [motorcycle.right] * 2,
                                motorcycle.calibration)
        data_file = path if path.is_file() else next(path.glob("*.mcap"))
        data = data_file.read_bytes()
        data_file.write_bytes(data[:len(data) // 2])
        with pytest.raises(InputError) as error:
            with BagSource(path) as source:
                list(source)
        assert str(error.value).startswith(f"{path}") and "\n" not in str(error.value)


def test_open_source_knows_a_bag_as_a_registered_kind(tmp_path, motorcycle):
    """depthapp.sources registers the bag kind: --folder BAG (and --sbs FILE.mcap) open it."""
    from depthapp.sources import open_source, source_kinds

    assert "bag" in [kind.name for kind in source_kinds()]
    path = write_stereo_bag(tmp_path / "reg", [motorcycle.left], [motorcycle.right], motorcycle.calibration)
    for source in (open_source(folder=str(path)), open_source(sbs=str(path / "reg.mcap"))):
        assert isinstance(source, BagSource)
        with source:
            (frame,) = list(source)
        np.testing.assert_array_equal(frame.right, motorcycle.right)
    with pytest.raises(UsageError, match="drop --realtime"):
        open_source(folder=str(path), realtime=True)
