"""The batch runner behind ``depthapp eval`` and ``depthapp predict``.

One task per image: load the pair, run the backend (or read a saved prediction), score it.
Tasks run in this process, in local worker processes (``workers=N``) or on a Dask distributed
cluster (``scheduler="tcp://host:8786"``); every worker creates its backend once and keeps it
(:func:`worker_backend`). Results come back to this process, which is the only writer:

    OUT/run.json        what this folder evaluates (dataset, backend, weights, parameters)
    OUT/results.jsonl   one line per finished image, appended atomically; the resume log
    OUT/summary.json    the benchmark's numbers (percent; EPE/avg errors in pixels)
    OUT/per_image.csv   every image's numbers
    OUT/report.md       ours beside the published numbers, when given
    OUT/errors/<id>.png the KITTI devkit's log-colour error map (first ``error_maps`` images)

Results are keyed by image id, backend, weights and parameters (and the dataset options): rerun
the same command and finished images are skipped; Ctrl-C (or a :class:`CancelToken`) stops
between images and keeps what finished.

Running on a real Dask cluster::

    # on the scheduler machine
    dask scheduler                                   # listens on tcp://HOST:8786
    # on every worker machine (same Python environment with depthapp installed, the dataset
    # reachable at the same path, e.g. a shared mount; one thread per worker so each GPU/CPU
    # worker runs one backend at a time)
    dask worker tcp://HOST:8786 --nworkers 1 --nthreads 1
    # anywhere
    depthapp eval --dataset kitti2015 --root /shared/kitti2015 --backend psmnet --scheduler tcp://HOST:8786

Outputs are written by the client (the machine running ``depthapp eval``); workers only read
the dataset. For a GPU per worker start one ``dask worker`` per GPU with ``CUDA_VISIBLE_DEVICES``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import platform
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, Union


from ..backends import Backend, create_backend, get_backend_class
from ..errors import Cancelled, InputError, OutputExistsError, UsageError
from ..io import read_disparity, write_disparity, write_image
from ..io.atomic import check_output_folder, remove_stale_temporaries, write_bytes_atomic
from ..jobs import CancelToken, Job, Progress
from . import benchmarks
from .datasets import Sample, StereoDataset, find_prediction

RESULTS_FILE = "results.jsonl"
MANIFEST_FILE = "run.json"
SUMMARY_FILE = "summary.json"
PER_IMAGE_FILE = "per_image.csv"
REPORT_FILE = "report.md"
ERRORS_DIR = "errors"
DERIVED_FILES = (SUMMARY_FILE, PER_IMAGE_FILE, REPORT_FILE)
PREDICTION_FORMATS = ("kitti", "pfm", "npy")
DEFAULT_ERROR_MAPS = 20  # the devkit keeps error images for its first 20 images too


# --------------------------------------------------------------------------------------------
# Backends in workers


@dataclass(frozen=True)
class BackendSpec:
    """Everything a worker needs to create the same backend: a picklable, hashable recipe.

    ``class_path`` (``module:Class``) lets workers create a backend registered at run time
    (:func:`depthapp.backends.register_backend`) that their own registry does not know.
    """

    name: str
    max_disp: Optional[int] = None
    device: str = "auto"
    weights: Optional[str] = None
    params: tuple[tuple[str, Any], ...] = ()
    class_path: Optional[str] = None
    # The user's values the backend is built with; None: build it with ``params``.
    overrides: Optional[tuple[tuple[str, Any], ...]] = None

    @classmethod
    def make(cls, name: str, max_disp: Optional[int] = None, device: str = "auto",
             weights: Optional[str] = None, **params: Any) -> "BackendSpec":
        """``params`` are the user's values. They are validated and completed with the
        backend's defaults for ``weights`` here (as the backend will), so the same configuration
        has the same result key however it was given; workers build the backend from the
        user's values alone (``overrides``), so its defaults are the backend's own answer."""
        from ..params import validate_overrides

        backend_cls = get_backend_class(name)
        declared_names = {parameter.name for parameter in backend_cls.parameters}
        declared = {key: value for key, value in params.items() if key in declared_names}
        others = {key: value for key, value in params.items() if key not in declared_names}
        overrides = {**validate_overrides(backend_cls.parameters, declared, name), **others}
        resolved = {**backend_cls.default_params(weights), **overrides}
        if max_disp is not None:
            max_disp = backend_cls.round_max_disp(max_disp)
        return cls(name, max_disp, device, weights, tuple(sorted(resolved.items())),
                   f"{backend_cls.__module__}:{backend_cls.__qualname__}",
                   tuple(sorted(overrides.items())))

    @classmethod
    def from_backend(cls, backend: Backend) -> "BackendSpec":
        backend_cls = type(backend)
        return cls(backend.name, backend.max_disp, backend.device, backend.weights,
                   tuple(sorted(backend.params.items())),
                   f"{backend_cls.__module__}:{backend_cls.__qualname__}",
                   tuple(sorted(backend.overrides.items())))

    def create(self) -> Backend:
        options = dict(max_disp=self.max_disp, device=self.device, weights=self.weights,
                       **dict(self.params if self.overrides is None else self.overrides))
        try:
            return create_backend(self.name, **options)
        except UsageError:
            if not self.class_path:
                raise
        import importlib

        module_name, _, attribute = self.class_path.partition(":")
        backend_cls = importlib.import_module(module_name)
        for part in attribute.split("."):
            backend_cls = getattr(backend_cls, part)
        return backend_cls(**options)

    def identity(self) -> dict[str, Any]:
        """The part of the result key that names the method (device is not part of it)."""
        parameters = dict(self.params)
        parameters["max_disp"] = self.max_disp
        return {"backend": self.name, "weights": self.weights, "parameters": parameters}


_BACKENDS: dict[BackendSpec, tuple[Backend, threading.Lock]] = {}
_BACKENDS_LOCK = threading.Lock()
BACKEND_LOADS = {"count": 0}  # how many backends this process created (tests read it)


def worker_backend(spec: BackendSpec) -> tuple[Backend, threading.Lock]:
    """This process's backend for ``spec``, created on first use and kept (one per worker).

    The lock serialises compute calls when a worker runs several threads (Dask ``--nthreads``).
    """
    with _BACKENDS_LOCK:
        if spec not in _BACKENDS:
            backend = spec.create()
            _BACKENDS[spec] = (backend, threading.Lock())
            BACKEND_LOADS["count"] += 1
        return _BACKENDS[spec]


# --------------------------------------------------------------------------------------------
# One image


@dataclass
class Task:
    """One image to process; picklable, shipped to workers."""

    index: int
    sample: Sample
    mode: str  # "eval" or "predict"
    benchmark: str = "generic"
    backend: Optional[BackendSpec] = None
    predictions: Optional[str] = None
    gt_max_disp: float = 192.0
    error_image: bool = False


def run_task(task: Task, cancel: Optional[CancelToken] = None) -> dict[str, Any]:
    """Process one image; returns a dict of plain values (+ arrays for the client to write)."""
    started = time.perf_counter()
    result: dict[str, Any] = {"index": task.index, "image": task.sample.id,
                              "worker": f"{platform.node()}:{os.getpid()}"}
    if task.backend is not None:
        backend, lock = worker_backend(task.backend)
        pair = task.sample.load_pair()
        with lock:
            computed = backend.compute(pair, cancel)
        disparity = computed.disparity
        if computed.messages:  # e.g. max_disp narrowed to the pair's width
            result["notes"] = list(computed.messages)
        result["timings"] = computed.timings
        result["device"] = computed.device
        result["backend_instance"] = id(backend)
        source = f"{task.sample.id} ({backend.name})"
    else:
        path = find_prediction(task.predictions, task.sample)
        disparity = read_disparity(path)
        result["prediction"] = str(path)
        source = str(path)
    if task.mode == "predict":
        result["disparity"] = disparity
    else:
        gt = task.sample.load_ground_truth()
        if gt is None:
            raise InputError(f"{task.sample.id}: no ground truth ({task.sample.left})")
        score = benchmarks.score_image(task.benchmark, disparity, gt, gt_max_disp=task.gt_max_disp,
                                       error_image=task.error_image, source=source)
        result["values"] = _finite_or_none(score.values)
        result["counts"] = score.counts
        result["error_image"] = score.error_image
    result["seconds"] = time.perf_counter() - started
    return result


def _finite_or_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: (None if value is None or not math.isfinite(value) else float(value))
            for key, value in values.items()}


def _init_worker(spec: Optional[BackendSpec], threads: int) -> None:
    """Process-pool initializer: Ctrl-C belongs to the parent; load the backend now, once."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import cv2

        cv2.setNumThreads(threads)
    except ImportError:
        pass
    if spec is not None:
        try:
            worker_backend(spec)
        except Exception:  # noqa: BLE001 - a raising Pool initializer respawns workers forever;
            pass  # the first task creates the backend again and reports the error to the parent
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


