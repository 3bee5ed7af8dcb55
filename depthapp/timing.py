"""Per-stage wall-clock timings for backends and pipelines."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Optional


class StageTimer:
    """Collects ``{stage: seconds}`` in run order; ``sync`` (e.g. torch.cuda.synchronize) runs
    before each reading so asynchronous GPU work is charged to the right stage. ``on_stage`` is
    told each stage's name as it begins (progress displays, see
    :class:`~depthapp.jobs.StageProgress`)."""

    def __init__(self, sync: Optional[Callable[[], None]] = None,
                 on_stage: Optional[Callable[[str], None]] = None):
        self.timings: dict[str, float] = {}
        self.sync = sync
        self.on_stage = on_stage

    @contextmanager
    def __call__(self, stage: str):
        if self.on_stage:
            self.on_stage(stage)
        if self.sync:
            self.sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.sync:
                self.sync()
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start


def format_timings(timings: dict[str, float]) -> str:
    parts = [f"{stage} {seconds * 1000:.1f} ms" for stage, seconds in timings.items()]
    total = sum(timings.values())
    return ", ".join(parts) + f" (total {total * 1000:.1f} ms)"
