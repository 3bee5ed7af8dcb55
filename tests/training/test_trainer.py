"""The training loop on the test network (trains in seconds on one CPU thread)."""

import csv

import numpy as np
import pytest
import torch

from depthapp.errors import Cancelled, OutputExistsError, UsageError
from depthapp.jobs import CancelToken
from depthapp.training import TrainConfig, Trainer, train
from depthapp.training.data import parse_data_spec
from depthapp.training.evaluate import disparity_errors, predict_numpy


def _config(tmp_path, name="run", **overrides):
    values = dict(backend="tiny", data="synthetic:3", out=str(tmp_path / name), iters=6, batch=2,
                  crop=(32, 64), max_disp=16, lr=2e-3, checkpoint_every=2, val_every=3,
                  val_pairs=1, eval_pairs=1, motorcycle=False, jitter="asymmetric", seed=5)
    values.update(overrides)
    return TrainConfig(**values)


def _log(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_200_iterations_overfit_one_synthetic_pair(tmp_path):
    # Measured over four scenes with these settings: EPE 0.41-0.74 px after 200 iterations.
    config = _config(tmp_path, data="synthetic:1", iters=200, batch=1, crop=(48, 96), max_disp=24,
                     lr=5e-3, jitter="none", val_every=0, eval_pairs=0, checkpoint_every=1000, seed=1)
    trainer = Trainer(config)
    sample = trainer.source.load(0)
    before = disparity_errors(predict_numpy(trainer.adapter, trainer.model.eval(), sample.left,
                                            sample.right, "cpu"), sample.disparity)
    trainer.run()
    after = disparity_errors(predict_numpy(trainer.adapter, trainer.model.eval(), sample.left,
                                           sample.right, "cpu"), sample.disparity)
    assert before["epe"] > 5.0
    assert after["epe"] < 1.0, after
    rows = _log(tmp_path / "run" / "train_log.csv")
    assert [int(r["iter"]) for r in rows] == list(range(1, 201))
    assert float(rows[-1]["loss"]) < 0.2 * float(rows[0]["loss"])


def test_resume_after_a_stop_equals_an_uninterrupted_run(tmp_path):
    whole = Trainer(_config(tmp_path, "whole"))
    whole.run()

    cancel = CancelToken()

    def stop_after_three(progress):
        if progress.done == 3:
            cancel.cancel()

    first = Trainer(_config(tmp_path, "parts"), progress=stop_after_three, cancel=cancel)
    with pytest.raises(Cancelled, match="iteration 3/6"):
        first.run()
    assert len(_log(tmp_path / "parts" / "train_log.csv")) == 3
    second = Trainer(_config(tmp_path, "parts", resume=True))
    assert second.iteration == 3
    second.run()

    for key, value in whole.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[key]), key
    whole_rows = _log(tmp_path / "whole" / "train_log.csv")
    parts_rows = _log(tmp_path / "parts" / "train_log.csv")
    assert [r["loss"] for r in whole_rows] == [r["loss"] for r in parts_rows]
    assert [r["val_epe"] for r in whole_rows] == [r["val_epe"] for r in parts_rows]
    assert whole_rows[2]["val_epe"] and not whole_rows[1]["val_epe"]


def test_resume_rolls_the_log_back_to_the_checkpoint_and_checks_settings(tmp_path):
    def crash_at_five(progress):
        if progress.done == 5:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        Trainer(_config(tmp_path, iters=8, checkpoint_every=2), progress=crash_at_five).run()
    log = tmp_path / "run" / "train_log.csv"
    assert len(_log(log)) == 5  # row 5 was logged, its checkpoint never written
    checkpoint = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert checkpoint["trainer"]["iteration"] == 4
    with pytest.raises(UsageError, match="lr"):
        Trainer(_config(tmp_path, iters=8, lr=1e-2, resume=True))
    resumed = Trainer(_config(tmp_path, iters=8, checkpoint_every=2, resume=True))
    assert resumed.iteration == 4
    resumed.run()
    assert [int(r["iter"]) for r in _log(log)] == list(range(1, 9))
    whole = Trainer(_config(tmp_path, "whole", iters=8, checkpoint_every=2))
    whole.run()
    assert [r["loss"] for r in _log(log)] == [r["loss"] for r in _log(tmp_path / "whole" / "train_log.csv")]


def test_a_folder_holding_a_run_needs_resume_or_force(tmp_path):
    train(_config(tmp_path, iters=1))
    with pytest.raises(OutputExistsError, match="--resume"):
        Trainer(_config(tmp_path, iters=1))
    Trainer(_config(tmp_path, iters=1, force=True))
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_frozen_parts_stay_bit_identical(tmp_path):
    trainer = Trainer(_config(tmp_path, freeze=("feature",), iters=4))
    frozen_before = {k: v.clone() for k, v in trainer.model.feature.state_dict().items()}
    trained_before = {k: v.clone() for k, v in trainer.model.aggregation.state_dict().items()}
    trainer.run()
    for key, value in trainer.model.feature.state_dict().items():
        assert torch.equal(value, frozen_before[key]), key  # weights and BatchNorm statistics
    assert any(not torch.equal(v, trained_before[k]) for k, v in trainer.model.aggregation.state_dict().items())
    result = trainer.finish()
    assert result.frozen_tensors == len(frozen_before)
    assert "verified bit-identical" in result.card.read_text()


