"""Fixtures of the camera tests (helpers live in tests/video_fixtures.py)."""

from video_fixtures import stereo_videos  # noqa: F401  (a session fixture)
