"""Every learned backend exported at a small size: parity with torch on the real sample (the
exporter's own check, and its reported difference), the metadata stored in the file, the
``onnx`` backend running the export through the CLI, and the failure paths.

MC-CNN and PSMNet use their published checkpoints (fetched from the package index into the
weights cache, as their backend tests do); GC-Net and GA-Net have no public checkpoint, so
they are exported with randomly initialised weights of a fixed seed, which checks the export
just as well (parity is a property of the graph, not of the training).
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import onnx
import pytest
import torch

from depthapp.cli import main
from depthapp.errors import UsageError, WeightsError
from depthapp.export import exporter
from depthapp.export.exporter import ExportVerificationError, export_backend, read_onnx_metadata
from depthapp.io import read_pfm, write_image
from depthapp.weights import RECORDS, fetch

quiet = {"log": lambda message: None}


def stored_metadata(path, fmt: str) -> dict[str, str]:
    """The metadata as stored in the file: ``metadata_props`` (onnx) or the extra file."""
    if fmt == "onnx":
        return read_onnx_metadata(path)
    extra = {"depthapp.json": ""}
    if fmt == "torchscript":
        torch.jit.load(str(path), _extra_files=extra)
    else:
        torch.export.load(str(path), extra_files=extra)
    return json.loads(extra["depthapp.json"])


def resized_pair(pair, height, width, folder):
    """The Motorcycle views at ``width x height`` written as PNGs; returns their paths."""
    paths = []
    for name, image in (("left.png", pair.left), ("right.png", pair.right)):
        write_image(folder / name, cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA))
        paths.append(str(folder / name))
    return paths


def run_disparity(images, out, *options) -> np.ndarray:
    assert main(["run", *images, "--out", str(out), *options]) == 0
    return read_pfm(out / "disparity.pfm")


def random_weights(tmp_path, architecture: str, max_disp: int) -> str:
    """A seeded random state dict of GC-Net or GA-Net-11, saved where ``--weights`` reads it."""
    torch.manual_seed(0)
    if architecture == "gcnet":
        from depthapp.backends.gcnet.model import GCNet

        model = GCNet(max_disp)
    else:
        from depthapp.backends.ganet.model import GANET_11, GANet

        model = GANet(max_disp, GANET_11)
    path = tmp_path / f"{architecture}-seed0.pth"
    torch.save(model.state_dict(), path)
    return str(path)


@pytest.fixture(scope="module")
def mccnn_fast():
    return fetch("mccnn-fast-middlebury")


@pytest.fixture(scope="module")
def psmnet_checkpoint():
    return fetch("psmnet-kitti2015")


# --------------------------------------------------------------------------- mccnn

@pytest.mark.network
@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "pt2"])
def test_mccnn_feature_network_exports_with_parity_and_metadata(tmp_path, mccnn_fast, fmt):
    report = export_backend("mccnn", None, fmt, 48, 64, tmp_path / f"features.{fmt}", **quiet)
    assert report.max_abs_diff < 1e-4  # unit-length features; measured <= 2e-7
    meta = stored_metadata(report.path, fmt)
    record = RECORDS["mccnn-fast-middlebury"]
    assert meta["depthapp.backend"] == "mccnn" and meta["depthapp.format"] == fmt
    assert meta["depthapp.weights_id"] == record.id and meta["depthapp.weights_sha256"] == record.sha256
    assert meta["depthapp.input_kind"] == "grey_standardised" and meta["depthapp.output_name"] == "features"
    assert (meta["depthapp.height"], meta["depthapp.width"]) == ("48", "64")
    assert json.loads(meta["depthapp.extra"])["variant"] == "fast"
    assert json.loads(meta["depthapp.extra"])["channels"] == 64


@pytest.mark.network
def test_mccnn_fp16_export_is_checked_against_its_own_tolerance(tmp_path, mccnn_fast):
    pytest.importorskip("onnxconverter_common", reason="--fp16 needs onnxconverter-common")
    report = export_backend("mccnn", None, "onnx", 48, 64, tmp_path / "features16.onnx", fp16=True, **quiet)
    assert report.tolerance == 0.01 and report.max_abs_diff < 0.01  # measured 6e-4
    model = onnx.load(str(report.path))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # float32 I/O
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)
    assert read_onnx_metadata(report.path)["depthapp.fp16"] == "true"


@pytest.fixture(scope="module")
def fast_features_onnx(tmp_path_factory, mccnn_fast):
    """A dynamic-size ONNX export of the fast Middlebury feature network, made by the CLI."""
    path = tmp_path_factory.mktemp("mccnn") / "mccnn_fast_features.onnx"
    assert main(["export", "--backend", "mccnn", "--format", "onnx", "--dynamic", "--height", "48",
                 "--width", "64", "--out", str(path)]) == 0
    return path


@pytest.mark.network
def test_mccnn_onnx_features_run_the_mccnn_pipeline_through_the_cli(tmp_path, fast_features_onnx,
                                                                    motorcycle, capsys):
    """Exported at 64x48 with dynamic axes, run on the quarter-size Motorcycle (185x125): the
    whole MC-CNN method on onnxruntime's features gives the torch backend's disparities."""
    meta = read_onnx_metadata(fast_features_onnx)
    assert meta["depthapp.dynamic"] == "true" and meta["depthapp.padded_width"] == "dynamic"
    images = resized_pair(motorcycle, 125, 185, tmp_path)
    capsys.readouterr()
    onnx_disparity = run_disparity(images, tmp_path / "onnx", "--backend", "onnx", "--model",
                                   str(fast_features_onnx), "--max-disp", "32")
    printed = capsys.readouterr().out
    assert "onnxruntime ran on CPUExecutionProvider" in printed and "sgm" in printed
    torch_disparity = run_disparity(images, tmp_path / "torch", "--backend", "mccnn", "--max-disp", "32")
    assert onnx_disparity.shape == torch_disparity.shape == (125, 185)
    assert np.array_equal(np.isfinite(onnx_disparity), np.isfinite(torch_disparity))
    both = np.isfinite(torch_disparity)
    difference = np.abs(onnx_disparity - torch_disparity)[both]
    assert np.mean(difference <= 0.05) > 0.999 and difference.max() < 0.5  # measured max 3e-6 px
    # Same method, so the result is a real MC-CNN disparity map, not just equal noise.
    gt = cv2.resize(motorcycle.gt_disparity, (185, 125), interpolation=cv2.INTER_NEAREST) / 4
    valid = np.isfinite(gt) & both
    assert np.mean(np.abs(onnx_disparity - gt)[valid] <= 2.0) > 0.7


@pytest.mark.network
def test_mccnn_pipeline_parameters_pass_through_the_onnx_backend(tmp_path, fast_features_onnx, motorcycle):
    from depthapp.backends import create_backend
    from depthapp.data import StereoPair

    small = StereoPair(*(cv2.resize(image, (92, 62), interpolation=cv2.INTER_AREA)
                         for image in (motorcycle.left, motorcycle.right)))
    backend = create_backend("onnx", model=str(fast_features_onnx), max_disp=16, sgm=False, median_size=1)
    reference = create_backend("mccnn", device="cpu", max_disp=16, sgm=False, median_size=1)
    assert backend.params["sgm"] is False and backend.params["p2"] == pytest.approx(24.3)
    result = backend.compute(small)
    assert "sgm" not in result.timings and result.parameters["median_size"] == 1
    np.testing.assert_allclose(result.disparity, reference.compute(small).disparity, atol=1e-3)
    with pytest.raises(UsageError, match="need no weights") as caught:
        create_backend("onnx", model=str(fast_features_onnx), weights="mccnn-fast-middlebury")
    assert caught.value.with_flags().endswith("need no --weights")


def test_pipeline_parameters_are_refused_for_a_whole_network(tmp_path, tiny_backend, capsys):
    model = tmp_path / "tiny.onnx"
    export_backend("test-tiny-net", None, "onnx", 40, 40, model, **quiet)
    images = [str(tmp_path / "left.png"), str(tmp_path / "right.png")]
    for path in images:
        write_image(path, np.zeros((40, 40, 3), np.uint8))
    assert main(["run", *images, "--backend", "onnx", "--model", str(model), "--p1", "3",
                 "--out", str(tmp_path / "o")]) == 2
    assert "--p1: MC-CNN pipeline parameters" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.network
def test_mccnn_accurate_features_use_the_decision_network_they_were_exported_with(tmp_path, quarter_pair):
    for weights_id in ("mccnn-accurate-middlebury", "mccnn-accurate-dfc"):
        fetch(weights_id)
    from depthapp.backends import create_backend

    model = tmp_path / "accurate.onnx"
    report = export_backend("mccnn", "mccnn-accurate-middlebury", "onnx", 40, 64, model, **quiet)
    assert report.max_abs_diff < 1e-4 and json.loads(report.metadata["depthapp.extra"])["channels"] == 112
    crop = quarter_pair(40, 64)
    result = create_backend("onnx", model=str(model), max_disp=16).compute(crop)
    assert "cross aggregation" in result.timings and result.parameters["cbca_after"] == 16
    reference = create_backend("mccnn", weights="mccnn-accurate-middlebury", device="cpu", max_disp=16)
    # Features within ~1e-5 of torch's; 16 cross aggregations after SGM and the winner's
    # sub-pixel fit turn that into near-ties, as many as the rounding of torch's convolutions
    # makes: oneDNN picks its kernels by CPU, and with opencv 5.1/4.14, onnxruntime 1.31/1.22
    # alike this crop has 99.8 % within 0.05 px (max 0.064) with AVX-512 kernels, 99.0 % (0.11)
    # with AVX2 (ONEDNN_MAX_CPU_ISA=AVX2), 98.1 % (0.18) with SSE4.1. The wrong decision
    # network (DFC's) gives 7 % within 0.05 px: 95 % separates the two on any CPU.
    difference = np.abs(result.disparity - reference.compute(crop).disparity)
    assert np.mean(difference <= 0.05) > 0.95 and difference.max() < 0.5
    with pytest.raises(WeightsError, match="not the checkpoint"):
        create_backend("onnx", model=str(model), weights="mccnn-accurate-dfc")
    with pytest.raises(WeightsError, match="cannot score"):
        create_backend("onnx", model=str(model), weights="mccnn-fast-middlebury")


@pytest.fixture
def quarter_pair(motorcycle):
    """``(height, width)`` crop of the quarter-size Motorcycle, from its textured middle."""
    from depthapp.data import StereoPair

    def crop(height, width):
        left, right = (cv2.resize(image, (185, 125), interpolation=cv2.INTER_AREA)
                       for image in (motorcycle.left, motorcycle.right))
        rows, cols = slice(40, 40 + height), slice(60, 60 + width)
        return StereoPair(left[rows, cols], right[rows, cols])

    return crop


@pytest.mark.network
def test_a_corrupted_mccnn_export_is_detected_and_removed(tmp_path, mccnn_fast, monkeypatch):
    """The exporter's check on a real network: the written file's first convolution is
    perturbed after export (a bit flip in storage, a bad conversion pass), and the export fails
    and leaves nothing behind."""
    write = exporter._export_onnx

    def write_then_corrupt(spec, inputs, tmp, *args, **kwargs):
        write(spec, inputs, tmp, *args, **kwargs)
        model = onnx.load(str(tmp))
        first = next(tensor for tensor in model.graph.initializer if list(tensor.dims) == [64, 1, 3, 3])
        values = onnx.numpy_helper.to_array(first).copy()
        values[: len(values) // 2] *= -1.0
        first.CopyFrom(onnx.numpy_helper.from_array(values, first.name))
        onnx.save(model, str(tmp))

    monkeypatch.setattr(exporter, "_export_onnx", write_then_corrupt)
    with pytest.raises(ExportVerificationError, match=r"differs from torch by .*the file was removed"):
        export_backend("mccnn", None, "onnx", 32, 48, tmp_path / "features.onnx", **quiet)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- gcnet

@pytest.mark.parametrize("fmt", ["torchscript", "pt2"])
def test_gcnet_exports_with_parity_and_metadata(tmp_path, fmt):
    weights = random_weights(tmp_path, "gcnet", 32)
    report = export_backend("gcnet", weights, fmt, 40, 60, tmp_path / f"gcnet.{fmt}", max_disp=32, **quiet)
    assert report.max_abs_diff < 1e-3  # measured 0 (the same kernels run)
    meta = stored_metadata(report.path, fmt)
    assert meta["depthapp.backend"] == "gcnet" and meta["depthapp.max_disp"] == "32"
    assert (meta["depthapp.padded_height"], meta["depthapp.padded_width"]) == ("64", "64")
    assert json.loads(meta["depthapp.extra"])["fixed_size"] == [40, 60]


@pytest.mark.slow
def test_gcnet_onnx_export_runs_in_the_onnx_backend_through_the_cli(tmp_path, motorcycle):
    weights = random_weights(tmp_path, "gcnet", 32)
    model = tmp_path / "gcnet.onnx"
    assert main(["export", "--backend", "gcnet", "--weights", weights, "--max-disp", "32",
                 "--format", "onnx", "--height", "40", "--width", "60", "--out", str(model)]) == 0
    meta = read_onnx_metadata(model)
    assert meta["depthapp.backend"] == "gcnet" and meta["depthapp.weights_sha256"] == ""
    images = resized_pair(motorcycle, 40, 60, tmp_path)
    exported = run_disparity(images, tmp_path / "onnx", "--backend", "onnx", "--model", str(model))
    reference = run_disparity(images, tmp_path / "torch", "--backend", "gcnet", "--weights", weights,
                              "--max-disp", "32")
    assert np.abs(exported - reference).max() < 0.01  # measured 6e-6 px


def test_gcnet_dynamic_export_is_refused_before_any_work(tmp_path, capsys):
    """Its graph standardises and crops a fixed-size window; as a dynamic ONNX graph it came
    out specialised (and wrong) at other sizes, so the exporter refuses --dynamic."""
    weights = random_weights(tmp_path, "gcnet", 32)
    out = tmp_path / "out"
    out.mkdir()
    assert main(["export", "--backend", "gcnet", "--weights", weights, "--max-disp", "32", "--format",
                 "onnx", "--dynamic", "--height", "40", "--width", "60", "--out", str(out / "g.onnx")]) == 2
    assert "exports for one image size only" in capsys.readouterr().err
    assert list(out.iterdir()) == []


# --------------------------------------------------------------------------- psmnet

@pytest.mark.slow
@pytest.mark.network
def test_psmnet_onnx_export_runs_in_the_onnx_backend_through_the_cli(tmp_path, psmnet_checkpoint,
                                                                     motorcycle, capsys):
    """The official KITTI 2015 model exported for 128x64 images: the network needs at least
    256x256 (its pyramid pooling), so the export pads to that and records it."""
    model = tmp_path / "psmnet.onnx"
    assert main(["export", "--backend", "psmnet", "--format", "onnx", "--height", "64", "--width",
                 "128", "--out", str(model)]) == 0
    assert "verified: max |exported - torch|" in capsys.readouterr().out
    meta = read_onnx_metadata(model)
    record = RECORDS["psmnet-kitti2015"]
    assert meta["depthapp.weights_id"] == record.id and meta["depthapp.weights_sha256"] == record.sha256
    assert (meta["depthapp.padded_height"], meta["depthapp.padded_width"]) == ("256", "256")
    assert meta["depthapp.min_padded_size"] == "256" and meta["depthapp.pad_mode"] == "top_right"
    assert meta["depthapp.max_disp"] == "192" and json.loads(meta["depthapp.mean"])[0] == pytest.approx(0.485)
    assert len(onnx.load(str(model), load_external_data=False).graph.node) < 1000  # dynamo + slim
    images = resized_pair(motorcycle, 64, 128, tmp_path)
    exported = run_disparity(images, tmp_path / "onnx", "--backend", "onnx", "--model", str(model))
    reference = run_disparity(images, tmp_path / "torch", "--backend", "psmnet")
    assert np.abs(exported - reference).max() < 0.01  # measured 1e-5 px


@pytest.mark.slow
@pytest.mark.network
@pytest.mark.parametrize("fmt", ["torchscript", "pt2"])
def test_psmnet_exports_with_parity_and_metadata(tmp_path, psmnet_checkpoint, fmt):
    report = export_backend("psmnet", None, fmt, 64, 128, tmp_path / f"psmnet.{fmt}", **quiet)
    assert report.max_abs_diff < 1e-3  # measured 0
    meta = stored_metadata(report.path, fmt)
    assert meta["depthapp.weights_id"] == "psmnet-kitti2015" and meta["depthapp.format"] == fmt
    assert (meta["depthapp.padded_height"], meta["depthapp.padded_width"]) == ("256", "256")


# --------------------------------------------------------------------------- ganet

@pytest.mark.slow
def test_ganet_exports_to_torchscript_at_a_fixed_size(tmp_path):
    """GA-Net-11 (its SGA scan and LGA in pure torch) traced for 40x40 images, checked.
    (pt2 works as well but takes 45 s here, most of it saving and loading the 7,700-node
    program: see the table in depthapp/export/exporter.py.)"""
    weights = random_weights(tmp_path, "ganet", 24)
    fmt = "torchscript"
    report = export_backend("ganet", weights, fmt, 40, 40, tmp_path / "ganet.pt", max_disp=24, **quiet)
    assert report.max_abs_diff < 1e-3  # measured 6e-5 px
    meta = stored_metadata(report.path, fmt)
    assert meta["depthapp.backend"] == "ganet" and json.loads(meta["depthapp.extra"])["fixed_size"] == [40, 40]
    assert (meta["depthapp.padded_height"], meta["depthapp.padded_width"]) == ("48", "48")


def test_ganet_onnx_is_refused_up_front_and_leaves_no_file(tmp_path, capsys):
    weights = random_weights(tmp_path, "ganet", 24)
    out = tmp_path / "out"
    out.mkdir()
    assert main(["export", "--backend", "ganet", "--weights", weights, "--format", "onnx",
                 "--height", "40", "--width", "40", "--out", str(out / "ganet.onnx")]) == 2
    error = capsys.readouterr().err
    assert "ganet cannot be exported to onnx" in error and "--format torchscript or pt2" in error
    assert list(out.iterdir()) == []


# --------------------------------------------------------------------------- --device

def test_onnx_export_refuses_a_device_and_names_the_provider_instead(tmp_path, capsys):
    weights = random_weights(tmp_path, "gcnet", 32)
    out = tmp_path / "out"
    out.mkdir()
    assert main(["export", "--backend", "gcnet", "--weights", weights, "--max-disp", "32",
                 "--format", "onnx", "--device", "cuda", "--height", "40", "--width", "60",
                 "--out", str(out / "g.onnx")]) == 2
    assert "--provider cuda" in capsys.readouterr().err
    assert list(out.iterdir()) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_a_cuda_export_without_a_gpu_is_a_clear_error_and_leaves_no_file(tmp_path, capsys):
    weights = random_weights(tmp_path, "gcnet", 32)
    out = tmp_path / "out"
    out.mkdir()
    assert main(["export", "--backend", "gcnet", "--weights", weights, "--max-disp", "32",
                 "--format", "torchscript", "--device", "cuda", "--height", "40", "--width", "60",
                 "--out", str(out / "g.pt")]) == 1
    assert "no CUDA device" in capsys.readouterr().err
    assert list(out.iterdir()) == []


def test_a_cpu_export_records_its_device(tmp_path):
    weights = random_weights(tmp_path, "gcnet", 32)
    report = export_backend("gcnet", weights, "torchscript", 40, 60, tmp_path / "g.pt",
                            max_disp=32, **quiet)
    assert stored_metadata(report.path, "torchscript")["depthapp.device"] == "cpu"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("fmt", ["torchscript", "pt2"])
def test_a_cuda_export_runs_on_cuda_with_parity(tmp_path, fmt):
    """Traced on CUDA, the graph runs there (a CPU trace fails with a device mismatch)."""
    weights = random_weights(tmp_path, "gcnet", 32)
    report = export_backend("gcnet", weights, fmt, 40, 60, tmp_path / f"g.{fmt}", max_disp=32,
                            device="cuda", **quiet)
    assert report.max_abs_diff < 1e-3
    assert stored_metadata(report.path, fmt)["depthapp.device"].startswith("cuda")
