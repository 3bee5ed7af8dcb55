"""Fixtures for the calibration tests: real files fetched through their package registries.

Offline machines can set DEPTHAPP_OFFLINE=1 to skip (with a reason) the tests that need a
download; otherwise a failed download fails the test instead of silently skipping it.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pytest

STEREODEMO_JSON = "stereodemo/datasets/oak-d/stereodemo_calibration.json"


def _unavailable(message: str):
    if os.environ.get("DEPTHAPP_OFFLINE"):
        pytest.skip(f"DEPTHAPP_OFFLINE set: {message}")
    pytest.fail(message)


@pytest.fixture(scope="session")
def stereodemo_oakd_json(request, stereodemo_wheel) -> Path:
    """The real OAK-D calibration JSON inside the stereodemo 0.7 wheel (MIT), SHA-256 checked."""
    cache = Path(request.config.cache.mkdir("depthapp-stereodemo"))
    target = cache / "stereodemo_calibration.json"
    with zipfile.ZipFile(stereodemo_wheel) as archive:
        target.write_bytes(archive.read(STEREODEMO_JSON))
    return target


@pytest.fixture(scope="session")
def chessboard_dir(request) -> Path:
    """Debian opencv-doc's left01..14/right01..14 chessboard images: installed, or fetched with
    ``apt-get download`` as the library does (never needs the package installed)."""
    from depthapp.calibration.chessboard_data import opencv_doc_chessboards
    from depthapp.errors import InputError

    cache = Path(request.config.cache.mkdir("depthapp-opencv-doc"))
    try:
        return opencv_doc_chessboards(cache)
    except InputError as error:
        if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
            pytest.skip(str(error))  # not a Debian/Ubuntu system: the images cannot be had here
        _unavailable(str(error))
