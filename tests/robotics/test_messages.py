"""Pure conversions between arrays and ROS messages (both ROS generations' typestores)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("rosbags", reason="needs rosbags (pip install 'depthapp[ros]')")

from rosbags.typesys import Stores, get_typestore  # noqa: E402

from depthapp.calibration import read_calibration  # noqa: E402
from depthapp.calibration.rectify import stereo_rectify  # noqa: E402
from depthapp.calibration.model import StereoCalibration  # noqa: E402
from depthapp.calibration.ros import (CameraInfo, camera_infos_from_stereo,  # noqa: E402
                                      stereo_from_camera_infos)
from depthapp.errors import CalibrationError, InputError  # noqa: E402
from depthapp.robotics import messages  # noqa: E402
from depthapp.sample import sample_calibration_path  # noqa: E402

STORES = {"ros2": Stores.ROS2_HUMBLE, "ros1": Stores.ROS1_NOETIC}


@pytest.fixture(params=sorted(STORES))
def store(request):
    return get_typestore(STORES[request.param])


def roundtrip(store, message, msgtype):
    """Serialise and deserialise as a bag would (CDR for ROS 2, ROS 1 wire format)."""
    if "noetic" in str(store.types[msgtype].__module__):
        return store.deserialize_ros1(store.serialize_ros1(message, msgtype), msgtype)
    return store.deserialize_cdr(store.serialize_cdr(message, msgtype), msgtype)


def test_camera_info_carries_the_middlebury_calibration_exactly(store):
    calibration = read_calibration(str(sample_calibration_path()))
    left, right = camera_infos_from_stereo(calibration, ("l", "r"))
    back = [messages.camera_info_from_message(
        roundtrip(store, messages.camera_info_message(store, 5, info), messages.CAMERA_INFO), "test")
        for info in (left, right)]
    rig = stereo_from_camera_infos(*back, rectified=True, source="bag")
    np.testing.assert_array_equal(rig.P1, calibration.P1)
    np.testing.assert_array_equal(rig.P2, calibration.P2)
    assert rig.image_size == calibration.image_size
    assert (rig.focal, rig.baseline, rig.doffs) == (calibration.focal, calibration.baseline, calibration.doffs)
    assert [b.frame_id for b in back] == ["l", "r"]


def test_raw_rig_pose_is_rebuilt_from_ros_rectification():
    """R = R2^T R1 and T = R2^T t: the pose OpenCV rectified comes back from ROS's R and P."""
    angle = np.deg2rad(2.0)
    rotation = cv2.Rodrigues(np.array([0.01, angle, -0.005]))[0]
    k = np.array([[700.0, 0, 320], [0, 705, 240], [0, 0, 1]])
    raw = StereoCalibration(image_size=(640, 480), K1=k, D1=np.array([-0.1, 0.02, 0.001, 0.0, 0.0]),
                            K2=k * [[1.01], [1.0], [1.0]], D2=np.array([-0.09, 0.01, 0, 0.001, 0]),
                            R=rotation, T=np.array([-0.12, 0.002, 0.001]), rectified=False)
    rectified = stereo_rectify(raw)
    left, right = camera_infos_from_stereo(rectified)
    rig = stereo_from_camera_infos(left, right, rectified=False, source="ros")
    np.testing.assert_allclose(rig.R, raw.R, atol=1e-12)
    np.testing.assert_allclose(rig.T, raw.T, atol=1e-12)
    assert rig.baseline == pytest.approx(np.linalg.norm(raw.T), rel=1e-12)


@pytest.mark.parametrize("change, message", [
    (dict(K=np.zeros(9)), "K is all zeros"),
    (dict(P=np.r_[np.nan, np.zeros(11)]), "non-finite"),
    (dict(R=np.eye(3) * 2), "not a rotation"),
    (dict(D=np.zeros(3)), "D has 3 coefficients"),
    (dict(width=0), "width must be in"),
    (dict(K=[-500.0, 0, 320, 0, 500, 240, 0, 0, 1]), "focal lengths must be positive"),
    (dict(distortion_model="equidistant"), "not supported"),
])
def test_camera_info_rejects_impossible_numbers(change, message):
    good = dict(width=640, height=480, K=[500.0, 0, 320, 0, 500, 240, 0, 0, 1], D=np.zeros(5),
                R=np.eye(3), P=[500.0, 0, 320, 0, 0, 500, 240, 0, 0, 0, 1, 0])
    with pytest.raises(CalibrationError, match=message):
        CameraInfo.checked(**{**good, **change}, source="cam.yaml")


