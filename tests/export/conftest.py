import numpy as np
import pytest
import torch

from depthapp.backends import Backend, register_backend
from depthapp.export.spec import ExportSpec
from depthapp.preprocessing import IMAGENET_MEAN, IMAGENET_STD, Preprocessing

TINY_PREPROCESSING = Preprocessing("mean_std", IMAGENET_MEAN, IMAGENET_STD, pad_multiple=16,
                                   pad_mode="top_right")


class TinyStereoNet(torch.nn.Module):
    """A small differentiable stereo net (correlation volume + soft argmin) for export tests."""

    def __init__(self, max_disp: int = 8):
        super().__init__()
        self.max_disp = max_disp
        torch.manual_seed(0)
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                            torch.nn.Conv2d(8, 8, 3, padding=1))

    def forward(self, left, right):
        fl, fr = self.features(left), self.features(right)
        width = fl.shape[-1]
        padded = torch.nn.functional.pad(fr, (self.max_disp - 1, 0))
        costs = [(fl * padded[..., self.max_disp - 1 - d: self.max_disp - 1 - d + width]).mean(1)
                 for d in range(self.max_disp)]
        volume = torch.stack(costs, 1)
        probabilities = torch.softmax(volume, 1)
        disparities = torch.arange(self.max_disp, dtype=left.dtype).view(1, -1, 1, 1)
        return (probabilities * disparities).sum(1)


@register_backend
class TinyExportable(Backend):
    name = "test-tiny-net"
    description = "tiny learned net for export tests"
    learned = True
    default_max_disp = 8
    disparity_multiple = 1

    def __init__(self, **options):
        super().__init__(**options)
        self.network = TinyStereoNet(self.max_disp).eval()

    def export_spec(self, height, width):
        return ExportSpec(module=self.network, input_kind="rgb", input_names=("left", "right"),
                          output_name="disparity", preprocessing=TINY_PREPROCESSING,
                          max_disp=self.max_disp, backend=self.name, weights_id="tiny-random")

    def _compute(self, pair, timer, cancel):
        left, padding = TINY_PREPROCESSING.prepare(pair.left)
        right, _ = TINY_PREPROCESSING.prepare(pair.right)
        with torch.inference_mode():
            out = self.network(torch.from_numpy(left), torch.from_numpy(right)).numpy()
        return padding.unpad(out)[0]


class StatefulNet(TinyStereoNet):
    """Python-side state that export bakes in as a constant: the classic silently broken export."""

    calls = 0

    def forward(self, left, right):
        StatefulNet.calls += 1
        return super().forward(left, right) + float(StatefulNet.calls)


@register_backend
class TinyStateful(TinyExportable):
    name = "test-tiny-stateful"

    def __init__(self, **options):
        super().__init__(**options)
        self.network = StatefulNet(self.max_disp).eval()


@pytest.fixture
def tiny_backend():
    return TinyExportable


class FixedSizeNet(TinyStereoNet):
    """Works on the export-time ``height x width`` window whatever it is given, like a wrapper
    that fixes the image size: fine at that size, wrong as a dynamic graph."""

    def __init__(self, height: int, width: int, max_disp: int = 8):
        super().__init__(max_disp)
        self.height, self.width = height, width

    def forward(self, left, right):
        window = (slice(None), slice(None), slice(0, self.height), slice(0, self.width))
        disparity = super().forward(left[window], right[window])
        return torch.nn.functional.pad(disparity, (0, 64 - self.width, 0, 64 - self.height))


@register_backend
class TinyFixedSizeClaimingDynamic(TinyExportable):
    """A spec that wrongly allows --dynamic: the exporter's second-size check must catch it."""

    name = "test-tiny-fixed-size"

    def export_spec(self, height, width):
        spec = super().export_spec(height, width)
        spec.module = FixedSizeNet(height, width, self.max_disp).eval()
        return spec
