import cv2
import numpy as np
import pytest

from depthapp.errors import InputError
from depthapp.io import read_disparity, read_kitti_disparity, write_disparity, write_kitti_disparity


def test_reads_hand_written_devkit_png(tmp_path):
    # What the devkit writes: uint16, value = d * 256, 0 = invalid.
    values = np.array([[0, 256, 512 + 128], [65535, 1, 0]], dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "000000_10.png"), values)
    disparity = read_kitti_disparity(tmp_path / "000000_10.png")
    assert np.isnan(disparity[0, 0]) and np.isnan(disparity[1, 2])
    np.testing.assert_allclose(disparity[0, 1:], [1.0, 2.5])
    np.testing.assert_allclose(disparity[1, :2], [65535 / 256, 1 / 256])


def test_round_trip_quantises_to_one_256th(tmp_path, rng):
    disparity = rng.uniform(0, 200, size=(5, 9)).astype(np.float32)
    disparity[0, 0] = np.nan
    disparity[1, 1] = -3.0  # negative disparities cannot be stored: invalid
    back = read_kitti_disparity(write_kitti_disparity(tmp_path / "d.png", disparity))
    assert np.isnan(back[0, 0]) and np.isnan(back[1, 1])
    keep = np.isfinite(disparity) & (disparity >= 0)
    assert np.max(np.abs(back[keep] - disparity[keep])) <= 0.5 / 256 + 1e-6
    raw = cv2.imread(str(tmp_path / "d.png"), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw[0, 0] == 0


def test_zero_disparity_stays_valid(tmp_path):
    back = read_kitti_disparity(write_kitti_disparity(tmp_path / "z.png", np.zeros((2, 2))))
    assert np.all(np.isfinite(back)) and np.all(back < 0.01)


def test_rejects_8_bit_png(tmp_path):
    cv2.imwrite(str(tmp_path / "eight.png"), np.zeros((3, 3), np.uint8))
    with pytest.raises(InputError, match="eight.png.*16-bit"):
        read_kitti_disparity(tmp_path / "eight.png")


def test_dispatch_by_extension(tmp_path, rng):
    disparity = rng.uniform(0, 50, size=(4, 4)).astype(np.float32)
    for name in ("a.pfm", "a.npy"):
        np.testing.assert_array_equal(read_disparity(write_disparity(tmp_path / name, disparity)), disparity)
    with pytest.raises(InputError, match="unknown disparity format"):
        write_disparity(tmp_path / "a.txt", disparity)
