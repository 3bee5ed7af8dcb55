"""The ``psmnet`` backend: the official PSMNet KITTI 2015 checkpoint, run as the authors run it.

Input preparation follows the official test script: RGB / 255, ImageNet normalisation, zero
padding on the top and right to a multiple of 16 (at least 256, the smallest size the SPP
pooling accepts), and cropping back. For inputs too large for the memory at hand, ``scale``
runs the network on a resized pair and rescales the disparity values and size back, and a
memory estimate is checked before any work so a too-large request fails in milliseconds.
"""

from __future__ import annotations

import math
import threading
from typing import Optional

import numpy as np

from ...data import StereoPair
from ...device import available_memory_bytes
from ...errors import InputError, WeightsError
from ...jobs import CancelToken
from ...params import Parameter
from ...preprocessing import PSMNET_OFFICIAL, Preprocessing
from ...timing import StageTimer
from .. import register_backend
from ..base import Backend

DEFAULT_WEIGHTS = "psmnet-kitti2015"

_models: dict[tuple[str, str, int, bool], object] = {}
_models_lock = threading.Lock()


def estimate_memory_bytes(height: int, width: int, max_disp: int, half: bool = False,
                          inference_form: bool = True) -> int:
    """Peak memory of one inference on a padded ``height x width`` pair, in bytes.

    Proportional to the voxels of the 1/4-resolution volumes: the 32-channel aggregation
    volumes held for the residual links, transient conv outputs, and (official form only) the
    64-channel concatenation volume and the full-resolution cost, softmax and product of the
    regression. The constants are the peak RSS growth of one compute measured on the CPU
    (float32, 2 threads, freed memory reused as :mod:`depthapp.allocator` arranges, starting
    from none kept), at 384x256 / 608x400 / 752x512: inference form 242-290 / 640-665 / 799 MiB,
    official form 1453-1587 (once 2335, in a fresh clone's test run) / 1808-1996 / 1830-1850
    bytes per voxel (the ranges are repeated runs: reusing freed blocks from the heap leaves
    holes whose share varies, and with the size, hence the inference form's constant term).
    The inference form's fit is within 20 % of every run, the official form's within 25 %.
    Mixed precision halves the volumes.
    """
    quarter_voxels = (max_disp // 4) * (height // 4) * (width // 4)
    fixed, bytes_per_voxel = (64 << 20, 700) if inference_form else (0, 1780)
    if half:
        bytes_per_voxel //= 2
    return fixed + quarter_voxels * bytes_per_voxel


def prepare_image(image: np.ndarray, preprocessing: Preprocessing = PSMNET_OFFICIAL):
    """``(H, W, 3)`` RGB (uint8, or float in [0, 1]) -> ``(3, H, W)`` normalised float32
    tensor, with the operations of torchvision's ToTensor + Normalize."""
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    tensor = tensor.float().div(255) if image.dtype == np.uint8 else tensor.float()
    return preprocessing.normalise(tensor)


def load_model(path: str, label: str, device: str, max_disp: int, inference_form: bool = False):
    """The PSMNet for a checkpoint on ``device`` (in :func:`~.model.to_inference_form` if
    asked), loaded once per process."""
    import torch

    from ...weights import ResolvedWeights, load_checkpoint
    from pathlib import Path

    from .model import PSMNet, load_official_state_dict, to_inference_form

    key = (path, device, max_disp, inference_form)
    with _models_lock:
        model = _models.get(key)
        if model is None:
            checkpoint = load_checkpoint(ResolvedWeights(Path(path), None))
            model = PSMNet(max_disp)
            try:
                load_official_state_dict(model, checkpoint, label)
            except ValueError as error:
                raise WeightsError(str(error)) from None
            model = model.to(torch.device(device)).eval()
            if inference_form:
                to_inference_form(model)
            _models[key] = model
    return model


@register_backend
class PSMNetBackend(Backend):
    name = "psmnet"
    description = "PSMNet stacked hourglass (Chang & Chen 2018), official KITTI 2015 weights"
    default_max_disp = 192
    disparity_multiple = 16
    supports_cuda = True
    learned = True
    default_weights = DEFAULT_WEIGHTS
    preprocessing = PSMNET_OFFICIAL  # of a checkpoint file outside the registry
    parameters = (
        Parameter("scale", "float", 1.0, "run the network on the pair resized by this factor; "
                  "disparities are rescaled to the input size (for inputs too large for memory)",
                  0.1, 1.0, step=0.05),
        Parameter("autocast", "bool", False, "mixed precision for the network: fp16 on CUDA, "
                  "bf16 on the CPU (1.5-2x faster where the CPU has AVX512-BF16 or AMX; "
                  "changes the output beyond float rounding, see benchmarks/results); the "
                  "regression stays float32"),
        Parameter("layout", "choice", "auto", "form of the network: nhwc (channels-last, "
                  "BatchNorm folded, the first 3-D layer from the features, Winograd 3x3x3 "
                  "convolutions on AVX-512 CPUs, fused heads and regression: on the CPU 0.44x the "
                  "official code's time, equal to nchw up to float rounding), nchw (the official "
                  "layout and operations, bit-identical to the authors' code), auto = nhwc on the "
                  "CPU, nchw on CUDA",
                  choices=("auto", "nhwc", "nchw")),
        Parameter("memory_limit_gb", "float", 0.0, "refuse inputs whose estimated peak memory "
                  "exceeds this many GiB; 0 = the free memory of the device", 0.0, 1024.0),
    )
    presets = {"fast": {"scale": 0.5}}
    # Measured by benchmarks/bench_psmnet.py (741x500, 192 levels, 2 CPU cores, the default
    # inference form).
    # 10 % faster at Motorcycle size (1.2 s of page faults per pair), with the peak counted
    # in estimate_memory_bytes.
    reuses_freed_memory = True
    stage_shares = {"load": 1.0, "prepare": 0.2, "features": 42.3, "cost volume": 1.2,
                    "aggregation": 52.9, "regression": 3.4}

    def __init__(self, max_disp: Optional[int] = None, device: str = "auto",
                 weights: Optional[str] = None, offline: bool = False, **params):
        """``offline``: never download missing weights (otherwise
        :func:`depthapp.weights.set_auto_fetch` decides)."""
        super().__init__(max_disp=max_disp, device=device, weights=weights, **params)
        from ...weights import resolve_weights

        # Resolved now so a missing or corrupted checkpoint fails before any work.
        self.resolved_weights = resolve_weights(weights, self.name, DEFAULT_WEIGHTS,
                                                fetch_missing=False if offline else None)
        self.weights = weights or DEFAULT_WEIGHTS
        record = self.resolved_weights.record
        if record is not None and record.preprocessing is not None:
            self.preprocessing = record.preprocessing

    @classmethod
    def weights_max_disp(cls, weights: Optional[str]) -> Optional[int]:
        from ...weights import RECORDS

        record = RECORDS.get(weights or DEFAULT_WEIGHTS)
        return record.max_disp if record is not None else None

    @classmethod
    def training_adapter(cls):
        from ...training.models import PSMNetAdapter

        return PSMNetAdapter

    def network_size(self, height: int, width: int) -> tuple[int, int, int, int]:
        """``(scaled_h, scaled_w, padded_h, padded_w)`` for an input of ``height x width``."""
        scale = float(self.params["scale"])
        scaled_h = max(1, int(round(height * scale))) if scale != 1.0 else height
        scaled_w = max(1, int(round(width * scale))) if scale != 1.0 else width
        return (scaled_h, scaled_w) + self.preprocessing.padded_size(scaled_h, scaled_w)

    def estimate_memory(self, height: int, width: int) -> int:
        _, _, padded_h, padded_w = self.network_size(height, width)
        use_half = bool(self.params["autocast"])
        return estimate_memory_bytes(padded_h, padded_w, self.max_disp, half=use_half,
                                     inference_form=self.inference_form)

    def check_memory(self, pair: StereoPair) -> None:
        """InputError, before any work, when this pair's estimate exceeds the limit."""
        height, width = pair.height, pair.width
        _, _, padded_h, padded_w = self.network_size(height, width)
        needed = self.estimate_memory(height, width)
        limit_gb = float(self.params["memory_limit_gb"])
        limit = int(limit_gb * 2**30) if limit_gb > 0 else available_memory_bytes(self.device)
        if limit is not None and needed > limit:
            raise InputError.naming(
                f"{width}x{height} at max disparity {self.max_disp} needs about "
                f"{needed / 2**30:.1f} GiB on {self.device} (network input {padded_w}x{padded_h}), "
                f"more than the {limit / 2**30:.1f} GiB available; pass {{}} "
                f"{max(0.1, round(self.params['scale'] * math.sqrt(limit / needed) * 0.9, 2))} "
                "(or a smaller {})", "scale", "max_disp")

    @property
    def inference_form(self) -> bool:
        layout = self.params["layout"]
        return layout == "nhwc" or (layout == "auto" and not self.device.startswith("cuda"))

    def model(self):
        return load_model(str(self.resolved_weights.path), self.resolved_weights.label,
                          self.device, self.max_disp, self.inference_form)

    def export_spec(self, height: int, width: int):
        """The network for ``depthapp export``: normalised, padded RGB pair -> ``(1, Hp, Wp)``.
        A fresh copy on the backend's device whose cost volume is built by pad-and-stack (no
        in-place writes, so exporters can trace it) and whose softmax is written out (fast in
        onnxruntime); same values within float rounding."""
        import copy

        from ...export.spec import ExportSpec
        from .model import concat_cost_volume_stacked, disparity_regression_explicit

        module = copy.deepcopy(load_model(str(self.resolved_weights.path), self.resolved_weights.label,
                                          self.device, self.max_disp))
        module.cost_volume = concat_cost_volume_stacked
        module.regression = disparity_regression_explicit
        record = self.resolved_weights.record
        return ExportSpec(module=module.eval(), input_kind="rgb", input_names=("left", "right"),
                          output_name="disparity", preprocessing=self.preprocessing,
                          max_disp=self.max_disp, backend=self.name,
                          weights_id=record.id if record else "",
                          weights_sha256=record.sha256 if record else "")

    def _compute(self, pair: StereoPair, timer: StageTimer, cancel: CancelToken):
        import torch
        import torch.nn.functional as F

        height, width = pair.height, pair.width
        scaled_h, scaled_w, padded_h, padded_w = self.network_size(height, width)
        with timer("load"):
            model = self.model()
        device = torch.device(self.device)
        use_autocast = bool(self.params["autocast"])
        half = torch.float16 if device.type == "cuda" else torch.bfloat16
        with torch.inference_mode():
            with timer("prepare"):
                left = prepare_image(pair.left, self.preprocessing).to(device)
                right = prepare_image(pair.right, self.preprocessing).to(device)
                if (scaled_h, scaled_w) != (height, width):
                    left, right = (F.interpolate(x[None], (scaled_h, scaled_w), mode="bilinear",
                                                 align_corners=True)[0] for x in (left, right))
                left, padding = self.preprocessing.pad(left, (padded_h, padded_w))
                right, _ = self.preprocessing.pad(right, (padded_h, padded_w))
                left, right = left[None], right[None]
                if model.inference_form:
                    left = left.contiguous(memory_format=torch.channels_last)
                    right = right.contiguous(memory_format=torch.channels_last)
            cancel.raise_if_cancelled()
            with torch.autocast(device.type, dtype=half, enabled=use_autocast):
                with timer("features"):
                    left_features, right_features = model.features(left, right)
                cancel.raise_if_cancelled()
                with timer("cost volume"):
                    # Held in a list, so that aggregate holds the only reference and frees the
                    # volume after its first layer (a local here would keep it to the end).
                    volume = [model.volume(left_features, right_features)]
                    del left_features, right_features
                with timer("aggregation"):
                    cost = model.aggregate(volume.pop())
            cancel.raise_if_cancelled()
            with timer("regression"):
                disparity = padding.unpad(model.regression(cost, self.max_disp)[0])
                if (scaled_h, scaled_w) != (height, width):
                    disparity = F.interpolate(disparity[None, None], (height, width), mode="bilinear",
                                              align_corners=True)[0, 0] * (width / scaled_w)
                disparity = disparity.float().cpu().numpy()
        return disparity
