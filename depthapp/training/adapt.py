""""Adapt to my camera": fine-tune a pretrained backend on the user's own recorded pairs with
the self-supervised photometric loss (no ground truth needed), and report the photometric
error before and after.

    result = adapt_to_camera("psmnet", "psmnet-kitti2015", "recordings/", "runs/my-camera",
                             progress=callback, cancel=token)
    print(result.before, "->", result.after)

The photometric error is the loss's own measure (0.85 (1 - SSIM) / 2 + 0.15 L1, over pixels
whose match is inside the right image and not occluded according to the disparity itself), on
whole images. With five or more pairs, every fifth is held out of training and reported apart,
so the improvement is not only memorisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from ..errors import InputError, UsageError
from ..io.atomic import atomic_path
from ..jobs import CancelToken, Job, ProgressCallback
from ..sources.dataset import DatasetSequence
from .data import TrainingSample, as_unit_float
from .evaluate import evaluate_motorcycle
from .trainer import PREPARING_STAGE, TrainConfig, Trainer, TrainResult

HOLDOUT_EVERY = 5
IDS_NAME = "adapt_training_ids.txt"


@dataclass
class AdaptResult:
    """Mean photometric errors (lower is better) of the whole pairs before and after.

    ``before``/``after``: over every pair; ``before_heldout``/``after_heldout``: over the pairs
    kept out of training (None with fewer than five pairs)."""

    out: Path
    weights: Path
    pairs: int
    heldout: int
    before: float
    after: float
    before_heldout: Optional[float]
    after_heldout: Optional[float]
    training: TrainResult
    per_pair: list[tuple[str, float, float]] = field(default_factory=list)

    def summary(self) -> str:
        text = (f"photometric error on your {self.pairs} pairs: {self.before:.4f} before, "
                f"{self.after:.4f} after ({_change(self.before, self.after)})")
        if self.before_heldout is not None:
            text += (f"; on the {self.heldout} pairs held out of training: {self.before_heldout:.4f} "
                     f"before, {self.after_heldout:.4f} after ({_change(self.before_heldout, self.after_heldout)})")
        return text


def _change(before: float, after: float) -> str:
    if before <= 0:
        return "n/a"
    return f"{(after - before) / before * 100:+.1f} %"


def _folder_of(data: str) -> Path:
    name, sep, rest = data.partition(":")
    if sep and name == "folder":
        return Path(rest.split(",")[0])
    if sep and name in ("kitti2012", "kitti2015", "sceneflow", "middlebury", "synthetic"):
        raise UsageError(f"--data {data}: adapting to a camera takes your own pairs (folder:DIR)")
    return Path(data)


def _photometric_errors(trainer: Trainer, samples, job: Job) -> list[float]:
    from .evaluate import predict_numpy
    from .losses import mean_photometric_error

    model = trainer.model
    was_training = model.training
    model.eval()
    errors = []
    try:
        for sample in samples:
            left = torch.from_numpy(sample.left).permute(2, 0, 1)[None].to(trainer.device)
            right = torch.from_numpy(sample.right).permute(2, 0, 1)[None].to(trainer.device)
            disparity = torch.from_numpy(
                predict_numpy(trainer.adapter, model, sample.left, sample.right, trainer.device))[None]
            errors.append(mean_photometric_error(left, right, disparity.to(trainer.device)))
            job.step(message=sample.name)
    finally:
        model.train(was_training)
    return errors


class _Created:
    """The files (and the output folder) this run creates before training starts, so a failed
    start can remove them again; files that were there before are left alone."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.folder_existed = folder.exists()
        self.files: list[Path] = []

    def file(self, path: Path) -> None:
        if not path.exists():
            self.files.append(path)

    def remove(self) -> None:
        for path in self.files:
            path.unlink(missing_ok=True)
        if not self.folder_existed:
            try:
                self.folder.rmdir()  # only if nothing else was put there
            except OSError:
                pass


