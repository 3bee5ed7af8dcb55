"""reuse_freed_memory: large freed blocks are reused without page faults, and handed back later.

Each check runs in a fresh interpreter: what glibc does with a block depends on the heap the
process already has (it serves a block from free heap memory when one fits, and an arena that
earlier work grew past a neighbouring mapping cannot shrink its top), so after the rest of the
suite the same calls would measure that history instead of this module.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from depthapp import allocator

pytestmark = pytest.mark.skipif(allocator._glibc() is None or not hasattr(allocator._glibc(), "mallinfo2"),
                                reason="needs glibc 2.33 or later (mallopt, malloc_trim, mallinfo2)")

REPO = Path(__file__).resolve().parents[1]

COMMON = """
import ctypes, resource, torch
from depthapp import allocator

BLOCK = 64 << 20  # over glibc's largest mmap threshold: mapped on its own unless reuse is on
PAGES = BLOCK // resource.getpagesize()
libc = allocator._glibc()
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                      "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

def heap_statistics():
    libc.mallinfo2.restype = MallInfo2
    return libc.mallinfo2()

def faults_while_filling():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = libc.malloc(BLOCK)
    ctypes.memset(block, 1, BLOCK)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    libc.free(block)
    return faults

def resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()
"""

# malloc itself, so that nothing else is allocated between the blocks (torch puts its small
# tensor objects right after a block, and its 64-byte aligned requests then need a little more
# than the hole an equal block left: a network's many sizes settle, a loop of one does not).
REUSE = COMMON + """
assert faults_while_filling() > PAGES // 2  # the default: a mapping of its own, faulted in
assert faults_while_filling() > PAGES // 2  # and again: unmapped on free
with allocator.reuse_freed_memory():
    before = heap_statistics()
    block = libc.malloc(BLOCK)
    during = heap_statistics()
    # from the arena, not a mapping of its own (hblkhd: bytes of such mappings)
    assert during.hblkhd == before.hblkhd and during.uordblks >= before.uordblks + BLOCK
    libc.free(block)
    rounds = [faults_while_filling() for _ in range(3)]
    assert max(rounds[1:]) < PAGES // 100, rounds  # reused: nothing left to fault in
allocator.release_retained_memory()  # every free page goes back to the system...
assert faults_while_filling() > PAGES // 2  # ...so a new block faults
"""

IDLE_RELEASE = COMMON + """
allocator.RELEASE_AFTER_SECONDS = 0.5
with allocator.reuse_freed_memory():
    block = torch.ones(4 * BLOCK, dtype=torch.uint8)  # a tensor, as a network's
    del block
first_timer = allocator._release_timer
assert first_timer is not None and first_timer.daemon
with allocator.reuse_freed_memory():  # the next computation comes before the timer fires
    assert allocator._release_timer is None
    first_timer.join(5)
    assert allocator._retaining  # cancelled: the memory is still kept
    kept = resident_bytes()
allocator._release_timer.join(5)
assert not allocator._retaining
assert resident_bytes() < kept - 2 * BLOCK, (resident_bytes(), kept)
"""


def run_fresh(script: str) -> None:
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr


def test_large_blocks_are_kept_in_the_arena_and_reused_inside_and_fault_again_once_released():
    run_fresh(REUSE)


def test_kept_memory_is_handed_back_when_idle_and_a_new_block_cancels_that():
    run_fresh(IDLE_RELEASE)
