"""A toy learned backend, written the way a new one is added to depthapp: this one module plus
one registry line (``"toy": "toy_backend:ToyBackend"`` in ``depthapp.backends._BUILTIN``, which
``test_new_backend.py`` adds at test time). Its declarations (parameters, preprocessing,
``export_spec``, ``training_adapter``) give it CLI flags, viewer controls, eval, export and
training with no other file touched."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from depthapp.backends import register_backend
from depthapp.backends.base import Backend
from depthapp.params import Parameter
from depthapp.preprocessing import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from depthapp.training.models import TrainingAdapter


class ToyNet(nn.Module):
    """Normalised, padded RGB ``(N, 3, H, W)`` x2 -> disparity ``(N, H, W)``: convolutional
    features, a correlation volume over ``max_disp`` levels and a soft argmin."""

    def __init__(self, max_disp: int, temperature: float = 1.0):
        super().__init__()
        self.max_disp = max_disp
        self.temperature = temperature
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))

    def forward(self, left, right):
        left_features, right_features = self.features(left), self.features(right)
        width = left_features.shape[-1]
        padded = nn.functional.pad(right_features, (self.max_disp - 1, 0))
        start = self.max_disp - 1
        volume = torch.stack([(left_features * padded[..., start - d:start - d + width]).mean(1)
                              for d in range(self.max_disp)], 1)
        probability = torch.softmax(volume / self.temperature, 1)
        levels = torch.arange(self.max_disp, dtype=probability.dtype, device=probability.device)
        return (probability * levels.view(1, -1, 1, 1)).sum(1)


class ToyAdapter(TrainingAdapter):
    backend = "toy"
    architecture = "toy correlation network"
    variants = {"toy": {}}
    default_variant = "toy"
    backend_variants = ("toy",)
    default_crop = (32, 64)
    part_aliases = {"feature": ("features",)}

    def build_network(self) -> nn.Module:
        return ToyNet(self.max_disp)


@register_backend
class ToyBackend(Backend):
    name = "toy"
    description = "toy correlation network (test only)"
    learned = True
    supports_cuda = True
    default_max_disp = 16
    preprocessing = Preprocessing("mean_std", IMAGENET_MEAN, IMAGENET_STD, pad_multiple=8,
                                  pad_mode="top_right")
    parameters = (Parameter("temperature", "float", 1.0, "softmax temperature of the soft argmin",
                            0.1, 10.0, step=0.1),)

    def __init__(self, max_disp=None, device="auto", weights=None, **params):
        super().__init__(max_disp=max_disp, device=device, weights=weights, **params)
        torch.manual_seed(0)
        self.network = ToyNet(self.max_disp, self.params["temperature"]).eval()
        if weights:
            self.network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.network.to(self.device)

    @classmethod
    def training_adapter(cls):
        return ToyAdapter

    def export_spec(self, height, width):
        from depthapp.export.spec import ExportSpec

        return ExportSpec(module=self.network, input_kind="rgb", input_names=("left", "right"),
                          output_name="disparity", preprocessing=self.preprocessing,
                          max_disp=self.max_disp, backend=self.name)

    def _compute(self, pair, timer, cancel):
        with timer("prepare"):
            left, padding = self.preprocessing.prepare(pair.left)
            right, _ = self.preprocessing.prepare(pair.right)
        with timer("network"), torch.inference_mode():
            disparity = self.network(torch.from_numpy(left).to(self.device),
                                     torch.from_numpy(right).to(self.device))
        return np.asarray(padding.unpad(disparity)[0].float().cpu())
