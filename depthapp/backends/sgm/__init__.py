"""Census + semi-global matching: the ``sgm`` backend and its reusable pieces.

- :mod:`.aggregation`: SGM aggregation, winner-take-all, sub-pixel, left-right check, median and
  speckle filters for any ``(H, W, D)`` cost volume (shared with the MC-CNN backend).
- :mod:`.cost`: census transform and the combined census/intensity/gradient cost.
- :mod:`.pipeline`: the CPU pipeline and its memory estimate.
- :mod:`.cuda`: the same pipeline as CUDA kernels (numba-cuda); imported only when used.
- :mod:`.reference`: slow direct numpy implementations the kernels are tested against.
"""

import os


def _start_numba_threads_waiting_passively() -> None:
    """Start numba's thread pool with OpenMP's passive wait policy.

    Otherwise its threads spin between the pipeline's dozen parallel regions, and on a shared
    or busy machine the spinning thread takes the core the working one needs (Motorcycle,
    2 threads, load 9: CPU 267 -> 189 ms, wall 826 -> 667 ms). The OpenMP runtime reads the
    policy when it is loaded, which numba does when the pool starts, so it is set only for
    that moment: a runtime loaded later (torch's own libgomp) reads the user's environment.
    A policy the user set wins.
    """
    if "OMP_WAIT_POLICY" in os.environ:
        return
    import numba

    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        numba.get_num_threads()  # launches the pool
    finally:
        del os.environ["OMP_WAIT_POLICY"]


_start_numba_threads_waiting_passively()

from .backend import SGMBackend  # noqa: E402

__all__ = ["SGMBackend"]