# --------------------------------------------------------------------------------------------
# Executors: each yields task results as they finish and cleans up on cancel / error


def _serial(tasks: Sequence[Task], cancel: CancelToken) -> Iterator[dict[str, Any]]:
    for task in tasks:
        cancel.raise_if_cancelled()
        yield run_task(task, cancel)


def _processes(tasks: Sequence[Task], workers: int, spec: Optional[BackendSpec],
               cancel: CancelToken) -> Iterator[dict[str, Any]]:
    import multiprocessing

    # spawn: a fresh interpreter per worker; forking a parent that holds torch/OpenCV threads
    # can deadlock.
    context = multiprocessing.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // workers)
    pool = context.Pool(processes=workers, initializer=_init_worker, initargs=(spec, threads))
    try:
        results = pool.imap_unordered(run_task, tasks, chunksize=1)
        for _ in range(len(tasks)):
            while True:
                try:
                    result = results.next(timeout=0.2)
                    break
                except multiprocessing.TimeoutError:
                    cancel.raise_if_cancelled()
            yield result
        pool.close()
        pool.join()
    finally:
        pool.terminate()
        pool.join()


def _dask(tasks: Sequence[Task], scheduler: Any, cancel: CancelToken) -> Iterator[dict[str, Any]]:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise UsageError("--scheduler needs Dask distributed (pip install dask distributed)") from None
    own_client = False
    if isinstance(scheduler, Client):
        client = scheduler
    else:
        try:
            client = Client(scheduler, timeout="20s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as error:
            raise InputError(f"--scheduler {scheduler}: cannot reach the Dask scheduler ({error})") from None
        own_client = True
    run_id = hashlib.sha1(f"{time.time()}-{os.getpid()}".encode()).hexdigest()[:8]
    futures = [client.submit(run_task, task, pure=False, key=f"depthapp-{run_id}-{task.index}")
               for task in tasks]
    try:
        finished = as_completed(futures, loop=client.loop)
        remaining = len(futures)
        while remaining:
            batch = finished.next_batch(block=False)
            if not batch:
                cancel.raise_if_cancelled()
                time.sleep(0.05)
                continue
            for future in batch:
                remaining -= 1
                yield future.result()
    finally:
        client.cancel([future for future in futures if not future.done()])
        if own_client:
            client.close()


def _execute(tasks: Sequence[Task], workers: int, scheduler: Any, spec: Optional[BackendSpec],
             cancel: CancelToken) -> Iterator[dict[str, Any]]:
    if not tasks:
        return iter(())
    if scheduler is not None:
        return _dask(tasks, scheduler, cancel)
    if workers > 1 and len(tasks) > 1:
        return _processes(tasks, min(workers, len(tasks)), spec, cancel)
    return _serial(tasks, cancel)


def _run_job(tasks: Sequence[Task], workers: int, scheduler: Any, spec: Optional[BackendSpec],
             progress: Optional[Callable[[Progress], None]], cancel: CancelToken,
             handle: Callable[[dict[str, Any]], None]) -> int:
    """Run ``tasks`` and ``handle`` each result as it arrives; returns how many finished."""
    if workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    job = Job(len(tasks), progress, cancel)
    if progress:
        progress(job.snapshot())
    finished = 0
    results = _execute(tasks, workers, scheduler, spec, cancel)
    try:
        for result in results:
            handle(result)
            finished += 1
            job.step(message=result["image"])
    finally:
        close = getattr(results, "close", None)
        if close:
            close()
    return finished


# --------------------------------------------------------------------------------------------
# Output folder


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def result_key(image: str, method: Mapping[str, Any], evaluation: Mapping[str, Any]) -> str:
    """The resume key of one image's result: image id, backend, weights, parameters, protocol."""
    return hashlib.sha256(_canonical({"image": image, **method, "evaluation": evaluation}).encode()).hexdigest()


def append_record(path: Path, record: Mapping[str, Any]) -> None:
    """Append one JSON line with a single ``write`` on an ``O_APPEND`` descriptor, then fsync.

    A crash leaves at most one partial last line, which :func:`read_records` skips and the next
    append starts after (see :func:`_repair_log`).
    """
    line = (json.dumps(record, sort_keys=True, allow_nan=False) + "\n").encode()
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(line)
        while view:
            written = os.write(descriptor, view)
            view = view[written:]
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _repair_log(path: Path) -> None:
    """End a log whose last line was cut off (a crash mid-write) with a newline."""
    if path.exists() and path.stat().st_size:
        with open(path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            last = handle.read(1)
        if last != b"\n":
            with open(path, "ab") as handle:
                handle.write(b"\n")


def read_records(path: Path) -> dict[str, dict[str, Any]]:
    """The finished records by key (the last one wins); unreadable lines are skipped."""
    records: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return records
    with open(path, "r", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and "key" in record:
                records[record["key"]] = record
    return records


def _prepare_out_dir(out_dir: Path, manifest: dict[str, Any], force: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputExistsError(f"{out_dir}: exists and is not a folder")
    check_output_folder(out_dir)
    remove_stale_temporaries(out_dir, recursive=True)
    manifest_path = out_dir / MANIFEST_FILE
    if out_dir.exists() and any(out_dir.iterdir()):
        previous = None
        if manifest_path.exists():
            try:
                previous = json.loads(manifest_path.read_text())
            except (OSError, json.JSONDecodeError):
                previous = None
        if force:
            for name in (RESULTS_FILE, MANIFEST_FILE, *DERIVED_FILES):
                if (out_dir / name).exists():
                    (out_dir / name).unlink()
            if (out_dir / ERRORS_DIR).is_dir():
                shutil.rmtree(out_dir / ERRORS_DIR)
        elif previous is None:
            raise OutputExistsError(f"{out_dir}: is not empty and holds no depthapp evaluation "
                                    "(choose another --out, or pass --force)")
        elif _canonical(previous) != _canonical(manifest):
            differ = sorted(k for k in set(previous) | set(manifest) if previous.get(k) != manifest.get(k))
            raise OutputExistsError(f"{out_dir}: holds an evaluation with different {', '.join(differ)} "
                                    "(choose another --out, or pass --force to start over)")
    out_dir.mkdir(parents=True, exist_ok=True)
    if not manifest_path.exists():
        write_bytes_atomic(manifest_path, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())


def _safe_name(image_id: str) -> str:
    return image_id.replace("/", "__").replace("\\", "__")


def _check_limit(limit: Optional[int]) -> None:
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")


def _method(backend: Union[None, str, Backend, BackendSpec], predictions: Optional[os.PathLike | str]):
    if (backend is None) == (predictions is None):
        raise UsageError("give either a backend or a predictions folder (--backend or --predictions)")
    if predictions is not None:
        folder = Path(predictions).expanduser().resolve()
        if not folder.is_dir():
            raise InputError(f"{folder}: no such folder (--predictions)")
        return None, str(folder), {"backend": "predictions", "weights": None,
                                   "parameters": {"predictions": str(folder)}}
    if isinstance(backend, str):
        spec = BackendSpec.make(backend)
    elif isinstance(backend, Backend):
        spec = BackendSpec.from_backend(backend)
        # the caller's instance serves this process; workers create their own from the spec
        with _BACKENDS_LOCK:
            _BACKENDS.setdefault(spec, (backend, threading.Lock()))
    else:
        spec = backend
    return spec, None, spec.identity()


# --------------------------------------------------------------------------------------------
# evaluate


@dataclass
class EvaluationResult:
    """What :func:`evaluate` did: the numbers and where they were written."""

    out_dir: Path
    benchmark: str
    summary: dict[str, Any]
    per_image: list[dict[str, Any]]
    computed: int
    skipped: int
    files: list[Path] = field(default_factory=list)


def _pass_on_notes(result: dict[str, Any], notify: Optional[Callable[[str], None]]) -> None:
    for note in result.pop("notes", ()):
        if notify is not None:
            notify(f"{result['image']}: {note}")


def evaluate(dataset: StereoDataset, backend: Union[None, str, Backend, BackendSpec] = None,
             predictions: Optional[os.PathLike | str] = None, *, out_dir: os.PathLike | str,
             limit: Optional[int] = None, workers: int = 1, scheduler: Any = None,
             progress: Optional[Callable[[Progress], None]] = None,
             cancel: Optional[CancelToken] = None, published: Optional[Mapping[str, float]] = None,
             published_source: str = "", force: bool = False,
             gt_max_disp: float = 192.0, error_maps: int = DEFAULT_ERROR_MAPS,
             notify: Optional[Callable[[str], None]] = None) -> EvaluationResult:
    """Score a backend (run on every pair) or a folder of saved predictions on ``dataset``.

    Args:
        dataset: a :class:`~depthapp.evaluation.datasets.StereoDataset` with ground truth.
        backend: a backend name, instance or :class:`BackendSpec`; or ``predictions``: a folder
            of saved disparities (see :func:`~depthapp.evaluation.datasets.find_prediction`).
        out_dir: the run folder (created; resumed when it holds the same evaluation).
        limit: only the first ``limit`` samples.
        workers: local worker processes; ``scheduler``: a Dask scheduler address (or a
            ``distributed.Client``) instead.
        progress, cancel: progress callback (e.g. :class:`~depthapp.jobs.TerminalProgress`) and
            cancellation; cancelling raises :class:`~depthapp.errors.Cancelled` after keeping
            every finished image in ``results.jsonl``.
        published: numbers published for these weights, by summary key (percent), for report.md.
        force: discard an earlier evaluation in ``out_dir`` and start over.
        gt_max_disp: Scene Flow only: ground truth at or above this is not scored.
        error_maps: error maps for the first N images (-1: all, 0: none).
        notify: told each note a backend makes about a pair (``"image: note"``), e.g. a
            ``max_disp`` narrowed to the pair's width.

    Returns:
        An :class:`EvaluationResult`; ``summary`` is also in ``out_dir/summary.json``.
    """
    _check_limit(limit)
    benchmark = dataset.benchmark
    unknown = [key for key in (published or {}) if key not in benchmarks.SUMMARY_KEYS[benchmark]]
    if unknown:
        raise UsageError(f"published numbers for unknown keys: {', '.join(unknown)} (the {benchmark} "
                         f"summary has {', '.join(benchmarks.SUMMARY_KEYS[benchmark])})")
    cancel = cancel or CancelToken()
    spec, predictions_dir, method = _method(backend, predictions)
    samples = dataset.samples[:limit] if limit else list(dataset.samples)
    missing = [sample for sample in samples if not sample.has_ground_truth]
    if missing:
        raise InputError(f"{dataset.describe()}: {len(missing)} of {len(samples)} pairs have no ground "
                         f"truth (first: {missing[0].id}); use `depthapp predict` for unlabelled data")
    evaluation = {"dataset": dataset.name, "benchmark": benchmark, "options": dataset.options()}
    if benchmark == "sceneflow":
        evaluation["gt_max_disp"] = gt_max_disp
    manifest = {"depthapp_evaluation": 1, "root": str(dataset.root.resolve()), **evaluation, **method}
    out_dir = Path(out_dir)
    _prepare_out_dir(out_dir, manifest, force)
    results_path = out_dir / RESULTS_FILE
    _repair_log(results_path)
    records = read_records(results_path)
    keys = [result_key(sample.id, method, evaluation) for sample in samples]
    tasks = [Task(index, sample, "eval", benchmark, spec, predictions_dir, gt_max_disp,
                  error_maps < 0 or index < error_maps)
             for index, (sample, key) in enumerate(zip(samples, keys)) if key not in records]
    skipped = len(samples) - len(tasks)

    def handle(result: dict[str, Any]) -> None:
        index = result["index"]
        _pass_on_notes(result, notify)
        image = result.pop("error_image", None)
        if image is not None:
            write_image(out_dir / ERRORS_DIR / f"{_safe_name(result['image'])}.png", image, overwrite=True)
        record = {"key": keys[index], **method, "benchmark": benchmark,
                  "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"), **result}
        append_record(results_path, record)
        records[record["key"]] = record

    try:
        computed = _run_job(tasks, workers, scheduler, spec, progress, cancel, handle)
    except (Cancelled, KeyboardInterrupt):
        done = sum(key in records for key in keys)
        raise Cancelled(f"cancelled after {done} of {len(samples)} images; finished results are kept in "
                        f"{results_path}: run the same command again to resume") from None

    ordered = [records[key] for key in keys]
    values = [record["values"] for record in ordered]
    counts = [record.get("counts") for record in ordered]
    summary_values = _finite_or_none(benchmarks.summarize(benchmark, values, counts))
    summary = {**summary_values, "images": len(samples), "dataset": dataset.name,
               "benchmark": benchmark, **method}
    files = _write_outputs(out_dir, dataset, benchmark, method, summary, ordered, published,
                           published_source, computed, skipped)
    return EvaluationResult(out_dir, benchmark, summary, ordered, computed, skipped, files)


def _format_number(key: str, value: Optional[float]) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f} %" if benchmarks.is_percentage(key) else f"{value:.3f} px"


def _write_outputs(out_dir: Path, dataset: StereoDataset, benchmark: str, method: Mapping[str, Any],
                   summary: dict[str, Any], records: Sequence[Mapping[str, Any]],
                   published: Optional[Mapping[str, float]], published_source: str,
                   computed: int, skipped: int) -> list[Path]:
    files = []
    files.append(write_bytes_atomic(out_dir / SUMMARY_FILE,
                                    (json.dumps(summary, indent=2, allow_nan=False) + "\n").encode(),
                                    overwrite=True))

    value_keys = [key for key in benchmarks.SUMMARY_KEYS[benchmark]
                  if any(key in record["values"] for record in records)]
    for record in records:
        value_keys.extend(key for key in record["values"] if key not in value_keys)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["image", *value_keys, "seconds"])
    for record in records:
        row = [record["image"]]
        for key in value_keys:
            value = record["values"].get(key)
            row.append("" if value is None else f"{value:.6g}")
        row.append(f"{record.get('seconds', 0.0):.3f}")
        writer.writerow(row)
    files.append(write_bytes_atomic(out_dir / PER_IMAGE_FILE, buffer.getvalue().encode(), overwrite=True))

    published = dict(published or {})
    if method["backend"] == "predictions":
        who = f"saved predictions in `{method['parameters']['predictions']}`"
    else:
        parameters = ", ".join(f"{k}={v}" for k, v in method["parameters"].items())
        who = f"backend `{method['backend']}`" + (f", weights `{method['weights']}`" if method["weights"] else "") \
            + (f" ({parameters})" if parameters else "")
    lines = [f"# Evaluation: {dataset.name}", "",
             f"- data: {dataset.describe()}", f"- method: {who}",
             f"- images: {len(records)} ({computed} computed in the last run, {skipped} resumed)",
             f"- protocol: {benchmarks.PROTOCOL_TEXT[benchmark]}", ""]
    header = "| metric | ours |" + (" published |" if published else "")
    lines += [header, "|---|---:|" + ("---:|" if published else "")]
    for key in benchmarks.SUMMARY_KEYS[benchmark]:
        row = f"| {key} | {_format_number(key, summary.get(key))} |"
        if published:
            row += f" {_format_number(key, published[key]) if key in published else ''} |"
        lines.append(row)
    lines.append("")
    if published:
        lines.append(f"Published numbers: {published_source or 'as given by the caller'}.")
    else:
        lines.append("No published numbers were given for this method.")
    main = benchmarks.MAIN_METRIC[benchmark]
    ranked = sorted((r for r in records if r["values"].get(main) is not None),
                    key=lambda r: r["values"][main], reverse=True)[:10]
    if ranked:
        lines += ["", f"## Hardest images by {main}", "", f"| image | {main} | error map |", "|---|---:|---|"]
        for record in ranked:
            name = f"{ERRORS_DIR}/{_safe_name(record['image'])}.png"
            link = f"[{name}]({name})" if (out_dir / name).exists() else ""
            lines.append(f"| {record['image']} | {_format_number(main, record['values'][main])} | {link} |")
    files.append(write_bytes_atomic(out_dir / REPORT_FILE, ("\n".join(lines) + "\n").encode(), overwrite=True))
    return files


# --------------------------------------------------------------------------------------------
# predict


@dataclass
class PredictionResult:
    out_dir: Path
    written: list[Path]
    skipped: int


def prediction_path(out_dir: Path, sample: Sample, fmt: str) -> Path:
    """``kitti``: ``disp_0/<id>.png`` (the KITTI submission layout); ``pfm``/``npy``: ``<id>.<ext>``."""
    if fmt == "kitti":
        return out_dir / "disp_0" / f"{sample.id}.png"
    if fmt in ("pfm", "npy"):
        return out_dir / f"{sample.id}.{fmt}"
    raise UsageError(f"--format: one of {', '.join(PREDICTION_FORMATS)}, not {fmt!r}")


PREDICTION_RECORD = ".depthapp-predict.json"


def _claim_prediction_folder(out_dir: Path, method: dict[str, Any], force: bool) -> None:
    """Record which method fills ``out_dir``; refuse (without ``force``) a folder that holds
    another method's predictions, since a resumed run would keep them as its own."""
    record = out_dir / PREDICTION_RECORD
    if record.exists():
        try:
            previous = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            previous = None
        if _canonical(previous) == _canonical(method):
            return
        if not force:
            if isinstance(previous, dict):
                differ = sorted(k for k in set(previous) | set(method) if previous.get(k) != method.get(k))
                what = f"predictions of backend {previous.get('backend')!r} with different {', '.join(differ)}"
            else:
                what = f"an unreadable {PREDICTION_RECORD}"
            raise OutputExistsError(f"{out_dir}: holds {what} (choose another --out, or pass "
                                    "--force to replace them)")
    write_bytes_atomic(record, (json.dumps(method, indent=2, sort_keys=True, default=str) + "\n").encode(),
                       overwrite=True)


def predict(dataset: StereoDataset, backend: Union[str, Backend, BackendSpec], out_dir: os.PathLike | str,
            *, fmt: str = "pfm", limit: Optional[int] = None, workers: int = 1, scheduler: Any = None,
            progress: Optional[Callable[[Progress], None]] = None, cancel: Optional[CancelToken] = None,
            force: bool = False, notify: Optional[Callable[[str], None]] = None) -> PredictionResult:
    """Write every pair's disparity under ``out_dir`` (see :func:`prediction_path`), no scoring.

    Existing files are kept and their pairs skipped (a rerun resumes) unless ``force``.
    ``notify`` is told each note a backend makes about a pair, as in :func:`evaluate`.
    """
    _check_limit(limit)
    cancel = cancel or CancelToken()
    spec, _, identity = _method(backend, None)
    out_dir = Path(out_dir)
    check_output_folder(out_dir)
    remove_stale_temporaries(out_dir, recursive=True)
    _claim_prediction_folder(out_dir, {**identity, "format": fmt}, force)
    samples = dataset.samples[:limit] if limit else list(dataset.samples)
    paths = [prediction_path(out_dir, sample, fmt) for sample in samples]
    tasks = [Task(index, sample, "predict", backend=spec)
             for index, (sample, path) in enumerate(zip(samples, paths)) if force or not path.exists()]
    written: list[Path] = []

    def handle(result: dict[str, Any]) -> None:
        _pass_on_notes(result, notify)
        path = paths[result["index"]]
        written.append(write_disparity(path, result["disparity"], overwrite=force))

    try:
        _run_job(tasks, workers, scheduler, spec, progress, cancel, handle)
    except (Cancelled, KeyboardInterrupt):
        raise Cancelled(f"cancelled after {len(written)} of {len(tasks)} pairs; written files are kept: "
                        "run the same command again to resume") from None
    return PredictionResult(out_dir, written, len(samples) - len(tasks))


__all__ = ["BackendSpec", "EvaluationResult", "PredictionResult", "Task", "append_record", "evaluate",
           "predict", "prediction_path", "read_records", "result_key", "run_task", "worker_backend"]
