"""Layering (../shared/STYLE.md): the import-linter contracts of pyproject.toml hold, they cover
every module, and no third-party import drags Qt into the core behind import-linter's back."""

import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli", reason="reading pyproject.toml on Python 3.10 needs tomli")

ROOT = Path(__file__).resolve().parents[1]
CORE_CONTRACT = "The core imports neither Qt nor the GUI nor the CLI"
# The surfaces allowed to import Qt, the GUI and the CLI.
SURFACES = ("depthapp.gui", "depthapp.cli", "depthapp.camera.viewer", "depthapp.camera.preview",
            "depthapp.__main__")
# Package __init__s holding both (the contract would take in their Qt submodules): they only
# re-export core names, and the last test imports them for real.
MIXED_PACKAGES = ("depthapp", "depthapp.camera")


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {contract["name"]: contract for contract in config["tool"]["importlinter"]["contracts"]}


def _within(module: str, packages) -> bool:
    return any(module == package or module.startswith(package + ".") for package in packages)


def test_import_contracts_are_kept():
    # import-linter reads every import statement, those inside functions included (not the
    # module names given to importlib as strings).
    pytest.importorskip("importlinter", reason="import-linter (in the test extra) is not installed")
    code = ("from importlinter.cli import lint_imports\n"
            "raise SystemExit(lint_imports(no_cache=True, no_logo=True))\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr


def test_core_contract_covers_every_module():
    """A new module is either core (listed in the contract) or a surface: never neither."""
    listed = _contracts()[CORE_CONTRACT]["source_modules"]
    modules = []
    for path in sorted((ROOT / "depthapp").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    uncovered = [m for m in modules if m not in MIXED_PACKAGES and not _within(m, listed) and not _within(m, SURFACES)]
    assert not uncovered, f"add to the core contract in pyproject.toml (or to SURFACES): {uncovered}"
    assert not [m for m in listed if _within(m, SURFACES)]


def test_core_does_not_import_pyqt6_through_third_party_packages():
    """import-linter sees depthapp's own imports only; importing the core for real also catches a
    dependency that pulls Qt in (pyqtgraph does)."""
    core = ["depthapp", "depthapp.data", "depthapp.geometry", "depthapp.pipeline",
            "depthapp.backends.opencv", "depthapp.io", "depthapp.visualize", "depthapp.sample",
            "depthapp.jobs", "depthapp.calibration.wizard", "depthapp.camera"]
    code = ("import sys\n" + "".join(f"import {m}\n" for m in core) +
            "bad = sorted(m for m in sys.modules if m.startswith(('PyQt6', 'PySide')))\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
