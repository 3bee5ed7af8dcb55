"""Fixtures of the camera tests (helpers live in camera_fixtures.py)."""

from camera_fixtures import stereo_videos  # noqa: F401  (a session fixture)
