"""Helpers of the robotics tests (fixtures in conftest.py): real bags written with rosbags
from the real pairs.

- Motorcycle (Middlebury, 741x500 rgb8) with its calibration as CameraInfo, in the layout of
  ``stereo_image_proc`` (``/stereo/{left,right}/image_rect`` + ``camera_info``);
- OAK-D pairs from the stereodemo wheel (640x480 mono8) in the layout of the ROS 2 depthai
  driver (``/oak/{left,right}/image_rect`` + ``camera_info``), their calibration from
  stereodemo's JSON.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np

from depthapp.calibration.ros import camera_infos_from_stereo
from depthapp.robotics import messages
from depthapp.robotics.bags import BagWriter

START = 1_700_000_000_123_456_789  # ns: a realistic epoch stamp with every digit significant
PERIOD = 50_000_000  # 20 fps
OAKD_SCENES = ("desk", "corridor", "stairs")


def stamp(index: int) -> int:
    return START + index * PERIOD


def write_stereo_bag(path: Path, lefts, rights, calibration, *, namespace: str = "/stereo",
                     storage: str = "mcap", encode: Optional[Callable] = None,
                     right_offset: int = 0, skip_right: tuple[int, ...] = (),
                     frame_ids=("left_camera_optical_frame", "right_camera_optical_frame"),
                     image_name: str = "image_rect") -> Path:
    """A bag as a driver records it: per frame, left and right images with their stamps and a
    camera_info for each camera. ``encode(store, stamp, frame_id, image)`` -> (msgtype, msg)."""
    infos = camera_infos_from_stereo(calibration, frame_ids) if calibration is not None else None
    encode = encode or (lambda store, t, fid, image: (messages.IMAGE,
                                                      messages.image_message(store, t, fid, image)))
    suffix = "/compressed" if encode.__name__.startswith("compressed") else ""
    with BagWriter(path, storage=storage) as writer:
        store = writer.store
        for index, (left, right) in enumerate(zip(lefts, rights)):
            t = stamp(index)
            for side, image, t_side, frame_id, info in (
                    ("left", left, t, frame_ids[0], infos and infos[0]),
                    ("right", right, t + right_offset, frame_ids[1], infos and infos[1])):
                if side == "right" and index in skip_right:
                    continue
                msgtype, message = encode(store, t_side, frame_id, image)
                writer.write(f"{namespace}/{side}/{image_name}{suffix}", msgtype, t_side, message)
                if info is not None:
                    writer.write(f"{namespace}/{side}/camera_info", messages.CAMERA_INFO, t_side,
                                 messages.camera_info_message(store, t_side, info))
    return path


def load_oakd(stereodemo_wheel):
    """Three real OAK-D pairs (grey, 640x480) and their calibration from stereodemo's JSON."""
    from depthapp.calibration.readers import parse_stereodemo_json

    with zipfile.ZipFile(stereodemo_wheel) as archive:
        def read(name):
            data = np.frombuffer(archive.read(f"stereodemo/datasets/oak-d/{name}"), np.uint8)
            return cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)

        lefts = [read(f"{scene}_left.png") for scene in OAKD_SCENES]
        rights = [read(f"{scene}_right.png") for scene in OAKD_SCENES]
        text = archive.read("stereodemo/datasets/oak-d/stereodemo_calibration.json").decode()
    return lefts, rights, parse_stereodemo_json(text, "stereodemo oak-d")


def mono8_message(store, t, frame_id, grey):
    """What a mono camera driver publishes: ``mono8``."""
    grey = np.ascontiguousarray(grey)
    message = messages.build(store, messages.IMAGE, header=messages.header(store, t, frame_id),
                             height=grey.shape[0], width=grey.shape[1], encoding="mono8",
                             is_bigendian=0, step=grey.shape[1], data=grey.ravel())
    return messages.IMAGE, message


def compressed_png(store, t, frame_id, rgb):
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return messages.COMPRESSED_IMAGE, messages.build(
        store, messages.COMPRESSED_IMAGE, header=messages.header(store, t, frame_id),
        format="rgb8; png compressed bgr8", data=np.frombuffer(data.tobytes(), np.uint8))


def read_all(path: Path) -> dict[str, list]:
    """Every message of a bag with rosbags alone: ``{topic: [(log time, msgtype, message)]}``."""
    from rosbags.highlevel import AnyReader

    found: dict[str, list] = {}
    with AnyReader([path]) as reader:
        for connection, log_time, raw in reader.messages():
            found.setdefault(connection.topic, []).append(
                (log_time, connection.msgtype, reader.deserialize(raw, connection.msgtype)))
    return found


