"""A small benchmark harness for ``benchmarks/``: warm-up, repeats, medians, CPU time, peak
memory, thread counts, and ratios against a reference measured in the same run.

Timings on shared machines are noisy: report medians and ratios, never single runs.
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence


def set_threads(count: int) -> dict[str, int]:
    """Pin torch, OpenCV, numba (MC-CNN) and the sgm kernels to ``count`` threads (call before
    heavy imports run work)."""
    applied = {}
    os.environ.setdefault("OMP_NUM_THREADS", str(count))
    try:
        import cv2

        cv2.setNumThreads(count)
        applied["opencv"] = cv2.getNumThreads()
    except ImportError:
        pass
    try:
        import torch

        torch.set_num_threads(count)
        applied["torch"] = torch.get_num_threads()
    except ImportError:
        pass
    try:
        import numba

        numba.set_num_threads(min(count, numba.config.NUMBA_NUM_THREADS))
        applied["numba"] = numba.get_num_threads()
    except ImportError:
        pass
    from .backends.sgm import native

    if native.MISSING_REASON is None:
        applied["sgm"] = native.set_threads(count)
    return applied


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


@dataclass
class Measurement:
    name: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpu)

    @property
    def spread(self) -> float:
        """Half the interquartile range relative to the median (noise indicator)."""
        if len(self.wall) < 4:
            return 0.0
        q = statistics.quantiles(self.wall, n=4)
        return (q[2] - q[0]) / 2 / self.median


def measure(name: str, fn: Callable[[], Any], repeats: int = 5, warmup: int = 1,
            sync: Optional[Callable[[], None]] = None, keep_memory: bool = False) -> tuple[Measurement, Any]:
    """Run ``fn`` ``warmup`` times unmeasured, then ``repeats`` times; returns the measurement
    and the last result. ``sync`` (e.g. ``torch.cuda.synchronize``) runs around each call.

    Each call starts with the memory that backends keep between computations handed back
    (:mod:`depthapp.allocator`): ours pays for faulting its memory in, as in a fresh process,
    and reference code runs with glibc's settings restored. (The heap that earlier
    computations grew can still serve its large blocks, which makes an in-process reference
    faster than in a fresh process: PSMNet's official forward 8.9-10.5 s here, 9.9-11.1 s
    alone.) ``keep_memory`` times the steady state of a batch instead."""
    from .allocator import release_retained_memory

    result = None
    for _ in range(warmup):
        result = fn()
        if sync:
            sync()
    measurement = Measurement(name)
    for _ in range(repeats):
        if not keep_memory:
            release_retained_memory()
        if sync:
            sync()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        result = fn()
        if sync:
            sync()
        measurement.wall.append(time.perf_counter() - wall0)
        measurement.cpu.append(time.process_time() - cpu0)
    measurement.peak_rss_mb = peak_rss_mb()
    return measurement, result


def measure_interleaved(runs: Sequence[tuple[str, Callable[[], Any]]], repeats: int = 5,
                        warmup: int = 1, sync: Optional[Callable[[], None]] = None
                        ) -> tuple[list[Measurement], dict[str, Any]]:
    """:func:`measure` for several ``(name, fn)`` at once, one repeat of each in turn, so load
    drifts on a shared machine touch every method alike. Returns the measurements (peak memory
    is the process's, not each method's) and each method's last result."""
    measurements = {name: Measurement(name) for name, _ in runs}
    results = {}
    for round_ in range(warmup + repeats):
        for name, fn in runs:
            measured, results[name] = measure(name, fn, repeats=1, warmup=0, sync=sync)
            if round_ >= warmup:
                measurements[name].wall += measured.wall
                measurements[name].cpu += measured.cpu
    for measurement in measurements.values():
        measurement.peak_rss_mb = peak_rss_mb()
    return list(measurements.values()), results


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (pasteable into notes and issues)."""
    def cell(value):
        if isinstance(value, float):
            return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
        return str(value)

    text_rows = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text_rows)) if text_rows else len(h)
              for i, h in enumerate(headers)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |" for row in text_rows]
    return "\n".join(lines)


def timing_rows(measurements: Sequence[Measurement], reference: str) -> list[list[Any]]:
    """Rows ``name, median s, cpu s, ratio to reference, spread, peak MiB``."""
    by_name = {m.name: m for m in measurements}
    ref = by_name[reference].median
    return [[m.name, m.median, m.median_cpu, m.median / ref, f"±{100 * m.spread:.0f}%",
             round(m.peak_rss_mb)] for m in measurements]


TIMING_HEADERS = ("method", "median s", "cpu s", "x reference", "spread", "peak MiB")


def environment_line() -> str:
    parts = [f"python {sys.version.split()[0]}", f"{os.cpu_count()} cpus"]
    for module in ("torch", "cv2", "numba", "numpy"):
        try:
            parts.append(f"{module} {__import__(module).__version__}")
        except ImportError:
            pass
    return ", ".join(parts)
