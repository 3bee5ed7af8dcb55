"""The training loop shared by every learned backend.

    config = TrainConfig(backend="gcnet", data="synthetic", out="runs/gcnet", iters=20000)
    result = train(config, progress=TerminalProgress("training"))

What a run leaves in ``out``:

- ``checkpoint.pt``: everything needed to continue exactly (model, optimizer, AMP scaler, RNG
  states, iteration, the run's settings); written atomically every ``checkpoint_every``
  iterations, on Ctrl-C / cancel and at the end;
- ``train_log.csv``: one row per iteration, ``iter,loss,...`` (the only CSV a run writes);
  held-out validation numbers appear in the rows where they were measured;
- at the end ``weights.pt`` (what the backend loads with ``--weights FILE``; fp16),
  ``MODEL_CARD.md`` and ``weights_record.json`` (a registry record of the weights);
- for distillation on finite data, ``teacher_cache/`` with the teacher's disparities.

Exact resumption: the data of iteration ``i`` depends only on ``(seed, i)``
(:class:`~depthapp.training.data.BatchMaker`), and the checkpoint restores every other piece of
state, so ``--resume`` after a stop gives bit for bit the run that was never stopped (on the
CPU; on CUDA with ``deterministic=True``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import random
import shutil
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from ..device import resolve_device
from ..errors import Cancelled, DepthAppError, InputError, OutputExistsError, UsageError
from ..io.atomic import atomic_path
from ..jobs import CancelToken, Job, Progress, ProgressCallback
from .data import (Augmentation, BatchMaker, JITTER_MODES, TeacherCache, iterate_batches,
                   parse_data_spec, validation_samples)
from .distributed import environment_rank, from_environment
from .evaluate import evaluate_samples
from .losses import (OCCLUSION_MODES, distillation_loss, end_point_error, photometric_loss,
                     supervised_loss)
from .models import TrainOutputs, TrainingAdapter, get_adapter

LOSSES = ("supervised", "photometric", "distill")
LR_SCHEDULES = ("constant", "cosine")
CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "train_log.csv"
WEIGHTS_NAME = "weights.pt"
CARD_NAME = "MODEL_CARD.md"
RECORD_NAME = "weights_record.json"
TEACHER_CACHE = "teacher_cache"
RUN_FILES = (CHECKPOINT_NAME, LOG_NAME, WEIGHTS_NAME, CARD_NAME, RECORD_NAME)
CHECKPOINT_VERSION = 1

# Settings that decide what a run computes: a resumed run must use the same ones.
_RESUME_KEYS = ("backend", "variant", "max_disp", "data", "loss", "teacher", "batch", "crop",
                "lr", "seed", "jitter", "occlusion", "smoothness", "freeze", "lr_schedule",
                "grad_clip")


@dataclass
class TrainConfig:
    """Everything that defines a training run (the ``depthapp train`` flags).

    Attributes:
        backend: ``gcnet``, ``ganet``, ``psmnet``, ``mccnn`` (``tiny``: the test network).
        data: a data spec (:func:`depthapp.training.data.parse_data_spec`).
        out: the run's folder.
        init: weights to start from (registry id, file, or a run folder).
        freeze: parts to keep fixed (``feature`` or module names).
        loss: ``supervised`` (smooth-L1 on ground truth), ``photometric`` (self-supervised),
            ``distill`` (smooth-L1 to ``teacher``'s disparities).
        teacher: the backend to distill from (any of ``depthapp backends``).
        iters, batch, crop ``(H, W)``, lr (Adam), amp (CUDA mixed precision), seed.
        resume: continue the run in ``out`` (a fresh run when there is nothing to continue).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        max_disp, variant: network size (defaults: the backend's).
        jitter: colour jitter mode; occlusion, smoothness: photometric-loss settings.
        checkpoint_every: iterations between checkpoints.
        val_every, val_pairs: held-out synthetic validation during training (``val_every``
            None: ten times per run; 0: never).
        eval_pairs: held-out synthetic pairs measured for the model card; motorcycle: also
            report the Motorcycle numbers (reporting only).
        workers: data-loading processes (None: 0 on the CPU, up to 8 with CUDA).
        lr_schedule: ``constant`` or ``cosine`` (to 0 at ``iters``); warmup: linear warm-up
            iterations; grad_clip: clip the gradient norm (0: off).
        deterministic: deterministic CUDA kernels (exact resume on a GPU; slower).
        threads: CPU threads for torch (None: torch's default).
        force: start over in a folder that holds a run.
        handle_sigint: the first Ctrl-C stops after the current iteration with a checkpoint
            (the CLI sets it; only in the main thread).
    """

    backend: str
    data: str
    out: str
    init: Optional[str] = None
    freeze: tuple[str, ...] = ()
    loss: str = "supervised"
    teacher: Optional[str] = None
    iters: int = 1000
    batch: int = 1
    crop: Optional[tuple[int, int]] = None
    lr: float = 1e-3
    amp: bool = False
    seed: int = 0
    resume: bool = False
    device: str = "auto"
    max_disp: Optional[int] = None
    variant: Optional[str] = None
    jitter: str = "asymmetric"
    occlusion: str = "geometric"
    smoothness: float = 0.01
    checkpoint_every: int = 200
    val_every: Optional[int] = None
    val_pairs: int = 4
    eval_pairs: int = 16
    motorcycle: bool = True
    workers: Optional[int] = None
    lr_schedule: str = "constant"
    warmup: int = 0
    grad_clip: float = 0.0
    deterministic: bool = False
    threads: Optional[int] = None
    force: bool = False
    handle_sigint: bool = False

    def validate(self) -> None:
        if self.loss not in LOSSES:
            raise UsageError(f"--loss: one of {', '.join(LOSSES)}, not {self.loss!r}")
        if self.loss == "distill" and not self.teacher:
            raise UsageError("--loss distill needs --teacher BACKEND (e.g. sgm or opencv-sgbm)")
        if self.teacher and self.loss != "distill":
            raise UsageError(f"--teacher is only used with --loss distill (not {self.loss})")
        if self.iters < 0:
            raise UsageError(f"--iters must be at least 0, got {self.iters}")
        if self.batch < 1:
            raise UsageError(f"--batch must be at least 1, got {self.batch}")
        if not self.lr > 0:
            raise UsageError(f"--lr must be positive, got {self.lr}")
        if self.jitter not in JITTER_MODES:
            raise UsageError(f"--jitter: one of {', '.join(JITTER_MODES)}, not {self.jitter!r}")
        if self.occlusion not in OCCLUSION_MODES:
            raise UsageError(f"--occlusion: one of {', '.join(OCCLUSION_MODES)}, not {self.occlusion!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise UsageError(f"--lr-schedule: one of {', '.join(LR_SCHEDULES)}, not {self.lr_schedule!r}")
        if self.checkpoint_every < 1:
            raise UsageError(f"--checkpoint-every must be at least 1, got {self.checkpoint_every}")
        if self.crop is not None and (len(self.crop) != 2 or min(self.crop) < 1):
            raise UsageError(f"--crop must be HxW with positive sides, got {self.crop}")

    def settings(self) -> dict[str, Any]:
        """JSON-ready settings (stored in checkpoints, printed on the card)."""
        values = asdict(self)
        values["freeze"] = list(self.freeze)
        values["crop"] = list(self.crop) if self.crop else None
        return values


def parse_crop(text: str) -> tuple[int, int]:
    """``"256x512"`` -> ``(256, 512)`` (height x width)."""
    try:
        height, width = (int(part) for part in text.lower().replace("*", "x").split("x"))
    except ValueError:
        raise UsageError(f"--crop: expected HxW (e.g. 256x512), got {text!r}") from None
    if height < 1 or width < 1:
        raise UsageError(f"--crop: sides must be positive, got {text!r}")
    return height, width


@dataclass
class TrainResult:
    """What a finished run produced (paths are inside ``out``)."""

    out: Path
    iterations: int
    seconds: float
    final_loss: Optional[float]
    weights: Optional[Path] = None
    card: Optional[Path] = None
    record: Optional[Path] = None
    synthetic: dict[str, float] = field(default_factory=dict)
    motorcycle: Optional[dict[str, float]] = None
    frozen_tensors: int = 0
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- helpers

def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state(device: str) -> dict[str, Any]:
    python_state = random.getstate()
    numpy_state = np.random.get_state()
    state = {"python": [python_state[0], list(python_state[1]), python_state[2]],
             "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)),
                       int(numpy_state[2]), int(numpy_state[3]), float(numpy_state[4])],
             "torch": torch.get_rng_state()}
    if device.startswith("cuda"):
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the names and exact bytes of ``tensors`` (sorted by name)."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        value = tensors[name].detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(str(value.dtype).encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()


def save_atomic(obj: Any, path: Path) -> None:
    with atomic_path(path, overwrite=True) as tmp:
        torch.save(obj, tmp)


class TrainLog:
    """``train_log.csv``: a header and one row per iteration, appended and flushed as the run
    goes. Reopened for a resume, rows past the checkpoint's iteration are dropped first (they
    will be trained again)."""

    def __init__(self, path: Path, columns: Sequence[str], keep_until: int):
        self.path = path
        self.columns = list(columns)
        kept: list[dict[str, str]] = []
        if keep_until > 0 and path.is_file():
            with open(path, newline="") as handle:
                reader = csv.DictReader(handle)
                if reader.fieldnames and list(reader.fieldnames) != self.columns:
                    raise InputError(f"{path}: columns {reader.fieldnames} differ from this run's "
                                     f"{self.columns}")
                kept = [row for row in reader if row.get("iter", "").isdigit()
                        and int(row["iter"]) <= keep_until]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, self.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(kept)
        with atomic_path(path, overwrite=True) as tmp:
            tmp.write_text(buffer.getvalue())
        self._handle = open(path, "a", newline="")
        self._writer = csv.DictWriter(self._handle, self.columns, lineterminator="\n")

    def write(self, row: dict[str, Any]) -> None:
        self._writer.writerow({key: _format_cell(row.get(key)) for key in self.columns})
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def _format_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


@contextmanager
def stop_on_sigint(cancel: CancelToken, enabled: bool, notify: Callable[[str], None]):
    """While active, the first Ctrl-C asks the loop to stop after the current iteration (so the
    checkpoint holds a whole step); a second one interrupts at once."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if cancel.cancelled:
            raise KeyboardInterrupt
        cancel.cancel()
        notify("stopping after this iteration and saving a checkpoint (Ctrl-C again to abort)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# ----------------------------------------------------------------------------- the trainer

TRAINING_STAGE = "training"
PREPARING_STAGE = "preparing data and network"


class Trainer:
    """One training run; :meth:`run` trains, :meth:`finish` writes weights, card and record.

    ``progress`` receives a :class:`~depthapp.jobs.Progress` per iteration (stage
    "training", message: loss, EPE) and for the other phases (``stage`` names them: preparing
    the data and the network, measuring the weights); ``cancel`` stops the run after the current
    iteration with a checkpoint (:class:`~depthapp.errors.Cancelled` is raised); ``notify``
    gets one-line notes.
    """

    def __init__(self, config: TrainConfig, progress: Optional[ProgressCallback] = None,
                 cancel: Optional[CancelToken] = None,
                 notify: Optional[Callable[[str], None]] = None):
        config.validate()
        self.config = config
        self.progress = progress if environment_rank() == 0 else None  # rank 0 reports for all
        self.cancel = cancel or CancelToken()
        # Reading the data and building (and loading) the network take a while on the CPU.
        self.phase(PREPARING_STAGE, None)
        self.notes: list[str] = []
        self._notify = notify
        self.out = Path(config.out).expanduser()
        self.device = resolve_device(config.device, supports_cuda=True, owner="training")
        self.group = from_environment(self.device, config.batch)  # several processes under torchrun
        self.main = self.group is None or self.group.main
        if self.group is not None and self.device.startswith("cuda"):
            self.device = f"cuda:{self.group.local_rank}"
        self.adapter: TrainingAdapter = get_adapter(config.backend, config.variant, config.max_disp)
        self.crop = tuple(config.crop) if config.crop else self.adapter.default_crop
        self.adapter.check_crop(self.crop)
        self.adapter.check_batch(self.crop, config.batch)
        self.amp = bool(config.amp) and self.device.startswith("cuda")
        if config.amp and not self.amp:
            self.note("--amp has no effect on the CPU (mixed precision is a CUDA feature); training in float32")

        checkpoint = self._prepare_folder() if self.main else None
        if self.group is not None:
            self.group.barrier()  # rank 0 has checked and prepared the folder
            if not self.main and config.resume and (self.out / CHECKPOINT_NAME).is_file():
                checkpoint = self._load_checkpoint(self.out / CHECKPOINT_NAME)
        self.source = parse_data_spec(config.data, self.crop, self.adapter.max_disp, config.seed)
        if config.loss == "supervised" and not self.source.has_ground_truth:
            raise UsageError(f"--data {config.data}: has no ground truth for --loss supervised; use "
                             f"--loss photometric, or --loss distill --teacher sgm")
        teacher = None
        if config.loss == "distill":
            folder = self.out / TEACHER_CACHE if self.source.length else None
            teacher = TeacherCache(config.teacher, self.adapter.max_disp, folder)
            teacher.check()
        self.batches = BatchMaker(self.source, config.batch, Augmentation(self.crop, config.jitter),
                                  config.seed, teacher)
        if config.workers is None:
            self.workers = min(8, max(0, (os.cpu_count() or 1) - 2)) if self.device.startswith("cuda") else 0
        else:
            self.workers = max(0, int(config.workers))

        if self.device.startswith("cuda") and config.deterministic:
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        elif self.device.startswith("cuda"):
            torch.backends.cudnn.benchmark = True

        if config.threads:
            torch.set_num_threads(int(config.threads))
        seed_everything(config.seed)
        self.model = self.adapter.build(seed=config.seed)
        self.init_label = None
        if config.init and checkpoint is None:
            self.init_label = self.adapter.load_init(self.model, config.init)
        self.model.to(self.device)
        self.frozen = self.adapter.parts(self.model, config.freeze) if config.freeze else {}
        for module in self.frozen.values():
            for parameter in module.parameters():
                parameter.requires_grad_(False)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        if not trainable:
            raise UsageError(f"--freeze {','.join(config.freeze)} leaves nothing to train")
        self.optimizer = torch.optim.Adam(trainable, lr=config.lr, betas=(0.9, 0.999))
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.iteration = 0
        self.elapsed = 0.0
        self.final_loss: Optional[float] = None
        self.frozen_digest = self._frozen_digest()
        self.frozen_count = len(self._frozen_tensors())
        self.data_description = self.source.description
        if checkpoint is not None:
            self._restore(checkpoint)
        if self.group is not None:
            self.group.broadcast_state(self.model)

    # -------------------------------------------------------------------------- folder + resume

    def note(self, message: str) -> None:
        self.notes.append(message)
        if self._notify and self.main:
            self._notify(message)

    def phase(self, stage: str, total: Optional[int]) -> Job:
        """A part of the run other than the iterations, reported as ``stage`` with ``total``
        items (None: not countable); call ``step()`` on the returned job per item."""
        return Job(total, self.progress, self.cancel, stage).start()

    def _prepare_folder(self) -> Optional[dict]:
        """Check the output folder; returns the checkpoint to resume from, if any."""
        out = self.out
        if out.exists() and not out.is_dir():
            raise InputError(f"{out}: exists and is not a folder")
        checkpoint_path = out / CHECKPOINT_NAME
        existing = [name for name in RUN_FILES if (out / name).exists()]
        if self.config.resume:
            if checkpoint_path.is_file():
                return self._load_checkpoint(checkpoint_path)
            if existing:
                self.note(f"{out} holds no checkpoint ({', '.join(existing)} only); starting a new run")
            else:
                self.note(f"nothing to resume in {out}; starting a new run")
        elif existing:
            if not self.config.force:
                raise OutputExistsError(f"{out}: already holds a training run ({', '.join(existing)}); "
                                        f"pass --resume to continue it or --force to start over")
            for name in existing:
                (out / name).unlink()
            shutil.rmtree(out / TEACHER_CACHE, ignore_errors=True)
        out.mkdir(parents=True, exist_ok=True)
        return None

    def _load_checkpoint(self, path: Path) -> dict:
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises many types for a damaged file
            raise InputError(f"{path}: cannot be read as a training checkpoint ({error}); "
                             f"pass --force to start over") from None
        if not isinstance(checkpoint, dict) or "trainer" not in checkpoint:
            raise InputError(f"{path}: not a depthapp training checkpoint")
        saved = checkpoint["trainer"]["config"]
        mine = self.config.settings()
        mine["max_disp"] = self.adapter.max_disp
        mine["variant"] = self.adapter.variant
        mine["crop"] = list(self.crop)
        differences = [f"{key} {saved.get(key)!r} -> {mine.get(key)!r}" for key in _RESUME_KEYS
                       if _normal(saved.get(key)) != _normal(mine.get(key))]
        if differences:
            raise UsageError(f"{path}: --resume with different settings ({'; '.join(differences)}); "
                             f"use the original flags, or --force to start over")
        if saved.get("amp") != mine.get("amp"):
            self.note(f"--amp changed from {saved.get('amp')} to {mine.get('amp')} on resume; the "
                      f"result will differ from an uninterrupted run")
        if saved.get("lr_schedule") == "cosine" and saved.get("iters") != mine.get("iters"):
            self.note("--iters changed under the cosine schedule: the learning rate curve changes")
        return checkpoint

    def _restore(self, checkpoint: dict) -> None:
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        if checkpoint.get("scaler"):
            self.scaler.load_state_dict(checkpoint["scaler"])
        _set_rng_state(checkpoint["rng"])
        state = checkpoint["trainer"]
        self.iteration = int(state["iteration"])
        self.elapsed = float(state["elapsed"])
        self.final_loss = state.get("final_loss")
        self.init_label = state.get("init_label")
        # The frozen parameters are compared with their values at the start of the run.
        self.frozen_digest = state.get("frozen_digest", self.frozen_digest)
        self.note(f"resuming {self.out} at iteration {self.iteration}/{self.config.iters}")

    def _frozen_tensors(self) -> dict[str, torch.Tensor]:
        tensors = {}
        for prefix, module in self.frozen.items():
            for name, value in module.state_dict().items():
                tensors[f"{prefix}.{name}"] = value
        return tensors

    def _frozen_digest(self) -> Optional[str]:
        return tensor_digest(self._frozen_tensors()) if self.frozen else None

    def check_frozen(self) -> None:
        """AssertionError if a frozen parameter or buffer changed (a bug, never a user error)."""
        if self.frozen and self._frozen_digest() != self.frozen_digest:
            raise AssertionError("frozen parameters changed during training")

    def save_checkpoint(self) -> Path:
        if not self.main:  # rank 0 writes for the whole run
            return self.out / CHECKPOINT_NAME
        config = self.config.settings()
        config["max_disp"] = self.adapter.max_disp
        config["variant"] = self.adapter.variant
        config["crop"] = list(self.crop)
        state = {
            "trainer": {"version": CHECKPOINT_VERSION, "iteration": self.iteration,
                        "elapsed": self.elapsed, "config": config, "final_loss": self.final_loss,
                        "frozen_digest": self.frozen_digest, "init_label": self.init_label,
                        "data": self.data_description},
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.amp else {},
            "rng": _rng_state(self.device),
        }
        path = self.out / CHECKPOINT_NAME
        save_atomic(state, path)
        return path

    # -------------------------------------------------------------------------- one step

    def learning_rate(self, iteration: int) -> float:
        config = self.config
        rate = config.lr
        if config.lr_schedule == "cosine" and config.iters > 0:
            rate = config.lr * 0.5 * (1.0 + math.cos(math.pi * min(iteration, config.iters) / config.iters))
        if config.warmup and iteration < config.warmup:
            rate *= (iteration + 1) / config.warmup
        return rate

    def _set_train_mode(self) -> None:
        self.model.train()
        # Frozen parts also keep their BatchNorm statistics.
        for module in self.frozen.values():
            module.eval()

    def loss_columns(self) -> list[str]:
        extra = {"supervised": [], "photometric": ["photometric", "smoothness", "masked"],
                 "distill": []}[self.config.loss]
        return ["iter", "loss", *extra, "epe", "val_epe", "val_bad2", "lr", "seconds"]

    def step(self, batch) -> dict[str, Any]:
        """One optimisation step on ``batch``; returns the logged numbers."""
        config = self.config
        device = self.device
        left = batch.left.to(device, non_blocking=True)
        right = batch.right.to(device, non_blocking=True)
        truth = batch.disparity.to(device) if batch.disparity is not None else None
        prepared_left, prepared_right = self.adapter.prepare(left), self.adapter.prepare(right)
        autocast = torch.autocast("cuda", dtype=torch.float16) if self.amp else nullcontext()
        max_disp = self.adapter.max_disp
        row: dict[str, Any] = {}
        custom = None
        if config.loss == "supervised":
            with autocast:
                custom = self.adapter.supervised_objective(self.model, prepared_left, prepared_right,
                                                           truth, max_disp)
        if custom is not None:
            loss, final = custom
            outputs = TrainOutputs([final], [1.0])
        else:
            with autocast:
                outputs = self.adapter.train_outputs(self.model, prepared_left, prepared_right)
        if custom is not None:
            pass
        elif config.loss == "supervised":
            loss = sum(w * supervised_loss(d, truth, max_disp)
                       for w, d in zip(outputs.weights, outputs.disparities))
        elif config.loss == "distill":
            teacher = batch.teacher.to(device)
            loss = sum(w * distillation_loss(d, teacher, max_disp)
                       for w, d in zip(outputs.weights, outputs.disparities))
        else:
            right_disparity = None
            if config.occlusion == "lr":
                right_disparity = self._right_disparity(prepared_left, prepared_right)
            loss = 0.0
            for weight, disparity in zip(outputs.weights, outputs.disparities):
                term, parts = photometric_loss(left, right, disparity, config.occlusion,
                                               right_disparity, config.smoothness)
                loss = loss + weight * term
            row.update(parts)  # of the final output
        if not torch.isfinite(loss):
            if not self.amp:
                raise DepthAppError(f"the loss became {float(loss)} at iteration {self.iteration + 1}; "
                                    f"lower --lr (the last checkpoint is intact)")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.group is not None:
            self.group.average_gradients(self.model.parameters())
        if config.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        row["loss"] = float(loss.detach())
        if truth is not None:
            row["epe"] = float(end_point_error(outputs.final.detach(), truth, max_disp))
        if self.group is not None:  # the log shows the global batch's numbers
            for name in ("loss", "epe"):
                if name in row:
                    row[name] = self.group.mean(row[name], device)
        return row

    def _right_disparity(self, prepared_left, prepared_right) -> torch.Tensor:
        """The right view's disparity for the LR check: the network on the mirrored, swapped
        pair (mirroring turns the right view into a left view), mirrored back."""
        # In eval mode, so this extra pass leaves the BatchNorm statistics alone.
        self.model.eval()
        try:
            with torch.no_grad():
                flipped = self.adapter.forward_eval(self.model, torch.flip(prepared_right, dims=[-1]),
                                                    torch.flip(prepared_left, dims=[-1]))
        finally:
            self._set_train_mode()
        return torch.flip(flipped, dims=[-1]).float()

    # -------------------------------------------------------------------------- the loop

    def run(self) -> None:
        """Train from the current iteration to ``config.iters``. Cancel / Ctrl-C saves a
        checkpoint and raises :class:`~depthapp.errors.Cancelled`."""
        config = self.config
        start, stop = self.iteration, config.iters
        val_every = config.val_every if config.val_every is not None else max(1, stop // 10)
        validation = (validation_samples(config.val_pairs, self.crop, self.adapter.max_disp)
                      if val_every and config.val_pairs > 0 else [])
        log = TrainLog(self.out / LOG_NAME, self.loss_columns(), keep_until=start) if self.main else None
        self._set_train_mode()
        started = time.perf_counter() - self.elapsed
        if self.progress:
            self.progress(Progress(start, stop, self.elapsed, "starting", TRAINING_STAGE))
        interrupted = False
        consistent = True
        try:
            with stop_on_sigint(self.cancel, config.handle_sigint, self.note):
                slots = self.group.slots(config.batch) if self.group is not None else None
                batches = iterate_batches(self.batches, start, stop, self.workers, slots)
                for iteration in range(start, stop):
                    if self.cancel.cancelled:
                        raise Cancelled("cancelled")
                    batch = next(batches)
                    tick = time.perf_counter()
                    rate = self.learning_rate(iteration)
                    for group in self.optimizer.param_groups:
                        group["lr"] = rate
                    # A hard interrupt inside the step leaves the model half-updated (BatchNorm
                    # statistics move in the forward pass): then the last checkpoint is kept.
                    consistent = False
                    row = self.step(batch)
                    self.iteration = iteration + 1
                    consistent = True
                    self.final_loss = row["loss"]
                    row.update(iter=self.iteration, lr=rate)
                    if validation and self.main and (self.iteration % val_every == 0 or self.iteration == stop):
                        numbers = evaluate_samples(self.adapter, self.model, validation, self.device)
                        self._set_train_mode()
                        row.update(val_epe=numbers["epe"], val_bad2=numbers["bad2"])
                    row["seconds"] = time.perf_counter() - tick
                    if log is not None:
                        log.write(row)
                    self.elapsed = time.perf_counter() - started
                    if self.progress:
                        message = f"loss {row['loss']:.4f}"
                        if row.get("epe") is not None:
                            message += f" epe {row['epe']:.2f}"
                        if row.get("val_epe") is not None:
                            message += f" val-epe {row['val_epe']:.2f}"
                        self.progress(Progress(self.iteration, stop, self.elapsed, message, TRAINING_STAGE))
                    if self.iteration % config.checkpoint_every == 0 and self.iteration < stop:
                        self.save_checkpoint()
                if self.cancel.cancelled and self.iteration < stop:
                    raise Cancelled("cancelled")
        except (Cancelled, KeyboardInterrupt):
            interrupted = True
        finally:
            if log is not None:
                log.close()
            self.elapsed = time.perf_counter() - started
        if not consistent:
            raise Cancelled(f"training interrupted inside iteration {self.iteration + 1}; the last "
                            f"checkpoint in {self.out / CHECKPOINT_NAME} is kept (continue with --resume)")
        self.check_frozen()
        self.save_checkpoint()
        if interrupted:
            raise Cancelled(f"training stopped at iteration {self.iteration}/{stop}; checkpoint saved "
                            f"in {self.out / CHECKPOINT_NAME} (continue with --resume)")

    # -------------------------------------------------------------------------- the end

    def finish(self, extra_sections: Optional[dict[str, str]] = None,
               check_samples: Optional[Sequence[Any]] = None) -> Optional[TrainResult]:
        """Export the weights, measure them and write the model card and the registry record.
        ``check_samples`` (:class:`~depthapp.training.data.TrainingSample`) are used for the
        backend check when no held-out synthetic pairs are measured."""
        from .card import write_outputs

        if self.group is not None:
            self.group.close()
            if not self.main:  # rank 0 writes the outputs; the other ranks are done
                return None
        return write_outputs(self, extra_sections or {}, check_samples)


def train(config: TrainConfig, progress: Optional[ProgressCallback] = None,
          cancel: Optional[CancelToken] = None,
          notify: Optional[Callable[[str], None]] = None) -> TrainResult:
    """Run (or resume) a training run and write its outputs; see :class:`TrainConfig`."""
    trainer = Trainer(config, progress=progress, cancel=cancel, notify=notify)
    trainer.run()
    return trainer.finish()


def _normal(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value


__all__ = ["CARD_NAME", "CHECKPOINT_NAME", "LOG_NAME", "LOSSES", "RECORD_NAME", "TrainConfig",
           "TrainLog", "TrainResult", "Trainer", "WEIGHTS_NAME", "parse_crop", "seed_everything",
           "tensor_digest", "train"]
