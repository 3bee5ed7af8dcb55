import numpy as np

from depthapp.io import read_ply, write_ply


def test_binary_round_trip_with_colour(tmp_path, rng):
    points = rng.normal(size=(100, 3)).astype(np.float32)
    colors = rng.integers(0, 256, size=(100, 3), dtype=np.uint8)
    path = write_ply(tmp_path / "c.ply", points, colors)
    header = path.read_bytes().split(b"end_header")[0].decode()
    assert "format binary_little_endian 1.0" in header and "element vertex 100" in header
    assert "property uchar red" in header
    back_points, back_colors = read_ply(path)
    np.testing.assert_array_equal(back_points, points)
    np.testing.assert_array_equal(back_colors, colors)


def test_size_matches_the_format_exactly(tmp_path):
    path = write_ply(tmp_path / "c.ply", np.zeros((10, 3)), np.zeros((10, 3), np.uint8))
    header_length = path.read_bytes().index(b"end_header\n") + len(b"end_header\n")
    assert path.stat().st_size == header_length + 10 * (3 * 4 + 3)


def test_reads_hand_written_ascii(tmp_path):
    (tmp_path / "a.ply").write_text(
        "ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\n"
        "property float z\nproperty uchar red\nproperty uchar green\nproperty uchar blue\n"
        "end_header\n1 2 3 255 0 0\n4 5 6 0 255 0\n")
    points, colors = read_ply(tmp_path / "a.ply")
    np.testing.assert_array_equal(points, [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(colors, [[255, 0, 0], [0, 255, 0]])
