import numpy as np
import pytest

from depthapp.errors import InputError
from depthapp.io import write_image
from depthapp.sources import find_pairs

IMAGE = np.zeros((4, 4, 3), np.uint8)


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, IMAGE)


@pytest.mark.parametrize("left_dir,right_dir", [("left", "right"), ("image_2", "image_3"),
                                                ("colored_0", "colored_1")])
def test_subfolder_layouts(tmp_path, left_dir, right_dir):
    for name in ("000000_10.png", "000001_10.png"):
        _touch(tmp_path / left_dir / name)
        _touch(tmp_path / right_dir / name)
    _touch(tmp_path / left_dir / "unmatched.png")
    pairs = find_pairs(tmp_path)
    assert [p.name for p in pairs] == ["000000_10", "000001_10"]
    assert pairs[0].left.parent.name == left_dir and pairs[0].right.parent.name == right_dir


def test_middlebury_scene_folders(tmp_path):
    for scene in ("Adirondack", "Motorcycle"):
        _touch(tmp_path / scene / "im0.png")
        _touch(tmp_path / scene / "im1.png")
    assert [p.name for p in find_pairs(tmp_path)] == ["Adirondack", "Motorcycle"]


@pytest.mark.parametrize("left,right,stem", [("a_left.png", "a_right.png", "a"),
                                             ("frame01_L.jpg", "frame01_R.jpg", "frame01"),
                                             ("left_03.png", "right_03.png", "03")])
def test_name_suffix_layouts(tmp_path, left, right, stem):
    _touch(tmp_path / left)
    _touch(tmp_path / right)
    pairs = find_pairs(tmp_path)
    assert len(pairs) == 1 and pairs[0].name == stem
    assert pairs[0].left.name == left and pairs[0].right.name == right


def test_no_pairs_is_a_clear_error(tmp_path):
    _touch(tmp_path / "lonely.png")
    with pytest.raises(InputError, match="no stereo pairs found"):
        find_pairs(tmp_path)
    with pytest.raises(InputError, match="not a folder"):
        find_pairs(tmp_path / "lonely.png")
