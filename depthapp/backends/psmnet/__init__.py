"""PSMNet: the stacked-hourglass network of Chang & Chen (CVPR 2018) with its official weights."""

from .backend import PSMNetBackend

__all__ = ["PSMNetBackend"]
