"""reuse_freed_memory: large freed blocks are reused without page faults, and handed back later."""

from __future__ import annotations

import resource

import pytest
import torch

from depthapp import allocator

pytestmark = pytest.mark.skipif(allocator._glibc() is None, reason="needs glibc's malloc (mallopt, malloc_trim)")

BLOCK = 64 << 20  # over glibc's largest mmap threshold: served by mmap unless reuse is on


def faults_of_a_second_block() -> int:
    """Minor page faults while allocating and filling a block after an equal one was freed.
    (torch tensors, as the networks allocate them: numpy asks for huge pages, which fault
    512 times less often and would hide the difference.)"""
    first = torch.ones(BLOCK, dtype=torch.uint8)
    del first
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    second = torch.ones(BLOCK, dtype=torch.uint8)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    del second
    return faults


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def test_a_freed_block_is_reused_inside_and_faulted_in_again_outside():
    allocator.release_retained_memory()
    pages = BLOCK // resource.getpagesize()
    assert faults_of_a_second_block() > pages // 2  # fresh mmap: every page faults
    with allocator.reuse_freed_memory():
        assert faults_of_a_second_block() < pages // 100
    allocator.release_retained_memory()
    assert faults_of_a_second_block() > pages // 2


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
        assert faults_of_a_second_block() < BLOCK // resource.getpagesize() // 100
    allocator._release_timer.join(5)
    assert not allocator._retaining
    assert resident_bytes() < kept - 2 * BLOCK
