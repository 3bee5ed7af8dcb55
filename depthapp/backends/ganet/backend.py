"""The ``ganet`` backend: GA-Net (Zhang et al., CVPR 2019), GA-Net-deep or GA-Net-11."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any, ClassVar, Optional

from ...params import Parameter
from .. import register_backend
from ...preprocessing import Preprocessing
from ..gcnet.learned import MEMORY_PARAMETER, SCALE_PARAMETER, STANDARDISED_RGB, CostVolumeBackend
from .model import DISPARITY_MULTIPLE, INPUT_MULTIPLE, VARIANTS, GANet, tiny_config

FLOAT_BYTES = 4


def variant_of_state(state: dict) -> str:
    """``deep`` or ``11``: only GA-Net-deep has a third full-resolution SGA block."""
    return "deep" if any(key.startswith("cost_agg.sga3.") for key in state) else "11"


@functools.lru_cache(maxsize=16)
def _checkpoint_variant(path: str, size: int, mtime_ns: int) -> str:
    """The variant of a checkpoint file, read once per version of the file."""
    from ...weights import ResolvedWeights, load_checkpoint
    from ..gcnet.learned import strip_checkpoint

    return variant_of_state(strip_checkpoint(load_checkpoint(ResolvedWeights(Path(path), None))))


@register_backend
class GANetBackend(CostVolumeBackend):
    """GA-Net with semi-global (SGA) and local (LGA) guided aggregation.

    ``--weights`` takes the authors' checkpoints (``{'state_dict': ...}`` with ``module.``
    keys, from github.com/feihuzhang/GANet) or any state dict of
    :class:`~depthapp.backends.ganet.model.GANet`; ``--variant auto`` takes the size the
    checkpoint holds. Inputs are standardised per image and channel and zero-padded at the top
    and left to a multiple of 48 (the authors' predict.py); the padding is cropped off the
    result. The network regresses over ``0 .. max_disp`` (``max_disp + 1`` levels, as the
    authors').

    SGA and LGA run as Triton kernels on CUDA when Triton is installed, in pure torch
    otherwise (``--kernels torch`` forces that, e.g. to compare).
    """

    name: ClassVar[str] = "ganet"
    description: ClassVar[str] = "GA-Net (Zhang et al. 2019): guided semi-global and local cost aggregation"
    parameters: ClassVar[tuple[Parameter, ...]] = (
        Parameter("variant", "choice", "auto", "network size: deep (GA-Net-deep, 7 SGA layers), "
                  "11 (GA-Net-11, 4 SGA layers, faster) or auto (the one the weights hold)",
                  choices=("auto", "deep", "11")),
        Parameter("kernels", "choice", "auto", "SGA/LGA implementation: auto (Triton on CUDA "
                  "when installed), torch or triton", choices=("auto", "torch", "triton")),
        SCALE_PARAMETER,
        MEMORY_PARAMETER,
    )
    default_max_disp: ClassVar[int] = 192
    disparity_multiple: ClassVar[int] = DISPARITY_MULTIPLE
    architecture: ClassVar[str] = "GA-Net"
    preprocessing: ClassVar[Preprocessing] = dataclasses.replace(STANDARDISED_RGB, pad_multiple=INPUT_MULTIPLE)
    presets: ClassVar[dict[str, dict[str, Any]]] = {"fast": {"scale": 0.5}}
    # Measured with GA-Net-11 on a 256x192 crop of the sample, 96 levels, torch kernels, 2 CPU cores.
    stage_shares: ClassVar[dict[str, float]] = {
        "prepare": 1.0, "features": 5.5, "cost volume": 1.3, "guidance": 7.3,
        "aggregation (SGA)": 25.6, "refinement (LGA)": 59.3}
    # Formats `depthapp export` refuses before any work, and why (measured on GA-Net-11, 40x40).
    export_refusals: ClassVar[dict[str, str]] = {
        "onnx": "its semi-global aggregation is a sequential scan that unrolls into the graph "
                "(50,000 ONNX nodes even for a 40x40 image: the ONNX optimiser does not finish in "
                "15 minutes, and the unoptimised graph fails in onnxruntime); use --format "
                "torchscript or pt2 (fixed size)"}

    @classmethod
    def training_adapter(cls):
        from ...training.models import GANetAdapter

        return GANetAdapter

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.inference_model.set_implementation(self.params["kernels"])
        if self.params["kernels"] == "triton":
            from . import triton_kernels
            from ...errors import BackendUnavailableError

            if not triton_kernels.AVAILABLE:
                raise BackendUnavailableError.naming(
                    "ganet {} triton: Triton (>= 3.2) is not installed", "kernels")
            if not self.device.startswith("cuda") and not triton_kernels.interpreted():
                raise BackendUnavailableError.naming("ganet {} triton runs on CUDA devices (or on "
                                                     "the CPU under TRITON_INTERPRET=1)", "kernels")

    @classmethod
    def default_params(cls, weights: Optional[str] = None) -> dict[str, Any]:
        """``variant``: the size the checkpoint holds (``auto`` without weights)."""
        defaults = super().default_params(weights)
        if weights:
            from ...weights import resolve_weights

            resolved = resolve_weights(str(weights), cls.name, default_id=None, fetch_missing=False)
            stat = resolved.path.stat()
            defaults["variant"] = _checkpoint_variant(str(resolved.path), stat.st_size, stat.st_mtime_ns)
        return defaults

    def configure_from_checkpoint(self, state: dict) -> None:
        if self.params["variant"] == "auto":
            self.params["variant"] = variant_of_state(state)
        # depthapp train's narrow test models (tiny11, tinydeep) have the same keys, narrower.
        stem = state.get("conv_start.0.conv.weight")
        tiny = tiny_config(deep=self.params["variant"] == "deep")
        self.config = tiny if stem is not None and stem.shape[0] == tiny.stem[0] else \
            VARIANTS[self.params["variant"]]

    def export_network(self):
        network = super().export_network()
        network.set_implementation("torch")  # exporters trace torch ops, not Triton kernels
        return network

    def build_model(self) -> GANet:
        return GANet(max_disp=self.network_max_disp,
                     config=getattr(self, "config", None) or VARIANTS[self.params["variant"]])

    def estimate_bytes(self, padded_height: int, padded_width: int) -> int:
        """Peak of inference, the larger of: the 3-D aggregation at 1/3 (cost volume, SGA
        weights, skips and the pure-torch SGA's buffers: measured on the CPU 315-352 floats per
        voxel of the (D/3+1) x H/3 x W/3 grid for GA-Net-11 and 376 for GA-Net-deep, allowed
        400 and 440) and the final stage at full resolution (about six (D+1) x H x W volumes
        through LGA, softmin and LGA)."""
        third_voxels = (self.network_max_disp // 3 + 1) * (padded_height // 3) * (padded_width // 3)
        full_voxels = (self.network_max_disp + 1) * padded_height * padded_width
        per_voxel = 440 if self.params["variant"] == "deep" else 400
        floats = max(per_voxel * third_voxels, 8 * full_voxels + 64 * third_voxels)
        return int(1.15 * floats * FLOAT_BYTES) + 256 * 2**20
