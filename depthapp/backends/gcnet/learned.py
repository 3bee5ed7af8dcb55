"""Plumbing shared by the end-to-end 3-D cost-volume networks (GC-Net, GA-Net).

Both take a rectified pair, standardise each image, pad it to the multiple the network's
downsampling needs, run in inference mode and crop the padding away again. What differs is the
network, its padding multiple and its memory needs; :class:`CostVolumeBackend` does the rest.

This module would serve any learned backend of the same shape; it lives beside GC-Net because
backend packages own their folders (the lead may move it to ``depthapp/backends/learned.py``).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from contextlib import contextmanager
from typing import Any, ClassVar, Optional

import numpy as np

from ...data import StereoPair
from ...device import available_memory_bytes
from ...errors import InputError, WeightsError, literal
from ...jobs import CancelToken
from ...params import Parameter
from ...preprocessing import Preprocessing
from ...timing import StageTimer
from ..base import Backend

# Scale-free (any input range); the padding multiple is each network's.
STANDARDISED_RGB = Preprocessing("standardise", pad_mode="top_left")

SCALE_PARAMETER = Parameter(
    "scale", "float", 1.0, "run the network on the pair resized by this factor (and on "
    "proportionally fewer disparity levels); disparities are rescaled to the input size",
    minimum=0.1, maximum=1.0, step=0.05)
MEMORY_PARAMETER = Parameter(
    "memory_limit_gb", "float", 0.0, "refuse inputs whose estimated peak memory exceeds this "
    "many GiB; 0 = 90 % of the memory free on the device", minimum=0.0, maximum=1024.0, step=0.5)


@contextmanager
def no_stages(name: str):
    """The default ``stage`` of the models' ``infer``: times nothing."""
    yield


def tracing() -> bool:
    """Whether torch is tracing or exporting the model (ONNX, torch.export, TorchScript): then
    compute code takes its functional path (no writes into preallocated buffers)."""
    import torch

    return bool(torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.compiler.is_exporting())


def standardize(image: np.ndarray, preprocessing: Optional[Preprocessing] = None):
    """``(H, W, 3)`` RGB (uint8 0..255 or float) -> float32 tensor ``(1, 3, H, W)``, each
    channel standardised over the image ((x - mean) / std), as GA-Net's predict.py does."""
    import torch

    rgb = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)
    return (preprocessing or STANDARDISED_RGB).normalise(rgb).unsqueeze(0)


def resize(image, size: tuple[int, int]):
    """Bilinear resize of ``(N, C, H, W)`` to ``size`` (the backend and its export use this)."""
    import torch.nn.functional as F

    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image, size, mode="bilinear", align_corners=False)


def strip_checkpoint(checkpoint: dict) -> dict:
    """The bare state dict inside a checkpoint: accepts ``{'state_dict': ...}`` (the GA-Net
    training script's format) or ``{'model': ...}`` wrappers and the ``module.`` prefix that
    ``nn.DataParallel`` adds to every key."""
    for wrapper in ("state_dict", "model_state_dict", "model"):
        inner = checkpoint.get(wrapper)
        if isinstance(inner, dict) and inner:
            checkpoint = inner
            break
    if checkpoint and all(isinstance(k, str) and k.startswith("module.") for k in checkpoint):
        checkpoint = {k[len("module."):]: v for k, v in checkpoint.items()}
    return checkpoint


def load_state_dict_checked(model, state: dict, source: str) -> None:
    """Load ``state`` into ``model`` strictly (every parameter present with its shape), except
    BatchNorm's ``num_batches_tracked`` counters, which old checkpoints lack and inference never
    reads. Mismatches raise :class:`WeightsError` naming the file and the first offending keys."""
    import torch

    expected = model.state_dict()
    state = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [f"{k} {tuple(state[k].shape)} (expected {tuple(expected[k].shape)})"
                   for k in expected if k in state and state[k].shape != expected[k].shape]
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape)):
        if keys:
            shown = ", ".join(keys[:4]) + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")
            problems.append(f"{len(keys)} {label}: {shown}")
    if problems:
        raise WeightsError(f"{source}: does not fit {type(model).__name__} ({'; '.join(problems)}); "
                           f"a checkpoint of another backend or variant?")
    for key, value in expected.items():
        if key not in state:  # only num_batches_tracked can get here
            state[key] = value
    model.load_state_dict(state, strict=True)


