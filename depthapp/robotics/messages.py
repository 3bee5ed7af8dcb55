"""Conversions between depthapp's arrays and ROS messages. Pure: no files, no bags.

Messages are the ``rosbags`` typestore classes of either ROS generation; ROS 1 spells some
fields in capitals (``K``, ``T``) and has a ``Header.seq``, so fields are matched without
regard to case (:func:`build`, :func:`field`).

What is written follows what ``stereo_image_proc`` publishes (REP 104/118):

- ``stereo_msgs/DisparityImage``: 32FC1 disparity *adjusted for the principal point offset*,
  ``d_ros = x_l - x_r - (cx_l - cx_r)`` = depthapp's ``d + doffs``, so ``Z = f T / d_ros``;
  ``min_disparity``/``max_disparity`` are the searched range in that convention, and invalid
  pixels are ``min_disparity - 1`` (the message defines anything below ``min_disparity`` as
  invalid; NaN would compare as valid in its consumers' ``<`` tests).
- depth: ``sensor_msgs/Image`` 32FC1 in metres, NaN where unknown (REP 118).
- ``sensor_msgs/PointCloud2``: unorganised ``x y z rgb`` float32 (rgb packed PCL-style as
  ``0x00RRGGBB`` in a float's bytes), in the left rectified optical frame.
"""

from __future__ import annotations

from typing import Any, Optional

import cv2
import numpy as np

from ..calibration.model import StereoCalibration
from ..calibration.ros import CameraInfo
from ..errors import InputError

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
DISPARITY_IMAGE = "stereo_msgs/msg/DisparityImage"
POINT_CLOUD2 = "sensor_msgs/msg/PointCloud2"
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)

#: Encodings read from ``sensor_msgs/Image``: channels, numpy dtype, OpenCV conversion to RGB.
ENCODINGS = {
    "mono8": (1, np.uint8, None), "8UC1": (1, np.uint8, None),
    "rgb8": (3, np.uint8, None), "bgr8": (3, np.uint8, cv2.COLOR_BGR2RGB),
    "8UC3": (3, np.uint8, cv2.COLOR_BGR2RGB),
    "rgba8": (4, np.uint8, cv2.COLOR_RGBA2RGB), "bgra8": (4, np.uint8, cv2.COLOR_BGRA2RGB),
    "mono16": (1, np.uint16, None), "16UC1": (1, np.uint16, None),
}
MAX_SIDE = 16384
MAX_COMPRESSED_BYTES = 256 << 20
_POINT_FIELD_FLOAT32 = 7


# Generic message access --------------------------------------------------------------------------

def field(message: Any, name: str, default: Any = None) -> Any:
    """``message.name`` whatever the ROS generation's spelling (``k`` / ``K``)."""
    for candidate in (name, name.upper(), name.lower()):
        if hasattr(message, candidate):
            return getattr(message, candidate)
    return default


def build(typestore, msgtype: str, **values: Any):
    """A message of ``msgtype`` from lower-case field names; ROS 1 extras get zero values."""
    cls = typestore.types[msgtype]
    names = [f for f in cls.__dataclass_fields__ if not f.startswith("__")]
    lower = {name.lower(): name for name in names}
    kwargs = {}
    for key, value in values.items():
        if key.lower() not in lower:
            raise KeyError(f"{msgtype} has no field {key}")
        kwargs[lower[key.lower()]] = value
    if "seq" in lower and lower["seq"] not in kwargs:
        kwargs[lower["seq"]] = 0
    return cls(**kwargs)


