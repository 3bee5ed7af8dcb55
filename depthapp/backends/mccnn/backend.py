"""The ``mccnn`` backend: MC-CNN matching cost with the full stereo method of Zbontar & LeCun.

    grey, standardised per image -> network features (CPU or CUDA) -> cost volume
    -> cross-based aggregation -> SGM (the sgm backend's aggregation, the paper's penalty rule)
    -> cross-based aggregation -> winner -> left-right check + interpolation -> sub-pixel
    -> 5x5 median -> bilateral mean

On the CPU the method after the volume is numpy and numba (:mod:`.postprocess`); on a CUDA
device the volume stays there and the same method runs as torch (:mod:`.postprocess_torch`),
its SGM in the sgm backend's CUDA aggregation; only the disparity and confidence come back.

Defaults are the paper's Middlebury hyper-parameters of the variant the weights hold (its
``mb`` settings for ``fast`` and ``slow``/accurate); a parameter the user sets explicitly wins.

The feature network is pluggable (``features=``, a :class:`FeatureNetwork`): the ``onnx``
backend runs an exported MC-CNN feature network under onnxruntime and hands it in, and the
rest of the method is this module's.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Optional, Protocol

import numpy as np

from ...data import StereoPair
from ...errors import WeightsError
from ...jobs import CancelToken
from ...params import Parameter
from ...preprocessing import MCCNN_GREY
from ...timing import StageTimer
from .. import register_backend
from ..base import Backend

DEFAULT_WEIGHTS = "mccnn-fast-middlebury"

# glibc's largest mmap threshold (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit): once a block that
# size is freed, smaller ones come from the heap and stay resident after they are freed.
HEAP_BLOCK_LIMIT = 32 * 2**20

# The paper's Middlebury settings (its code's `mb` options) per architecture.
PAPER_MIDDLEBURY: dict[str, dict[str, Any]] = {
    "fast": dict(cbca_distance=0, cbca_intensity=0.0, cbca_before=0, cbca_after=0, p1=2.3, p2=24.3,
                 sgm_q1=4.0, sgm_q2=2.0, sgm_vertical=1.5, sgm_intensity=0.08, blur_sigma=6.0,
                 blur_threshold=2.0),
    "accurate": dict(cbca_distance=14, cbca_intensity=0.02, cbca_before=2, cbca_after=16, p1=1.3,
                     p2=13.9, sgm_q1=4.5, sgm_q2=2.0, sgm_vertical=2.75, sgm_intensity=0.13,
                     blur_sigma=1.67, blur_threshold=2.0),
}

_networks: dict[tuple[str, str], object] = {}
_networks_lock = threading.Lock()


def load_network(path: str, label: str, device: str):
    """The network of a checkpoint on ``device``, loaded once per process."""
    import torch

    from ...weights import ResolvedWeights, load_checkpoint
    from .model import build_network, extract_state_dict

    key = (path, device)
    with _networks_lock:
        network = _networks.get(key)
        if network is None:
            checkpoint = load_checkpoint(ResolvedWeights(Path(path), None))
            try:
                network = build_network(extract_state_dict(checkpoint), label)
            except (ValueError, AttributeError) as error:
                raise WeightsError(str(error)) from None
            # NHWC convolutions are faster here (oneDNN, cuDNN) and leave the features in the
            # (H, W, C) layout the cost volume's matrix products read.
            network = network.to(torch.device(device), memory_format=torch.channels_last)
            _networks[key] = network
    return network


class FeatureNetwork(Protocol):
    """Where the pipeline gets its features.

    ``variant`` (``"fast"`` or ``"accurate"``) decides the matching cost; ``channels`` is the
    feature length. Called with the two ``(H, W)`` float32 standardised grey images, returns
    their ``(C, H, W)`` float32 feature maps as torch tensors (on any device), the network's
    receptive field edge-replicated so every pixel has a feature.
    """

    variant: str
    channels: int

    def __call__(self, grey_left: np.ndarray, grey_right: np.ndarray) -> tuple[Any, Any]: ...


class TorchFeatures:
    """:class:`FeatureNetwork` of a loaded checkpoint network on ``device`` (one batch of two)."""

    def __init__(self, network, device: str):
        self.network = network
        self.device = device
        self.variant = network.variant
        self.channels = network.channels

    def __call__(self, grey_left: np.ndarray, grey_right: np.ndarray):
        import torch

        from .cost import network_input

        device = torch.device(self.device)
        batch = torch.cat((network_input(grey_left, device), network_input(grey_right, device)))
        features = self.network(batch.contiguous(memory_format=torch.channels_last))
        return features[0], features[1]


def _variant_help(name: str, text: str) -> str:
    fast, accurate = PAPER_MIDDLEBURY["fast"][name], PAPER_MIDDLEBURY["accurate"][name]
    return f"{text} (default: the paper's Middlebury value, fast {fast:g}, accurate {accurate:g})"


@register_backend
class MCCNNBackend(Backend):
    name = "mccnn"
    description = "MC-CNN matching cost + cross aggregation + SGM (Zbontar & LeCun 2016)"
    default_max_disp = 128
    supports_cuda = True
    learned = True
    default_weights = DEFAULT_WEIGHTS
    preprocessing = MCCNN_GREY
    parameters = (
        Parameter("cbca_distance", "int", 0, _variant_help("cbca_distance", "longest arm of the cross"), 0, 64),
        Parameter("cbca_intensity", "float", 0.0, _variant_help(
            "cbca_intensity", "arms stop at this change of standardised intensity"), 0.0, 10.0, step=0.01),
        Parameter("cbca_before", "int", 0, _variant_help("cbca_before", "cross aggregations before SGM"), 0, 32),
        Parameter("cbca_after", "int", 0, _variant_help("cbca_after", "cross aggregations after SGM"), 0, 64),
        Parameter("sgm", "bool", True, "semi-global matching (4 paths)"),
        Parameter("p1", "float", 2.3, _variant_help("p1", "SGM penalty for a 1 px change"), 0.0, 100.0, step=0.1),
        Parameter("p2", "float", 24.3, _variant_help("p2", "SGM penalty for larger changes"), 0.0, 1000.0, step=0.5),
        Parameter("sgm_q1", "float", 4.0, _variant_help(
            "sgm_q1", "penalties divided by this where one image has an edge"), 1.0, 100.0, step=0.5),
        Parameter("sgm_q2", "float", 2.0, _variant_help(
            "sgm_q2", "and further by this where both have one"), 1.0, 100.0, step=0.5),
        Parameter("sgm_vertical", "float", 1.5, _variant_help(
            "sgm_vertical", "P1 divided by this on vertical paths"), 1.0, 100.0, step=0.25),
        Parameter("sgm_intensity", "float", 0.08, _variant_help(
            "sgm_intensity", "an edge is a standardised intensity step of at least this"), 0.0, 10.0, step=0.01),
        Parameter("autocast", "bool", False, "mixed precision for the network and cost volume: "
                  "fp16 on CUDA, bfloat16 on the CPU (the rest of the method stays float32)"),
        Parameter("lr_check", "bool", True, "left-right check; occlusions and mismatches are interpolated"),
        Parameter("subpixel", "bool", True, "parabola fit around the cost minimum"),
        Parameter("median_size", "int", 5, "median filter size (1 = off)", 1, 11, odd=True),
        Parameter("blur_sigma", "float", 6.0, _variant_help(
            "blur_sigma", "bilateral mean: Gaussian sigma in pixels (0 = off)"), 0.0, 20.0, step=0.1),
        Parameter("blur_threshold", "float", 2.0, _variant_help(
            "blur_threshold", "bilateral mean: neighbours within this many pixels of disparity"), 0.0, 50.0, step=0.5),
    )
    presets = {"fast": {"autocast": True}, "raw": {"sgm": False, "lr_check": False, "median_size": 1,
                                                    "blur_sigma": 0.0, "cbca_before": 0, "cbca_after": 0}}

    def __init__(self, max_disp: Optional[int] = None, device: str = "auto",
                 weights: Optional[str] = None, offline: bool = False,
                 features: Optional[FeatureNetwork] = None, **params):
        """``offline``: never download missing weights (otherwise
        :func:`depthapp.weights.set_auto_fetch` decides).

        ``features``: a feature network to use instead of the checkpoint's (e.g. an ONNX
        export). Its variant decides the cost; ``fast`` then needs no checkpoint at all, while
        ``accurate`` takes its decision network from ``weights`` (no default: the checkpoint
        the features were exported from)."""
        super().__init__(max_disp=max_disp, device=device, weights=weights, **params)
        from ...weights import resolve_weights

        self.external_features = features
        if features is not None and features.variant not in PAPER_MIDDLEBURY:
            raise WeightsError(f"MC-CNN features of unknown variant {features.variant!r} "
                               f"(known: {', '.join(PAPER_MIDDLEBURY)})")
        if features is not None and features.variant == "fast":
            self.resolved_weights = None  # the correlation of fast features needs no weights
        else:
            default = DEFAULT_WEIGHTS if features is None else None
            self.resolved_weights = resolve_weights(weights, self.name, default,
                                                    fetch_missing=False if offline else None)
            self.weights = weights or default
        self.variant = self._detect_variant()
        if features is not None and features.variant == "accurate":
            network = self.network()
            if network.variant != "accurate" or network.channels != features.channels:
                raise WeightsError(
                    f"{self.resolved_weights.label}: a {network.variant} MC-CNN with "
                    f"{network.channels} features cannot score the given accurate features "
                    f"({features.channels} channels); pass the checkpoint they were exported from")
        # The variant may come from the features rather than the weights.
        self.params = {**self.declared_defaults(), **PAPER_MIDDLEBURY[self.variant], **self.overrides}

    @classmethod
    def default_params(cls, weights: Optional[str] = None) -> dict[str, Any]:
        """The declared defaults with the paper's settings of the variant ``weights`` hold."""
        return {**cls.declared_defaults(), **PAPER_MIDDLEBURY[cls.variant_of(weights)]}

    @classmethod
    def variant_of(cls, weights: Optional[str]) -> str:
        """``fast`` or ``accurate``: the registry record's, else the checkpoint file's network."""
        from ...weights import RECORDS, resolve_weights

        record = RECORDS.get(weights or DEFAULT_WEIGHTS)
        if record is not None and record.backend == cls.name:
            return record.variant
        resolved = resolve_weights(weights, cls.name, None, fetch_missing=False)
        # Loaded once per process (the backend then finds it in the cache on the CPU).
        return load_network(str(resolved.path), resolved.label, "cpu").variant

    @classmethod
    def training_adapter(cls):
        from ...training.models import MCCNNAdapter

        return MCCNNAdapter

    @property
    def stage_shares(self) -> dict[str, float]:
        """Measured on 2 CPU cores with numba's compiled code cached: fast on the sample (741x500,
        68 levels), accurate on a 256x192 crop (64 levels), whose cost is the decision network."""
        if self.variant == "accurate":
            return {"features": 2.4, "cost volume": 77.6, "cross aggregation": 19.7, "sgm": 0.1,
                    "winner": 0.05, "left-right check": 0.07, "refinement": 0.12}
        return {"features": 60.0, "cost volume": 10.4, "sgm": 10.3, "winner": 0.8,
                "left-right check": 0.8, "refinement": 17.3}

    def estimate_memory(self, height: int, width: int) -> int:
        """The largest of the pipeline's peaks, counted from what is alive at each (measured
        phase by phase, benchmarks/bench_memory_estimates.py; numbers in the commit):

        * the network: a convolution's input and output, ``C`` maps of both edge-padded
          images each; ``fast``: then the volume is built beside the features;
        * ``accurate``: then the volume, the features, the split first layer's two
          ``(H, W, 384)`` halves and three 384-wide activations per chunk of
          :func:`~.cost.accurate_volume`;
        * on the CPU, aggregating: the cost and the result of SGM (the cost volume is freed
          when it returns) with the ``(4, H, W)`` penalty maps and their ``(8, H, W)`` copies
          for the sweeps, or 4 volumes in cross aggregation (cost, sums, counts, result).

        On the CPU, glibc serves blocks under :data:`HEAP_BLOCK_LIMIT` from its heap and keeps
        them resident once freed; the volumes (larger) are mapped afresh, so below that size
        the network's two feature maps stay in the process's peak (measured with ``fast``: 3.1
        volumes at 200x300 with 256 levels, 2.1 at 256x384 with 128).
        """
        import inspect

        from .cost import accurate_volume
        from .model import PATCH_RADIUS

        pixels = height * width
        volume = pixels * self.max_disp * 4
        channels = 112 if self.variant == "accurate" else 64
        padded = (height + 2 * PATCH_RADIUS) * (width + 2 * PATCH_RADIUS)
        features = 2 * channels * 4 * padded
        network = 2 * features
        # the network's blocks still resident once it is done
        on_heap = network if not self.device.startswith("cuda") and features < HEAP_BLOCK_LIMIT else 0
        if self.variant == "accurate":
            hidden = 384
            chunk_pixels = inspect.signature(accurate_volume).parameters["chunk_pixels"].default
            chunk = min(height, max(1, chunk_pixels // max(1, width))) * width
            building = (volume + max(features, on_heap) + pixels * 4 * 2 * hidden
                        + 3 * hidden * 4 * chunk)
        else:
            building = max(network, volume + max(features, on_heap))
        crossed = self.params["cbca_before"] or self.params["cbca_after"]
        if self.device.startswith("cuda"):
            aggregating = self._device_method_bytes(volume, crossed)
        else:
            penalty_maps = 2 * (4 + 8) * 4 * pixels
            aggregating = (4 if crossed else 2) * volume + penalty_maps + on_heap
        return max(building, aggregating) + pixels * 64

    def _device_method_bytes(self, volume: int, crossed: bool) -> int:
        """Peak of :meth:`_compute_on_device` after the volume, counted from its allocations
        (not yet measured on a GPU): SGM holds the cost, the result and one volume per path
        (when they fit :data:`~depthapp.backends.sgm.cuda.CONCURRENT_BUDGET`); the winner
        search about 4.5 volumes (cost, aggregated, a masked copy, the right view's padded
        diagonal); cross aggregation the cost, its result and one slab's work."""
        from ..sgm.cuda import CONCURRENT_BUDGET
        from .postprocess_torch import CROSS_SLAB_BYTES, CROSS_SLAB_ENTRIES

        paths = 4
        peak = int(4.5 * volume)
        if self.params["sgm"]:
            peak = max(peak, (2 + (paths if paths * volume <= CONCURRENT_BUDGET else 0)) * volume)
        if crossed:
            slab = min(volume // 4, CROSS_SLAB_ENTRIES)
            peak = max(peak, 3 * volume + slab * CROSS_SLAB_BYTES)
        return peak

    def _detect_variant(self) -> str:
        if self.external_features is not None:
            return self.external_features.variant
        record = self.resolved_weights.record
        if record is not None:
            return record.variant
        return getattr(self.network(), "variant", "fast")

    def network(self):
        """The checkpoint's network on ``self.device`` (the decision network for ``accurate``)."""
        if self.resolved_weights is None:
            raise WeightsError("this MC-CNN pipeline runs external fast features and has no checkpoint")
        return load_network(str(self.resolved_weights.path), self.resolved_weights.label, self.device)

    def feature_network(self) -> FeatureNetwork:
        """The features this pipeline matches: the external ones if given, else the checkpoint's."""
        if self.external_features is not None:
            return self.external_features
        return TorchFeatures(self.network(), self.device)

    def export_spec(self, height: int, width: int):
        """The feature network for ``depthapp export``: one standardised grey image
        ``(1, 1, H, W)`` -> ``(1, C, H, W)`` features (edge replication included). The cost is
        ``-<f_L(x), f_R(x - d)>`` for ``fast``; ``accurate`` needs its decision network
        (``extra['variant']``), which stays in depthapp: the ``onnx`` backend loads it from the
        checkpoint named (and hashed) in the metadata."""
        import copy

        import torch

        from ...export.spec import ExportSpec
        from ...weights import sha256_file
        from .model import PATCH_RADIUS

        if self.resolved_weights is None:
            raise WeightsError("an MC-CNN pipeline on external features has no network to export")
        network = copy.deepcopy(load_network(str(self.resolved_weights.path),
                                              self.resolved_weights.label, self.device))
        module = torch.nn.Sequential(torch.nn.ReplicationPad2d(PATCH_RADIUS),
                                     network.to(memory_format=torch.contiguous_format)).eval()
        record = self.resolved_weights.record
        return ExportSpec(module=module, input_kind="grey_standardised", input_names=("image",),
                          output_name="features", preprocessing=self.preprocessing,
                          max_disp=self.max_disp, backend=self.name,
                          weights_id=record.id if record else "",
                          weights_sha256=record.sha256 if record else sha256_file(self.resolved_weights.path),
                          # fp16 features of unit length: measured 6e-4 from float32.
                          extra={"variant": self.variant, "channels": network.channels,
                                 "fp16_tolerance": 0.01,
                                 "cost": "-dot(f_left(x), f_right(x - d))" if self.variant == "fast"
                                 else "decision network (not exported)"})

    def cost_volume(self, pair: StereoPair, timer: Optional[StageTimer] = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(H, W, D)`` float32 matching cost and the two standardised grey images."""
        timer = timer or StageTimer()
        volume, grey_left, grey_right = self.cost_volume_tensor(pair, timer)
        if volume.device.type != "cpu":  # a stage of its own: "cost volume" has ended
            with timer("volume to host"):
                volume = volume.cpu()
        return np.ascontiguousarray(volume.numpy()), grey_left, grey_right

    def cost_volume_tensor(self, pair: StereoPair, timer: Optional[StageTimer] = None):
        """:meth:`cost_volume` with the volume a float32 torch tensor left on ``self.device``."""
        import torch

        from .cost import accurate_volume, correlation_volume

        timer = timer or StageTimer()
        grey_left, grey_right = (self.preprocessing.prepare(image)[0][0, 0]
                                 for image in (pair.left, pair.right))
        features = self.feature_network()
        device = torch.device(self.device)
        use_autocast = bool(self.params["autocast"])
        half = torch.float16 if device.type == "cuda" else torch.bfloat16
        with torch.inference_mode(), torch.autocast(device.type, dtype=half, enabled=use_autocast):
            with timer("features"):
                left, right = features(grey_left, grey_right)
                left, right = left.to(device), right.to(device)
            with timer("cost volume"):
                if self.variant == "fast":
                    volume = correlation_volume(left, right, self.max_disp, invalid_cost=1.0)
                else:
                    volume = accurate_volume(self.network(), left, right, self.max_disp, invalid_cost=0.0)
                volume = volume.float().contiguous()
        return volume, grey_left, grey_right

    def _compute(self, pair: StereoPair, timer: StageTimer, cancel: CancelToken):
        if self.device.startswith("cuda"):
            return self._compute_on_device(pair, timer, cancel)
        return self._compute_on_host(pair, timer, cancel)

    def _compute_on_host(self, pair: StereoPair, timer: StageTimer, cancel: CancelToken):
        """The method after the network on the CPU (numpy and numba), the volume on the host."""
        from ..sgm.aggregation import aggregate_cost, median_filter, winner_take_all
        from . import postprocess as post

        p = self.params
        cost, grey_left, grey_right = self.cost_volume(pair, timer)
        n_disp = cost.shape[2]
        cancel.raise_if_cancelled()

        arms = None
        if p["cbca_before"] or p["cbca_after"]:
            with timer("cross aggregation"):
                arms = tuple(post.cross_arms(g, p["cbca_distance"], p["cbca_intensity"])
                             for g in (grey_left, grey_right))
                cost = post.cross_aggregate(cost, arms[0], arms[1], p["cbca_before"])
        cancel.raise_if_cancelled()
        if p["sgm"]:
            with timer("sgm"):
                guide = np.argmin(cost, axis=2).astype(np.float32)
                p1, p2 = post.sgm_penalties(grey_left, grey_right, guide, p["p1"], p["p2"],
                                            p["sgm_intensity"], p["sgm_q1"], p["sgm_q2"],
                                            p["sgm_vertical"])
                cost = aggregate_cost(cost, p1, p2, paths=4)
        cancel.raise_if_cancelled()
        if p["cbca_after"] and arms is not None:
            with timer("cross aggregation"):
                cost = post.cross_aggregate(cost, arms[0], arms[1], p["cbca_after"])
        with timer("winner"):
            winners = winner_take_all(cost, uniqueness=0.0, subpixel=False)
            disparity = winners.disparity
        if p["lr_check"]:
            with timer("left-right check"):
                labels = post.classify_outliers(disparity, winners.right_disparity, n_disp)
                disparity = post.interpolate_outliers(disparity, labels)
        with timer("refinement"):
            if p["subpixel"]:
                disparity = post.subpixel(cost, disparity)
            disparity = median_filter(disparity, p["median_size"])
            disparity = post.bilateral_mean(disparity, p["blur_sigma"], p["blur_threshold"])
        return disparity, winners.confidence

    def _compute_on_device(self, pair: StereoPair, timer: StageTimer, cancel: CancelToken):
        """The same method with the volume kept on the device: SGM by the sgm backend's CUDA
        aggregation reading the tensor in place, the other steps as torch
        (:mod:`.postprocess_torch`); only the disparity and confidence come back."""
        import torch

        from .postprocess_torch import refine_volume

        cost, grey_left, grey_right = self.cost_volume_tensor(pair, timer)
        cancel.raise_if_cancelled()
        with torch.inference_mode():
            disparity, confidence = refine_volume(cost, grey_left, grey_right, self.params, timer,
                                                  cancel.raise_if_cancelled)
            return disparity.cpu().numpy(), confidence.cpu().numpy()
