"""File formats. Every writer is atomic and refuses to overwrite unless ``overwrite=True``."""

from .atomic import atomic_path, check_writable
from .disparity import read_disparity, read_npy, write_disparity, write_npy
from .images import read_image, read_rgb, split_side_by_side, write_image
from .kitti import read_kitti_disparity, write_kitti_disparity
from .pairs import PairFiles, find_pairs, load_pair
from .pfm import read_pfm, write_pfm
from .ply import read_ply, write_ply

__all__ = ["PairFiles", "atomic_path", "check_writable", "find_pairs", "load_pair",
           "read_disparity", "read_image", "read_kitti_disparity", "read_npy", "read_pfm",
           "read_ply", "read_rgb", "split_side_by_side", "write_disparity", "write_image",
           "write_kitti_disparity", "write_npy", "write_pfm", "write_ply"]
