"""Size limits on input, in one place: the image reader, the CLI and worker processes agree.

Nothing heavy is imported here: the command line reads it before any command runs.
"""

from __future__ import annotations

import os

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