def adapt_to_camera(backend: str, weights: str, data: str, out: str, *, iters: int = 300,
                    lr: float = 1e-4, batch: int = 1, crop: Optional[tuple[int, int]] = None,
                    freeze: Sequence[str] = (), device: str = "auto", max_disp: Optional[int] = None,
                    variant: Optional[str] = None, seed: int = 0, occlusion: str = "geometric",
                    smoothness: float = 0.01, amp: bool = False, resume: bool = False,
                    force: bool = False, threads: Optional[int] = None,
                    checkpoint_every: int = 200, workers: Optional[int] = None,
                    progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None,
                    notify: Optional[Callable[[str], None]] = None, handle_sigint: bool = False) -> AdaptResult:
    """Fine-tune ``backend`` from ``weights`` (registry id or file) on the pairs in ``data``
    (``folder:DIR`` or a folder path) with the photometric loss; writes a normal training run
    into ``out`` (weights, card with a before/after section, record) and returns the errors.

    ``progress`` gets a :class:`~depthapp.jobs.Progress` per iteration and per pair measured
    before and after (``stage`` names each phase); ``cancel`` stops after the current
    iteration with a checkpoint (:class:`~depthapp.errors.Cancelled`; continue with
    ``resume=True``).
    """
    if not weights:
        raise UsageError("adapting needs pretrained --weights (a registry id or a file)")
    folder = _folder_of(data)
    Job(None, progress, cancel, PREPARING_STAGE).start()
    from ..evaluation.datasets import open_dataset

    dataset = open_dataset("folder", folder)
    ids = [sample.id for sample in dataset.samples]
    heldout = ids[HOLDOUT_EVERY - 1::HOLDOUT_EVERY] if len(ids) >= HOLDOUT_EVERY else []
    training_ids = [i for i in ids if i not in heldout]
    out_path = Path(out).expanduser()
    ids_path = out_path / IDS_NAME
    created = _Created(out_path)
    try:
        out_path.mkdir(parents=True, exist_ok=True)
        # Written before the trainer checks the folder, and identical on a resume.
        created.file(ids_path)
        with atomic_path(ids_path, overwrite=True) as tmp:
            tmp.write_text("".join(f"{i}\n" for i in training_ids))

        config = TrainConfig(backend=backend, data=f"folder:{folder},ids={ids_path}", out=str(out_path),
                             init=weights, freeze=tuple(freeze), loss="photometric", iters=iters,
                             batch=batch, crop=crop, lr=lr, amp=amp, seed=seed, resume=resume,
                             device=device, max_disp=max_disp, variant=variant, occlusion=occlusion,
                             smoothness=smoothness, jitter="same", eval_pairs=0, val_pairs=0,
                             motorcycle=True, threads=threads, force=force, handle_sigint=handle_sigint,
                             checkpoint_every=checkpoint_every, workers=workers)
        trainer = Trainer(config, progress=progress, cancel=cancel, notify=notify)
        if len(trainer.source.samples) != len(training_ids):  # the Motorcycle guard dropped some
            dropped = len(training_ids) - len(trainer.source.samples)
            trainer.note(f"{dropped} pair(s) left out as depthapp's held-out test")
        samples = [TrainingSample(as_unit_float(pair.left), as_unit_float(pair.right), None, pair.name)
                   for pair in DatasetSequence(dataset, with_ground_truth=False)]
        names = [s.name for s in samples]
        resumed = trainer.iteration > 0
        if resumed:
            before_path = out_path / "adapt_before.npy"
            if not before_path.is_file():
                raise InputError(f"{before_path}: missing; the before numbers of this adaptation are lost "
                                 f"(pass --force to start over)")
            before = [float(v) for v in np.load(before_path)]
        else:
            job = trainer.phase("photometric error before", len(samples) + 1)
            before = _photometric_errors(trainer, samples, job)
            motorcycle_before = evaluate_motorcycle(trainer.adapter, trainer.model, trainer.device)
            job.step(message="Motorcycle (reporting only)")
            if motorcycle_before:
                created.file(out_path / "adapt_before_motorcycle.npy")
                with atomic_path(out_path / "adapt_before_motorcycle.npy", overwrite=True) as tmp:
                    with open(tmp, "wb") as handle:
                        np.save(handle, np.asarray([motorcycle_before["bad2"], motorcycle_before["epe"]]))
            created.file(out_path / "adapt_before.npy")
            with atomic_path(out_path / "adapt_before.npy", overwrite=True) as tmp:
                with open(tmp, "wb") as handle:
                    np.save(handle, np.asarray(before, dtype=np.float64))
    except BaseException:
        created.remove()  # a refused or interrupted start leaves nothing that blocks a rerun
        raise
    trainer.run()
    after = _photometric_errors(trainer, samples, trainer.phase("photometric error after", len(samples)))

    def mean_of(values, wanted):
        chosen = [v for name, v in zip(names, values) if name in wanted]
        return float(np.mean(chosen)) if chosen else None

    per_pair = list(zip(names, before, after))
    result_numbers = dict(before=float(np.mean(before)), after=float(np.mean(after)),
                          before_heldout=mean_of(before, set(heldout)),
                          after_heldout=mean_of(after, set(heldout)))
    lines = [f"- pairs: {len(ids)} from {folder} ({len(heldout)} held out of training: "
             f"{', '.join(heldout) if heldout else 'none, fewer than five pairs'})",
             f"- mean photometric error (0.85 (1 - SSIM) / 2 + 0.15 L1 over visible pixels, whole images): "
             f"{result_numbers['before']:.4f} before, {result_numbers['after']:.4f} after "
             f"({_change(result_numbers['before'], result_numbers['after'])})"]
    if heldout:
        lines.append(f"- on the held-out pairs: {result_numbers['before_heldout']:.4f} before, "
                     f"{result_numbers['after_heldout']:.4f} after "
                     f"({_change(result_numbers['before_heldout'], result_numbers['after_heldout'])})")
    lines += [f"- {name}: {b:.4f} -> {a:.4f}{' (held out)' if name in heldout else ''}"
              for name, b, a in per_pair]
    motorcycle_path = out_path / "adapt_before_motorcycle.npy"
    if motorcycle_path.is_file():
        bad2, epe = (float(v) for v in np.load(motorcycle_path))
        lines.append(f"- Motorcycle (reporting only, not used) with the initial weights: bad-2 {bad2:.2f} %, "
                     f"EPE {epe:.3f} px; after: see Measured accuracy")
    heldout_samples = [s for s in samples if s.name in set(heldout)] or samples[:1]
    training = trainer.finish({"Adaptation to the user's camera": "\n".join(lines)},
                              check_samples=heldout_samples)
    return AdaptResult(out=out_path, weights=training.weights, pairs=len(ids), heldout=len(heldout),
                       training=training, per_pair=per_pair, **result_numbers)


__all__ = ["AdaptResult", "adapt_to_camera"]
