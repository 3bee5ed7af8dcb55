"""One source of truth for parameters (issue 16): whichever path builds a backend (Python API,
CLI, eval runner, eval worker, viewer, camera viewer, export, training), it gets the same
``backend.params`` for the same backend, weights and user values: the backend's own defaults
for those weights (``default_params``) under the user's values. The MC-CNN accurate weights
ran with the fast settings in eval and both viewers before, because those paths passed every
declared default."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from depthapp.backends import create_backend, get_backend_class
from depthapp.data import StereoPair
from depthapp.weights import RECORDS, records_for

MAX_DISP = 48


@pytest.fixture(scope="module")
def fetched():
    """Every registry checkpoint in the cache (downloaded once if missing)."""
    from depthapp.weights import fetch

    return {weights_id: fetch(weights_id) for weights_id in RECORDS}


@pytest.fixture(scope="module")
def weights_files(tmp_path_factory):
    """Seeded random state dicts for the backends without published weights."""
    from depthapp.backends.ganet.model import GANET_11, GANet
    from depthapp.backends.gcnet.model import GCNet

    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    files = {}
    for name, model in (("gcnet", GCNet(get_backend_class("gcnet").round_max_disp(MAX_DISP))),
                        ("ganet", GANet(get_backend_class("ganet").round_max_disp(MAX_DISP), GANET_11))):
        files[name] = str(folder / f"{name}.pth")
        torch.save(model.state_dict(), files[name])
    return files


@pytest.fixture(scope="module")
def onnx_features(tmp_path_factory):
    """An ONNX export of the fast Middlebury MC-CNN feature network (the onnx backend's input)."""
    from depthapp.export.exporter import export_backend

    path = tmp_path_factory.mktemp("onnx") / "features.onnx"
    export_backend("mccnn", None, "onnx", 32, 48, path, dynamic=True, log=lambda _: None)
    return str(path)


def a_user_value(cls) -> dict:
    """One parameter set away from its default: a bool flipped, else a number at an end of
    its range (the classes declare what is valid)."""
    for parameter in cls.parameters:
        if parameter.kind == "bool":
            return {parameter.name: not parameter.default}
    for parameter in cls.parameters:
        if parameter.kind in ("int", "float") and None not in (parameter.minimum, parameter.maximum):
            value = parameter.maximum if parameter.maximum != parameter.default else parameter.minimum
            if parameter.odd and int(value) % 2 == 0:
                value -= 1
            return {parameter.name: parameter.convert(value)}
    raise AssertionError(f"{cls.name} declares nothing to override")


def cases():
    """``(backend, weights)`` for every backend of the registry (its lines: the built-ins and
    any entry points; not the test-only classes other tests register at run time) and every
    weights record."""
    from depthapp import backends

    for name in sorted(backends._targets()):
        records = [record.id for record in records_for(name)]
        for weights in records or [None]:
            yield name, weights


# --------------------------------------------------------------------------- the paths

def by_api(name, options, user):
    return create_backend(name, max_disp=MAX_DISP, device="cpu", **options, **user)


def by_cli(name, options, user):
    from depthapp.cli import parse_command_line
    from depthapp.cli.backend_args import cli_parameters, create_cli_backend

    argv = ["run", "--sample", "--backend", name, "--device", "cpu", "--offline"]
    if "weights" in options:
        argv += ["--weights", options["weights"]]
    if "model" in options:
        argv += ["--model", options["model"]]
    for key, value in user.items():
        argv += ["--" + key.replace("_", "-"), str(value)]
    _, args, extra = parse_command_line(argv)
    return create_cli_backend(args, cli_parameters(args, extra), MAX_DISP)


def by_eval(name, options, user):
    from depthapp.evaluation import BackendSpec

    return BackendSpec.make(name, max_disp=MAX_DISP, device="cpu", **options, **user).create()


def by_eval_worker(name, options, user):
    from depthapp.evaluation import BackendSpec
    from depthapp.evaluation import runner

    spec = pickle.loads(pickle.dumps(BackendSpec.make(name, max_disp=MAX_DISP, device="cpu",
                                                      **options, **user)))
    try:
        return runner.worker_backend(spec)[0]
    finally:
        runner._BACKENDS.pop(spec, None)


def viewer_state(name, options, user):
    from depthapp.gui.state import ViewerState

    state = ViewerState()
    state.set_pair(StereoPair(np.zeros((32, 48, 3), np.uint8), np.zeros((32, 48, 3), np.uint8)))
    state.set_device("cpu")
    state.set_max_disp(MAX_DISP)
    state.set_backend(name)
    state.set_weights(options.get("weights"))
    if "model" in options:
        state.set_model_file(options["model"])
    for key, value in user.items():
        state.set_parameter(key, value)
    return state


def by_viewer(name, options, user):
    return viewer_state(name, options, user).make_request().create_backend(MAX_DISP)


def by_camera_viewer(name, options, user):
    from depthapp.camera.viewer import LivePanel

    panel = LivePanel(viewer_state(name, options, user))
    try:
        return panel.make_backend()
    finally:
        panel.deleteLater()


def by_export(name, options, user):
    from depthapp.export.exporter import backend_to_export

    if user:
        pytest.fail("export takes no parameter values")
    return backend_to_export(name, options.get("weights"), MAX_DISP, offline=True)


def by_training(name, options, user):
    from depthapp.training.data import TeacherCache

    return TeacherCache(name, MAX_DISP, device="cpu", params={**options, **user})._get_backend()


PATHS = {"api": by_api, "cli": by_cli, "eval": by_eval, "eval worker": by_eval_worker,
         "viewer": by_viewer, "camera viewer": by_camera_viewer, "export": by_export,
         "training": by_training}


@pytest.mark.slow
@pytest.mark.network  # the registry checkpoints
@pytest.mark.parametrize("name,weights", list(cases()))
def test_every_path_builds_the_same_parameters(qtbot, fetched, name, weights, weights_files,
                                               onnx_features):
    cls = get_backend_class(name)
    options = {}
    if weights or name in weights_files:
        options["weights"] = weights or weights_files[name]
    if name == "onnx":
        options["model"] = onnx_features
    paths = dict(PATHS)
    if not cls.can_export():
        del paths["export"]
    # One user value: every other parameter is then the backend's default, so one round shows
    # both. Export takes no values: it is compared on the defaults alone.
    user = a_user_value(cls)
    built = {path: build(name, options, user) for path, build in paths.items() if path != "export"}
    got = {path: (backend.params, backend.max_disp, backend.weights) for path, backend in built.items()}
    reference = got["api"]
    different = {path: value for path, value in got.items() if value != reference}
    assert not different, f"{name} {weights} {user}: api gives {reference}, {different}"
    defaults = cls.default_params(options.get("weights"))
    if name != "onnx":  # the onnx backend's defaults come from the file, not from weights
        assert reference[0] == {**defaults, **user}
    if "export" in paths:
        assert by_export(name, options, {}).params == defaults


@pytest.mark.network
def test_accurate_mccnn_weights_get_the_accurate_settings_everywhere(qtbot, fetched):
    """The bug: eval and both viewers ran the accurate checkpoint with the fast settings."""
    from depthapp.backends.mccnn.backend import PAPER_MIDDLEBURY

    options = {"weights": "mccnn-accurate-middlebury"}
    assert RECORDS["mccnn-accurate-middlebury"].variant == "accurate"
    for path in ("eval", "eval worker", "viewer", "camera viewer"):
        params = PATHS[path]("mccnn", options, {}).params
        assert {key: params[key] for key in PAPER_MIDDLEBURY["accurate"]} == PAPER_MIDDLEBURY["accurate"], path
        assert params["cbca_after"] == 16 and params["p1"] == pytest.approx(1.3)
    # a user's value still wins over the variant's default
    assert by_eval("mccnn", options, {"p1": 2.0}).params["p1"] == 2.0


def test_default_params_answer_for_the_weights():
    mccnn = get_backend_class("mccnn")
    assert mccnn.default_params("mccnn-accurate-dfc")["cbca_after"] == 16
    assert mccnn.default_params("mccnn-fast-dfc")["cbca_after"] == 0
    assert mccnn.default_params(None) == mccnn.default_params("mccnn-fast-middlebury")
    sgbm = get_backend_class("opencv-sgbm")
    assert sgbm.default_params() == {p.name: p.default for p in sgbm.parameters}
