"""The depthapp.* metadata of an exported model is checked before the onnx backend uses it."""

from __future__ import annotations

import pytest

from depthapp.errors import InputError
from depthapp.export.exporter import check_metadata

GOOD = {"depthapp.backend": "psmnet", "depthapp.input_kind": "rgb", "depthapp.input_names": "left,right",
        "depthapp.output_name": "disparity", "depthapp.mean": "[0.485, 0.456, 0.406]",
        "depthapp.std": "[0.229, 0.224, 0.225]", "depthapp.pad_multiple": "16", "depthapp.pad_mode": "constant",
        "depthapp.min_padded_size": "0", "depthapp.max_disp": "192", "depthapp.height": "64",
        "depthapp.width": "96", "depthapp.padded_height": "64", "depthapp.padded_width": "96",
        "depthapp.dynamic": "false", "depthapp.extra": "{}"}


def test_a_real_export_record_passes():
    assert check_metadata(dict(GOOD), "m.onnx") == GOOD
    assert check_metadata({**GOOD, "depthapp.dynamic": "true", "depthapp.padded_height": "dynamic",
                           "depthapp.padded_width": "dynamic", "depthapp.max_disp": ""}, "m.onnx")


@pytest.mark.parametrize("key,value", [
    ("depthapp.max_disp", "0"), ("depthapp.max_disp", "-4"), ("depthapp.max_disp", "99999999999"),
    ("depthapp.max_disp", "nan"), ("depthapp.pad_multiple", "0"), ("depthapp.height", "abc"),
    ("depthapp.padded_width", "1e308"), ("depthapp.mean", "[nan, 0, 0]"), ("depthapp.mean", "{}"),
    ("depthapp.std", "[0, 1, 1]"), ("depthapp.std", "[1, 2]"), ("depthapp.extra", "[1]"),
    ("depthapp.extra", "[" * 100000 + "]" * 100000), ("depthapp.dynamic", "maybe"),
    ("depthapp.input_names", ""), ("depthapp.mean", "[]"), ("depthapp.std", "[0.2]"),
])
def test_bad_values_name_the_file_and_key(key, value):
    with pytest.raises(InputError, match=rf"m\.onnx: metadata {key} ") as error:
        check_metadata({**GOOD, key: value}, "m.onnx")
    assert "\n" not in str(error.value)


def test_files_without_depthapp_metadata_pass_through():
    assert check_metadata({"producer": "x"}, "m.onnx") == {"producer": "x"}


def test_inputs_standardised_per_image_carry_no_mean_or_std():
    """MC-CNN's grey input is standardised over each image: its exports hold ``[]`` for both."""
    grey = {**GOOD, "depthapp.input_kind": "grey_standardised", "depthapp.input_names": "image",
            "depthapp.mean": "[]", "depthapp.std": "[]"}
    assert check_metadata(dict(grey), "m.onnx") == grey
    with pytest.raises(InputError, match=r"m\.onnx: metadata depthapp.std "):
        check_metadata({**grey, "depthapp.std": "[1.0]"}, "m.onnx")
