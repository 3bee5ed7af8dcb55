"""The ``onnx`` backend: run a model exported by ``depthapp export`` under onnxruntime.

    depthapp run LEFT RIGHT --backend onnx --model FILE [--provider cpu|cuda|tensorrt]

The file's metadata (``depthapp.*`` keys in ``metadata_props``) says what the graph is and how
to feed it, so every export runs through this one backend:

- a whole network (PSMNet, GC-Net, GA-Net: input kind ``rgb``): the torch backend's
  normalisation and padding are applied around the graph, the padding cropped off its output;
- an MC-CNN feature network (input kind ``grey_standardised``): the graph gives the features
  and the ``mccnn`` backend's own pipeline does the rest (cost volume, cross aggregation, SGM,
  left-right check, refinement), with the paper's settings for the exported variant; its
  parameters are flags here too (``--p1``, ``--sgm false`` ...). ``accurate`` features are
  scored by the checkpoint's decision network, loaded from the weights the metadata names
  (hash-checked; ``--weights FILE`` for an export of a file outside the registry).

Execution providers are chosen explicitly; the run says which one ran and, in one line, why it
fell back.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Optional

import numpy as np

from ..errors import InputError, ParameterError, WeightsError, literal
from ..params import Parameter
from . import register_backend
from .base import Backend
from .mccnn.backend import MCCNNBackend

# MC-CNN's pipeline parameters, for feature models (autocast concerns its torch network only).
FEATURE_PIPELINE_PARAMETERS = tuple(
    dataclasses.replace(parameter, help=f"MC-CNN feature models: {parameter.help}")
    for parameter in MCCNNBackend.parameters if parameter.name != "autocast")
_FEATURE_PIPELINE_NAMES = frozenset(p.name for p in FEATURE_PIPELINE_PARAMETERS)


class ONNXFeatures:
    """An exported MC-CNN feature network as the mccnn pipeline's
    :class:`~depthapp.backends.mccnn.backend.FeatureNetwork`: one onnxruntime run per view,
    ``(H, W)`` standardised grey -> ``(C, H, W)`` float32 features."""

    def __init__(self, session, input_name: str, variant: str, channels: int):
        self.session = session
        self.input_name = input_name
        self.variant = variant
        self.channels = channels

    def __call__(self, grey_left: np.ndarray, grey_right: np.ndarray):
        import torch

        maps = []
        for grey in (grey_left, grey_right):
            feed = np.ascontiguousarray(grey, dtype=np.float32)[None, None]
            maps.append(torch.from_numpy(np.asarray(self.session.run(None, {self.input_name: feed})[0],
                                                    dtype=np.float32)[0]))
        return maps[0], maps[1]


@register_backend
class ONNXBackend(Backend):
    name = "onnx"
    description = "a model exported by `depthapp export`, run by onnxruntime (--model FILE)"
    supports_cuda = False  # the provider, not torch, decides where it runs
    learned = False
    kind = "exported model"
    model_file_types = (".onnx",)
    # Whole networks take the range they were exported with (the metadata); for MC-CNN feature
    # models, where the range is free, the default is the mccnn backend's.
    default_max_disp = MCCNNBackend.default_max_disp
    parameters = (
        Parameter("provider", "choice", "cpu", "onnxruntime execution provider",
                  choices=("cpu", "cuda", "tensorrt")),
        Parameter("threads", "int", 0, "intra-op threads (0 = onnxruntime's default)", 0, 256),
    ) + FEATURE_PIPELINE_PARAMETERS

    def __init__(self, model: Optional[str] = None, max_disp: Optional[int] = None,
                 device: str = "auto", weights: Optional[str] = None, offline: bool = False,
                 **params):
        """``model``: the exported ``.onnx`` file. ``weights``: only for ``accurate`` MC-CNN
        feature models exported from a checkpoint outside the registry (its decision network);
        ``offline``: never download that checkpoint."""
        if not model:
            raise ParameterError("backend onnx needs {} (a file of `depthapp export`)", "model")
        pipeline_params = {name: value for name, value in params.items() if name in _FEATURE_PIPELINE_NAMES}
        super().__init__(max_disp=max_disp, device="cpu", **params)
        from ..export.exporter import onnx_session, read_onnx_metadata
        from ..export.spec import preprocessing_from_metadata

        self.model_path = model
        self.metadata = meta = read_onnx_metadata(model)
        if "depthapp.input_kind" not in meta:
            raise InputError(f"{model}: not a depthapp export (no depthapp metadata); "
                             "export with `depthapp export`")
        self.input_kind = meta["depthapp.input_kind"]
        exported_from = meta.get("depthapp.backend") or "unknown"
        if self.input_kind not in ("rgb", "grey_standardised"):
            raise InputError(f"{model}: input kind {self.input_kind!r} of a {exported_from} export "
                             "is unknown to this depthapp version")
        if self.input_kind == "grey_standardised" and exported_from != "mccnn":
            raise InputError(f"{model}: a feature network of backend {exported_from}; only MC-CNN "
                             "feature networks have a pipeline here")
        if self.input_kind == "rgb":
            if weights:
                raise ParameterError(f"backend onnx takes {{}}, not {{}}: the {exported_from} "
                                     f"weights are inside {literal(model)}", "model", "weights")
            if pipeline_params:
                raise ParameterError(
                    ", ".join("{}" for _ in pipeline_params) + ": MC-CNN pipeline parameters, but "
                    + literal(f"{model} is a whole {exported_from} network (its options were fixed "
                              "at export)"), *pipeline_params)
        self.preprocessing = preprocessing_from_metadata(meta)
        self.session, self.provider_used, self.fallback_note = onnx_session(
            model, self.params["provider"], self.params["threads"] or None)
        own = {p.name for p in self.parameters} - _FEATURE_PIPELINE_NAMES
        self.pipeline: Optional[MCCNNBackend] = None
        if self.input_kind == "rgb":
            if meta.get("depthapp.max_disp"):
                self.max_disp = int(meta["depthapp.max_disp"])
            self.params = {name: value for name, value in self.params.items() if name in own}
        else:
            self.pipeline = self._mccnn_pipeline(max_disp, weights, offline, pipeline_params)
            self.max_disp = self.pipeline.max_disp
            self.params = {**{name: self.params[name] for name in own},
                           **{name: value for name, value in self.pipeline.params.items()
                              if name in _FEATURE_PIPELINE_NAMES}}

    def _mccnn_pipeline(self, max_disp: Optional[int], weights: Optional[str], offline: bool,
                        pipeline_params: dict) -> MCCNNBackend:
        """The mccnn backend's pipeline on this file's features."""
        meta = self.metadata
        extra = json.loads(meta.get("depthapp.extra") or "{}")
        variant, channels = extra.get("variant"), extra.get("channels")
        if variant not in ("fast", "accurate") or not isinstance(channels, int):
            raise InputError(f"{self.model_path}: MC-CNN export without its variant and channel "
                             "count in the metadata; export it again with `depthapp export`")
        features = ONNXFeatures(self.session, meta["depthapp.input_names"].split(",")[0], variant, channels)
        if max_disp is None and meta.get("depthapp.max_disp"):
            max_disp = int(meta["depthapp.max_disp"])
        if variant == "fast":
            if weights:
                raise ParameterError(f"{literal(self.model_path)}: fast MC-CNN features are matched "
                                     "by their dot product and need no {}", "weights")
            return MCCNNBackend(max_disp=max_disp, device="cpu", features=features, **pipeline_params)
        weights = weights or meta.get("depthapp.weights_id") or None
        if not weights:
            raise ParameterError(f"{literal(self.model_path)}: accurate MC-CNN features are scored "
                                 "by the decision network of the checkpoint they were exported "
                                 "from; pass it as {}", "weights")
        pipeline = MCCNNBackend(max_disp=max_disp, device="cpu", weights=weights, offline=offline,
                                features=features, **pipeline_params)
        expected = meta.get("depthapp.weights_sha256")
        if expected:
            from ..weights import sha256_file

            resolved = pipeline.resolved_weights
            actual = resolved.record.sha256 if resolved.record else sha256_file(resolved.path)
            if actual != expected:
                raise WeightsError(f"{resolved.label}: not the checkpoint {self.model_path} was exported "
                                   f"from (SHA-256 {actual[:12]}..., the export names {expected[:12]}...)")
        return pipeline

    def estimate_memory(self, height: int, width: int) -> int:
        """An MC-CNN feature export runs the mccnn pipeline: its estimate. A whole network's
        peak depends on onnxruntime's memory planning of that graph, which only a run shows;
        the generic one-volume estimate is taken at the padded size the graph runs at."""
        if self.pipeline is not None:
            return self.pipeline.estimate_memory(height, width)
        if self.metadata.get("depthapp.dynamic") == "true":
            height, width = self.preprocessing.padded_size(height, width)
        return super().estimate_memory(height, width)

    def _network_size(self, pair) -> tuple[int, int]:
        """The padded size the graph runs at; InputError for a pair a fixed-size export can't take."""
        meta = self.metadata
        if meta["depthapp.dynamic"] == "true":
            return self.preprocessing.padded_size(pair.height, pair.width)
        expected = (int(meta["depthapp.height"]), int(meta["depthapp.width"]))
        if (pair.height, pair.width) != expected:
            raise InputError(
                f"{self.model_path}: exported for {expected[1]}x{expected[0]} images, the pair "
                f"is {pair.width}x{pair.height} (re-export with --height/--width or --dynamic)")
        return int(meta["depthapp.padded_height"]), int(meta["depthapp.padded_width"])

    def _compute(self, pair, timer, cancel):
        padded_h, padded_w = self._network_size(pair)
        if self.pipeline is not None:
            return self.pipeline._compute(pair, timer, cancel)
        with timer("prepare"):
            names = self.metadata["depthapp.input_names"].split(",")
            left, padding = self.preprocessing.prepare(pair.left, (padded_h, padded_w))
            feeds = {names[0]: left,
                     names[1]: self.preprocessing.prepare(pair.right, (padded_h, padded_w))[0]}
        with timer("onnxruntime"):
            output = np.asarray(self.session.run(None, feeds)[0], dtype=np.float32)
        if output.shape[-2:] != (padded_h, padded_w):
            raise InputError(f"{self.model_path}: the graph returned {output.shape[-1]}x{output.shape[-2]} "
                             f"disparities for a {padded_w}x{padded_h} input; re-export it")
        with timer("crop"):
            disparity = padding.unpad(output).reshape(pair.height, pair.width)
        return disparity

    @property
    def stage_shares(self) -> dict[str, float]:
        if self.pipeline is not None:
            return self.pipeline.stage_shares
        return {"prepare": 1.0, "onnxruntime": 98.0, "crop": 1.0}

    def compute(self, pair, cancel=None, progress=None):
        result = super().compute(pair, cancel, progress)
        result.device = self.provider_used
        result.messages.append(f"onnxruntime ran on {self.provider_used}")
        if self.fallback_note:
            result.messages.append(self.fallback_note)
        return result