def test_unknown_part_and_bad_settings_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="no part 'wings'"):
        Trainer(_config(tmp_path, freeze=("wings",)))
    with pytest.raises(UsageError, match="--teacher"):
        Trainer(_config(tmp_path, loss="distill"))
    with pytest.raises(UsageError, match="multiple of 2"):
        Trainer(_config(tmp_path, crop=(33, 64)))
    with pytest.raises(UsageError, match="cannot be trained yet|not trainable"):
        Trainer(_config(tmp_path, backend="sgm"))


def test_photometric_and_distillation_runs_log_their_terms(tmp_path):
    photometric = Trainer(_config(tmp_path, "photo", loss="photometric", iters=2, amp=True))
    assert any("--amp has no effect on the CPU" in note for note in photometric.notes)
    photometric.run()
    rows = _log(tmp_path / "photo" / "train_log.csv")
    assert list(rows[0])[:5] == ["iter", "loss", "photometric", "smoothness", "masked"]
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    for mode in ("lr", "min-reprojection"):
        Trainer(_config(tmp_path, f"photo-{mode}", loss="photometric", occlusion=mode, iters=1)).run()
        assert float(_log(tmp_path / f"photo-{mode}" / "train_log.csv")[0]["masked"]) > 0

    distill = Trainer(_config(tmp_path, "distill", loss="distill", teacher="opencv-sgbm", iters=2,
                              crop=(64, 96), max_disp=16))
    distill.run()
    cached = sorted((tmp_path / "distill" / "teacher_cache").glob("*.npy"))
    assert 1 <= len(cached) <= 3
    teacher = np.load(cached[0])
    assert teacher.shape == (64, 96) and np.isnan(teacher).any() and np.isfinite(teacher).mean() > 0.3


def test_data_order_is_a_pure_function_of_seed_and_iteration(tmp_path):
    a = Trainer(_config(tmp_path, "a")).batches
    b = Trainer(_config(tmp_path, "b", workers=0)).batches
    for iteration in (0, 4, 1):
        first, second = a.make(iteration), b.make(iteration)
        assert first.indices == second.indices
        assert torch.equal(first.left, second.left) and torch.equal(first.disparity, second.disparity)
    # Each epoch of the 3 scenes visits every scene once.
    visits = [a.sample_index(p) for p in range(6)]
    assert sorted(visits[:3]) == [0, 1, 2] and sorted(visits[3:]) == [0, 1, 2]


def test_the_card_and_record_describe_the_exported_weights(tmp_path):
    from depthapp.training.card import load_weights_record, sha256_file

    result = train(_config(tmp_path, iters=2, eval_pairs=2))
    record = load_weights_record(result.record)
    assert record.backend == "tiny" and record.source.path == str(result.weights.resolve())
    assert record.sha256 == sha256_file(result.weights) and record.size == result.weights.stat().st_size
    from depthapp.weights import verify

    assert verify(record).ok  # the registry's own SHA-256 check accepts the LocalFile record
    state = torch.load(result.weights, weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    card = result.card.read_text()
    assert "held-out synthetic (2 procedural pairs" in card and "iterations: 2" in card
    assert sorted(p.name for p in (tmp_path / "run").iterdir() if p.suffix == ".csv") == ["train_log.csv"]


def test_background_workers_give_the_same_batches(tmp_path):
    from depthapp.training.data import iterate_batches

    maker = Trainer(_config(tmp_path)).batches
    here = list(iterate_batches(maker, 1, 4, workers=0))
    there = list(iterate_batches(maker, 1, 4, workers=2))
    assert [b.indices for b in here] == [b.indices for b in there]
    for a, b in zip(here, there):
        assert torch.equal(a.left, b.left) and torch.equal(a.right, b.right)
        assert torch.equal(a.disparity, b.disparity)


def test_ctrl_c_stops_after_the_iteration_with_a_checkpoint(tmp_path):
    import os
    import signal

    def interrupt_at_two(progress):
        if progress.done == 2:
            os.kill(os.getpid(), signal.SIGINT)

    previous = signal.getsignal(signal.SIGINT)
    trainer = Trainer(_config(tmp_path, handle_sigint=True), progress=interrupt_at_two)
    with pytest.raises(Cancelled, match="--resume"):
        trainer.run()
    assert signal.getsignal(signal.SIGINT) is previous
    checkpoint = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert checkpoint["trainer"]["iteration"] in (2, 3)  # the signal lands at the next bytecode
    assert any("Ctrl-C again" in note for note in trainer.notes)
