"""The ``onnx`` backend: run a model exported by ``depthapp export`` under onnxruntime.

The file's metadata (``depthapp.*`` keys in ``metadata_props``) says how to normalise and pad,
so the preprocessing is the torch backend's, applied around the graph. Execution providers are
chosen explicitly; the run says which one ran and, in one line, why it fell back.
"""

from __future__ import annotations

import json
from typing import Optional

import numpy as np

from ..errors import InputError, UsageError
from ..params import Parameter
from . import register_backend
from .base import Backend


@register_backend
class ONNXBackend(Backend):
    name = "onnx"
    description = "a model exported by `depthapp export`, run by onnxruntime (--model FILE)"
    supports_cuda = False  # the provider, not torch, decides where it runs
    learned = False
    default_max_disp = 192
    parameters = (
        Parameter("provider", "choice", "cpu", "onnxruntime execution provider",
                  choices=("cpu", "cuda", "tensorrt")),
        Parameter("threads", "int", 0, "intra-op threads (0 = onnxruntime's default)", 0, 256),
    )

    def __init__(self, model: Optional[str] = None, max_disp: Optional[int] = None,
                 device: str = "auto", weights: Optional[str] = None, **params):
        if not model:
            raise UsageError("backend onnx needs --model FILE (an export of `depthapp export`)")
        if weights:
            raise UsageError("backend onnx takes --model FILE, not --weights")
        super().__init__(max_disp=max_disp, device="cpu", **params)
        from ..export.exporter import onnx_session, read_onnx_metadata

        self.model_path = model
        self.metadata = read_onnx_metadata(model)
        if "depthapp.input_kind" not in self.metadata:
            raise InputError(f"{model}: not a depthapp export (no depthapp metadata); "
                             "export with `depthapp export`")
        self.session, self.provider_used, self.fallback_note = onnx_session(
            model, self.params["provider"], self.params["threads"] or None)
        meta = self.metadata
        self.input_kind = meta["depthapp.input_kind"]
        if self.input_kind != "rgb":
            raise UsageError(f"{model}: a {meta.get('depthapp.backend')} feature network runs "
                             f"inside its backend: use --backend {meta.get('depthapp.backend')} "
                             f"--onnx-features {model}")
        if meta.get("depthapp.max_disp"):
            self.max_disp = int(meta["depthapp.max_disp"])

    def _compute(self, pair, timer, cancel):
        from ..export.spec import crop_output, padded_size, prepare_rgb

        meta = self.metadata
        multiple = int(meta["depthapp.pad_multiple"])
        minimum = int(meta.get("depthapp.min_padded_size") or 0)
        if meta["depthapp.dynamic"] == "true":
            padded_h, padded_w = padded_size(pair.height, pair.width, multiple, minimum)
        else:
            expected = (int(meta["depthapp.height"]), int(meta["depthapp.width"]))
            if (pair.height, pair.width) != expected:
                raise InputError(
                    f"{self.model_path}: exported for {expected[1]}x{expected[0]} images, the pair "
                    f"is {pair.width}x{pair.height} (re-export with --height/--width or --dynamic)")
            padded_h, padded_w = int(meta["depthapp.padded_height"]), int(meta["depthapp.padded_width"])
        mean, std = json.loads(meta["depthapp.mean"]), json.loads(meta["depthapp.std"])
        mode = meta["depthapp.pad_mode"]
        with timer("prepare"):
            names = meta["depthapp.input_names"].split(",")
            feeds = {names[0]: prepare_rgb(pair.left, mean, std, padded_h, padded_w, mode),
                     names[1]: prepare_rgb(pair.right, mean, std, padded_h, padded_w, mode)}
        with timer("onnxruntime"):
            output = np.asarray(self.session.run(None, feeds)[0], dtype=np.float32)
        with timer("crop"):
            disparity = crop_output(output, pair.height, pair.width, padded_h, padded_w, mode)
            disparity = disparity.reshape(pair.height, pair.width)
        return disparity

    def compute(self, pair, cancel=None):
        result = super().compute(pair, cancel)
        result.device = self.provider_used
        result.messages.append(f"onnxruntime ran on {self.provider_used}")
        if self.fallback_note:
            result.messages.append(self.fallback_note)
        return result
