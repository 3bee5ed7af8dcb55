"""The viewer's "Adapt to my camera": our GC-Net weights fine-tuned on synthetic "camera" pairs
in a worker thread, before/after reported, the adapted weights handed to the viewer."""

from pathlib import Path

import pytest

from depthapp.errors import UsageError
from depthapp.gui.state import ViewerState
from depthapp.io import write_image

WEIGHTS = Path(__file__).resolve().parents[2] / "models" / "gcnet-synthetic-h100" / "weights.pt"


def test_adapt_runs_in_a_worker_and_offers_the_weights(qtbot, tmp_path):
    from depthapp.gui.adapt_dialog import AdaptDialog
    from depthapp.training.synthetic import generate, to_uint8

    for index in range(2):
        sample = generate(index + 70, height=64, width=128, max_disparity=24.0)
        write_image(tmp_path / "camera" / "left" / f"{index:02d}.png", to_uint8(sample.left))
        write_image(tmp_path / "camera" / "right" / f"{index:02d}.png", to_uint8(sample.right))
    state = ViewerState()
    state.set_backend("gcnet")
    state.set_weights(str(WEIGHTS))
    state.set_device("cpu")
    dialog = AdaptDialog(state, max_disp=32, crop=(64, 128), threads=1)
    qtbot.addWidget(dialog)
    dialog.folder_edit.setText(str(tmp_path / "camera"))
    dialog.out_edit.setText(str(tmp_path / "adapted"))
    dialog.iters_spin.setValue(2)
    dialog.start()
    assert not dialog.start_button.isEnabled()  # running in its thread, the dialog responsive
    qtbot.waitUntil(dialog.start_button.isEnabled, timeout=240_000)  # re-enabled when it ends
    assert dialog.result is not None, dialog.status.text()
    assert "photometric error" in dialog.status.text() and dialog.use_button.isEnabled()
    dialog.use_weights()
    assert state.weights("gcnet") == str(dialog.result.weights)
    assert Path(state.weights("gcnet")).exists()


def test_classical_backends_are_refused_with_a_reason(qtbot):
    from depthapp.gui.adapt_dialog import AdaptDialog

    state = ViewerState()
    state.set_backend("opencv-sgbm")
    with pytest.raises(UsageError, match="needs a learned backend"):
        AdaptDialog(state)