def fuse_batchnorm(model):
    """An inference copy of ``model`` with every BatchNorm that directly follows a convolution
    folded into that convolution's weights and bias (eval statistics): the same outputs, one
    pass and one full-size tensor less per layer. Handles ``nn.Sequential(conv, bn, ...)`` and
    modules holding ``conv`` and ``bn`` attributes applied in that order (``use_bn``)."""
    import copy

    import torch
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    convolutions = (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)
    batchnorms = (nn.BatchNorm2d, nn.BatchNorm3d)
    fused = copy.deepcopy(model).eval()
    with torch.no_grad():
        for module in fused.modules():
            if isinstance(module, nn.Sequential):
                for i in range(len(module) - 1):
                    conv, bn = module[i], module[i + 1]
                    if isinstance(conv, convolutions) and isinstance(bn, batchnorms):
                        module[i] = fuse_conv_bn_eval(conv, bn, transpose=isinstance(
                            conv, (nn.ConvTranspose2d, nn.ConvTranspose3d)))
                        module[i + 1] = nn.Identity()
            conv, bn = getattr(module, "conv", None), getattr(module, "bn", None)
            if (isinstance(conv, convolutions) and isinstance(bn, batchnorms)
                    and getattr(module, "use_bn", False)):
                module.conv = fuse_conv_bn_eval(conv, bn, transpose=isinstance(
                    conv, (nn.ConvTranspose2d, nn.ConvTranspose3d)))
                module.bn = nn.Identity()
    return fused


def soft_argmin(cost, dim: int = 1):
    """GC-Net's soft argmin: ``sum_d d * softmax(-cost)_d`` along ``dim``.

    ``cost`` ``(N, D, H, W)`` -> disparity ``(N, H, W)`` and the probability volume it used.
    """
    import torch

    probability = torch.softmax(-cost, dim=dim)
    return disparity_expectation(probability, dim=dim), probability


def disparity_expectation(probability, dim: int = 1):
    """``sum_d d * p_d`` along ``dim`` for a probability volume ``(N, D, H, W)`` -> ``(N, H, W)``."""
    import torch

    levels = probability.shape[dim]
    values = torch.arange(levels, dtype=probability.dtype, device=probability.device)
    if dim == 1 and probability.dim() == 4 and probability.is_contiguous():
        # A matrix product: no (N, D, H, W) temporary (a full-resolution volume for GA-Net).
        n, _, height, width = probability.shape
        return torch.matmul(values.view(1, 1, levels), probability.view(n, levels, -1)).view(n, height, width)
    shape = [1] * probability.dim()
    shape[dim] = levels
    return (probability * values.view(shape)).sum(dim=dim)


class ExportWrapper:
    """Builds the module ``depthapp export`` traces (see :meth:`CostVolumeBackend.export_spec`)."""

    @staticmethod
    def build(network, size: tuple[int, int], scaled: tuple[int, int], inner: Preprocessing,
              outer: Preprocessing):
        """``inner``: the backend's preparation (in the graph); ``outer``: the exporter's."""
        import torch.nn.functional as F
        from torch import nn

        height, width = size
        outer_h, outer_w = outer.padded_size(height, width)
        inner_padding = inner.padding(*scaled)

        class StandardisedPairNetwork(nn.Module):
            """Raw RGB (0..255) ``(1, 3, Hp, Wp)`` views, zero-padded at the top and right to
            the exporter's size -> disparity ``(1, Hp, Wp)`` in the same layout. Inside, as the
            backend: each view standardised per channel over its ``height x width`` image,
            resized by ``--scale``, padded at the top and left, the network, and back. The
            image size is fixed at export time."""

            def __init__(self):
                super().__init__()
                self.network = network

            def prepared(self, image):
                valid = image[:, :, outer_h - height:, :width]
                return inner.pad(resize(inner.normalise(valid), scaled))[0]

            def forward(self, left_view, right_view):
                disparity = inner_padding.unpad(self.network(self.prepared(left_view),
                                                             self.prepared(right_view)))
                if tuple(scaled) != (height, width):
                    disparity = resize(disparity[:, None], (height, width))[:, 0] * (width / scaled[1])
                return F.pad(disparity, (0, outer_w - width, outer_h - height, 0))

        return StandardisedPairNetwork()


