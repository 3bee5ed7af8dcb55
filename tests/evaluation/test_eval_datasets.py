"""Dataset readers on small fixtures written in each official layout."""

from __future__ import annotations

import numpy as np
import pytest

from depthapp.errors import InputError, UsageError
from depthapp.evaluation import find_prediction, open_dataset
from depthapp.evaluation.datasets import left_right_consistent
from depthapp.io import write_image, write_kitti_disparity, write_pfm

from eval_fixtures import (kitti_quantise, random_image, write_kitti2012, write_kitti2015,
                           write_middeval3_scene, write_sceneflow_frame)


def kitti_frame(rng, height=6, width=9, fg_rows=2):
    occ = rng.uniform(5, 90, size=(height, width)).astype(np.float32)
    occ[0, :3] = np.nan
    noc = occ.copy()
    noc[:, -2:] = np.nan
    obj = np.zeros((height, width), dtype=np.uint8)
    obj[-fg_rows:] = 3
    return {"occ": occ, "noc": noc, "obj": obj}


def test_kitti2015_reads_the_official_layout(tmp_path, rng):
    frames = [kitti_frame(rng) for _ in range(3)]
    write_kitti2015(tmp_path, frames, rng)
    dataset = open_dataset("kitti2015", tmp_path)
    assert [s.id for s in dataset] == ["000000_10", "000001_10", "000002_10"]  # _11 frames ignored
    gt = dataset[1].load_ground_truth()
    np.testing.assert_array_equal(gt.disparity, kitti_quantise(frames[1]["occ"]))
    np.testing.assert_array_equal(gt.disparity_noc, kitti_quantise(frames[1]["noc"]))
    np.testing.assert_array_equal(gt.object_map, frames[1]["obj"])
    pair = dataset[0].load_pair()
    assert pair.left.shape == (6, 9, 3) and pair.name == "000000_10"
    # root may also be training/ itself
    assert len(open_dataset("kitti2015", tmp_path / "training")) == 3


def test_kitti2015_names_a_missing_ground_truth_file(tmp_path, rng):
    write_kitti2015(tmp_path, [kitti_frame(rng)], rng)
    (tmp_path / "training" / "obj_map" / "000000_10.png").unlink()
    with pytest.raises(InputError, match=r"obj_map.000000_10.png: missing"):
        open_dataset("kitti2015", tmp_path)


def test_kitti_testing_split_has_no_ground_truth(tmp_path, rng):
    write_kitti2015(tmp_path, [kitti_frame(rng)] * 2, rng, split="testing")
    dataset = open_dataset("kitti2015", tmp_path, split="testing")
    assert len(dataset) == 2 and not dataset.has_ground_truth
    assert dataset[0].load_ground_truth() is None


def test_kitti2012_reads_colour_pairs_and_reflective_maps(tmp_path, rng):
    frame = kitti_frame(rng)
    frame["refl_occ"] = np.where(rng.random(frame["occ"].shape) < 0.3, frame["occ"], np.nan)
    frame["refl_noc"] = np.where(np.isfinite(frame["noc"]), frame["refl_occ"], np.nan)
    write_kitti2012(tmp_path, [frame, frame], rng, refl=True)
    dataset = open_dataset("kitti2012", tmp_path)
    assert len(dataset) == 2 and dataset[0].left.parent.name == "colored_0"
    gt = dataset[0].load_ground_truth()
    np.testing.assert_array_equal(gt.refl_occ, kitti_quantise(frame["refl_occ"]))
    assert gt.object_map is None


