"""Shared fixtures. ``--device cuda`` (or DEPTHAPP_TEST_DEVICE=cuda) reruns device tests on a GPU."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


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
