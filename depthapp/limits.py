"""Size limits on input, in one place: the image reader, the CLI and worker processes agree.

Nothing heavy is imported here: the command line reads it before any command runs.
"""

from __future__ import annotations

import os
from pathlib import Path

# 200 megapixels: above every camera sensor sold (the largest are 150 MP). ``--max-pixels``
# raises it by setting the environment variable, so worker processes inherit it.
DEFAULT_MAX_PIXELS = 200_000_000
MAX_PIXELS_VARIABLE = "DEPTHAPP_MAX_PIXELS"


def max_pixels() -> int:
    """The largest image (width x height) read without being asked: ``$DEPTHAPP_MAX_PIXELS``
    or :data:`DEFAULT_MAX_PIXELS`."""
    value = os.environ.get(MAX_PIXELS_VARIABLE, "")
    return int(value) if value.isdigit() and int(value) > 0 else DEFAULT_MAX_PIXELS

# A disparity range no stereo pair needs; larger values are typing mistakes (and overflow the
# C ints of OpenCV). Bounds --max-disp and a calibration file's ndisp alike.
MAX_DISPARITY_LEVELS = 16_384


def read_bounded(path: Path, limit: int, what: str, error: type[Exception]) -> bytes:
    """At most ``limit`` bytes of ``path``, read without reading further: ``/dev/zero`` or a
    video given by mistake is refused after ``limit + 1`` bytes. ``error`` (a DepthAppError)
    names the file and ``what`` it should have been ("an id list")."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as failure:
        raise error(f"{path}: cannot read {what} ({failure.strerror or failure})") from None
    if len(data) > limit:
        raise error(f"{path}: larger than {limit >> 20} MiB, not {what}")
    return data
