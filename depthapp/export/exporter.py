"""``depthapp export``: learned backends to ONNX, TorchScript or ``torch.export`` (pt2), each
export verified against the torch model on a real sample before it is kept.

What works, measured on this project's CPU machine (max |exported - torch| over the image, on
the Motorcycle pair resized to the export size; tests in ``tests/export/test_backends.py``):

| backend | onnx | torchscript | pt2 |
|---|---|---|---|
| psmnet (official KITTI 2015) | 1e-5 px at 128x64 (padded to its 256x256 minimum); 0.0035 px at 741x500, 612 nodes, onnxruntime 8.7 s vs torch 13.5 s on 2 CPU threads (benchmarks/bench_export.py; the exported graph writes the softmax out, since onnxruntime's Softmax over the disparity axis alone took 3.6 s); by hand: ``--dynamic`` 5e-4 px at 128x64 and 288x272, 833 nodes, ``--fp16`` 0.008 px | 0 px at 128x64 | 0 px at 128x64 |
| gcnet (seeded random weights; no public checkpoint) | 6e-6 px at 60x40, 213 nodes; ``--fp16`` 0.004 px (by hand); fixed size only (``--dynamic`` refused) | 0 px at 60x40 | 0 px at 60x40 |
| mccnn (feature network, fast and accurate) | features within 2e-7 (fast) / 6e-6 (accurate), 11-17 nodes; ``--dynamic`` works; ``--fp16`` 6e-4. Runs in the ``onnx`` backend with the mccnn pipeline: fast 3e-6 px from the torch backend at 185x125; accurate, on a 64x40 crop, 99.8 % of pixels within 0.05 px (max 0.064 px: near-ties after 16 cross aggregations) | features exact | features exact |
| ganet (GA-Net-11, seeded random weights) | refused: the SGA scan unrolls (50,000 nodes at 40x40; the ONNX optimiser did not finish in 15 min, and the unoptimised graph fails to run in onnxruntime) | 4e-5 px at 40x40 (10 s to export); fixed size only | 6e-5 px at 70x40 by hand, not in the test suite: 45 s to export, save and load the 7,700-node program |
| sgm, opencv-* | classical: not exportable (a clear usage error) | | |

TorchScript and pt2 graphs record the device they were traced on (tensors the network creates
carry it as a constant), so a CPU export does not run on CUDA ("Tensor device mismatch"):
export with ``--device cuda`` for a GPU. Measured on an H100 (``benchmarks/export_cuda.py``,
traced on CUDA): PSMNet 1242x375 eager 50.5 ms, TorchScript 42.1 ms, pt2 54.3 ms; GC-Net 512x256
22.3 / 24.5 / 28.7 ms; MC-CNN fast features 1242x375 2.7 / 2.7 / 2.9 ms; all 0.0 px from eager.
ONNX graphs are device-independent: the ``onnx`` backend's ``--provider`` picks where they run
(``cuda`` / ``tensorrt`` need an onnxruntime-gpu build with the CUDA / TensorRT libraries).

``--dynamic`` is for ONNX only; a dynamic export is verified at the export size and at a second
size. For MC-CNN the check compares the features (unit vectors for fast; tolerance 0.05, fp16
0.01), and the rest of its method stays in depthapp. Every export is verified before it is
kept, so an unsupported combination fails with a message and leaves no file.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

from ..errors import DepthAppError, UsageError
from ..io.atomic import atomic_path, check_writable
from ..jobs import ProgressCallback, StageProgress
from .spec import ExportSpec, metadata_of

FORMATS = ("onnx", "torchscript", "pt2")
FP32_TOLERANCE = 0.05  # px, the bound on |exported - torch|

# The stages of an export and their usual shares of its time, for the ETA. Measured with
# `depthapp export --backend psmnet --height 64 --width 128` (padded to 256x256) per format on
# 2 shared CPU cores (seconds, onnx: 2.9 / 63.5 / 26.2 / 9.0; torchscript: 3.1 / 24.9 / 14.9 /
# 12.9; pt2: 1.7 / 8.9 / 8.6 / 9.0); verifying runs the torch network and the export once each.
LOADING, EXPORTING = "loading the network", "exporting"
VERIFYING_TORCH, VERIFYING_EXPORT = "verifying: torch on the sample", "verifying: the export on the sample"
VERIFYING_SECOND_SIZE = "verifying at a second size"
EXPORT_STAGE_SHARES = {
    "onnx": {LOADING: 3.0, EXPORTING: 62.0, VERIFYING_TORCH: 26.0, VERIFYING_EXPORT: 9.0},
    "torchscript": {LOADING: 6.0, EXPORTING: 44.0, VERIFYING_TORCH: 27.0, VERIFYING_EXPORT: 23.0},
    "pt2": {LOADING: 6.0, EXPORTING: 32.0, VERIFYING_TORCH: 30.0, VERIFYING_EXPORT: 32.0},
}


class ExportVerificationError(DepthAppError):
    """The exported model disagrees with the torch model; the file was removed."""


@dataclass
class ExportReport:
    path: Path
    format: str
    max_abs_diff: float
    tolerance: float
    torch_seconds: float
    exported_seconds: float
    nodes: Optional[int]
    metadata: dict[str, str]


def _example_images(height: int, width: int):
    """The real Motorcycle pair resized to the export size (the parity check's input)."""
    import cv2

    from ..sample import load_sample

    pair = load_sample()
    left = cv2.resize(pair.left, (width, height), interpolation=cv2.INTER_AREA)
    right = cv2.resize(pair.right, (width, height), interpolation=cv2.INTER_AREA)
    return left, right


def example_inputs(spec: ExportSpec, height: int, width: int):
    """The sample at ``height x width`` prepared as the graph takes it: the network inputs
    and the :class:`~depthapp.preprocessing.Padding` that crops the output back."""
    left, right = _example_images(height, width)
    left_input, padding = spec.preprocessing.prepare(left)
    if spec.input_kind == "grey_standardised":
        return [left_input], padding
    if spec.input_kind == "rgb":
        return [left_input, spec.preprocessing.prepare(right)[0]], padding
    raise UsageError(f"unknown input kind {spec.input_kind!r}")


def _count_nodes(path: Path) -> int:
    import onnx

    return len(onnx.load(str(path), load_external_data=False).graph.node)


def _export_onnx(spec: ExportSpec, inputs, tmp: Path, opset: int, dynamic: bool,
                 metadata: dict[str, str]) -> None:
    import onnx
    import torch

    tensors = tuple(torch.from_numpy(x) for x in inputs)
    dynamic_shapes = None
    if dynamic:
        multiple = spec.preprocessing.pad_multiple
        height = torch.export.Dim("height", min=multiple * 2, max=4096)
        width = torch.export.Dim("width", min=multiple * 2, max=8192)
        dynamic_shapes = tuple({2: height, 3: width} for _ in tensors)
    program = torch.onnx.export(spec.module, tensors, dynamo=True, opset_version=opset,
                                input_names=list(spec.input_names), output_names=[spec.output_name],
                                dynamic_shapes=dynamic_shapes, optimize=True, verbose=False)
    model = program.model_proto
    if not dynamic:
        try:
            import onnxslim

            model = onnxslim.slim(model)
        except Exception as error:  # simplification is an optimisation, never a requirement
            metadata["depthapp.simplify_error"] = str(error)[:200]
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(tmp))


