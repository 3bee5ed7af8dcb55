"""Backends that run a model file (the onnx backend declares ``model_file_types``): picking one
in the viewer asks for the file, then runs it; the state carries the file to the backend."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the onnx backend needs onnxruntime")
onnx = pytest.importorskip("onnx", reason="writing a test model needs the onnx package")

from depthapp.backends import backend_names, get_backend_class  # noqa: E402
from depthapp.errors import InputError  # noqa: E402


def write_abs_difference_model(path):
    """A real depthapp-style ONNX export: ``|left - right|`` averaged over the normalised
    channels, for any image size (``depthapp.dynamic``), with the metadata ``depthapp export``
    writes. Its output is known exactly, so a test can tell the model really ran."""
    from onnx import TensorProto, helper

    from depthapp.export.spec import ExportSpec, metadata_of
    from depthapp.preprocessing import IMAGENET_MEAN, IMAGENET_STD, Preprocessing

    images = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 3, "h", "w"])
              for name in ("left", "right")]
    output = helper.make_tensor_value_info("disparity", TensorProto.FLOAT, [1, "h", "w"])
    nodes = [helper.make_node("Sub", ["left", "right"], ["difference"]),
             helper.make_node("Abs", ["difference"], ["magnitude"]),
             helper.make_node("ReduceMean", ["magnitude"], ["disparity"], axes=[1], keepdims=0)]
    graph = helper.make_graph(nodes, "abs_difference", images, [output])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    spec = ExportSpec(module=None, input_kind="rgb", input_names=("left", "right"),
                      output_name="disparity", backend="test-abs-difference",
                      preprocessing=Preprocessing("mean_std", IMAGENET_MEAN, IMAGENET_STD, pad_multiple=16))
    for key, value in metadata_of(spec, 64, 64, dynamic=True, fp16=False, export_format="onnx").items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


def expected_abs_difference(pair):
    from depthapp.preprocessing import IMAGENET_STD  # the means cancel in the difference

    scale = 255.0 * np.asarray(IMAGENET_STD, np.float32)
    difference = (pair.left.astype(np.float32) - pair.right.astype(np.float32)) / scale
    return np.abs(difference).mean(axis=2)


def test_the_need_for_a_model_file_is_declared_by_the_backend():
    needing = [name for name in backend_names() if get_backend_class(name).model_file_types]
    assert needing == ["onnx"]
    assert get_backend_class("onnx").model_file_types == (".onnx",)


def test_state_refuses_to_compute_without_the_model_file_then_runs_the_chosen_one(tmp_path, motorcycle):
    from depthapp.gui.state import ViewerState

    state = ViewerState()
    state.set_pair(motorcycle)
    state.set_backend("onnx")
    assert state.needs_model_file()
    with pytest.raises(InputError, match="runs a model file"):
        state.compute()
    with pytest.raises(InputError, match="no such file"):
        state.set_model_file(tmp_path / "missing.onnx")
    with pytest.raises(InputError, match="takes no model file"):
        state.set_model_file(tmp_path, "opencv-bm")
    model = write_abs_difference_model(tmp_path / "absdiff.onnx")
    changes = []
    state.model_file_changed.connect(lambda name, path: changes.append((name, path)))
    state.set_model_file(model)
    assert changes == [("onnx", str(model))] and not state.needs_model_file()
    state.compute()
    disparity = state.outputs["primary"].disparity
    np.testing.assert_allclose(disparity, expected_abs_difference(motorcycle), atol=1e-4)
    restored = ViewerState()
    assert restored.restore_settings(state.settings_snapshot()) == []
    assert restored.model_file("onnx") == str(model)
    snapshot = state.settings_snapshot()
    model.unlink()  # a remembered file that is gone is reported, not used
    problems = ViewerState().restore_settings(snapshot)
    assert len(problems) == 1 and "no such file" in problems[0]


def test_gui_command_line_model_file_runs_in_a_screenshot(tmp_path, capsys):
    from depthapp.cli import main

    model = write_abs_difference_model(tmp_path / "absdiff.onnx")
    shot = tmp_path / "shot.png"
    assert main(["gui", "--sample", "--backend", "onnx", "--model", str(model),
                 "--screenshot", str(shot)]) == 0
    assert shot.stat().st_size > 10_000
    capsys.readouterr()
    assert main(["gui", "--sample", "--backend", "opencv-bm", "--model", str(model),
                 "--screenshot", str(tmp_path / "other.png")]) == 1
    assert "opencv-bm takes no model file" in capsys.readouterr().err


def test_picking_onnx_in_the_window_asks_for_the_file_and_runs_it(window, tmp_path, wait_idle, dialogs):
    state = window.state
    state.open_sample()
    wait_idle(window)
    asked = []
    answers = [None]  # the user cancels the first dialog

    def ask(backend, types):
        asked.append((backend, types))
        return answers.pop(0) if answers else str(model)

    window.ask_model_file = ask  # the file dialog's hook: answered without a modal dialog
    model = write_abs_difference_model(tmp_path / "absdiff.onnx")
    combo = window.backend_combo
    combo.setCurrentIndex(combo.findData("onnx"))
    window._backend_picked()
    assert asked == [("onnx", (".onnx",))]
    assert state.backend != "onnx" and combo.currentData() == state.backend, "cancel keeps the backend"
    assert not dialogs, "cancelling the file dialog is not an error"

    combo.setCurrentIndex(combo.findData("onnx"))
    window._backend_picked()
    assert len(asked) == 2 and state.backend == "onnx"
    assert state.model_file() == str(model)
    assert window.model_button.isVisibleTo(window) and "absdiff.onnx" in window.model_button.text()
    wait_idle(window)
    assert not dialogs, dialogs
    outcome = state.outputs["primary"]
    assert outcome.backend == "onnx"
    np.testing.assert_allclose(outcome.disparity, expected_abs_difference(state.pair), atol=1e-4)

    # The model file button picks another file and runs it.
    other = write_abs_difference_model(tmp_path / "other.onnx")
    window.ask_model_file = lambda backend, types: str(other)
    window.model_button.click()
    wait_idle(window)
    assert state.model_file() == str(other) and "other.onnx" in window.model_button.text()
    assert state.outputs["primary"] is not outcome, "the new model ran"
    assert state.outputs["primary"].backend == "onnx" and not dialogs
    window.ask_model_file = ask

    # Back to a backend without a model file: no button, no question.
    combo.setCurrentIndex(combo.findData("opencv-bm"))
    window._backend_picked()
    assert len(asked) == 2 and not window.model_button.isVisibleTo(window)