def test_sceneflow_flyingthings_test_split_and_monkaa(tmp_path, rng):
    gt = rng.uniform(0, 250, size=(4, 5)).astype(np.float32)
    ids = [write_sceneflow_frame(tmp_path, "FlyingThings3D", f"TEST/{part}/0000", frame, gt, rng)
           for part in ("A", "C") for frame in (6, 7)]
    write_sceneflow_frame(tmp_path, "FlyingThings3D", "TRAIN/B/0001", 6, gt, rng)
    monkaa = write_sceneflow_frame(tmp_path, "Monkaa", "a_rain_of_stones_x2", 0, gt, rng)
    dataset = open_dataset("sceneflow", tmp_path)
    assert [s.id for s in dataset] == ids
    assert ids[0] == "FlyingThings3D/TEST/A/0000/0006"
    np.testing.assert_array_equal(dataset[0].load_ground_truth().disparity, gt)
    assert len(open_dataset("sceneflow", tmp_path, split="train")) == 1
    assert [s.id for s in open_dataset("sceneflow", tmp_path, subset="monkaa")] == [monkaa]
    assert len(open_dataset("sceneflow", tmp_path, subset="all")) == 6
    with pytest.raises(InputError, match="finalpass"):
        open_dataset("sceneflow", tmp_path, render_pass="final")
    with pytest.raises(UsageError, match="only FlyingThings3D"):
        open_dataset("sceneflow", tmp_path, subset="monkaa", split="test")


def middeval3(tmp_path, rng, with_full=True):
    gt_full = rng.uniform(1, 30, size=(8, 12)).astype(np.float32)
    gt_full[0, 0] = np.inf
    mask_full = np.full(gt_full.shape, 255, dtype=np.uint8)
    mask_full[:, :3] = 128
    mask_full[0, 0] = 0
    if with_full:
        write_middeval3_scene(tmp_path / "trainingF", "Adirondack", gt_full, mask_full, 40, rng)
    gt_half = gt_full[::2, ::2] / 2
    write_middeval3_scene(tmp_path / "trainingH", "Adirondack", gt_half, mask_full[::2, ::2], 20, rng)
    write_middeval3_scene(tmp_path / "testH", "Australia", None, None, 20, rng, image_shape=(4, 6))
    return gt_full, gt_half


def test_middeval3_scores_half_resolution_against_full_ground_truth(tmp_path, rng):
    gt_full, _ = middeval3(tmp_path, rng)
    dataset = open_dataset("middlebury", tmp_path, resolution="H")
    (sample,) = dataset.samples
    assert sample.id == "Adirondack" and sample.ndisp == 20 and sample.gt_scale == 1
    assert sample.files["disp"].parent.parent.name == "trainingF"
    gt = sample.load_ground_truth()
    assert gt.disparity.shape == (8, 12) and np.isnan(gt.disparity[0, 0])
    assert gt.nonocc_mask.sum() == np.isfinite(gt_full[:, 3:]).sum()
    assert sample.load_pair().calibration.ndisp == 20
    assert open_dataset("middlebury", tmp_path).resolution == "H"  # auto prefers H
    assert [s.id for s in open_dataset("middlebury", tmp_path, split="test")] == ["Australia"]


def test_middeval3_without_full_resolution_scales_the_errors(tmp_path, rng):
    middeval3(tmp_path, rng, with_full=False)
    (sample,) = open_dataset("middlebury", tmp_path / "trainingH").samples
    assert sample.gt_scale == 2 and sample.files["disp"].parent.parent.name == "trainingH"


def test_middlebury_2014_scenes_derive_nonoccluded_pixels_by_left_right_check(tmp_path, rng):
    scene = tmp_path / "Motorcycle-perfect"
    disp0 = np.full((3, 8), 2.0, dtype=np.float32)
    disp0[:, 5:] = 4.0  # a closer object on the right
    disp1 = np.full((3, 8), 2.0, dtype=np.float32)
    disp1[:, 1:4] = 4.0  # the object seen from the right camera, covering background pixels
    write_image(scene / "im0.png", random_image(rng, 3, 8))
    write_image(scene / "im1.png", random_image(rng, 3, 8))
    write_pfm(scene / "disp0.pfm", disp0)
    write_pfm(scene / "disp1.pfm", disp1)
    (sample,) = open_dataset("middlebury", tmp_path).samples
    gt = sample.load_ground_truth()
    expected = left_right_consistent(disp0, disp1)
    np.testing.assert_array_equal(gt.nonocc_mask, expected)
    # x=0,1: out of view; background x=3,4,5... x=3 -> 1 (object 4 != 2): occluded; x=4 -> 2 (4 != 2)
    assert expected[0].tolist() == [False, False, True, False, False, True, True, True]