class CostVolumeBackend(Backend):
    """A network that maps a standardised, padded pair to disparity and a probability volume.

    Subclasses set ``architecture`` and ``preprocessing`` (its padding multiple) and implement
    :meth:`build_model` and :meth:`estimate_bytes`. The model's ``infer(left, right)`` takes
    ``(1, 3, H, W)`` tensors prepared by ``preprocessing`` and returns disparity
    ``(1, H, W)`` and confidence ``(1, H, W)`` (the probability of the most likely level).
    """

    learned: ClassVar[bool] = True
    supports_cuda: ClassVar[bool] = True
    architecture: ClassVar[str] = ""
    preprocessing: ClassVar[Preprocessing] = STANDARDISED_RGB

    def __init__(self, max_disp: Optional[int] = None, device: str = "auto",
                 weights: Optional[str] = None, offline: bool = False, **params: Any):
        """``weights``: a registry id or a state dict file (required); ``offline``: never
        download a missing registry checkpoint."""
        super().__init__(max_disp=max_disp, device=device, weights=weights, **params)
        self.scale = float(self.params.get("scale", 1.0))
        # The network searches the same range in its (scaled) pixels.
        self.network_max_disp = self.round_max_disp(max(1, math.ceil(self.max_disp * self.scale)))
        from ...weights import load_checkpoint, resolve_weights
        from ...weights.registry import default_record, quality_note

        self.weights_notes: list[str] = []
        if self.weights is None:
            shipped = default_record(self.name)
            if shipped is None:
                raise WeightsError.naming(f"backend {self.name} ({self.architecture}) has no trained "
                                          "weights here: train it (depthapp train) or pass {} "
                                          "(a state dict file)", "weights")
            self.weights = shipped.id
            self.weights_notes.append(f"default {quality_note(shipped)}")

        resolved = resolve_weights(str(self.weights), self.name, default_id=None,
                                   fetch_missing=False if offline else None)
        self.resolved_weights = resolved
        self.weights_label = resolved.label
        state = strip_checkpoint(load_checkpoint(resolved))
        self.configure_from_checkpoint(state)
        self.model = self.build_model()
        load_state_dict_checked(self.model, state, resolved.label)
        self.model.eval()
        self.inference_model = self.prepare_for_device(fuse_batchnorm(self.model).to(self.device))

    @classmethod
    def weights_max_disp(cls, weights: Optional[str]) -> Optional[int]:
        """The record's ``max_disp`` (registry id, ``train`` folder or record file, or the
        default shipped record); None for a bare checkpoint file."""
        from ...weights.registry import RECORDS, default_record, record_at

        record = RECORDS.get(weights) if weights else default_record(cls.name)
        if record is None and weights:
            record = record_at(str(weights))
        return record.max_disp if record is not None else None

    @classmethod
    def check_available(cls) -> None:
        from ...errors import BackendUnavailableError

        try:
            import torch  # noqa: F401
        except ImportError:
            raise BackendUnavailableError(f"backend {cls.name} needs torch (pip install torch)") from None

    def configure_from_checkpoint(self, state: dict) -> None:
        """Settle parameters the checkpoint decides (e.g. a network size left on ``auto``)."""

    def prepare_for_device(self, model):
        """Last touches on the inference copy for ``self.device`` (layouts, ...)."""
        return model

    @abstractmethod
    def build_model(self):
        """A freshly initialised ``torch.nn.Module`` for ``self.network_max_disp`` and
        ``self.params``."""

    @abstractmethod
    def estimate_bytes(self, padded_height: int, padded_width: int) -> int:
        """Peak memory of one inference of the network (``self.network_max_disp`` levels) on
        a padded ``padded_height x padded_width`` pair."""

    def network_size(self, height: int, width: int) -> tuple[int, int]:
        """The size the network sees a ``height x width`` pair at (``--scale``), unpadded."""
        if self.scale == 1.0:
            return height, width
        return max(1, round(height * self.scale)), max(1, round(width * self.scale))

    def memory_limit(self) -> Optional[int]:
        limit_gb = float(self.params.get("memory_limit_gb", 0.0) or 0.0)
        if limit_gb > 0:
            return int(limit_gb * 2**30)
        free = available_memory_bytes(self.device)
        return None if free is None else int(0.9 * free)

    def estimate_memory(self, height: int, width: int) -> int:
        return self.estimate_bytes(*self.preprocessing.padded_size(*self.network_size(height, width)))

    def check_memory(self, pair: StereoPair) -> None:
        """Refuse, before any work, a pair that would not fit (InputError with the numbers)."""
        needed = self.estimate_memory(pair.height, pair.width)
        limit = self.memory_limit()
        if limit is not None and needed > limit:
            where = "GPU" if self.device.startswith("cuda") else "RAM"
            suggestion = max(0.1, math.floor(self.scale * math.sqrt(limit / needed) * 0.9 * 20) / 20)
            raise InputError.naming(
                f"{literal(pair.name)}: {self.architecture} needs about {needed / 2**30:.1f} GiB of "
                f"{where} for a {pair.width}x{pair.height} pair with {self.max_disp} disparity "
                f"levels at scale {self.scale:g}, more than the {limit / 2**30:.1f} GiB allowed; "
                f"pass {{}} {suggestion:g} (or a smaller {{}}, or raise {{}})",
                "scale", "max_disp", "memory_limit_gb")

    def export_network(self):
        """A copy of the inference network on the backend's device, for tracing (subclasses
        adjust it)."""
        import copy

        return copy.deepcopy(self.inference_model).to(self.device).eval()

    def export_spec(self, height: int, width: int):
        """``depthapp export``: raw RGB in (mean 0, std 1/255 undo the exporter's scaling),
        standardisation and padding rules inside the graph, for ``height x width`` images."""
        from ...export.spec import ExportSpec

        raw_rgb = Preprocessing("mean_std", mean=(0.0, 0.0, 0.0), std=(1 / 255,) * 3,
                                pad_multiple=self.preprocessing.pad_multiple, pad_mode="top_right")
        module = ExportWrapper.build(self.export_network(), (height, width),
                                     self.network_size(height, width), self.preprocessing, raw_rgb)
        record = self.resolved_weights.record
        return ExportSpec(module=module.eval(), input_kind="rgb", input_names=("left", "right"),
                          output_name="disparity", preprocessing=raw_rgb,
                          max_disp=self.max_disp, dynamic_size=False, backend=self.name,
                          weights_id=record.id if record else "",
                          weights_sha256=record.sha256 if record else "",
                          extra={"architecture": self.architecture, "parameters": dict(self.params),
                                 "standardisation": "per view and channel over the HxW image, in the graph",
                                 "fixed_size": [height, width]})

    def _compute(self, pair: StereoPair, timer: StageTimer, cancel: CancelToken):
        import torch

        scaled = self.network_size(pair.height, pair.width)
        with timer("prepare"):
            left, padding = self.preprocessing.pad(resize(standardize(pair.left, self.preprocessing), scaled))
            right, _ = self.preprocessing.pad(resize(standardize(pair.right, self.preprocessing), scaled))
            left, right = left.to(self.device), right.to(self.device)
        cancel.raise_if_cancelled()
        # Cancellation between any two layers: a CPU inference takes minutes.
        hooks = [module.register_forward_pre_hook(lambda *_: cancel.raise_if_cancelled())
                 for module in self.inference_model.modules()]
        try:
            with torch.inference_mode():
                disparity, confidence = self.inference_model.infer(left, right, stage=timer)
        finally:
            for hook in hooks:
                hook.remove()
        with timer("finish"), torch.inference_mode():
            disparity, confidence = padding.unpad(disparity), padding.unpad(confidence)
            if scaled != (pair.height, pair.width):
                size = (pair.height, pair.width)
                disparity = resize(disparity[:, None], size)[:, 0] * (pair.width / scaled[1])
                confidence = resize(confidence[:, None], size)[:, 0]
            disparity = disparity[0].float().cpu().numpy()
            confidence = confidence[0].float().cpu().numpy()
        return disparity, confidence