def stamp_ns(message: Any) -> int:
    """The header stamp of ``message`` in nanoseconds."""
    stamp = field(field(message, "header"), "stamp")
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def header(typestore, stamp: int, frame_id: str):
    time = build(typestore, "builtin_interfaces/msg/Time", sec=int(stamp // 1_000_000_000),
                 nanosec=int(stamp % 1_000_000_000))
    return build(typestore, "std_msgs/msg/Header", stamp=time, frame_id=frame_id)


# Images in -----------------------------------------------------------------------------------------

def image_to_array(message: Any, msgtype: str, source: str) -> np.ndarray:
    """The pixels of a ``sensor_msgs/Image`` or ``CompressedImage``: ``(H, W, 3)`` uint8 RGB,
    or ``(H, W)`` uint16 for mono16 (the caller scales it to 8 bits for the whole stream)."""
    if msgtype == COMPRESSED_IMAGE:
        return _decode_compressed(message, source)
    width, height = int(field(message, "width")), int(field(message, "height"))
    encoding = str(field(message, "encoding"))
    if encoding not in ENCODINGS:
        raise InputError(f"{source}: image encoding {encoding!r} is not supported "
                         f"(supported: {', '.join(ENCODINGS)})")
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise InputError(f"{source}: image size {width}x{height} is out of range")
    channels, dtype, conversion = ENCODINGS[encoding]
    itemsize = np.dtype(dtype).itemsize
    step = int(field(message, "step"))
    data = np.asarray(field(message, "data"), dtype=np.uint8)
    if step < width * channels * itemsize or data.size < step * height:
        raise InputError(f"{source}: {encoding} image {width}x{height} has step {step} and "
                         f"{data.size} bytes; expected at least {width * channels * itemsize} "
                         f"per row")
    rows = data[:step * height].reshape(height, step)[:, :width * channels * itemsize]
    order = ">" if int(field(message, "is_bigendian", 0)) else "<"
    pixels = np.ascontiguousarray(rows).view(np.dtype(dtype).newbyteorder(order) if itemsize > 1 else dtype)
    pixels = pixels.reshape(height, width, channels).astype(dtype, copy=False)
    if dtype == np.uint16:
        return pixels[:, :, 0]
    if channels == 1:
        return np.repeat(pixels, 3, axis=2)
    return cv2.cvtColor(pixels, conversion) if conversion is not None else pixels


def _decode_compressed(message: Any, source: str) -> np.ndarray:
    data = np.asarray(field(message, "data"), dtype=np.uint8)
    fmt = str(field(message, "format", ""))
    if "compressedDepth" in fmt:
        raise InputError(f"{source}: compressedDepth images are depth maps, not camera images")
    if data.size == 0 or data.size > MAX_COMPRESSED_BYTES:
        raise InputError(f"{source}: compressed image of {data.size} bytes")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InputError(f"{source}: cannot decode compressed image (format {fmt!r})")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2) if image.dtype == np.uint8 else image
    if image.dtype != np.uint8:
        raise InputError(f"{source}: compressed colour image of {image.dtype} is not supported")
    conversion = cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB
    # image_transport's "rgb8; jpeg compressed bgr8" still decodes to OpenCV's BGR order.
    return cv2.cvtColor(image, conversion)


def mono16_shift(*images: np.ndarray) -> int:
    """Right shift that maps the bit depth the 16-bit images use (10, 12, 16 ...) to 8 bits."""
    peak = max(int(image.max()) for image in images)
    return max(0, int(peak).bit_length() - 8)


