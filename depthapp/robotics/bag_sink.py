"""Results written to a ROS bag as ``stereo_image_proc`` publishes them, so RViz and Foxglove
show them without configuration. See :mod:`depthapp.robotics.messages` for each message.

Topics under ``namespace`` (default ``/depthapp``): ``disparity`` (stereo_msgs/DisparityImage),
``depth`` (sensor_msgs/Image 32FC1, metres), ``points2`` (sensor_msgs/PointCloud2 x y z rgb)
and, with ``images=True``, ``left/image_rect`` + ``left/camera_info`` and the same for the
right camera: the rectified pair the backend saw and its calibration. Every message carries the
pair's header stamp (the left camera's) and frame id; without a calibration only the
disparity is written, with ``f = T = 0``.
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np

from ..calibration.model import StereoCalibration
from ..calibration.ros import camera_infos_from_stereo
from . import messages
from .bags import BagWriter

DEFAULT_NAMESPACE = "/depthapp"
DEFAULT_FRAME_IDS = ("left_camera_optical_frame", "right_camera_optical_frame")


def frame_stamp(frame) -> int:
    """The pair's stamp in ns: the bag's left header stamp, else its capture time."""
    stamp = getattr(frame, "stamp_left", None)
    return int(stamp) if stamp else int(round(frame.t_left * 1e9))


def frame_ids(frame) -> tuple[str, str]:
    ids = getattr(frame, "frame_ids", None) or ("", "")
    return ids[0] or DEFAULT_FRAME_IDS[0], ids[1] or DEFAULT_FRAME_IDS[1]


class BagSink:
    """Write each processed pair (a :class:`~depthapp.camera.loop.LiveFrame`) to a bag.

    ``max_disp`` (the searched range) and ``delta_d`` (the backend's ``disparity_step``) go
    into each DisparityImage.

    The bag appears at ``path`` only when :meth:`close` succeeds (see :class:`BagWriter`).
    """

    def __init__(self, path: str | os.PathLike, *, storage: str = "mcap", overwrite: bool = False,
                 namespace: str = DEFAULT_NAMESPACE, images: bool = False, max_disp: float = 0.0,
                 delta_d: float = 0.0):
        self.max_disp = float(max_disp)
        self.delta_d = float(delta_d)
        self.writer = BagWriter(path, storage=storage, overwrite=overwrite)
        self.namespace = "/" + namespace.strip("/") if namespace.strip("/") else ""
        self.images = images
        self.frames_written = 0

    @property
    def path(self):
        return self.writer.path

    def topic(self, name: str) -> str:
        return f"{self.namespace}/{name}"

    def write(self, live) -> None:
        """Write one pair's results (disparity, depth, points, optionally images + camera_info)."""
        self.write_result(live.frame, live.pair.calibration, live.result.disparity, live.depth,
                          live.cloud, live.pair.left, live.pair.right)

    def write_result(self, frame, calibration: Optional[StereoCalibration], disparity: np.ndarray,
                     depth: Optional[np.ndarray], cloud, left: Optional[np.ndarray] = None,
                     right: Optional[np.ndarray] = None) -> None:
        """One pair's messages, all at the pair's stamp (see the module docstring)."""
        store = self.writer.store
        stamp = frame_stamp(frame)
        left_id, right_id = frame_ids(frame)
        write = self.writer.write
        write(self.topic("disparity"), messages.DISPARITY_IMAGE, stamp,
              messages.disparity_message(store, stamp, left_id, disparity, calibration,
                                         self.max_disp, self.delta_d))
        if depth is not None:
            write(self.topic("depth"), messages.IMAGE, stamp,
                  messages.depth_message(store, stamp, left_id, depth))
        if cloud is not None:
            write(self.topic("points2"), messages.POINT_CLOUD2, stamp,
                  messages.point_cloud_message(store, stamp, left_id, cloud.points, cloud.colors))
        if self.images and left is not None and right is not None:
            infos = (camera_infos_from_stereo(calibration, (left_id, right_id))
                     if calibration is not None else (None, None))
            for side, image, frame_id, info in (("left", left, left_id, infos[0]),
                                                ("right", right, right_id, infos[1])):
                write(self.topic(f"{side}/image_rect"), messages.IMAGE, stamp,
                      messages.image_message(store, stamp, frame_id, image))
                if info is not None:
                    write(self.topic(f"{side}/camera_info"), messages.CAMERA_INFO, stamp,
                          messages.camera_info_message(store, stamp, info))
        self.frames_written += 1

    def close(self):
        return self.writer.close()

    def abort(self) -> None:
        self.writer.abort()