def onnx_session(path: str | os.PathLike, provider: str = "cpu", threads: Optional[int] = None):
    """An onnxruntime session with explicit providers; returns ``(session, provider_used, note)``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    wanted = {"cpu": ["CPUExecutionProvider"],
              "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
              "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider",
                           "CPUExecutionProvider"]}[provider]
    ort.set_default_logger_severity(4)  # missing CUDA libraries are reported by us in one line
    session = ort.InferenceSession(str(path), sess_options=options, providers=wanted)
    used = session.get_providers()[0]
    note = None
    if used != wanted[0]:
        note = (f"{wanted[0]} unavailable here (no {provider.upper()} libraries or device); "
                f"fell back to {used}")
    return session, used, note


def _run_exported(path: Path, fmt: str, spec: ExportSpec, inputs, device: str = "cpu") -> np.ndarray:
    if fmt == "onnx":
        session, _, _ = onnx_session(path)
        feeds = {name: x for name, x in zip(spec.input_names, inputs)}
        return np.asarray(session.run(None, feeds)[0])
    import torch

    tensors = tuple(torch.from_numpy(x).to(device) for x in inputs)
    with torch.inference_mode():
        if fmt == "torchscript":
            output = torch.jit.load(str(path), map_location=device).eval()(*tensors)
        else:
            output = torch.export.load(str(path)).module()(*tensors)
        return output.float().cpu().numpy()


@contextmanager
def _exporter_noise_filtered() -> Iterator[None]:
    """Hide what torch's exporters say on every successful export that users cannot act on:
    torch.onnx logs a warning per torchvision operator it cannot register when torchvision is
    not installed (no depthapp network uses one), torch's own pytree code trips its
    ``LeafSpec`` FutureWarning, and a dynamic export notes that the left and right inputs share
    their height and width axes (as they must). Errors still raise and are reported."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                                    category=FutureWarning)
            warnings.filterwarnings("ignore", message=r"# The axis name: \w+ will not be used, since it "
                                    r"shares the same shape constraints", category=UserWarning)
            yield
    finally:
        registration.setLevel(level)


