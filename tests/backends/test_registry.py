import numpy as np
import pytest

from depthapp.backends import (Backend, backend_names, create_backend, get_backend_class,
                               list_backends, register_backend)
from depthapp.errors import BackendUnavailableError, UsageError
from depthapp.params import Parameter


def test_every_planned_backend_is_named():
    assert {"opencv-bm", "opencv-sgbm", "sgm", "mccnn", "psmnet", "gcnet", "ganet", "onnx"} <= set(backend_names())


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(UsageError, match="unknown backend 'nope'.*opencv-sgbm"):
        get_backend_class("nope")


def test_registered_plugin_backend_runs_through_the_base_class(motorcycle):
    @register_backend
    class Constant(Backend):
        name = "test-constant"
        description = "returns a constant"
        parameters = (Parameter("value", "float", 1.5, "the disparity", 0, 100),)
        disparity_multiple = 8

        def _compute(self, pair, timer, cancel):
            with timer("fill"):
                return np.full((pair.height, pair.width), self.params["value"], np.float32)

    backend = create_backend("test-constant", max_disp=10, value="2.5")
    assert backend.max_disp == 16  # rounded up to the declared multiple
    result = backend.compute(motorcycle)
    assert result.disparity.shape == (500, 741) and np.all(result.disparity == 2.5)
    assert result.parameters == {"value": 2.5} and "fill" in result.timings
    with pytest.raises(UsageError, match="does not take speed"):
        create_backend("test-constant", speed=3)


def test_unavailable_backend_says_why_instead_of_breaking_the_import(monkeypatch):
    from depthapp import backends

    monkeypatch.setitem(backends._BUILTIN, "ghost", "depthapp.backends.ghost_module:Ghost")
    with pytest.raises(BackendUnavailableError, match="ghost.*ghost_module"):
        get_backend_class("ghost")
    info = {i.name: i for i in list_backends()}["ghost"]
    assert not info.available and "ghost_module" in info.problem


def test_cuda_request_without_cuda_is_a_clear_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the error path cannot happen here")
    with pytest.raises(BackendUnavailableError, match="CPU only"):
        create_backend("opencv-sgbm", device="cuda")
