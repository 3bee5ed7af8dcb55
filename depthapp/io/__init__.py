"""File formats. Every writer is atomic and refuses to overwrite unless ``overwrite=True``."""

from .atomic import atomic_path, check_writable
from .disparity import read_disparity, read_npy, write_disparity, write_npy
from .images import read_image, read_rgb, split_side_by_side, write_image
from .kitti import read_kitti_disparity, write_kitti_disparity
from .pfm import read_pfm, write_pfm
from .ply import read_ply, write_ply

__all__ = ["atomic_path", "check_writable", "load_pair", "read_disparity", "read_image", "read_kitti_disparity", "read_npy", "read_pfm",
           "read_ply", "read_rgb", "split_side_by_side", "write_disparity", "write_image",
           "write_kitti_disparity", "write_npy", "write_pfm", "write_ply"]


def __getattr__(name: str):
    # ``from depthapp.io import load_pair`` is the README's documented path; pairs are a source,
    # so the function lives in depthapp.sources (imported on use: sources imports this package).
    if name == "load_pair":
        from ..sources.files import load_pair

        return load_pair
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