def _verify(path: Path, out, fmt: str, spec: ExportSpec, height: int, width: int,
            tolerance: float, device: str = "cpu",
            stage: Callable[[str], None] = lambda name: None) -> tuple[float, float, float]:
    """Run the torch module and the exported file on the sample at ``height x width``;
    ExportVerificationError unless they agree within ``tolerance``. Returns the largest
    difference over the image and the two run times. ``stage`` is told when each run begins."""
    import torch

    inputs, padding = example_inputs(spec, height, width)
    padded_h, padded_w = inputs[0].shape[-2:]
    stage(VERIFYING_TORCH)
    with torch.inference_mode():
        start = time.perf_counter()
        reference = spec.module(*[torch.from_numpy(x).to(device) for x in inputs])
        reference = reference.float().cpu().numpy()
        torch_seconds = time.perf_counter() - start
    stage(VERIFYING_EXPORT)
    start = time.perf_counter()
    try:
        exported = _run_exported(path, fmt, spec, inputs, device).astype(np.float32)
    except Exception as error:  # any failure of the exported model is a failed export
        raise ExportVerificationError(f"{out}: the exported {fmt} fails on a {width}x{height} input "
                                      f"({type(error).__name__}: {str(error)[:300]}); the file was removed") from None
    exported_seconds = time.perf_counter() - start
    for name, output in (("torch", reference), (fmt, exported)):
        if output.shape[-2:] != (padded_h, padded_w):
            raise ExportVerificationError(
                f"{out}: the {name} model returns {output.shape[-1]}x{output.shape[-2]} for a "
                f"{padded_w}x{padded_h} input (a graph fixed to one size); the file was removed")
    ref, got = padding.unpad(reference), padding.unpad(exported)
    if ref.shape != got.shape:
        raise ExportVerificationError(f"{out}: exported output shape {got.shape} != torch {ref.shape} "
                                      f"for a {width}x{height} input; the file was removed")
    difference = float(np.nanmax(np.abs(ref - got))) if ref.size else 0.0
    if not np.isfinite(difference) or difference > tolerance:
        raise ExportVerificationError(
            f"{out}: exported {fmt} differs from torch by {difference:.4f} (tolerance {tolerance}) "
            f"on the sample at {width}x{height}; the file was removed")
    return difference, torch_seconds, exported_seconds


def backend_to_export(backend_name: str, weights: Optional[str] = None,
                      max_disp: Optional[int] = None, offline: bool = False, device: str = "cpu"):
    """The backend ``depthapp export`` exports: no parameter values of its own, so its
    parameters are the backend's defaults for ``weights``."""
    from ..backends import create_backend

    options: dict = {"device": device}
    if weights:
        options["weights"] = weights
    if max_disp:
        options["max_disp"] = max_disp
    if offline:
        options["offline"] = True
    return create_backend(backend_name, **options)


