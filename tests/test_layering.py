"""The compute core never imports Qt (../shared/STYLE.md: napari's import-linter rule)."""

import subprocess
import sys

CORE_MODULES = ["depthapp", "depthapp.data", "depthapp.geometry", "depthapp.pipeline",
                "depthapp.backends.opencv", "depthapp.io", "depthapp.visualize", "depthapp.sample",
                "depthapp.jobs", "depthapp.cli"]


def test_core_does_not_import_pyqt6():
    code = ("import sys\n" + "".join(f"import {m}\n" for m in CORE_MODULES) +
            "bad = sorted(m for m in sys.modules if m.startswith(('PyQt6', 'PySide')))\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
