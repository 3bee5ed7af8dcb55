"""Reusing freed memory during a computation, instead of handing it to the kernel and faulting
it back in.

glibc's malloc serves every block over 32 MiB with a fresh ``mmap`` and unmaps it on ``free``.
A network's activations are such blocks, freed and allocated again layer after layer, so the
kernel zeroes and maps each one anew: for PSMNet at Motorcycle size that is 580,000 page
faults and 1.2 s of system time per pair, 13 % of its wall time on 2 cores. Inside
:func:`reuse_freed_memory` blocks come from the heap and freed ones stay there for the next
layer. The memory stays with the process between computations that follow each other (a batch,
a camera stream: in a batch of 8 PSMNet pairs, 6 had a single page fault, and the heap grew
by 140 MB over the first five, then held), and
:data:`RELEASE_AFTER_SECONDS` after the last one ends, ``malloc_trim`` hands it back, so an idle
GUI does not keep its peak. Elsewhere than glibc (macOS, Windows, musl) this does nothing.

The price is the heap's holes, which raise the peak (MC-CNN's by 18-40 %, GC-Net's by 28 %), so
backends opt in (``Backend.reuses_freed_memory``) where it was measured to pay, and their
memory estimates count it. Measured for PSMNet (Motorcycle, 2 threads, before the Winograd
kernel): 5.56 s per pair with mmap, 5.2 s when the memory is handed back after every pair,
4.7-4.9 s when it is kept between pairs.
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from typing import Iterator, Optional

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
# Inside: no mmap for large blocks, no trimming of the heap's free top (mallopt takes an int).
_INSIDE = ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1))
# Leaving: mmap allowed again, with the thresholds glibc's own adaptive rule reaches in a
# process that frees large blocks (any mallopt call switches that rule off for good).
_OUTSIDE = ((_M_MMAP_MAX, 65536), (_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 64 << 20))

# Long enough to span a benchmark's or a batch's other work between two pairs.
RELEASE_AFTER_SECONDS = 60.0

_lock = threading.Lock()
_active = 0
_retaining = False
_release_timer: Optional[threading.Timer] = None
_libc = None  # ctypes.CDLL once loaded; ctypes is imported on first use (start-up time)
_libc_loaded = False


def _glibc():
    """glibc as a ``ctypes.CDLL``, or None (another C library or system)."""
    global _libc, _libc_loaded
    if not _libc_loaded:
        _libc_loaded = True
        if sys.platform.startswith("linux"):
            import ctypes

            try:
                libc = ctypes.CDLL("libc.so.6")  # glibc's soname (find_library would run ldconfig)
                libc.gnu_get_libc_version  # glibc only: musl's mallopt does nothing
                libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
                libc.malloc_trim.argtypes = (ctypes.c_size_t,)
                _libc = libc
            except (OSError, AttributeError):
                _libc = None
    return _libc


def _apply(libc, settings) -> None:
    for parameter, value in settings:
        libc.mallopt(parameter, value)


def release_retained_memory() -> None:
    """Hand the kept free memory back to the system now (unless a computation is running)."""
    global _retaining, _release_timer
    libc = _glibc()
    with _lock:
        _release_timer = None
        if libc is None or _active or not _retaining:
            return
        _retaining = False
        _apply(libc, _OUTSIDE)
        libc.malloc_trim(0)


def _release_when_still_idle() -> None:
    with _lock:
        if threading.current_thread() is not _release_timer:  # a later block superseded this timer
            return
    release_retained_memory()


@contextmanager
def reuse_freed_memory() -> Iterator[None]:
    """Within the block, large freed allocations are kept for reuse, and after it for
    :data:`RELEASE_AFTER_SECONDS`. Nested and concurrent blocks (the GUI's worker beside a
    batch) share one setting."""
    global _active, _retaining, _release_timer
    libc = _glibc()
    if libc is None:
        yield
        return
    with _lock:
        if _release_timer is not None:
            _release_timer.cancel()
            _release_timer = None
        if not _retaining:
            _apply(libc, _INSIDE)
            _retaining = True
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                _release_timer = threading.Timer(RELEASE_AFTER_SECONDS, _release_when_still_idle)
                _release_timer.daemon = True
                _release_timer.start()