def export_backend(backend_name: str, weights: Optional[str], fmt: str, height: int, width: int,
                   out: str | os.PathLike, dynamic: bool = False, fp16: bool = False,
                   opset: int = 18, overwrite: bool = False, max_disp: Optional[int] = None,
                   offline: bool = False, log: Callable[[str], None] = print,
                   device: str = "cpu", progress: Optional[ProgressCallback] = None) -> ExportReport:
    """Export ``backend_name`` and verify the export on the real sample; see the module doc.

    ``log`` gets the one-line description of the export; ``progress`` a
    :class:`~depthapp.jobs.Progress` as each stage (loading, exporting, verifying) begins."""
    import torch

    from ..backends import get_backend_class, list_backends

    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if height < 16 or width < 16:
        raise UsageError(f"--height/--width must be at least 16, got {height}x{width}")
    cls = get_backend_class(backend_name)
    if not cls.can_export():
        why = {"classical": "a classical method that runs inside depthapp",
               "exported model": "already an exported model"}.get(cls.kind_label(),
                                                                   "not exportable yet")
        exportable = [info.name for info in list_backends() if info.available and info.cls.can_export()]
        raise UsageError(f"backend {backend_name} cannot be exported: it is {why}"
                         f" (exportable: {', '.join(exportable)})")
    refusal = cls.export_refusals.get(fmt)
    if refusal:
        raise UsageError(f"backend {backend_name} cannot be exported to {fmt}: {refusal}")
    if fp16 and fmt != "onnx":
        raise UsageError("--fp16 is supported for --format onnx only")
    if dynamic and fmt != "onnx":
        raise UsageError("--dynamic is supported for --format onnx only (torchscript and pt2 "
                         "exports are traced at --height x --width)")
    if device != "cpu" and fmt == "onnx":
        raise UsageError("--device is for torchscript and pt2 (their graphs keep the device they "
                         "were traced on); an ONNX graph runs anywhere: choose the provider with "
                         "`depthapp run --backend onnx --provider cuda`")
    out = check_writable(out, overwrite)
    shares = dict(EXPORT_STAGE_SHARES[fmt])
    if dynamic:  # both runs again at the second size
        shares[VERIFYING_SECOND_SIZE] = shares[VERIFYING_TORCH] + shares[VERIFYING_EXPORT]
    stages = StageProgress(progress, shares) if progress else None
    stage = stages.start if stages else (lambda name: None)
    stage(LOADING)
    backend = backend_to_export(backend_name, weights, max_disp, offline, device)
    spec: ExportSpec = backend.export_spec(height, width)
    if dynamic and not spec.dynamic_size:
        raise UsageError(f"backend {backend_name} exports for one image size only (its graph "
                         f"fixes the size); drop --dynamic and give the size with --height/--width")
    spec.module.eval()
    inputs, _ = example_inputs(spec, height, width)
    padded_h, padded_w = inputs[0].shape[-2:]
    log(f"exporting {backend_name} ({spec.weights_id or 'weights given'}) as {fmt} for "
        f"{width}x{height} (padded to {padded_w}x{padded_h}{', dynamic' if dynamic else ''})")
    metadata = metadata_of(spec, height, width, dynamic, fp16, fmt)
    metadata["depthapp.device"] = "cpu" if fmt == "onnx" else device
    tolerance = FP32_TOLERANCE if not fp16 else float(spec.extra.get("fp16_tolerance", 1.0))
    with atomic_path(out, overwrite) as tmp, _exporter_noise_filtered():
        stage(EXPORTING)
        if fmt == "onnx":
            _export_onnx(spec, inputs, tmp, opset, dynamic, metadata)
            if fp16:
                _convert_fp16(tmp)
        elif fmt == "torchscript":
            with torch.inference_mode():
                traced = torch.jit.trace(spec.module,
                                         tuple(torch.from_numpy(x).to(device) for x in inputs),
                                         check_trace=False)
            torch.jit.save(traced, str(tmp), _extra_files={"depthapp.json": json.dumps(metadata)})
        else:
            program = torch.export.export(spec.module,
                                          tuple(torch.from_numpy(x).to(device) for x in inputs))
            torch.export.save(program, str(tmp), extra_files={"depthapp.json": json.dumps(metadata)})
        difference, torch_seconds, exported_seconds = _verify(tmp, out, fmt, spec, height, width,
                                                              tolerance, device, stage)
        if dynamic:
            # A dynamic graph must also hold at another size: exporters can silently
            # specialise a dimension to the example's.
            multiple = spec.preprocessing.pad_multiple
            other_h, other_w = padded_h + multiple, padded_w + 2 * multiple
            stage(VERIFYING_SECOND_SIZE)
            other_difference, _, _ = _verify(tmp, out, fmt, spec, other_h, other_w, tolerance,
                                             device)
            difference = max(difference, other_difference)
    nodes = _count_nodes(out) if fmt == "onnx" else None
    if stages:
        stages.complete()
    return ExportReport(Path(out), fmt, difference, tolerance, torch_seconds, exported_seconds,
                        nodes, metadata)


