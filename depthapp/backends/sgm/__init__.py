"""Census + semi-global matching: the ``sgm`` backend and its reusable pieces.

- :mod:`.aggregation`: SGM aggregation, winner-take-all, sub-pixel, left-right check, median and
  speckle filters for any ``(H, W, D)`` cost volume (shared with the MC-CNN backend).
- :mod:`.cost`: census transform and the combined census/intensity/gradient cost.
- :mod:`.pipeline`: the CPU pipeline and its memory estimate.
- :mod:`.native`: the compiled CPU kernels (``_native.cpp``) and their thread count.
- :mod:`.cuda`: the same pipeline as CUDA kernels (numba-cuda); imported only when used.
- :mod:`.reference`: slow direct numpy implementations the kernels are tested against.
"""

from .backend import SGMBackend

__all__ = ["SGMBackend"]
