"""reuse_freed_memory: large freed blocks are reused without page faults, and handed back later."""

from __future__ import annotations

import resource

import pytest
import torch

from depthapp import allocator

pytestmark = pytest.mark.skipif(allocator._glibc() is None, reason="needs glibc's malloc (mallopt, malloc_trim)")

BLOCK = 64 << 20  # over glibc's largest mmap threshold: served by mmap unless reuse is on


def faults_while_filling(size: int = BLOCK) -> int:
    """Minor page faults while allocating and filling a block (torch tensors, as the networks
    allocate them: numpy asks for huge pages, which fault 512 times less often)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = torch.ones(size, dtype=torch.uint8)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    del block
    return faults


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def heap_range() -> tuple[int, int]:
    with open("/proc/self/maps") as maps:
        for line in maps:
            if line.rstrip().endswith("[heap]"):
                start, end = line.split()[0].split("-")
                return int(start, 16), int(end, 16)
    raise AssertionError("no [heap] mapping")


def test_large_blocks_come_from_the_heap_inside_and_released_memory_faults_again():
    # What glibc does with one block outside the setting depends on the free heap earlier
    # tests left (it serves a block from there when one fits), so only what this module sets
    # is asserted: inside, no block is mapped on its own, and the release hands pages back.
    with allocator.reuse_freed_memory():
        block = torch.ones(BLOCK, dtype=torch.uint8)
        start, end = heap_range()
        assert start <= block.data_ptr() and block.data_ptr() + BLOCK <= end
        del block
    allocator.release_retained_memory()  # every free page goes back to the system...
    assert faults_while_filling() > BLOCK // resource.getpagesize() // 2  # ...so a new block faults


def test_kept_memory_is_handed_back_when_idle_and_a_new_block_cancels_that(monkeypatch):
    allocator.release_retained_memory()
    monkeypatch.setattr(allocator, "RELEASE_AFTER_SECONDS", 0.5)
    with allocator.reuse_freed_memory():
        block = torch.ones(4 * BLOCK, dtype=torch.uint8)
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
    assert resident_bytes() < kept - 2 * BLOCK