def _convert_fp16(path: Path) -> None:
    try:
        from onnxconverter_common import float16
    except ImportError:
        raise UsageError("--fp16 needs onnxconverter-common (pip install onnxconverter-common)") from None
    import onnx

    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    # The exporter's float32 value_info would survive the conversion and contradict the casts
    # it inserts (PSMNet: "Type (tensor(float)) of output arg ... does not match float16");
    # onnxruntime infers the types again.
    del model.graph.value_info[:]
    model = float16.convert_float_to_float16(model, keep_io_types=True)
    del model.metadata_props[:]
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


def read_onnx_metadata(path: str | os.PathLike) -> dict[str, str]:
    import onnx

    from ..errors import InputError

    if not Path(path).is_file():
        raise InputError(f"{path}: no such model file" if not Path(path).exists() else f"{path}: not a regular file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:
        first = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        raise InputError(f"{path}: not a readable ONNX model ({first})") from None
    return check_metadata({p.key: p.value for p in model.metadata_props}, str(path))


_METADATA_INTEGERS = {"depthapp.pad_multiple": (1, 1024), "depthapp.min_padded_size": (0, 100_000),
                      "depthapp.height": (1, 100_000), "depthapp.width": (1, 100_000),
                      "depthapp.padded_height": (1, 100_000), "depthapp.padded_width": (1, 100_000)}


def check_metadata(meta: dict[str, str], source: str) -> dict[str, str]:
    """The ``depthapp.*`` metadata of an export, every value checked before a backend uses it
    (an InputError naming the file, the key and the value otherwise). Files without depthapp
    metadata pass through: the caller says they are not exports."""
    import math

    from ..errors import InputError
    from ..limits import MAX_DISPARITY_LEVELS

    if "depthapp.input_kind" not in meta:
        return meta

    def bad(key: str, why: str) -> InputError:
        value = meta.get(key)
        shown = value if value is None or len(value) <= 40 else value[:37] + "..."
        return InputError(f"{source}: metadata {key} = {shown!r} {why}")

    def integer(key: str, low: int, high: int, allowed: tuple[str, ...] = ()) -> None:
        value = meta.get(key)
        if value is None or value in allowed:
            return
        if not (value.isascii() and value.isdigit() and len(value) <= 9 and low <= int(value) <= high):
            raise bad(key, f"is not a whole number in {low}..{high}")

    def json_value(key: str, default: str):
        text = meta.get(key) or default
        if len(text) > 65536:
            raise bad(key, "is too long")
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            raise bad(key, "is not valid JSON") from None

    for key in ("depthapp.input_names", "depthapp.pad_mode", "depthapp.dynamic"):
        if not meta.get(key):
            raise bad(key, "is missing")
    if meta["depthapp.dynamic"] not in ("true", "false"):
        raise bad("depthapp.dynamic", "is not true or false")
    integer("depthapp.max_disp", 1, MAX_DISPARITY_LEVELS, allowed=("",))
    for key, (low, high) in _METADATA_INTEGERS.items():
        integer(key, low, high, allowed=("dynamic",) if key.startswith("depthapp.padded_") else ())
    if meta["depthapp.dynamic"] == "true" and "depthapp.pad_multiple" not in meta:
        raise bad("depthapp.pad_multiple", "is missing")
    if meta["depthapp.dynamic"] == "false":
        for key in ("depthapp.height", "depthapp.width", "depthapp.padded_height", "depthapp.padded_width"):
            if not (meta.get(key) or "").isdigit():
                raise bad(key, "is missing")
    # Inputs standardised over each image (MC-CNN's grey input) have no fixed mean or std: [].
    counts = (0, 1, 3) if meta["depthapp.input_kind"] == "grey_standardised" else (1, 3)
    for key in ("depthapp.mean", "depthapp.std"):
        values = json_value(key, "[]")
        if (not isinstance(values, list) or len(values) not in counts
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                           and math.isfinite(v) and abs(v) < 1e6 for v in values)):
            raise bad(key, f"is not a list of {' or '.join(map(str, counts))} finite numbers")
        if key == "depthapp.std" and not all(v > 0 for v in values):
            raise bad(key, "holds a standard deviation that is not positive")
    if len(json_value("depthapp.mean", "[]")) != len(json_value("depthapp.std", "[]")):
        raise bad("depthapp.std", "does not have one value per channel of depthapp.mean")
    if not isinstance(json_value("depthapp.extra", "{}"), dict):
        raise bad("depthapp.extra", "is not a JSON object")
    return meta
