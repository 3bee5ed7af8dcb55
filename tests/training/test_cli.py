"""``depthapp train`` / ``depthapp adapt`` end to end, and trained weights loading in the backends."""

import csv

import numpy as np
import pytest
import torch

from depthapp.cli import main
from depthapp.io import write_image
from depthapp.training.synthetic import generate, to_uint8


def test_train_command_writes_the_log_card_and_record(tmp_path, capsys):
    out = tmp_path / "gcnet-run"
    argv = ["train", "--backend", "gcnet", "--variant", "tiny", "--max-disp", "32", "--crop", "64x64",
            "--data", "synthetic:2", "--out", str(out), "--iters", "3", "--threads", "1",
            "--eval-pairs", "1", "--val-pairs", "1", "--no-motorcycle", "--checkpoint-every", "2"]
    assert main(argv) == 0
    with open(out / "train_log.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames[:2] == ["iter", "loss"]
    assert [row["iter"] for row in rows] == ["1", "2", "3"]
    assert all(float(row["loss"]) > 0 for row in rows)
    assert sorted(p.name for p in out.rglob("*.csv")) == ["train_log.csv"]
    for name in ("checkpoint.pt", "weights.pt", "MODEL_CARD.md", "weights_record.json"):
        assert (out / name).is_file(), name
    printed = capsys.readouterr().out
    assert "held-out synthetic: EPE" in printed
    # The same command again refuses to overwrite; --resume continues to a larger --iters.
    assert main(argv) == 1
    assert "--resume" in capsys.readouterr().err
    assert main(argv[:argv.index("--iters")] + ["--iters", "4"] + argv[argv.index("--iters") + 2:]
                + ["--resume"]) == 0
    with open(out / "train_log.csv", newline="") as handle:
        assert [row["iter"] for row in csv.DictReader(handle)] == ["1", "2", "3", "4"]


def test_train_command_usage_errors(tmp_path, capsys):
    base = ["train", "--data", "synthetic:1", "--out", str(tmp_path / "x")]
    assert main(base + ["--backend", "sgm"]) == 2
    assert main(base + ["--backend", "gcnet", "--crop", "100x64"]) == 2
    assert "multiple of 32" in capsys.readouterr().err
    assert main(base + ["--backend", "gcnet", "--loss", "photometric", "--teacher", "sgm"]) == 2


@pytest.mark.parametrize("backend, options, size", [
    ("gcnet", {}, (64, 96)),
    ("psmnet", {}, (60, 100)),
    ("ganet", {"variant": "11"}, (40, 90)),
])
def test_exported_weights_load_in_the_backend_and_give_the_training_side_result(tmp_path, backend, options, size):
    from depthapp.backends import create_backend
    from depthapp.training.evaluate import predict_numpy
    from depthapp.training.models import get_adapter

    adapter = get_adapter(backend, variant=options.get("variant"), max_disp=24 if backend == "ganet" else 32)
    model = adapter.build(seed=0).eval()
    path = tmp_path / "weights.pt"
    torch.save(adapter.export_state(model, half=False), path)
    pair = generate(3, height=size[0], width=size[1], max_disparity=20.0).to_pair()
    result = create_backend(backend, weights=str(path), max_disp=adapter.max_disp, device="cpu",
                            **options).compute(pair)
    mine = predict_numpy(adapter, model, pair.left, pair.right, "cpu")
    assert result.disparity.shape == mine.shape == size
    np.testing.assert_allclose(result.disparity, mine, atol=2e-3)


def test_adapt_to_camera_lowers_the_photometric_error(tmp_path):
    from depthapp.jobs import CancelToken
    from depthapp.training.adapt import adapt_to_camera
    from depthapp.training.models import get_adapter

    for index in range(5):
        sample = generate(index + 40, height=48, width=96, max_disparity=20.0)
        write_image(tmp_path / "camera" / "left" / f"{index:02d}.png", to_uint8(sample.left))
        write_image(tmp_path / "camera" / "right" / f"{index:02d}.png", to_uint8(sample.right))
    adapter = get_adapter("tiny", max_disp=24)
    weights = tmp_path / "pretrained.pt"
    torch.save(adapter.export_state(adapter.build(seed=1), half=False), weights)
    updates = []
    result = adapt_to_camera("tiny", str(weights), f"folder:{tmp_path / 'camera'}", str(tmp_path / "adapted"),
                             iters=60, lr=3e-3, crop=(48, 96), max_disp=24, device="cpu", threads=1,
                             progress=updates.append, cancel=CancelToken())
    assert result.pairs == 5 and result.heldout == 1
    assert result.after < 0.9 * result.before, result.summary()
    # One held-out pair after 60 steps from a random network says little; it is reported.
    assert result.before_heldout > 0 and result.after_heldout > 0
    training = [update for update in updates if update.stage == "training"]
    assert training[-1].done == 60 and "loss" in training[-1].message
    # Every phase reports progress, in order: nothing runs silently before or after training.
    stages = list(dict.fromkeys(update.stage for update in updates))
    assert stages == ["preparing data and network", "photometric error before", "training",
                      "photometric error after", "measuring the saved weights"]
    before = [update for update in updates if update.stage == "photometric error before"]
    assert [update.done for update in before] == [0, 1, 2, 3, 4, 5, 6] and before[-1].total == 6
    card = (tmp_path / "adapted" / "MODEL_CARD.md").read_text()
    assert "Adaptation to the user's camera" in card and "(held out)" in card
    training_ids = (tmp_path / "adapted" / "adapt_training_ids.txt").read_text().split()
    assert training_ids == ["00", "01", "02", "03"]


@pytest.mark.parametrize("existing", [False, True], ids=["new-folder", "folder-with-a-file"])
def test_a_refused_adapt_leaves_nothing_behind(tmp_path, capsys, existing):
    """A usage error found after the training ids are written (here --lr, checked by the
    trainer) removes them again: the rerun with the right flag must not be blocked."""
    for index in range(2):
        sample = generate(index, height=32, width=64, max_disparity=10.0)
        write_image(tmp_path / "camera" / "left" / f"{index:02d}.png", to_uint8(sample.left))
        write_image(tmp_path / "camera" / "right" / f"{index:02d}.png", to_uint8(sample.right))
    out = tmp_path / "adapted"
    if existing:
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    code = main(["adapt", "--backend", "psmnet", "--weights", str(tmp_path / "none.pt"), "--data",
                 f"folder:{tmp_path / 'camera'}", "--out", str(out), "--lr", "-1"])
    assert code == 2 and "--lr must be positive" in capsys.readouterr().err
    if existing:
        assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    else:
        assert not out.exists()


@pytest.mark.network
def test_mccnn_init_from_the_registry_matches_the_backend_cost_volume(tmp_path):
    from depthapp.backends import create_backend
    from depthapp.training.models import get_adapter
    from depthapp.weights import fetch

    fetch("mccnn-fast-middlebury")
    adapter = get_adapter("mccnn", max_disp=16)
    model = adapter.build(seed=0)
    assert adapter.load_init(model, "mccnn-fast-middlebury").startswith("mccnn-fast-middlebury")
    pair = generate(2, height=40, width=72, max_disparity=12.0).to_pair()
    backend = create_backend("mccnn", weights="mccnn-fast-middlebury", max_disp=16, device="cpu")
    cost, _, _ = backend.cost_volume(pair)  # (H, W, D), -cosine, +1 outside the right image

    def tensor(image):
        return torch.from_numpy(image.astype(np.float32) / 255).permute(2, 0, 1)[None]

    with torch.no_grad():
        similarity = model.eval().similarity(adapter.prepare(tensor(pair.left)), adapter.prepare(tensor(pair.right)))
    np.testing.assert_allclose(-similarity[0].permute(1, 2, 0).numpy(), cost, atol=1e-4)
    # Exported again, the file is what the backend loads.
    path = tmp_path / "mccnn.pt"
    torch.save(adapter.export_state(model, half=False), path)
    again = create_backend("mccnn", weights=str(path), max_disp=16, device="cpu").cost_volume(pair)[0]
    np.testing.assert_allclose(again, cost, atol=1e-5)


def test_psmnet_training_outputs_are_the_network_and_differentiable():
    from depthapp.backends.psmnet.model import concat_cost_volume
    from depthapp.training.models import concatenation_volume, get_adapter

    # The training volume is the backend's tensor, and it carries gradients (the backend's
    # in-place construction cannot).
    left_features = torch.rand(1, 4, 8, 20, requires_grad=True)
    right_features = torch.rand(1, 4, 8, 20, requires_grad=True)
    volume = concatenation_volume(left_features, right_features, 6)
    with torch.no_grad():
        torch.testing.assert_close(volume.detach(), concat_cost_volume(left_features, right_features, 6))
    volume.sum().backward()
    # Each feature's gradient counts the levels that use it: right column x meets left x + d.
    assert (right_features.grad[..., 19] == 1).all() and (right_features.grad[..., 0] == 6).all()
    assert (left_features.grad[..., 0] == 1).all() and (left_features.grad[..., 10] == 6).all()

    adapter = get_adapter("psmnet", max_disp=16)
    model = adapter.build(seed=0).eval()
    prepared = adapter.prepare(torch.rand(1, 3, 256, 256)), adapter.prepare(torch.rand(1, 3, 256, 256))
    with torch.no_grad():
        outputs = adapter.train_outputs(model, *prepared)
        torch.testing.assert_close(outputs.final, model(*prepared))
    assert outputs.weights == [0.5, 0.7, 1.0] and len(outputs.disparities) == 3


def _progress_stages(stderr: str, description: str) -> list[str]:
    """The stages of the progress lines of ``description`` on stderr, in order of appearance."""
    lines = [line for line in stderr.splitlines() if line.startswith(description + ": ")]
    return list(dict.fromkeys(line[len(description) + 2:].split(" [")[0].split(":")[0] for line in lines))


@pytest.mark.slow
def test_train_and_adapt_commands_show_every_phase_with_an_eta_and_quiet_hides_them(tmp_path, capsys):
    import re

    train = ["train", "--backend", "tiny", "--max-disp", "24", "--crop", "48x96", "--data", "synthetic:2",
             "--iters", "2", "--threads", "1", "--eval-pairs", "1", "--val-pairs", "0", "--no-motorcycle"]
    assert main(train + ["--out", str(tmp_path / "trained")]) == 0
    captured = capsys.readouterr()
    assert _progress_stages(captured.err, "train tiny") == [
        "preparing data and network", "training", "measuring the saved weights"], captured.err
    assert re.search(r"train tiny: training \[.*\] 2/2 100% elapsed \d\d:\d\d ETA 00:00", captured.err)
    assert "weights:" in captured.out and "train tiny" not in captured.out

    for index in range(2):
        sample = generate(index + 40, height=48, width=96, max_disparity=20.0)
        write_image(tmp_path / "camera" / "left" / f"{index:02d}.png", to_uint8(sample.left))
        write_image(tmp_path / "camera" / "right" / f"{index:02d}.png", to_uint8(sample.right))
    adapt = ["adapt", "--backend", "tiny", "--weights", str(tmp_path / "trained" / "weights.pt"),
             "--data", f"folder:{tmp_path / 'camera'}", "--max-disp", "24", "--crop", "48x96",
             "--iters", "2", "--threads", "1"]
    assert main(adapt + ["--out", str(tmp_path / "adapted")]) == 0
    captured = capsys.readouterr()
    assert _progress_stages(captured.err, "adapt tiny") == [
        "preparing data and network", "photometric error before", "training",
        "photometric error after", "measuring the saved weights"], captured.err
    # The two pairs and the Motorcycle measured before training, counted with an ETA.
    assert re.search(r"adapt tiny: photometric error before \[.*\] 3/3 100% elapsed \d\d:\d\d ETA 00:00",
                     captured.err)
    assert "photometric error on your 2 pairs" in captured.out

    assert main(train + ["--out", str(tmp_path / "trained-quietly"), "--quiet"]) == 0
    assert main(adapt + ["--out", str(tmp_path / "adapted-quietly"), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert not re.search(r"^(train|adapt) tiny", captured.err, re.MULTILINE), captured.err
    assert "photometric error on your 2 pairs" in captured.out


@pytest.mark.slow
@pytest.mark.parametrize("backend, variant, max_disp, crop", [
    ("gcnet", "tiny", 32, "64x64"), ("gcnet", "small", 32, "64x64"), ("gcnet", "paper", 32, "64x64"),
    ("mccnn", "fast", None, "64x64"),
    ("ganet", "tiny11", 24, "96x96"), ("ganet", "tinydeep", 24, "96x96"),
])
def test_a_train_output_folder_runs_as_weights(tmp_path, capsys, backend, variant, max_disp, crop):
    """`train --out R` then `run L R --weights R`: the record decides the network and max_disp."""
    run = tmp_path / "run"
    assert main(["train", "--backend", backend, "--variant", variant, "--max-disp", str(max_disp or 32),
                 "--crop", crop, "--data", "synthetic:1", "--out", str(run), "--iters", "1",
                 "--threads", "1", "--eval-pairs", "0", "--val-pairs", "0", "--no-motorcycle"]) == 0
    pair = generate(5, height=48, width=64, max_disparity=12.0)
    write_image(tmp_path / "left.png", to_uint8(pair.left))
    write_image(tmp_path / "right.png", to_uint8(pair.right))
    capsys.readouterr()
    assert main(["run", str(tmp_path / "left.png"), str(tmp_path / "right.png"), "--backend", backend,
                 "--weights", str(run), "--device", "cpu", "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    if max_disp:  # MC-CNN's range is a search setting, not part of the network
        assert f"max disparity {max_disp} levels (weights record)" in printed
    assert (tmp_path / "out" / "disparity.pfm").is_file()
