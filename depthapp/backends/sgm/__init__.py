"""Census + semi-global matching: the ``sgm`` backend and its reusable pieces.

- :mod:`.aggregation`: SGM aggregation, winner-take-all, sub-pixel, left-right check, median and
  speckle filters for any ``(H, W, D)`` cost volume (shared with the MC-CNN backend).
- :mod:`.cost`: census transform and the combined census/intensity/gradient cost.
- :mod:`.pipeline`: the CPU pipeline and its memory estimate.
- :mod:`.cuda`: the same pipeline as CUDA kernels (numba-cuda); imported only when used.
- :mod:`.reference`: slow direct numpy implementations the kernels are tested against.
"""

import os

# numba's OpenMP threads otherwise spin between the pipeline's dozen parallel regions; on a
# shared or busy machine the spinning thread takes the core the working one needs (Motorcycle,
# 2 threads, load 9: CPU 267 -> 208 ms, wall 826 -> 597 ms). Read when the threads start, so
# it must be set before the first parallel kernel runs; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .backend import SGMBackend  # noqa: E402

__all__ = ["SGMBackend"]