def image_message(store, array, encoding, pad=0, bigendian=False):
    array = np.ascontiguousarray(array)
    if bigendian:
        array = array.astype(array.dtype.newbyteorder(">"))
    rows = array.reshape(array.shape[0], -1).view(np.uint8)
    rows = np.concatenate([rows, np.zeros((rows.shape[0], pad), np.uint8)], axis=1)
    return messages.build(store, messages.IMAGE, header=messages.header(store, 0, "f"),
                          height=array.shape[0], width=array.shape[1], encoding=encoding,
                          is_bigendian=int(bigendian), step=rows.shape[1], data=rows.ravel())


def test_every_supported_encoding_becomes_rgb(store, motorcycle):
    rgb = motorcycle.left[:40, :50]
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    cases = {"rgb8": rgb, "bgr8": rgb[:, :, ::-1], "rgba8": np.dstack([rgb, np.full(grey.shape, 9, np.uint8)]),
             "bgra8": np.dstack([rgb[:, :, ::-1], np.zeros(grey.shape, np.uint8)]),
             "mono8": grey}
    for encoding, array in cases.items():
        message = roundtrip(store, image_message(store, array, encoding, pad=3), messages.IMAGE)
        out = messages.image_to_array(message, messages.IMAGE, encoding)
        expected = np.repeat(grey[:, :, None], 3, axis=2) if encoding == "mono8" else rgb
        np.testing.assert_array_equal(out, expected, err_msg=encoding)
    twelve_bit = grey.astype(np.uint16) << 4
    for bigendian in (False, True):
        message = image_message(store, twelve_bit, "mono16", pad=2, bigendian=bigendian)
        out = messages.image_to_array(message, messages.IMAGE, "mono16")
        np.testing.assert_array_equal(out, twelve_bit)
        shift = messages.mono16_shift(out)
        assert shift == 4
        np.testing.assert_array_equal(messages.to_rgb8(out, shift)[:, :, 1], grey)


def test_bad_image_messages_are_one_line_errors(store):
    grey = np.zeros((4, 5), np.uint8)
    with pytest.raises(InputError, match="encoding 'bayer_rggb8' is not supported"):
        messages.image_to_array(image_message(store, grey, "bayer_rggb8"), messages.IMAGE, "cam")
    short = image_message(store, grey, "mono8")
    short.data = short.data[:7]
    with pytest.raises(InputError, match="cam: mono8 image 5x4 has step 5 and 7 bytes"):
        messages.image_to_array(short, messages.IMAGE, "cam")
    broken = messages.build(store, messages.COMPRESSED_IMAGE, header=messages.header(store, 0, "f"),
                            format="jpeg", data=np.frombuffer(b"\xff\xd8not a jpeg", np.uint8))
    with pytest.raises(InputError, match="cannot decode compressed image"):
        messages.image_to_array(broken, messages.COMPRESSED_IMAGE, "cam")


def test_disparity_message_follows_stereo_msgs(store, motorcycle):
    calibration = motorcycle.calibration
    disparity = motorcycle.gt_disparity
    message = roundtrip(store, messages.disparity_message(store, 7, "l", disparity, calibration, 64, 0.0625),
                        messages.DISPARITY_IMAGE)
    values = messages.image_to_float(message.image)
    valid = np.isfinite(disparity)
    # d_ros = x_l - x_r - (cx_l - cx_r): Z = f T / d_ros, the same depth as depthapp's f B / (d + doffs)
    np.testing.assert_allclose(values[valid], disparity[valid] + calibration.doffs, rtol=1e-6)
    assert np.all(values[~valid] < message.min_disparity)
    assert message.f == pytest.approx(calibration.focal) and messages.field(message, "t") == pytest.approx(calibration.baseline)
    assert message.delta_d == 0.0625
    back = messages.disparity_from_message(message, calibration.doffs)
    np.testing.assert_allclose(back[valid], disparity[valid], atol=1e-4)
    assert np.isnan(back[~valid]).all()
    ys, xs = np.nonzero(valid)
    window = message.valid_window
    assert (window.x_offset, window.y_offset) == (xs.min(), ys.min())
    assert (window.width, window.height) == (xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)


def test_point_cloud_message_roundtrip(store, motorcycle):
    from depthapp.geometry import disparity_to_points

    cloud = disparity_to_points(motorcycle.gt_disparity, motorcycle.calibration, motorcycle.left, stride=7)
    message = roundtrip(store, messages.point_cloud_message(store, 3, "l", cloud.points, cloud.colors),
                        messages.POINT_CLOUD2)
    assert [f.name for f in message.fields] == ["x", "y", "z", "rgb"] and message.point_step == 16
    points, colors = messages.point_cloud_from_message(message)
    np.testing.assert_array_equal(points, cloud.points)
    np.testing.assert_array_equal(colors, cloud.colors)
