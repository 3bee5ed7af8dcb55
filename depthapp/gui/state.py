"""The viewer's model: everything the viewer shows and every action it can take, without Qt.

Widgets subscribe to the :class:`~depthapp.events.Signal` attributes of a
:class:`ViewerState` and render; user actions call its methods. Tests drive it directly.

Computation goes through :func:`depthapp.pipeline.run_pipeline`. A compute call builds one
:class:`ComputeRequest` per slot (``"primary"`` and, in compare mode, ``"compare"``) and hands it
to an *executor*: the default runs it at once in the calling thread; the window installs one
that runs it in a ``QThread`` and delivers the outcome back on the GUI thread. Results of a
cancelled or superseded request are discarded on delivery, so a late worker never overwrites
newer results.
"""

from __future__ import annotations

import copy
import itertools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Protocol

import numpy as np

from ..backends import get_backend_class
from ..calibration.model import StereoCalibration
from ..data import StereoPair
from ..errors import CalibrationError, Cancelled, DepthAppError, InputError
from ..geometry import disparity_to_depth, disparity_to_points, pixel_to_point
from ..jobs import CancelToken, Progress, format_seconds
from ..pipeline import PipelineOutput, choose_max_disp, fit_calibration, prepare_pair
from ..evaluation.metrics import Metrics, score
from ..events import Signal
from ..sources import FolderSequence, PairSequence, VideoSequence, load_pair_files
from .open_plan import load_calibration_file

PRIMARY, COMPARE = "primary", "compare"
SLOTS = (PRIMARY, COMPARE)
RANGE_MODES = ("auto", "full", "gt", "manual")
DEFAULT_BACKEND = "opencv-sgbm"


def is_fast_backend(name: str) -> bool:
    """Whether the backend declares itself quick enough to recompute while a slider moves."""
    return bool(get_backend_class(name).interactive)


# --------------------------------------------------------------------------- metrics

# --------------------------------------------------------------------------- compute

def describe_stage(progress: Progress) -> str:
    """The status-bar text of a backend stage: its name, with the share done and the ETA once
    the backend's stage shares give one."""
    if progress.fraction is None or progress.eta is None:
        return progress.stage
    return f"{progress.stage} ({progress.fraction * 100:.0f} %, ETA {format_seconds(progress.eta)})"


def _rectification_warnings(pair: StereoPair) -> list[str]:
    """A warning when a pair that claims to be rectified is not; checked once per pair (the
    feature matching takes ~0.4 s, too slow to repeat on every recompute)."""
    cached = getattr(pair, "_rectification_warnings", None)
    if cached is None:
        from ..calibration.rectify import check_rectified

        warning = check_rectified(pair)
        cached = [f"warning: {warning}"] if warning else []
        pair._rectification_warnings = cached
    return list(cached)


@dataclass
class ComputeRequest:
    """Everything one backend run needs; immutable once submitted, safe to run in a thread."""

    id: int
    slot: str
    pair: StereoPair
    backend: str
    params: dict[str, Any]  # the user's values (ViewerState.parameter_overrides)
    device: str = "auto"
    weights: Optional[str] = None
    max_disp: Optional[int] = None
    model_file: Optional[str] = None
    cancel: CancelToken = field(default_factory=CancelToken)

    def create_backend(self, max_disp: Optional[int]):
        """The backend of this request: the user's parameter values only (``params``); the
        backend answers the rest for its weights."""
        from ..backends import create_backend

        options: dict[str, Any] = dict(self.params)
        if self.weights:
            options["weights"] = self.weights
        if self.model_file:
            options["model"] = self.model_file
        return create_backend(self.backend, max_disp=max_disp, device=self.device, **options)

    def run(self, on_stage: Optional[Callable[[str], None]] = None) -> "ComputeOutcome":
        """Run the pipeline (blocking). Raises DepthAppError subclasses, Cancelled on cancel."""
        started = time.perf_counter()
        self.cancel.raise_if_cancelled()
        if on_stage:
            on_stage("prepare pair")
        pair, notes = prepare_pair(self.pair)
        if not notes or not notes[0].startswith("rectified"):
            notes = _rectification_warnings(self.pair) + notes
        max_disp, origin = choose_max_disp(self.backend, self.max_disp, self.weights,
                                           pair.calibration)
        if on_stage:
            on_stage(f"load {self.backend}")
        backend = self.create_backend(max_disp)
        self.cancel.raise_if_cancelled()
        from ..pipeline import run_pipeline

        report = (lambda progress: on_stage(describe_stage(progress))) if on_stage else None
        output = run_pipeline(pair, backend, cancel=self.cancel, prepared=True, progress=report)
        self.cancel.raise_if_cancelled()
        output.notes[:0] = notes
        return ComputeOutcome(output=output, backend=self.backend, params=dict(backend.params),
                              max_disp=backend.max_disp, max_disp_origin=origin,
                              device=backend.device, elapsed=time.perf_counter() - started,
                              request_id=self.id)


