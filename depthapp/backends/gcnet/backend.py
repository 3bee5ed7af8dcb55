"""The ``gcnet`` backend: GC-Net (Kendall et al., ICCV 2017) on the CPU or CUDA."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from torch import nn

from ...params import Parameter
from .. import register_backend
from ...preprocessing import Preprocessing
from .learned import MEMORY_PARAMETER, SCALE_PARAMETER, STANDARDISED_RGB, CostVolumeBackend
from .model import DISPARITY_MULTIPLE, INPUT_MULTIPLE, GCNet

FLOAT_BYTES = 4


@register_backend
class GCNetBackend(CostVolumeBackend):
    """GC-Net: unary features at 1/2, concatenation volume over D/2 levels, 3-D
    encoder-decoder, soft argmin at full resolution.

    No checkpoint of the authors exists publicly; ``--weights`` takes a state dict of
    :class:`~depthapp.backends.gcnet.model.GCNet` (from ``depthapp train`` or elsewhere).
    Inputs are standardised per image and channel and zero-padded at the top and left to a
    multiple of 32; the padding is cropped off the result.
    """

    name: ClassVar[str] = "gcnet"
    description: ClassVar[str] = "GC-Net (Kendall et al. 2017): 3-D cost-volume regularisation, soft argmin"
    parameters: ClassVar[tuple[Parameter, ...]] = (SCALE_PARAMETER, MEMORY_PARAMETER)
    presets: ClassVar[dict[str, dict[str, Any]]] = {"fast": {"scale": 0.5}}
    default_max_disp: ClassVar[int] = 192
    disparity_multiple: ClassVar[int] = DISPARITY_MULTIPLE
    architecture: ClassVar[str] = "GC-Net"
    preprocessing: ClassVar[Preprocessing] = dataclasses.replace(STANDARDISED_RGB, pad_multiple=INPUT_MULTIPLE)
    # Measured with `depthapp run --sample --backend gcnet` (741x500, 96 levels, our
    # synthetic-h100 weights, 2 CPU cores).
    stage_shares: ClassVar[dict[str, float]] = {"prepare": 0.4, "features": 7.0, "cost volume": 8.5,
                                                "regularization": 82.0, "soft argmin": 2.0}

    @classmethod
    def training_adapter(cls):
        from ...training.models import GCNetAdapter

        return GCNetAdapter

    def prepare_for_device(self, model: GCNet) -> GCNet:
        if self.device == "cpu":
            # With the volume channels-last (GCNet.matching_cost on the CPU), channels-last 3-D
            # weights let oneDNN skip its reorder copies: about 30 % less peak memory.
            for module in model.modules():
                if isinstance(module, (nn.Conv3d, nn.ConvTranspose3d)):
                    module.weight.data = module.weight.data.contiguous(memory_format=torch.channels_last_3d)
        return model

    def configure_from_checkpoint(self, state: dict) -> None:
        # The widths are the checkpoint's (depthapp train's small and tiny variants too).
        first = state.get("unary.layer1.0.weight")
        self.features = int(first.shape[0]) if first is not None else 32
        self.residual_blocks = sum(1 for key in state
                                   if key.startswith("unary.blocks.") and key.endswith(".conv1.0.weight")) or 8

    def build_model(self) -> GCNet:
        return GCNet(max_disp=self.network_max_disp, features=getattr(self, "features", 32),
                     residual_blocks=getattr(self, "residual_blocks", 8))

    def estimate_bytes(self, padded_height: int, padded_width: int) -> int:
        """Peak of inference. On the CPU it is layer 36, the decoder's last layer on the
        D/2 x H/2 x W/2 grid, counted in floats per voxel of that grid from what is alive
        there: the 2F-channel cost volume (its caller, ``GCNet.matching_cost``, holds it
        through the whole regularisation), the F-channel skip of layer 20 and layer 36's
        F-channel output, and at 1/8 of the voxels the 2F-channel skip of layer 23 and layer
        35's output; 4.5 F in all (144 for F = 32; measured 147-152 from run to run: oneDNN's buffers, hence 10 % more).
        The full-resolution soft argmin after it holds three D x H x W volumes (the cost, its
        negation, the probabilities). Not measured on a GPU: there the volume is not
        channels-last and the estimate keeps the older bound of 160 floats per voxel."""
        half_voxels = (self.network_max_disp // 2) * (padded_height // 2) * (padded_width // 2)
        full_voxels = self.network_max_disp * padded_height * padded_width
        if self.device != "cpu":
            floats = max(160 * half_voxels, 4 * full_voxels)
            return int(1.15 * floats * FLOAT_BYTES) + 256 * 2**20
        features = getattr(self, "features", 32)
        floats = max(4.5 * features * half_voxels, 3 * full_voxels)
        return int(1.1 * floats * FLOAT_BYTES) + 16 * 2**20