def test_folder_dataset_layouts_with_optional_ground_truth(tmp_path, rng):
    gt = rng.uniform(1, 20, size=(5, 7)).astype(np.float32)
    for name in ("a", "b"):
        write_image(tmp_path / "lr" / "left" / f"{name}.png", random_image(rng, 5, 7))
        write_image(tmp_path / "lr" / "right" / f"{name}.png", random_image(rng, 5, 7))
    write_pfm(tmp_path / "lr" / "disp" / "a.pfm", gt)
    dataset = open_dataset("folder", tmp_path / "lr")
    assert [s.id for s in dataset] == ["a", "b"]
    assert dataset[0].has_ground_truth and not dataset[1].has_ground_truth
    np.testing.assert_array_equal(dataset[0].load_ground_truth().disparity, gt)

    write_middeval3_scene(tmp_path / "scenes", "Piano", gt, None, 32, rng)
    (scene,) = open_dataset("folder", tmp_path / "scenes").samples
    assert scene.id == "Piano" and scene.ndisp == 32 and scene.has_ground_truth

    write_image(tmp_path / "flat" / "x_left.png", random_image(rng, 5, 7))
    write_image(tmp_path / "flat" / "x_right.png", random_image(rng, 5, 7))
    write_kitti_disparity(tmp_path / "flat" / "x_disp.png", gt)
    (flat,) = open_dataset("folder", tmp_path / "flat").samples
    np.testing.assert_array_equal(flat.load_ground_truth().disparity, kitti_quantise(gt))


def test_id_lists_select_and_order_samples(tmp_path, rng):
    write_kitti2015(tmp_path, [kitti_frame(rng) for _ in range(3)], rng)
    ids = tmp_path / "val.txt"
    ids.write_text("# a split list\n000002_10\n000000_10\n")
    assert [s.id for s in open_dataset("kitti2015", tmp_path, ids=ids)] == ["000002_10", "000000_10"]
    ids.write_text("000007_10\n")
    with pytest.raises(InputError, match="000007_10"):
        open_dataset("kitti2015", tmp_path, ids=ids)


def test_bad_roots_and_options_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        open_dataset("kitti2015", tmp_path / "nope")
    with pytest.raises(InputError, match="no training/ folder"):
        open_dataset("kitti2015", tmp_path)
    with pytest.raises(UsageError, match="does not take --resolution"):
        open_dataset("kitti2015", tmp_path, resolution="H")
    with pytest.raises(UsageError, match="unknown dataset"):
        open_dataset("eth3d", tmp_path)


def test_find_prediction_in_submission_and_sdk_layouts(tmp_path, rng):
    write_kitti2015(tmp_path / "data", [kitti_frame(rng)], rng)
    sample = open_dataset("kitti2015", tmp_path / "data")[0]
    write_kitti_disparity(tmp_path / "sub" / "disp_0" / "000000_10.png", np.ones((6, 9)))
    assert find_prediction(tmp_path / "sub", sample).parent.name == "disp_0"
    (tmp_path / "npy").mkdir()
    np.save(tmp_path / "npy" / "000000_10.npy", np.ones((6, 9), dtype=np.float32))
    assert find_prediction(tmp_path / "npy", sample).suffix == ".npy"
    with pytest.raises(InputError, match="no prediction for 000000_10"):
        find_prediction(tmp_path / "data", sample)
    middeval = tmp_path / "mb"
    middeval3(middeval, rng)
    scene = open_dataset("middlebury", middeval)[0]
    write_pfm(tmp_path / "results" / "Adirondack" / "disp0SGBM.pfm", np.ones((4, 6)))
    assert find_prediction(tmp_path / "results", scene).name == "disp0SGBM.pfm"