@dataclass
class ComputeOutcome:
    """One finished run: the pipeline output plus how it was produced."""

    output: PipelineOutput
    backend: str
    params: dict[str, Any]
    max_disp: int
    max_disp_origin: str = ""
    device: str = "cpu"
    elapsed: float = 0.0
    request_id: int = -1
    metrics: Optional[Metrics] = None

    @property
    def disparity(self) -> np.ndarray:
        return self.output.result.disparity

    @property
    def timings(self) -> dict[str, float]:
        return self.output.result.timings


class Executor(Protocol):
    def submit(self, request: ComputeRequest, on_stage: Callable[[ComputeRequest, str], None],
               on_done: Callable[[ComputeRequest, Optional[ComputeOutcome],
                                  Optional[BaseException]], None]) -> None: ...


class InlineExecutor:
    """Runs requests immediately in the calling thread (tests, scripts, screenshots)."""

    def submit(self, request, on_stage, on_done) -> None:
        try:
            outcome = request.run(lambda stage: on_stage(request, stage))
        except Exception as error:  # delivered to the model, which decides what it means
            on_done(request, None, error)
            return
        on_done(request, outcome, None)


# --------------------------------------------------------------------------- readout

@dataclass(frozen=True)
class Readout:
    """What the viewer knows about one pixel ``(x, y)`` of the (rectified) left image."""

    x: int
    y: int
    rgb: Optional[tuple[int, int, int]] = None
    disparity: Optional[float] = None
    depth: Optional[float] = None
    point: Optional[tuple[float, float, float]] = None
    gt: Optional[float] = None
    error: Optional[float] = None
    compare_disparity: Optional[float] = None
    compare_depth: Optional[float] = None

    def text(self) -> str:
        parts = [f"x {self.x}  y {self.y}"]
        if self.disparity is not None:
            parts.append(f"d {self.disparity:.2f} px" if np.isfinite(self.disparity) else "d invalid")
        if self.depth is not None:
            parts.append(f"Z {self.depth:.3f} m")
        if self.point is not None:
            parts.append("XYZ ({:.3f}, {:.3f}, {:.3f}) m".format(*self.point))
        if self.gt is not None:
            parts.append(f"GT {self.gt:.2f} px" if np.isfinite(self.gt) else "GT none")
        if self.error is not None:
            parts.append(f"err {self.error:.2f} px")
        if self.compare_disparity is not None:
            text = (f"B: d {self.compare_disparity:.2f} px" if np.isfinite(self.compare_disparity)
                    else "B: d invalid")
            if self.compare_depth is not None:
                text += f" Z {self.compare_depth:.3f} m"
            parts.append(text)
        if self.rgb is not None:
            parts.append("RGB ({}, {}, {})".format(*self.rgb))
        return "   ".join(parts)


# --------------------------------------------------------------------------- display

@dataclass
class DisplaySettings:
    """How maps are coloured: ``range_mode`` auto (1-99 percentile), full (0..max_disp), gt
    (the GT's range) or manual (``vmin``..``vmax``)."""

    colormap: str = "turbo"
    range_mode: str = "auto"
    vmin: float = 0.0
    vmax: float = 64.0
    show_invalid: bool = True
    bad_threshold: float = 2.0
    max_error: float = 8.0