def to_rgb8(image: np.ndarray, shift: int) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    grey = np.clip(image.astype(np.uint32) >> shift, 0, 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


# CameraInfo ----------------------------------------------------------------------------------------

def camera_info_from_message(message: Any, source: str) -> CameraInfo:
    return CameraInfo.checked(
        field(message, "width"), field(message, "height"), field(message, "k"),
        field(message, "d"), field(message, "r"), field(message, "p"),
        str(field(message, "distortion_model", "")),
        frame_id=str(field(field(message, "header"), "frame_id", "")), source=source)


def camera_info_message(typestore, stamp: int, camera: CameraInfo):
    roi = build(typestore, "sensor_msgs/msg/RegionOfInterest", x_offset=0, y_offset=0, height=0,
                width=0, do_rectify=False)
    return build(typestore, CAMERA_INFO, header=header(typestore, stamp, camera.frame_id),
                 height=camera.height, width=camera.width, distortion_model=camera.distortion_model,
                 d=np.asarray(camera.D, dtype=np.float64), k=camera.K.astype(np.float64).ravel(),
                 r=camera.R.astype(np.float64).ravel(), p=camera.P.astype(np.float64).ravel(),
                 binning_x=0, binning_y=0, roi=roi)


# Results out ---------------------------------------------------------------------------------------

def _image(typestore, stamp: int, frame_id: str, array: np.ndarray, encoding: str):
    array = np.ascontiguousarray(array)
    height, width = array.shape[:2]
    data = array.view(np.uint8).ravel()
    return build(typestore, IMAGE, header=header(typestore, stamp, frame_id), height=height,
                 width=width, encoding=encoding, is_bigendian=0, step=data.size // height, data=data)


def image_message(typestore, stamp: int, frame_id: str, rgb: np.ndarray):
    """``rgb8`` image of an ``(H, W, 3)`` uint8 RGB array."""
    return _image(typestore, stamp, frame_id, np.asarray(rgb, dtype=np.uint8), "rgb8")


def depth_message(typestore, stamp: int, frame_id: str, depth: np.ndarray):
    """``32FC1`` depth in metres (little-endian), NaN where unknown."""
    return _image(typestore, stamp, frame_id, np.asarray(depth, dtype="<f4"), "32FC1")


def disparity_message(typestore, stamp: int, frame_id: str, disparity: np.ndarray,
                      calibration: Optional[StereoCalibration], max_disp: float, delta_d: float):
    """``stereo_msgs/DisparityImage`` of depthapp's disparity (NaN invalid), see the module doc.
    Without a calibration ``f``, ``T`` and the principal point offset are 0."""
    disparity = np.asarray(disparity, dtype=np.float32)
    valid = np.isfinite(disparity)
    lowest = min(0.0, float(disparity[valid].min())) if valid.any() else 0.0
    highest = max(float(max_disp), float(disparity[valid].max())) if valid.any() else float(max_disp)
    doffs = calibration.doffs if calibration is not None else 0.0
    focal, baseline = (calibration.focal, calibration.baseline) if calibration is not None else (0.0, 0.0)
    min_disparity, max_disparity = lowest + doffs, highest + doffs
    values = np.where(valid, disparity + np.float32(doffs), np.float32(min_disparity - 1.0))
    if valid.any():
        ys, xs = np.nonzero(valid)
        window = dict(x_offset=int(xs.min()), y_offset=int(ys.min()),
                      width=int(xs.max() - xs.min() + 1), height=int(ys.max() - ys.min() + 1))
    else:
        window = dict(x_offset=0, y_offset=0, width=0, height=0)
    roi = build(typestore, "sensor_msgs/msg/RegionOfInterest", do_rectify=False, **window)
    image = _image(typestore, stamp, frame_id, values.astype("<f4"), "32FC1")
    return build(typestore, DISPARITY_IMAGE, header=header(typestore, stamp, frame_id), image=image,
                 f=float(focal), t=float(baseline), valid_window=roi,
                 min_disparity=float(min_disparity), max_disparity=float(max_disparity),
                 delta_d=float(delta_d))


def pack_rgb(colors: np.ndarray) -> np.ndarray:
    """PCL's packed colour: ``0x00RRGGBB`` as the bytes of a float32."""
    colors = np.asarray(colors, dtype=np.uint32).reshape(-1, 3)
    packed = (colors[:, 0] << 16) | (colors[:, 1] << 8) | colors[:, 2]
    return packed.astype("<u4").view("<f4")


def point_cloud_message(typestore, stamp: int, frame_id: str, points: np.ndarray,
                        colors: Optional[np.ndarray]):
    """Unorganised ``PointCloud2`` with ``x y z`` (and ``rgb`` when coloured) float32 fields."""
    points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    names = ["x", "y", "z"] + (["rgb"] if colors is not None else [])
    table = np.empty(len(points), dtype=[(name, "<f4") for name in names])
    table["x"], table["y"], table["z"] = points.T
    if colors is not None:
        table["rgb"] = pack_rgb(colors)
    fields = [build(typestore, "sensor_msgs/msg/PointField", name=name, offset=4 * i,
                    datatype=_POINT_FIELD_FLOAT32, count=1) for i, name in enumerate(names)]
    data = table.view(np.uint8).ravel() if len(points) else np.zeros(0, dtype=np.uint8)
    return build(typestore, POINT_CLOUD2, header=header(typestore, stamp, frame_id), height=1,
                 width=len(points), fields=fields, is_bigendian=False,
                 point_step=table.dtype.itemsize, row_step=table.dtype.itemsize * len(points),
                 data=data, is_dense=True)


# Reading results back (tests, tools) ---------------------------------------------------------------

def disparity_from_message(message: Any, doffs: float) -> np.ndarray:
    """depthapp's disparity (NaN invalid) from a ``DisparityImage``, given the rig's ``doffs``
    (the message carries ``f`` and ``T`` but not the principal point offset)."""
    values = image_to_float(field(message, "image"))
    invalid = values < float(field(message, "min_disparity"))
    return np.where(invalid, np.nan, values - np.float32(doffs)).astype(np.float32)


def image_to_float(message: Any) -> np.ndarray:
    """A ``32FC1`` image as ``(H, W)`` float32."""
    if str(field(message, "encoding")) != "32FC1":
        raise InputError(f"expected a 32FC1 image, got {field(message, 'encoding')}")
    height, width, step = (int(field(message, n)) for n in ("height", "width", "step"))
    order = ">" if int(field(message, "is_bigendian", 0)) else "<"
    rows = np.asarray(field(message, "data"), dtype=np.uint8)[:height * step].reshape(height, step)
    return np.ascontiguousarray(rows[:, :4 * width]).view(order + "f4").astype(np.float32)


def point_cloud_from_message(message: Any) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """``(points (N, 3) float32, colours (N, 3) uint8 or None)`` of an ``x y z [rgb]`` cloud."""
    offsets = {str(field(f, "name")): int(field(f, "offset")) for f in field(message, "fields")}
    step = int(field(message, "point_step"))
    count = int(field(message, "width")) * int(field(message, "height"))
    rows = np.asarray(field(message, "data"), dtype=np.uint8)[:step * count].reshape(count, step)

    def column(name):
        start = offsets[name]
        return np.ascontiguousarray(rows[:, start:start + 4]).view("<f4").ravel()

    points = np.stack([column("x"), column("y"), column("z")], axis=1)
    colors = None
    if "rgb" in offsets:
        packed = column("rgb").view("<u4")
        colors = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=1).astype(np.uint8)
    return points, colors

