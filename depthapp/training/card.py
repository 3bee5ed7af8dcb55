"""The end of a run: exported weights, their measured accuracy, the model card and the
registry record.

``weights_record.json`` holds the fields of :class:`depthapp.weights.WeightsRecord` with a
``LocalFile`` source whose ``path`` is relative to the record's folder (so the folder can be
moved, e.g. into ``models/``), plus ``measured``: the numbers on the card.
:func:`load_weights_record` turns it into a ``WeightsRecord``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import torch

from ..io.atomic import atomic_path
from ..jobs import format_seconds
from ..weights.registry import RECORD_FORMAT, SGBM_MOTORCYCLE_BAD2
from .data import validation_samples
from .evaluate import evaluate_motorcycle, evaluate_samples

if TYPE_CHECKING:
    from .trainer import TrainResult, Trainer

LICENCE = "Apache-2.0 (trained by depthapp; no third-party data)"

def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _loss_summary(log_path: Path) -> dict[str, Optional[float]]:
    """Mean training loss of the first and last tenth of the logged iterations."""
    try:
        with open(log_path, newline="") as handle:
            losses = [float(row["loss"]) for row in csv.DictReader(handle) if row.get("loss")]
    except (OSError, ValueError, KeyError):
        return {"first": None, "last": None}
    if not losses:
        return {"first": None, "last": None}
    tenth = max(1, len(losses) // 10)
    return {"first": float(np.mean(losses[:tenth])), "last": float(np.mean(losses[-tenth:]))}


def _backend_check(trainer: "Trainer", weights_path: Path, samples) -> str:
    """Load the exported file with the backend itself and compare it with the trainer's own
    inference on one held-out pair (a backend that cannot load it would fail users later)."""
    from ..backends import backend_names, create_backend
    from ..data import StereoPair
    from .evaluate import predict_numpy
    from .synthetic import to_uint8

    adapter = trainer.adapter
    if adapter.backend not in backend_names():
        return "not applicable (no backend of this name)"
    if adapter.variant not in adapter.backend_variants:
        return (f"not run: the {adapter.backend} backend builds only "
                f"{', '.join(adapter.backend_variants) or 'other'} networks; these {adapter.variant} "
                f"weights load through depthapp.training")
    if not samples:
        return "not run (no held-out pairs)"
    first = samples[0]
    pair = StereoPair(to_uint8(first.left), to_uint8(first.right), name=first.name)
    try:
        backend = create_backend(trainer.adapter.backend, weights=str(weights_path),
                                 max_disp=trainer.adapter.max_disp, device=trainer.device,
                                 **trainer.adapter.backend_options())
        result = backend.compute(pair).disparity
    except Exception as error:  # reported on the card, never fatal: the weights are written
        return f"FAILED: {type(error).__name__}: {error}"
    if not adapter.same_output_as_backend:
        from .evaluate import disparity_errors

        if first.disparity is None:
            return f"loaded and run by the {adapter.backend} backend (with its own post-processing)"
        errors = disparity_errors(result, first.disparity)
        return (f"loaded and run by the {adapter.backend} backend (with its own post-processing): "
                f"EPE {errors['epe']:.3f} px, bad-2 {errors['bad2']:.2f} % on a held-out pair")
    mine = predict_numpy(trainer.adapter, _exported_model(trainer, weights_path), pair.left,
                         pair.right, trainer.device)
    difference = float(np.nanmax(np.abs(result - mine)))
    return (f"loaded by the {trainer.adapter.backend} backend; largest difference to the "
            f"training-side inference on a held-out pair: {difference:.3g} px")


def _exported_model(trainer: "Trainer", weights_path: Path):
    model = trainer.adapter.build()
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    trainer.adapter.load_state(model, state, str(weights_path))
    return model.to(trainer.device).eval()


def write_outputs(trainer: "Trainer", extra_sections: dict[str, str],
                  check_samples=None) -> "TrainResult":
    from .trainer import CARD_NAME, LOG_NAME, RECORD_NAME, WEIGHTS_NAME, TrainResult

    config, adapter, out = trainer.config, trainer.adapter, trainer.out
    weights_path = out / WEIGHTS_NAME
    with atomic_path(weights_path, overwrite=True) as tmp:
        torch.save(adapter.export_state(trainer.model, half=True), tmp)

    # Measured with the exported (fp16) file, i.e. with what users get.
    model = _exported_model(trainer, weights_path)
    samples = validation_samples(config.eval_pairs, trainer.crop, adapter.max_disp) if config.eval_pairs else []
    job = trainer.phase("measuring the saved weights", len(samples) + int(config.motorcycle) + 1)
    synthetic = evaluate_samples(adapter, model, samples, trainer.device, job) if samples else {}
    motorcycle = None
    if config.motorcycle:
        motorcycle = evaluate_motorcycle(adapter, model, trainer.device)
        job.step()
    backend_check = _backend_check(trainer, weights_path, samples or list(check_samples or []))
    job.step()
    del model

    sha256 = sha256_file(weights_path)
    size = weights_path.stat().st_size
    losses = _loss_summary(out / LOG_NAME)
    parameters = sum(p.numel() for p in trainer.model.parameters())
    record_id = f"{adapter.backend}-{adapter.variant}-{out.name}".lower().replace(" ", "-")
    measured: dict[str, Any] = {}
    if synthetic:
        measured["synthetic_heldout"] = {"pairs": len(samples), "size": list(trainer.crop), **synthetic}
    if motorcycle:
        measured["motorcycle"] = motorcycle
    notes = (f"trained by depthapp train for {trainer.iteration} iterations on {trainer.data_description}"
             f" with the {config.loss} loss")
    record = {
        "format": RECORD_FORMAT,
        "id": record_id,
        "backend": adapter.backend,
        "variant": adapter.variant,
        "source": {"kind": "LocalFile", "path": WEIGHTS_NAME},
        "sha256": sha256,
        "size": size,
        "licence": LICENCE,
        "training_data": trainer.data_description,
        "preprocessing": adapter.preprocessing.to_dict(),
        "preprocessing_text": adapter.preprocessing.describe(),
        "padding_multiple": adapter.preprocessing.pad_multiple,
        "max_disp": adapter.max_disp,
        "metrics": {},
        "notes": notes,
        "measured": measured,
        "backend_options": adapter.backend_options(),
    }
    record_path = out / RECORD_NAME
    _write_text(record_path, json.dumps(record, indent=2) + "\n")

    card_path = out / CARD_NAME
    _write_text(card_path, _card_text(trainer, record, synthetic, motorcycle, losses, parameters,
                                      backend_check, len(samples), extra_sections))
    return TrainResult(out=out, iterations=trainer.iteration, seconds=trainer.elapsed,
                       final_loss=trainer.final_loss, weights=weights_path, card=card_path,
                       record=record_path, synthetic=synthetic, motorcycle=motorcycle,
                       frozen_tensors=trainer.frozen_count, notes=list(trainer.notes))


def _number(value: Optional[float], digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _card_text(trainer, record, synthetic, motorcycle, losses, parameters, backend_check,
               sample_count, extra_sections) -> str:
    config, adapter = trainer.config, trainer.adapter
    crop = f"{trainer.crop[0]}x{trainer.crop[1]}"
    rate = trainer.iteration / trainer.elapsed if trainer.elapsed > 0 else float("nan")
    device = trainer.device
    if device.startswith("cuda"):
        device += f" ({torch.cuda.get_device_name(torch.device(device))})"
    lines = [
        f"# {adapter.architecture} ({adapter.variant}), trained by depthapp",
        "",
        f"Weights: `{record['source']['path']}` (fp16 state dict, {record['size']:,} bytes, "
        f"sha256 `{record['sha256']}`); registry record: `weights_record.json` (id `{record['id']}`).",
        "",
        (f"Use: `depthapp run --backend {adapter.backend} --weights {trainer.out / 'weights.pt'} "
         f"--max-disp {adapter.max_disp}"
         + "".join(f" --{k.replace('_', '-')} {v}" for k, v in adapter.backend_options().items()) + " LEFT RIGHT`"
         if adapter.variant in adapter.backend_variants else
         f"Use: this {adapter.variant} network is not one the {adapter.backend} backend builds; load it "
         f"with depthapp.training (e.g. `--init {trainer.out}` to continue training)"),
        "",
        "## Network",
        f"- {adapter.describe()}; {parameters:,} parameters",
        f"- input: {record['preprocessing_text']}",
        f"- the paper's training recipe, for comparison: {adapter.paper_recipe or 'n/a'}",
        "",
        "## Training",
        f"- data: {trainer.data_description}",
        f"- loss: {config.loss}" + (f" (teacher: {config.teacher}, run on the whole pair, cached)" if config.teacher else "")
        + (f" (occlusion: {config.occlusion}, smoothness weight {config.smoothness:g})" if config.loss == "photometric" else ""),
        f"- iterations: {trainer.iteration}; batch {config.batch}; crop {crop}; Adam lr {config.lr:g} "
        f"({config.lr_schedule}{f', warm-up {config.warmup}' if config.warmup else ''}); "
        f"colour jitter {config.jitter}; seed {config.seed}",
        f"- mixed precision: {'yes' if trainer.amp else 'no'}; device: {device}; torch {torch.__version__}; "
        f"{platform.python_implementation()} {platform.python_version()}",
        f"- initial weights: {trainer.init_label or 'random (seeded)'}",
        f"- frozen: {', '.join(trainer.frozen) if trainer.frozen else 'nothing'}"
        + (f" ({trainer.frozen_count} tensors verified bit-identical at the end)" if trainer.frozen else ""),
        f"- time: {format_seconds(trainer.elapsed)} ({_number(rate, 2)} iterations/s)",
        f"- training loss: {_number(losses['first'], 4)} over the first tenth of the iterations, "
        f"{_number(losses['last'], 4)} over the last tenth (per iteration in `train_log.csv`)",
        "",
        "## Measured accuracy (with the fp16 file above)",
    ]
    if synthetic:
        lines.append(
            f"- held-out synthetic ({sample_count} procedural pairs of {crop}, seeds no training "
            f"stream uses): EPE {_number(synthetic['epe'])} px, bad-1 {_number(synthetic['bad1'], 2)} %, "
            f"bad-2 {_number(synthetic['bad2'], 2)} %, bad-3 {_number(synthetic['bad3'], 2)} %")
    else:
        lines.append("- held-out synthetic: not measured (eval_pairs 0)")
    if motorcycle:
        caveat = ""
        if motorcycle["gt_max"] >= adapter.max_disp:
            caveat = (f" (the ground truth reaches {motorcycle['gt_max']:.0f} px, beyond this "
                      f"network's {adapter.max_disp} levels)")
        lines.append(
            f"- Middlebury Motorcycle (quarter size, reporting only: never trained, tuned or "
            f"selected on): bad-2 {_number(motorcycle['bad2'], 2)} % of pixels with ground truth "
            f"(missing estimates counted as errors), EPE {_number(motorcycle['epe'])} px{caveat}; "
            f"OpenCV SGBM scores {SGBM_MOTORCYCLE_BAD2} %")
    else:
        lines.append("- Middlebury Motorcycle: not measured")
    lines.append(f"- backend check: {backend_check}")
    for title, body in extra_sections.items():
        lines += ["", f"## {title}", body.rstrip()]
    if trainer.notes:
        lines += ["", "## Notes"] + [f"- {note}" for note in trainer.notes]
    lines += ["", f"Written {time.strftime('%Y-%m-%d %H:%M:%S')} by depthapp train."]
    return "\n".join(lines) + "\n"


def load_weights_record(path: str | Path):
    """A :class:`depthapp.weights.WeightsRecord` from a run's ``weights_record.json``."""
    from ..weights.registry import record_from_file

    return record_from_file(path)


__all__ = ["LICENCE", "RECORD_FORMAT", "load_weights_record", "sha256_file", "write_outputs"]
