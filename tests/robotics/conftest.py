"""Fixtures of the robotics tests (helpers live in bag_fixtures.py)."""

import pytest

from bag_fixtures import load_oakd


@pytest.fixture(scope="session")
def oakd(stereodemo_wheel):
    """Three real OAK-D pairs (grey, 640x480) and their calibration from stereodemo's JSON."""
    return load_oakd(stereodemo_wheel)