def depth_to_png_mm(depth: np.ndarray) -> np.ndarray:
    """Depth in metres to 16-bit millimetres, 0 = invalid (the RealSense/TUM convention)."""
    depth = np.asarray(depth, dtype=np.float64)
    valid = np.isfinite(depth) & (depth > 0)
    millimetres = np.zeros(depth.shape, dtype=np.uint16)
    millimetres[valid] = np.clip(np.round(depth[valid] * 1000.0), 1, 65535).astype(np.uint16)
    return millimetres


# --------------------------------------------------------------------------- the model

class ViewerState:
    """The viewer's state and actions. Signals (handler arguments in brackets):

    pair_changed [pair], calibration_changed [calibration], backend_changed [name],
    parameters_changed [name, params], device_changed [device], weights_changed [name, weights],
    model_file_changed [name, path],
    max_disp_changed [value], compare_changed [name], display_changed [], sequence_changed
    [index, count], busy_changed [busy], stage [slot, stage, elapsed], result_changed [slot],
    results_cleared [], metrics_changed [], cancelled [], error [title, message],
    message [text].
    """

    def __init__(self, executor: Optional[Executor] = None):
        self.executor: Executor = executor or InlineExecutor()
        self.pair: Optional[StereoPair] = None
        self.calibration: Optional[StereoCalibration] = None
        self.sequence: Optional[PairSequence] = None
        self.index = 0
        self.backend = DEFAULT_BACKEND
        self.params_by_backend: dict[str, dict[str, Any]] = {}
        self.weights_by_backend: dict[str, Optional[str]] = {}
        self.model_files: dict[str, str] = {}
        self.device = "auto"
        self.max_disp: Optional[int] = None
        self.compare_backend: Optional[str] = None
        self.display = DisplaySettings()
        self.auto_recompute = True
        self.outputs: dict[str, ComputeOutcome] = {}
        self.running: dict[int, ComputeRequest] = {}
        self.started_at: dict[int, float] = {}
        self._ids = itertools.count(1)
        names = ("pair_changed calibration_changed backend_changed parameters_changed "
                 "device_changed weights_changed model_file_changed max_disp_changed compare_changed "
                 "display_changed sequence_changed busy_changed stage result_changed "
                 "results_cleared metrics_changed cancelled error message").split()
        for name in names:
            setattr(self, name, Signal(name))

    # ------------------------------------------------------------------ inputs
    def set_pair(self, pair: StereoPair, keep_sequence: bool = False) -> None:
        """Show ``pair``. Without its own calibration it gets the current one if that fits."""
        if not keep_sequence:
            self._close_sequence()
        own_calibration = pair.calibration is not None
        if not own_calibration and self.calibration is not None:
            pair.calibration = self._fitting_calibration(self.calibration, pair)
        self.cancel(silent=True)
        self.pair = pair
        self._clear_results()
        if own_calibration:
            self.calibration = pair.calibration
            self.calibration_changed.emit(self.calibration)
        self.pair_changed.emit(pair)

    def _fitting_calibration(self, calibration: StereoCalibration,
                             pair: StereoPair) -> Optional[StereoCalibration]:
        if not calibration.rectified:
            if calibration.image_size == pair.size or calibration.extra.get("image_size_estimated"):
                return calibration
        else:
            try:
                fit_calibration(calibration, pair.width, pair.height)
                return calibration
            except CalibrationError:
                pass
        self.message.emit(f"calibration {calibration.source} is for {calibration.image_size[0]}x"
                          f"{calibration.image_size[1]} images, not {pair.width}x{pair.height}: "
                          "depth is off for this pair")
        return None

    def open_sample(self) -> None:
        from ..sample import load_sample

        self.set_pair(load_sample())

    def open_files(self, left: str | os.PathLike, right: Optional[str | os.PathLike] = None) -> None:
        """Two image files, or one side-by-side image."""
        self.set_pair(load_pair_files(left, right))

    def open_folder(self, folder: str | os.PathLike) -> None:
        self.open_sequence(FolderSequence(folder))

    def open_video(self, left: str | os.PathLike, right: Optional[str | os.PathLike] = None) -> None:
        self.open_sequence(VideoSequence(left, right))

    def open_bag(self, path: str | os.PathLike, left_topic: Optional[str] = None,
                 right_topic: Optional[str] = None) -> None:
        """A ROS bag's stamp-matched pairs, with the calibration of its camera_info topics."""
        from ..robotics.bag_dataset import BagSequence

        self.open_sequence(BagSequence(path, left_topic, right_topic))

    def open_sequence(self, sequence: PairSequence, index: int = 0) -> None:
        if len(sequence) == 0:
            raise InputError(f"{sequence.description}: no pairs")
        pair = sequence.load(index)  # fails before anything changes if the first pair is bad
        self._close_sequence()
        self.sequence, self.index = sequence, index
        self.set_pair(pair, keep_sequence=True)
        self.sequence_changed.emit(self.index, len(sequence))

    def _close_sequence(self) -> None:
        if self.sequence is not None:
            self.sequence.close()
            self.sequence = None
            self.index = 0
            self.sequence_changed.emit(0, 0)

    def go_to(self, index: int) -> None:
        if self.sequence is None:
            raise InputError("no folder or video is open (use File > Open folder or Open video)")
        index = max(0, min(index, len(self.sequence) - 1))
        if index == self.index and self.pair is not None:
            return
        pair = self.sequence.load(index)
        self.index = index
        self.set_pair(pair, keep_sequence=True)
        self.sequence_changed.emit(self.index, len(self.sequence))

    def next_pair(self) -> None:
        self.go_to(self.index + 1)

    def previous_pair(self) -> None:
        self.go_to(self.index - 1)

    def sequence_label(self) -> str:
        if self.sequence is None:
            return ""
        return self.sequence.label(self.index)

    def load_ground_truth(self, path: str | os.PathLike) -> None:
        from ..io.disparity import read_disparity

        self._require_pair()
        gt = read_disparity(path)
        if gt.shape != self.pair.left.shape[:2]:
            raise InputError(f"{path}: ground truth is {gt.shape[1]}x{gt.shape[0]}, the pair is "
                             f"{self.pair.width}x{self.pair.height}")
        self.pair.gt_disparity = gt
        self._rescore()
        self.pair_changed.emit(self.pair)

    # ------------------------------------------------------------------ calibration
    def open_calibration(self, path: str | os.PathLike, units: Optional[str] = None) -> None:
        """Any calibration file the CLI reads; ``units`` (mm, cm, m) for OpenCV files whose
        T does not say."""
        size = self.pair.size if self.pair is not None else None
        self.set_calibration(load_calibration_file(path, units=units, image_size=size))

    def set_manual_calibration(self, focal: float, baseline: float, doffs: float = 0.0,
                               cx: Optional[float] = None, cy: Optional[float] = None) -> None:
        """A rectified calibration from hand-entered numbers: focal (px), baseline (m), doffs
        (px, ``cx_right - cx_left``); the principal point defaults to the image centre."""
        self._require_pair()
        width, height = self.pair.size
        cx = (width - 1) / 2.0 if cx is None else cx
        cy = (height - 1) / 2.0 if cy is None else cy
        calibration = StereoCalibration.from_rectified(
            focal, baseline, cx, cy, (width, height), cx_right=cx + doffs, source="manual entry")
        self.set_calibration(calibration)

    def set_calibration(self, calibration: Optional[StereoCalibration]) -> None:
        """Use ``calibration`` for this and later pairs. Rectified: depth and points follow at
        once from the existing disparity; raw (needs rectification): results are recomputed."""
        if calibration is not None and self.pair is not None:
            if calibration.rectified:
                fit_calibration(calibration, self.pair.width, self.pair.height)  # raises if not
            elif (calibration.image_size != self.pair.size
                  and not calibration.extra.get("image_size_estimated")):
                raise CalibrationError(
                    f"{calibration.source}: raw calibration is for {calibration.image_size[0]}x"
                    f"{calibration.image_size[1]} images, the pair is {self.pair.width}x{self.pair.height}")
        previous = self.pair.calibration if self.pair is not None else None
        self.calibration = calibration
        if self.pair is not None:
            self.pair.calibration = calibration
        self.calibration_changed.emit(calibration)
        if self.pair is None:
            return
        needs_rectification = ((calibration is not None and not calibration.rectified)
                               or (previous is not None and not previous.rectified))
        if needs_rectification:
            self.cancel(silent=True)
            self._clear_results()
        else:
            self._refresh_geometry()

    def _refresh_geometry(self) -> None:
        for slot, outcome in self.outputs.items():
            output = outcome.output
            pair, _ = prepare_pair(StereoPair(output.pair.left, output.pair.right,
                                              self.pair.calibration, output.pair.name,
                                              output.pair.gt_disparity))
            output.pair = pair
            if pair.calibration is None:
                output.depth = output.cloud = None
            else:
                disparity = output.result.disparity
                output.depth = disparity_to_depth(disparity, pair.calibration)
                output.cloud = disparity_to_points(disparity, pair.calibration, pair.left)
            self.result_changed.emit(slot)

    # ------------------------------------------------------------------ backend & parameters
    def backend_class(self, name: Optional[str] = None):
        return get_backend_class(name or self.backend)

    def set_backend(self, name: str) -> None:
        cls = get_backend_class(name)
        cls.check_available()
        self.backend = name
        self.backend_changed.emit(name)
        self.parameters_changed.emit(name, self.parameters(name))

    def parameters(self, name: Optional[str] = None) -> dict[str, Any]:
        """Current values of every declared parameter of backend ``name`` (for display): the
        backend's defaults for the chosen weights under the user's values."""
        name = name or self.backend
        cls = get_backend_class(name)
        try:
            values = cls.default_params(self.weights(name))
        except DepthAppError:  # weights that do not load: the run will say why
            values = cls.declared_defaults()
        values.update(self.parameter_overrides(name))
        return values

    def parameter_overrides(self, name: Optional[str] = None) -> dict[str, Any]:
        """The parameters the user set for backend ``name`` (what a run passes: the backend
        answers every other default itself, e.g. from its weights or model file)."""
        return dict(self.params_by_backend.get(name or self.backend, {}))

    def set_parameter(self, name: str, value: Any, backend: Optional[str] = None) -> None:
        backend = backend or self.backend
        declared = {p.name: p for p in get_backend_class(backend).parameters}
        if name not in declared:
            raise InputError(f"backend {backend} has no parameter {name}")
        value = declared[name].validate(value)
        self.params_by_backend.setdefault(backend, {})[name] = value
        self.parameters_changed.emit(backend, self.parameters(backend))

    def reset_parameters(self, backend: Optional[str] = None) -> None:
        backend = backend or self.backend
        self.params_by_backend.pop(backend, None)
        self.parameters_changed.emit(backend, self.parameters(backend))

    def apply_preset(self, preset: str, backend: Optional[str] = None) -> None:
        backend = backend or self.backend
        cls = get_backend_class(backend)
        if preset not in cls.presets:
            raise InputError(f"backend {backend} has no preset {preset!r}")
        self.params_by_backend[backend] = {}
        for name, value in cls.presets[preset].items():
            self.params_by_backend[backend][name] = value
        self.parameters_changed.emit(backend, self.parameters(backend))

    def set_device(self, device: str) -> None:
        self.device = device
        self.device_changed.emit(device)

    def set_weights(self, weights: Optional[str], backend: Optional[str] = None) -> None:
        backend = backend or self.backend
        self.weights_by_backend[backend] = weights or None
        self.weights_changed.emit(backend, weights or None)

    def weights(self, backend: Optional[str] = None) -> Optional[str]:
        return self.weights_by_backend.get(backend or self.backend)

    def needs_model_file(self, backend: Optional[str] = None) -> bool:
        """Whether ``backend`` runs a model file (its declaration) and none is chosen yet."""
        name = backend or self.backend
        return bool(get_backend_class(name).model_file_types) and not self.model_files.get(name)

    def model_file(self, backend: Optional[str] = None) -> Optional[str]:
        """The model file chosen for ``backend`` (backends that declare ``model_file_types``)."""
        return self.model_files.get(backend or self.backend)

    def set_model_file(self, path: str | os.PathLike, backend: Optional[str] = None) -> None:
        """Run ``backend`` with the model file ``path`` (what the file dialog answered)."""
        backend = backend or self.backend
        types = get_backend_class(backend).model_file_types
        if not types:
            raise InputError(f"backend {backend} takes no model file")
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        self.model_files[backend] = str(path)
        self.model_file_changed.emit(backend, str(path))

    def set_max_disp(self, value: Optional[int]) -> None:
        self.max_disp = int(value) if value else None
        self.max_disp_changed.emit(self.max_disp)

    def set_compare_backend(self, name: Optional[str]) -> None:
        if name:
            get_backend_class(name).check_available()
        self.compare_backend = name or None
        if not name and COMPARE in self.outputs:
            del self.outputs[COMPARE]
        self.compare_changed.emit(self.compare_backend)

    def set_auto_recompute(self, enabled: bool) -> None:
        self.auto_recompute = bool(enabled)

    def wants_auto_compute(self) -> bool:
        """Whether a change should recompute by itself: auto on, a pair open, fast backends."""
        if not self.auto_recompute or self.pair is None:
            return False
        names = [self.backend] + ([self.compare_backend] if self.compare_backend else [])
        return all(is_fast_backend(name) for name in names)

    # ------------------------------------------------------------------ display
    def set_display(self, **changes: Any) -> None:
        for key, value in changes.items():
            if not hasattr(self.display, key):
                raise AttributeError(f"no display setting {key}")
            if key == "range_mode" and value not in RANGE_MODES:
                raise InputError(f"range mode must be one of {', '.join(RANGE_MODES)}")
            if key == "colormap":
                from ..visualize import COLORMAPS

                if value not in COLORMAPS:
                    raise InputError(f"unknown colour map {value}")
            setattr(self.display, key, value)
        if "bad_threshold" in changes:
            self._rescore()
        self.display_changed.emit()

    def disparity_range(self) -> tuple[float, float]:
        """The range every disparity view uses (shared, so compare views are comparable)."""
        from ..visualize import value_range

        mode = self.display.range_mode
        primary = self.outputs.get(PRIMARY)
        gt = self.pair.gt_disparity if self.pair is not None else None
        if mode == "manual":
            return float(self.display.vmin), float(max(self.display.vmax, self.display.vmin + 1e-3))
        if mode == "gt" and gt is not None and np.isfinite(gt).any():
            return value_range(gt, 0.0)
        if mode == "full" and primary is not None:
            return 0.0, float(primary.max_disp)
        if primary is not None:
            return value_range(primary.disparity)
        if gt is not None:
            return value_range(gt)
        return 0.0, 64.0

    # ------------------------------------------------------------------ compute
    @property
    def busy(self) -> bool:
        return bool(self.running)

    def _require_pair(self) -> None:
        if self.pair is None:
            raise InputError("no stereo pair is open (File > Open pair, or Open sample)")

    def make_request(self, slot: str = PRIMARY) -> ComputeRequest:
        self._require_pair()
        backend = self.backend if slot == PRIMARY else self.compare_backend
        if backend is None:
            raise InputError("no compare backend is chosen")
        if self.needs_model_file(backend):
            types = " or ".join(get_backend_class(backend).model_file_types)
            raise InputError(f"backend {backend} runs a model file ({types}): choose one "
                             "(Backend > model file > Choose...)")
        # A shallow snapshot: the GUI thread may swap the calibration or GT while a worker runs.
        return ComputeRequest(id=next(self._ids), slot=slot, pair=copy.copy(self.pair), backend=backend,
                              params=self.parameter_overrides(backend), device=self.device,
                              weights=self.weights(backend), max_disp=self.max_disp,
                              model_file=self.model_file(backend))

    def compute(self) -> list[ComputeRequest]:
        """Start (or restart) the computation of every active slot; returns the requests."""
        self._require_pair()
        self.cancel(silent=True)
        requests = [self.make_request(PRIMARY)]
        if self.compare_backend:
            requests.append(self.make_request(COMPARE))
        for request in requests:
            self.running[request.id] = request
            self.started_at[request.id] = time.perf_counter()
        self.busy_changed.emit(True)
        for request in requests:
            if request.id in self.running:
                self.executor.submit(request, self._on_stage, self._on_done)
        return requests

    def cancel(self, silent: bool = False) -> bool:
        """Cancel every running request; their results will be discarded. True if any ran."""
        if not self.running:
            return False
        for request in self.running.values():
            request.cancel.cancel()
        self.running.clear()
        self.started_at.clear()
        self.busy_changed.emit(False)
        if not silent:
            self.cancelled.emit()
            self.message.emit("computation cancelled")
        return True

    def _on_stage(self, request: ComputeRequest, stage: str) -> None:
        if request.id in self.running:
            elapsed = time.perf_counter() - self.started_at.get(request.id, time.perf_counter())
            self.stage.emit(request.slot, stage, elapsed)

    def _on_done(self, request: ComputeRequest, outcome: Optional[ComputeOutcome],
                 error: Optional[BaseException]) -> None:
        if request.id not in self.running:
            return  # cancelled or superseded: its result is discarded
        del self.running[request.id]
        self.started_at.pop(request.id, None)
        if error is not None:
            for other in self.running.values():
                other.cancel.cancel()
            self.running.clear()
            self.busy_changed.emit(False)
            if isinstance(error, Cancelled):
                self.cancelled.emit()
                return
            if isinstance(error, DepthAppError):
                self.error.emit(f"{request.backend} failed", str(error))
                return
            self.error.emit(f"{request.backend} failed unexpectedly",
                            f"{type(error).__name__}: {error}")
            return
        assert outcome is not None
        gt = outcome.output.pair.gt_disparity
        if gt is not None and gt.shape == outcome.disparity.shape:
            outcome.metrics = score(outcome.disparity, gt, self.display.bad_threshold)
        self.outputs[request.slot] = outcome
        if not self.running:
            self.busy_changed.emit(False)
        self.result_changed.emit(request.slot)
        for note in outcome.output.notes:
            self.message.emit(note)

    def present(self, output: PipelineOutput, backend: str, elapsed: float = 0.0,
                slot: str = PRIMARY) -> None:
        """Show a result computed elsewhere (the Live camera loop) as if the viewer made it."""
        if self.pair is None or self.pair is not output.pair:
            self.pair = output.pair
            self.outputs.clear()  # a compare result of the previous frame would mislead
            self.pair_changed.emit(output.pair)
        outcome = ComputeOutcome(output=output, backend=backend,
                                 params=dict(output.result.parameters),
                                 max_disp=output.result.max_disp or 0, device=output.result.device,
                                 elapsed=elapsed)
        if output.pair.gt_disparity is not None:
            outcome.metrics = score(outcome.disparity, output.pair.gt_disparity,
                                    self.display.bad_threshold)
        self.outputs[slot] = outcome
        self.result_changed.emit(slot)

    def _clear_results(self) -> None:
        if self.outputs:
            self.outputs.clear()
        self.results_cleared.emit()

    def _rescore(self) -> None:
        for outcome in self.outputs.values():
            gt = outcome.output.pair.gt_disparity
            if gt is None and self.pair is not None:
                gt = self.pair.gt_disparity
            if gt is not None and gt.shape == outcome.disparity.shape:
                outcome.metrics = score(outcome.disparity, gt, self.display.bad_threshold)
        self.metrics_changed.emit()

    # ------------------------------------------------------------------ reading pixels
    def readout(self, x: int, y: int) -> Optional[Readout]:
        """The hover readout of pixel ``(x, y)`` (column, row), or None outside the image."""
        primary = self.outputs.get(PRIMARY)
        pair = primary.output.pair if primary is not None else self.pair
        if pair is None or not (0 <= x < pair.width and 0 <= y < pair.height):
            return None
        rgb = tuple(int(v) for v in pair.left[y, x, :3])
        values: dict[str, Any] = {"x": x, "y": y, "rgb": rgb}
        gt = pair.gt_disparity if pair.gt_disparity is not None else (
            self.pair.gt_disparity if self.pair is not None and self.pair.size == pair.size else None)
        if gt is not None:
            values["gt"] = float(gt[y, x])
        if primary is not None:
            d = float(primary.disparity[y, x])
            values["disparity"] = d
            if pair.calibration is not None and np.isfinite(d):
                point = pixel_to_point(x, y, d, pair.calibration)
                if point is not None:
                    values["point"] = tuple(float(v) for v in point)
                    values["depth"] = float(point[2])
            if gt is not None and np.isfinite(d) and np.isfinite(gt[y, x]):
                values["error"] = abs(d - float(gt[y, x]))
        compare = self.outputs.get(COMPARE)
        if compare is not None:
            d = float(compare.disparity[y, x])
            values["compare_disparity"] = d
            calibration = compare.output.pair.calibration
            if calibration is not None and np.isfinite(d):
                point = pixel_to_point(x, y, d, calibration)
                if point is not None:
                    values["compare_depth"] = float(point[2])
        return Readout(**values)

    # ------------------------------------------------------------------ saving
    def _outcome(self, slot: str) -> ComputeOutcome:
        if slot not in self.outputs:
            raise InputError("nothing computed yet (press Compute first)")
        return self.outputs[slot]

    def save_disparity(self, path: str | os.PathLike, slot: str = PRIMARY,
                       overwrite: bool = False) -> Path:
        """``.pfm`` (float, +inf invalid), ``.png`` (KITTI 16-bit, d*256) or ``.npy``."""
        from ..io import write_disparity

        return write_disparity(path, self._outcome(slot).disparity, overwrite=overwrite)

    def save_depth(self, path: str | os.PathLike, slot: str = PRIMARY,
                   overwrite: bool = False) -> Path:
        """``.pfm`` (metres, +inf invalid), ``.png`` (16-bit millimetres, 0 invalid) or ``.npy``."""
        from ..io import write_image, write_npy, write_pfm

        depth = self._outcome(slot).output.depth
        if depth is None:
            raise InputError("no depth without a calibration (Calibration > Open or Enter by hand)")
        suffix = Path(path).suffix.lower()
        if suffix == ".pfm":
            return write_pfm(path, depth, overwrite=overwrite)
        if suffix == ".png":
            return write_image(path, depth_to_png_mm(depth), overwrite=overwrite)
        if suffix == ".npy":
            return write_npy(path, depth.astype(np.float32), overwrite=overwrite)
        raise InputError(f"{path}: unknown depth format (use .pfm, .png or .npy)")

    def save_cloud(self, path: str | os.PathLike, slot: str = PRIMARY,
                   overwrite: bool = False) -> Path:
        from ..io import write_ply

        cloud = self._outcome(slot).output.cloud
        if cloud is None:
            raise InputError("no point cloud without a calibration (Calibration > Open or Enter by hand)")
        if Path(path).suffix.lower() != ".ply":
            raise InputError(f"{path}: point clouds are saved as .ply")
        return write_ply(path, cloud.points, cloud.colors, overwrite=overwrite)

    # ------------------------------------------------------------------ settings
    def settings_snapshot(self) -> dict[str, Any]:
        """The user's choices as plain data (the window keeps them in QSettings)."""
        return {
            "backend": self.backend,
            "params_by_backend": self.params_by_backend,
            "weights_by_backend": self.weights_by_backend,
            "model_files": self.model_files,
            "device": self.device,
            "max_disp": self.max_disp,
            "compare_backend": self.compare_backend,
            "auto_recompute": self.auto_recompute,
            "display": dict(vars(self.display)),
        }

    def restore_settings(self, data: dict[str, Any]) -> list[str]:
        """Apply a :meth:`settings_snapshot`; stale entries are skipped and reported."""
        problems: list[str] = []
        for backend, params in dict(data.get("params_by_backend") or {}).items():
            try:
                declared = {p.name: p for p in get_backend_class(backend).parameters}
                self.params_by_backend[backend] = {name: declared[name].validate(value)
                                                   for name, value in params.items()
                                                   if name in declared}
            except DepthAppError as error:
                problems.append(str(error))
        self.weights_by_backend.update(dict(data.get("weights_by_backend") or {}))
        for backend, path in dict(data.get("model_files") or {}).items():
            try:
                self.set_model_file(path, backend)
            except DepthAppError as error:
                problems.append(f"model file of {backend}: {error}")
        self.device = data.get("device") or "auto"
        self.max_disp = data.get("max_disp") or None
        self.auto_recompute = bool(data.get("auto_recompute", True))
        for key, value in dict(data.get("display") or {}).items():
            if hasattr(self.display, key):
                setattr(self.display, key, type(getattr(self.display, key))(value))
        for key, setter in (("backend", self.set_backend), ("compare_backend", self.set_compare_backend)):
            name = data.get(key)
            if name:
                try:
                    setter(name)
                except DepthAppError as error:
                    problems.append(str(error))
        return problems
