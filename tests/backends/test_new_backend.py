"""What a new learned backend costs (issue 16): one module (``toy_backend.py``) plus one
registry line. From its declarations alone it gets CLI flags with their type, range and
default, a ``depthapp backends`` entry, viewer controls, evaluation through the runner, an
export, and training through the adapter interface."""

from __future__ import annotations

import numpy as np
import pytest

from depthapp import backends
from depthapp.backends import Backend, create_backend, get_backend_class, register_backend
from depthapp.cli import main
from depthapp.data import StereoPair
from depthapp.io import read_pfm, write_image, write_pfm


@pytest.fixture
def toy(monkeypatch):
    """The one registry line, for this test only."""
    monkeypatch.setattr(backends, "_REGISTERED", dict(backends._REGISTERED))
    monkeypatch.setitem(backends._BUILTIN, "toy", "toy_backend:ToyBackend")
    return get_backend_class("toy")


@pytest.fixture
def pair_files(tmp_path, motorcycle):
    import cv2

    left, right = (cv2.resize(image, (92, 62), interpolation=cv2.INTER_AREA)
                   for image in (motorcycle.left, motorcycle.right))
    root = tmp_path / "pairs"
    write_image(root / "left" / "bike.png", left)
    write_image(root / "right" / "bike.png", right)
    write_pfm(root / "disp" / "bike.pfm", np.full((62, 92), 5.0, np.float32))
    return root, StereoPair(left, right)


def test_cli_flags_and_listing_come_from_the_declaration(toy, pair_files, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["run", "--backend", "toy", "--help"])
    help_text = capsys.readouterr().out
    assert "--temperature FLOAT" in help_text and "float [0.1..10] (default 1.0)" in help_text
    assert main(["backends"]) == 0
    listing = capsys.readouterr().out
    assert "toy: toy correlation network (test only) [learned, cpu+cuda, exportable, trainable;" in listing
    assert "--temperature float [0.1..10] (default 1.0): softmax temperature" in listing
    root, pair = pair_files
    images = [str(root / "left" / "bike.png"), str(root / "right" / "bike.png")]
    assert main(["run", *images, "--backend", "toy", "--temperature", "2", "--device", "cpu",
                 "--out", str(tmp_path / "run")]) == 0
    expected = create_backend("toy", device="cpu", temperature=2.0).compute(pair).disparity
    np.testing.assert_array_equal(read_pfm(tmp_path / "run" / "disparity.pfm"), expected)
    assert main(["run", *images, "--backend", "toy", "--temperature", "20", "--out", str(tmp_path / "bad")]) == 2
    assert "--temperature: 20.0 is above the maximum 10" in capsys.readouterr().err


def test_viewer_controls_come_from_the_declaration(toy, qtbot):
    from depthapp.gui.param_panel import ParameterPanel
    from depthapp.gui.state import ViewerState, is_fast_backend

    state = ViewerState()
    state.set_backend("toy")
    state.set_parameter("temperature", 3.0)
    panel = ParameterPanel()
    qtbot.addWidget(panel)
    panel.build(toy.parameters, state.parameters())
    assert panel.values() == {"temperature": 3.0}
    assert not is_fast_backend("toy")  # not declared interactive: the viewer waits for Compute


def test_eval_runs_it_through_the_runner(toy, pair_files, tmp_path):
    from depthapp.evaluation import BackendSpec, evaluate, open_dataset

    root, pair = pair_files
    spec = BackendSpec.make("toy", device="cpu", temperature=2.0)
    result = evaluate(open_dataset("folder", root), spec, out_dir=tmp_path / "eval")
    assert result.computed == 1 and result.summary["parameters"]["temperature"] == 2.0
    expected = create_backend("toy", device="cpu", temperature=2.0).compute(pair).disparity
    assert result.summary["epe"] == pytest.approx(float(np.mean(np.abs(expected - 5.0))), rel=1e-5)


def test_export_uses_its_export_spec_and_preprocessing(toy, tmp_path):
    from depthapp.export.exporter import export_backend

    report = export_backend("toy", None, "onnx", 40, 60, tmp_path / "toy.onnx", log=lambda _: None)
    assert report.max_abs_diff < 1e-4
    assert report.metadata["depthapp.pad_multiple"] == "8" and report.metadata["depthapp.backend"] == "toy"


def test_training_goes_through_its_adapter_and_the_backend_loads_the_result(toy, tmp_path):
    import torch

    from depthapp.training import TrainConfig, train
    from depthapp.training.models import get_adapter, trainable_backends

    assert "toy" in trainable_backends() and type(get_adapter("toy")).__name__ == "ToyAdapter"
    torch.set_num_threads(1)
    result = train(TrainConfig(backend="toy", data="synthetic:2", out=str(tmp_path / "train"), iters=2,
                               batch=1, crop=(32, 64), max_disp=16, checkpoint_every=2, val_every=2,
                               val_pairs=1, eval_pairs=1, motorcycle=False, seed=1))
    card = result.card.read_text()
    assert "loaded by the toy backend" in card  # the backend ran the trained weights (card check)
    assert "zero-pad top and right to a multiple of 8" in card  # its preprocessing, described
    backend = create_backend("toy", weights=str(result.weights), device="cpu", max_disp=16)
    assert backend.network.features[0].weight.dtype == torch.float32


def test_a_taken_name_is_refused_unless_replaced(toy):
    class Impostor(Backend):
        name = "toy"

        def _compute(self, pair, timer, cancel):
            return np.zeros((pair.height, pair.width), np.float32)

    with pytest.raises(ValueError, match="'toy' is taken by toy_backend:ToyBackend"):
        register_backend(Impostor)
    with pytest.raises(ValueError, match="'sgm' is taken"):  # a built-in, imported or not
        register_backend(type("OtherSGM", (Impostor,), {"name": "sgm"}))
    register_backend(replace=True)(Impostor)
    assert get_backend_class("toy") is Impostor
    register_backend(toy, replace=True)
    assert get_backend_class("toy") is toy
