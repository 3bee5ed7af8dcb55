"""The compiled CPU kernels (``_native.cpp``), and how many threads they use.

They are built when the package is installed (``pip install -e .`` compiles them with the
system's C++ compiler). The build is optional: without a compiler the install still succeeds,
``sgm`` (and MC-CNN, which uses the aggregation) are listed as unavailable with the reason,
and the rest of depthapp works. A source tree used without installing builds them with
``python setup.py build_ext --inplace``.
"""

from __future__ import annotations

import os

from ...errors import BackendUnavailableError

try:
    from . import _native as native
    MISSING_REASON = None
except ImportError as error:  # not built: say how to build it when it is used
    MISSING_REASON = (f"depthapp's compiled sgm kernels are not built ({error}); reinstall "
                      f"depthapp (pip install -e .) with a C++ compiler present")

    class _Missing:
        def __getattr__(self, name):
            raise BackendUnavailableError(MISSING_REASON)

    native = _Missing()


def require() -> None:
    """Raise :class:`~depthapp.errors.BackendUnavailableError` saying why the kernels are
    missing, if they are."""
    if MISSING_REASON is not None:
        raise BackendUnavailableError(MISSING_REASON)


def _threads_from_environment() -> int:
    """``OMP_NUM_THREADS``, the count OpenCV and torch also honour; 0 (every available CPU)
    when unset or not a positive integer."""
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(value) if value.isdigit() and int(value) > 0 else 0


def set_threads(count: int) -> int:
    """Use ``count`` threads (0: every CPU this process may run on); returns the count in use."""
    native.set_num_threads(max(0, int(count)))
    return native.get_num_threads()


def threads() -> int:
    """Threads the kernels use now."""
    return native.get_num_threads()


if MISSING_REASON is None:
    set_threads(_threads_from_environment())
