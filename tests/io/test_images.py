import cv2
import numpy as np
import pytest

from depthapp.errors import InputError
from depthapp.io import load_pair, read_image, read_rgb, split_side_by_side, write_image


@pytest.mark.parametrize("extension", [".png", ".ppm", ".pgm", ".bmp", ".tif"])
def test_lossless_round_trip_8_bit(tmp_path, rng, extension):
    grey = extension == ".pgm"
    shape = (6, 7) if grey else (6, 7, 3)
    image = rng.integers(0, 256, size=shape, dtype=np.uint8)
    np.testing.assert_array_equal(read_image(write_image(tmp_path / f"i{extension}", image)), image)


@pytest.mark.parametrize("extension", [".png", ".pgm", ".ppm"])
def test_16_bit_is_preserved(tmp_path, rng, extension):
    shape = (5, 4, 3) if extension == ".ppm" else (5, 4)
    image = rng.integers(0, 65536, size=shape, dtype=np.uint16)
    back = read_image(write_image(tmp_path / f"i{extension}", image))
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, image)


def test_channel_order_is_rgb(tmp_path):
    # Written by OpenCV directly, in BGR: pure red must come back as R=255.
    bgr = np.zeros((2, 2, 3), np.uint8)
    bgr[..., 2] = 255
    cv2.imwrite(str(tmp_path / "red.png"), bgr)
    assert read_rgb(tmp_path / "red.png")[0, 0].tolist() == [255, 0, 0]


def test_jpeg_reads_close(tmp_path):
    image = np.full((16, 16, 3), (200, 100, 50), np.uint8)
    back = read_rgb(write_image(tmp_path / "i.jpg", image))
    assert np.abs(back.astype(int) - image).max() <= 3


def test_grey_and_16_bit_become_rgb_uint8_pairs(tmp_path):
    write_image(tmp_path / "l.png", np.full((4, 6), 65535, np.uint16))
    write_image(tmp_path / "r.pgm", np.full((4, 6), 7, np.uint8))
    pair = load_pair(tmp_path / "l.png", tmp_path / "r.pgm")
    assert pair.left.shape == (4, 6, 3) and pair.left.dtype == np.uint8
    assert pair.left.max() == 255 and pair.right.max() == 7


def test_side_by_side_split(tmp_path):
    frame = np.zeros((3, 8, 3), np.uint8)
    frame[:, 4:] = 9
    left, right = split_side_by_side(frame)
    assert left.shape == right.shape == (3, 4, 3) and left.max() == 0 and right.min() == 9
    write_image(tmp_path / "sbs.png", frame)
    pair = load_pair(tmp_path / "sbs.png")
    assert pair.width == 4 and pair.right.min() == 9
    with pytest.raises(InputError, match="even width"):
        split_side_by_side(np.zeros((2, 5, 3), np.uint8), source="odd.png")


def test_bad_inputs_name_the_file(tmp_path):
    with pytest.raises(InputError, match="nope.png: no such file"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputError, match="empty.png: file is empty"):
        read_image(tmp_path / "empty.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(InputError, match="text.png: not a readable image"):
        read_image(tmp_path / "text.png")
    write_image(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    write_image(tmp_path / "b.png", np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(InputError, match="b.png: size 5x4 differs"):
        load_pair(tmp_path / "a.png", tmp_path / "b.png")
