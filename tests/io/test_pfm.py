import numpy as np
import pytest

from depthapp.errors import InputError, OutputExistsError
from depthapp.io import read_pfm, write_pfm


def test_round_trip_grey_keeps_values_and_marks_nan_as_inf(tmp_path, rng):
    array = rng.normal(size=(7, 5)).astype(np.float32)
    array[2, 3] = np.nan
    path = write_pfm(tmp_path / "d.pfm", array)
    back = read_pfm(path)
    assert back.dtype == np.float32 and back.shape == (7, 5)
    assert np.isposinf(back[2, 3])
    mask = np.isfinite(array)
    np.testing.assert_array_equal(back[mask], array[mask])


def test_round_trip_colour(tmp_path, rng):
    array = rng.random((4, 6, 3)).astype(np.float32)
    np.testing.assert_array_equal(read_pfm(write_pfm(tmp_path / "c.pfm", array)), array)


def test_reads_hand_written_big_endian_bottom_to_top(tmp_path):
    # Rows stored bottom to top; positive scale means big endian (Middlebury/Scene Flow files).
    rows_bottom_first = np.array([[3.0, 4.0], [1.0, 2.0]], dtype=">f4")
    (tmp_path / "h.pfm").write_bytes(b"Pf\n2 2\n1.0\n" + rows_bottom_first.tobytes())
    np.testing.assert_array_equal(read_pfm(tmp_path / "h.pfm"), [[1.0, 2.0], [3.0, 4.0]])


def test_reads_little_endian_header_on_one_line(tmp_path):
    data = np.array([[5.0, 6.0, 7.0]], dtype="<f4")
    (tmp_path / "l.pfm").write_bytes(b"Pf 3 1 -1\n" + data.tobytes())
    np.testing.assert_array_equal(read_pfm(tmp_path / "l.pfm"), [[5.0, 6.0, 7.0]])


def test_errors_name_the_file(tmp_path):
    (tmp_path / "bad.pfm").write_bytes(b"P6\n1 1\n255\n\x00\x00\x00")
    with pytest.raises(InputError, match="bad.pfm.*not a PFM"):
        read_pfm(tmp_path / "bad.pfm")
    (tmp_path / "short.pfm").write_bytes(b"Pf\n4 4\n-1\n" + b"\x00" * 8)
    with pytest.raises(InputError, match="short.pfm.*truncated"):
        read_pfm(tmp_path / "short.pfm")
    with pytest.raises(InputError, match="missing.pfm"):
        read_pfm(tmp_path / "missing.pfm")


def test_write_refuses_to_overwrite_unless_asked(tmp_path):
    path = write_pfm(tmp_path / "d.pfm", np.zeros((2, 2)))
    with pytest.raises(OutputExistsError):
        write_pfm(path, np.ones((2, 2)))
    write_pfm(path, np.ones((2, 2)), overwrite=True)
    assert read_pfm(path)[0, 0] == 1.0
    assert [p.name for p in tmp_path.iterdir()] == ["d.pfm"]  # no temporary file left behind
