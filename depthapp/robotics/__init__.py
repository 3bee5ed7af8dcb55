"""Robotics interoperability: ROS bags in and out (``rosbags``, no ROS installation needed) and
live logging to Rerun (``rerun-sdk``). Both are optional extras, imported only when used. The bag
*source* is :mod:`depthapp.sources.bag`, built on the modules here:

- :mod:`.messages`: pure conversions between depthapp's arrays and ROS messages.
- :mod:`.bags`: opening, topic detection and writing bags (ROS 1 ``.bag``, ROS 2 MCAP/sqlite3).
- :mod:`.bag_dataset`: a bag as a dataset (``predict --dataset bag``) and the viewer's sequence.
- :mod:`.bag_sink`: results written as ``stereo_image_proc`` would publish them.
- :mod:`.rerun_log`: results logged to a Rerun viewer or ``.rrd`` file.
"""

from __future__ import annotations

import importlib

from ..errors import BackendUnavailableError

#: Left and right header stamps further apart than this (seconds) are not one pair.
DEFAULT_SYNC_TOLERANCE = 0.010

#: The pip extra that brings each optional module.
EXTRAS = {"rosbags": ("ros", "reading and writing ROS bags"), "rerun": ("rerun", "logging to Rerun")}


def require(module: str):
    """Import an optional dependency, or fail with one line naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        extra, what = EXTRAS[top]
        package = "rerun-sdk" if top == "rerun" else top
        raise BackendUnavailableError(f"{what} needs the {package} package: "
                                      f"pip install 'depthapp[{extra}]'") from None
