"""What a learned backend hands to the exporter, and how exported graphs are fed.

A backend that can be exported implements ``export_spec(height, width) -> ExportSpec``: the
network as a module taking already-normalised, already-padded tensors, and the metadata that
says how to normalise and pad (so the onnx backend can do exactly the same around the graph).

Input kinds (``ExportSpec.input_kind``):
- ``"rgb"``: two ``(1, 3, Hp, Wp)`` float32 tensors, ``(rgb / 255 - mean) / std``.
- ``"grey_standardised"``: one ``(1, 1, Hp, Wp)`` tensor per call, luma (BT.601) standardised
  per image (zero mean, unit std); the graph is a feature network (MC-CNN).

Padding (``pad_mode``): ``"top_right"`` pads rows at the top and columns at the right (PSMNet's
official rule), ``"bottom_right"`` at the bottom and right; both are undone by cropping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class ExportSpec:
    module: Any  # torch.nn.Module in eval mode
    input_kind: str
    input_names: tuple[str, ...]
    output_name: str
    pad_multiple: int
    pad_mode: str = "top_right"
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    max_disp: Optional[int] = None
    min_padded_size: int = 0
    dynamic_size: bool = True  # False: the module fixes the image size (no --dynamic)
    backend: str = ""
    weights_id: str = ""
    weights_sha256: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def padded_size(height: int, width: int, multiple: int, minimum: int = 0) -> tuple[int, int]:
    """The smallest size ``>= (height, width)`` (and ``>= minimum``) divisible by ``multiple``."""
    def up(value):
        return int(math.ceil(max(value, minimum) / multiple) * multiple)

    return up(height), up(width)


def pad_amounts(height: int, width: int, padded_height: int, padded_width: int,
                mode: str) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` padding."""
    extra_h, extra_w = padded_height - height, padded_width - width
    if mode == "top_right":
        return extra_h, 0, 0, extra_w
    if mode == "bottom_right":
        return 0, extra_h, 0, extra_w
    raise ValueError(f"unknown pad mode {mode!r}")


def prepare_rgb(image: np.ndarray, mean, std, padded_height: int, padded_width: int,
                mode: str) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB -> ``(1, 3, Hp, Wp)`` float32 normalised, zero-padded."""
    height, width = image.shape[:2]
    normalised = (image.astype(np.float32) / 255.0 - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    top, bottom, left, right = pad_amounts(height, width, padded_height, padded_width, mode)
    padded = np.pad(normalised, ((top, bottom), (left, right), (0, 0)))
    return np.ascontiguousarray(padded.transpose(2, 0, 1)[None])


def crop_output(output: np.ndarray, height: int, width: int, padded_height: int,
                padded_width: int, mode: str) -> np.ndarray:
    top, _, left, _ = pad_amounts(height, width, padded_height, padded_width, mode)
    return output[..., top:top + height, left:left + width]


def metadata_of(spec: ExportSpec, height: int, width: int, dynamic: bool, fp16: bool,
                export_format: str) -> dict[str, str]:
    """String metadata written into ``metadata_props`` (ONNX) or beside the file."""
    import json

    padded_h, padded_w = padded_size(height, width, spec.pad_multiple, spec.min_padded_size)
    meta = {
        "depthapp.backend": spec.backend,
        "depthapp.weights_id": spec.weights_id,
        "depthapp.weights_sha256": spec.weights_sha256,
        "depthapp.input_kind": spec.input_kind,
        "depthapp.input_names": ",".join(spec.input_names),
        "depthapp.output_name": spec.output_name,
        "depthapp.mean": json.dumps(list(spec.mean)),
        "depthapp.std": json.dumps(list(spec.std)),
        "depthapp.pad_multiple": str(spec.pad_multiple),
        "depthapp.pad_mode": spec.pad_mode,
        "depthapp.min_padded_size": str(spec.min_padded_size),
        "depthapp.max_disp": str(spec.max_disp or ""),
        "depthapp.height": str(height),
        "depthapp.width": str(width),
        "depthapp.padded_height": "dynamic" if dynamic else str(padded_h),
        "depthapp.padded_width": "dynamic" if dynamic else str(padded_w),
        "depthapp.dynamic": str(bool(dynamic)).lower(),
        "depthapp.fp16": str(bool(fp16)).lower(),
        "depthapp.format": export_format,
        "depthapp.extra": json.dumps(spec.extra),
    }
    return meta
