"""Readers bound what they read before decoding it, and refuse bad files in one line (issue 15)."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from depthapp.errors import InputError
from depthapp.io import read_disparity, read_image, read_npy, read_pfm, read_ply, write_image, write_pfm
from depthapp.io.image_header import image_size

REPO = Path(__file__).resolve().parents[2]


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def huge_png(width: int, height: int) -> bytes:
    """A valid grey PNG of ``width x height`` zeros, a few hundred kilobytes for 20000 x 20000."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def test_huge_png_is_refused_from_its_header(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(huge_png(20000, 20000))
    assert path.stat().st_size < 1_000_000
    with pytest.raises(InputError, match=r"big\.png: 20000x20000 is 400 megapixels.*--max-pixels"):
        read_image(path)


def test_header_above_two_to_the_thirty_pixels(tmp_path):
    path = tmp_path / "liar.png"
    header = struct.pack(">IIBBBBB", 2**20, 2**11, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"x"))
                     + _chunk(b"IEND", b""))
    with pytest.raises(InputError, match="megapixels"):
        read_image(path)


def test_pixel_limit_comes_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "a.png"
    write_image(path, np.zeros((40, 50, 3), np.uint8))
    assert read_image(path).shape == (40, 50, 3)
    monkeypatch.setenv("DEPTHAPP_MAX_PIXELS", "1000")
    with pytest.raises(InputError, match="50x40 is 0 megapixels, above the limit of 0.001"):
        read_image(path)


@pytest.mark.parametrize("extension", [".png", ".jpg", ".bmp", ".ppm", ".tif", ".webp", ".pgm"])
def test_header_sizes_match_what_opencv_decodes(tmp_path, extension):
    image = np.random.default_rng(0).integers(0, 255, (13, 29, 3) if extension != ".pgm" else (13, 29),
                                              dtype=np.uint8)
    data = cv2.imencode(extension, image)[1].tobytes()
    assert image_size(data) == (29, 13)
    path = tmp_path / f"a{extension}"
    path.write_bytes(data)
    assert read_image(path).shape[:2] == (13, 29)


def test_truncated_png_gives_our_line_only(tmp_path):
    path = tmp_path / "cut.png"
    write_image(tmp_path / "whole.png", np.random.default_rng(1).integers(0, 255, (30, 40, 3), dtype=np.uint8))
    path.write_bytes((tmp_path / "whole.png").read_bytes()[:300])
    child = subprocess.run([sys.executable, "-m", "depthapp", "run", str(path), str(path), "--out",
                            str(tmp_path / "o")], capture_output=True, text=True, timeout=120,
                           env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "QT_QPA_PLATFORM": "offscreen"})
    assert child.returncode == 1
    lines = child.stderr.strip().splitlines()
    assert len(lines) == 1 and "cut.png: not a readable image (truncated PNG" in lines[0], child.stderr
    assert "libpng" not in child.stderr


def test_damaged_png_crc(tmp_path):
    data = bytearray(cv2.imencode(".png", np.zeros((5, 5), np.uint8))[1].tobytes())
    data[40] ^= 0xFF
    (tmp_path / "crc.png").write_bytes(bytes(data))
    with pytest.raises(InputError, match="crc.png: not a readable image"):
        read_image(tmp_path / "crc.png")


def test_unknown_format_and_dev_zero(tmp_path):
    (tmp_path / "x.png").write_bytes(b"GIF89a" + b"\x00" * 20)
    with pytest.raises(InputError, match="unknown format"):
        read_image(tmp_path / "x.png")
    if Path("/dev/zero").exists():
        with pytest.raises(InputError, match="/dev/zero: not a readable image"):
            read_image("/dev/zero")


# PFM --------------------------------------------------------------------------------------------

def test_pfm_header_smaller_than_its_data_is_refused(tmp_path):
    path = tmp_path / "d.pfm"
    write_pfm(path, np.ones((4, 5), np.float32))
    data = path.read_bytes().replace(b"5 4\n", b"5 3\n", 1)
    path.write_bytes(data)
    with pytest.raises(InputError, match="longer than its header says"):
        read_pfm(path)


@pytest.mark.parametrize("header", [b"Pf\n5 4\nnan\n", b"Pf\n5 4\n0\n", b"Pf\n5 4\n-inf\n",
                                    b"Pf\n99999999999999999999 4\n-1\n", b"Pf\n0 4\n-1\n",
                                    b"Pf\n100000 100000\n-1\n"])
def test_pfm_bad_headers(tmp_path, header):
    path = tmp_path / "d.pfm"
    path.write_bytes(header + np.ones(20, "<f4").tobytes())
    with pytest.raises(InputError, match="d.pfm"):
        read_pfm(path)


# NPY --------------------------------------------------------------------------------------------

def _npy(array, allow_pickle=False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


@pytest.mark.parametrize("array", [np.array(["a", "b"]), np.array([b"ab"]), np.zeros(2, "c8"),
                                   np.array([{"a": 1}], dtype=object), np.zeros(2, [("a", "<f4")])])
def test_npy_of_non_numbers_is_refused(tmp_path, array):
    path = tmp_path / "gt.npy"
    path.write_bytes(_npy(array, allow_pickle=True))
    with pytest.raises(InputError, match="gt.npy"):
        read_disparity(path)


def test_npy_header_lying_about_its_size(tmp_path):
    data = _npy(np.ones((3, 4), np.float32))
    for old, new in ((b"(3, 4)", b"(3, 5)"), (b"(3, 4)", b"(3, 3)"), (b"(3, 4)", b"(9999999999, 9)")):
        (tmp_path / "a.npy").write_bytes(data.replace(old, new.ljust(len(old)), 1))
        with pytest.raises(InputError, match="a.npy"):
            read_npy(tmp_path / "a.npy")


def test_npy_round_trip_of_real_numbers(tmp_path):
    for array in (np.random.default_rng(0).random((4, 6)).astype(np.float32), np.arange(6, dtype=">i4"),
                  np.asfortranarray(np.arange(12.0).reshape(3, 4)), np.array(2.5)):
        (tmp_path / "a.npy").write_bytes(_npy(array))
        np.testing.assert_array_equal(read_npy(tmp_path / "a.npy"), array)


# PLY and id lists -------------------------------------------------------------------------------

@pytest.mark.parametrize("header", [b"ply\nformat ascii 1.0\nelement vertex x\nend_header\n",
                                    b"ply\nformat ascii 1.0\nelement vertex 2\nproperty float128 x\nend_header\n",
                                    b"ply\nformat ascii 1.0\nelement vertex 2\nproperty\nend_header\n",
                                    b"ply\nformat bogus 1.0\nelement vertex 0\nend_header\n",
                                    b"ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\n"
                                    b"property float y\nproperty float z\nend_header\n1 2 3 4 5 q\n"])
def test_ply_bad_headers(tmp_path, header):
    (tmp_path / "c.ply").write_bytes(header)
    with pytest.raises(InputError, match="c.ply"):
        read_ply(tmp_path / "c.ply")


def test_id_list_with_non_utf8_bytes(tmp_path):
    from depthapp.evaluation.datasets import _read_ids

    (tmp_path / "ids.txt").write_bytes(b"000000_10\n\xff\xfe000001_10\n")
    with pytest.raises(InputError, match=r"ids.txt: the id list is not UTF-8 text \(byte 0xff at offset 10\)"):
        _read_ids(tmp_path / "ids.txt")
