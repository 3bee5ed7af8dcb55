"""Budget and bookkeeping of the reader fuzz tests.

``DEPTHAPP_FUZZ_EXAMPLES`` sets the inputs per reader (default: a small CI budget). With it set
(the long run, e.g. 20000), every test adds its counts to ``fuzz_counts`` and the session ends
with one line per reader: inputs tried, project errors, accepted inputs, crashes.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict

import pytest

LONG_RUN = bool(os.environ.get("DEPTHAPP_FUZZ_EXAMPLES"))

COUNTS: dict[str, dict[str, int]] = defaultdict(lambda: {"inputs": 0, "refused": 0, "accepted": 0,
                                                         "crashes": 0})


@pytest.fixture
def fuzz_counts():
    return COUNTS


def pytest_terminal_summary(terminalreporter):
    if not COUNTS:
        return
    terminalreporter.section("reader fuzz counts")
    for reader, counts in sorted(COUNTS.items()):
        terminalreporter.write_line(
            f"{reader:28s} inputs {counts['inputs']:7d}  refused {counts['refused']:7d}  "
            f"accepted {counts['accepted']:7d}  crashes {counts['crashes']:3d}")
    report = os.environ.get("DEPTHAPP_FUZZ_REPORT")
    if report:
        with open(report, "w") as handle:
            json.dump(COUNTS, handle, indent=2, sort_keys=True)
