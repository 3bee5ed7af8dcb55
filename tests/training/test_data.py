import numpy as np
import pytest

from depthapp.errors import InputError, UsageError
from depthapp.io import write_image, write_kitti_disparity, write_pfm
from depthapp.training.data import (Augmentation, BatchMaker, TrainingSample, looks_like_heldout,
                                    parse_data_spec, validation_samples)
from depthapp.training.synthetic import generate, to_uint8

CROP = (32, 64)


def _write_kitti2015(root, count=2):
    folder = root / "training"
    for index in range(count):
        sample = generate(index + 100, height=48, width=96, max_disparity=20.0)
        name = f"{index:06d}_10.png"
        write_image(folder / "image_2" / name, to_uint8(sample.left))
        write_image(folder / "image_3" / name, to_uint8(sample.right))
        sparse = np.where(np.arange(96)[None, :] % 3 == 0, sample.disparity, np.nan)  # LiDAR-like
        write_kitti_disparity(folder / "disp_occ_0" / name, sparse)
        write_kitti_disparity(folder / "disp_noc_0" / name, sparse)
        write_image(folder / "obj_map" / name, np.zeros((48, 96), np.uint8))
    return root


def test_synthetic_specs():
    endless = parse_data_spec("synthetic", CROP, 16, seed=0)
    fixed = parse_data_spec("synthetic:5", CROP, 16, seed=0)
    assert endless.length is None and fixed.length == 5
    sample = fixed.load(3)
    assert sample.left.shape == (32, 64, 3) and np.nanmax(sample.disparity) < 15.0
    np.testing.assert_array_equal(sample.left, parse_data_spec("synthetic:5", CROP, 16, seed=0).load(3).left)
    assert not np.array_equal(sample.left, parse_data_spec("synthetic:5", CROP, 16, seed=1).load(3).left)
    for bad in ("synthetic:zero", "synthetic:0", "nothing:here", "kitti2015", ""):
        with pytest.raises(UsageError):
            parse_data_spec(bad, CROP, 16, seed=0)


def test_kitti_reader_feeds_training_with_sparse_ground_truth(tmp_path):
    source = parse_data_spec(f"kitti2015:{_write_kitti2015(tmp_path / 'kitti')}", CROP, 32, seed=0)
    assert source.length == 2 and source.has_ground_truth
    sample = source.load(1)
    assert sample.left.dtype == np.float32 and sample.left.max() <= 1.0
    assert np.isnan(sample.disparity[:, 1]).all() and np.isfinite(sample.disparity[:, 0]).all()
    joined = parse_data_spec(f"synthetic:2+kitti2015:{tmp_path / 'kitti'}", CROP, 32, seed=0)
    assert joined.length == 4 and joined.load(3).name == source.load(1).name


def test_folder_without_ground_truth_and_missing_dataset(tmp_path):
    for index in range(2):
        sample = generate(index, height=40, width=80)
        write_image(tmp_path / "pairs" / "left" / f"{index}.png", to_uint8(sample.left))
        write_image(tmp_path / "pairs" / "right" / f"{index}.png", to_uint8(sample.right))
    source = parse_data_spec(f"folder:{tmp_path / 'pairs'}", CROP, 16, seed=0)
    assert source.length == 2 and not source.has_ground_truth and source.load(0).disparity is None
    with pytest.raises(InputError, match="no such folder"):
        parse_data_spec(f"sceneflow:{tmp_path / 'nowhere'}", CROP, 16, seed=0)


def test_the_motorcycle_pair_is_refused_at_any_resolution(tmp_path, motorcycle):
    import cv2

    assert looks_like_heldout(motorcycle.left) and looks_like_heldout(motorcycle.right)
    half = cv2.resize(motorcycle.left, (371, 250), interpolation=cv2.INTER_AREA)
    assert looks_like_heldout(half)
    assert not looks_like_heldout(to_uint8(generate(0, height=500, width=741).left))
    write_image(tmp_path / "mine" / "left" / "a.png", motorcycle.left)
    write_image(tmp_path / "mine" / "right" / "a.png", motorcycle.right)
    with pytest.raises(InputError, match="held-out"):
        parse_data_spec(f"folder:{tmp_path / 'mine'}", CROP, 64, seed=0)
    with pytest.raises(InputError, match="held-out"):
        parse_data_spec("sample", CROP, 64, seed=0)
    # In a Middlebury collection the scene is left out by name and the rest is kept.
    for scene, pair in (("Motorcycle-perfect", motorcycle), ("Other", None)):
        left = motorcycle.left if pair is not None else to_uint8(generate(1, height=50, width=74).left)
        right = motorcycle.right if pair is not None else to_uint8(generate(1, height=50, width=74).right)
        write_image(tmp_path / "mb" / scene / "im0.png", left)
        write_image(tmp_path / "mb" / scene / "im1.png", right)
        write_pfm(tmp_path / "mb" / scene / "disp0.pfm", np.ones(left.shape[:2], np.float32))
    source = parse_data_spec(f"folder:{tmp_path / 'mb'}", CROP, 64, seed=0)
    assert source.length == 1 and source.samples[0].id == "Other"
    assert "Motorcycle-perfect" in source.description


def test_crop_is_the_same_window_in_both_views_and_the_ground_truth():
    height, width = 40, 60
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    coded = np.stack([xs / width, ys / height, np.zeros_like(xs)], axis=2)
    sample = TrainingSample(coded, coded.copy(), xs + 1000 * ys, "coded")
    cropped, extra = Augmentation((16, 24), "none").apply(sample, np.random.default_rng(3), xs.copy())
    x0 = int(round(cropped.left[0, 0, 0] * width))
    y0 = int(round(cropped.left[0, 0, 1] * height))
    assert (x0, y0) != (0, 0)
    np.testing.assert_array_equal(cropped.disparity, (xs + 1000 * ys)[y0:y0 + 16, x0:x0 + 24])
    np.testing.assert_array_equal(cropped.right, cropped.left)
    np.testing.assert_array_equal(extra, xs[y0:y0 + 16, x0:x0 + 24])
    # Larger than the image: zero images, unknown ground truth in the padding.
    padded, _ = Augmentation((48, 64), "none").apply(sample, np.random.default_rng(0))
    assert padded.left.shape == (48, 64, 3) and np.isnan(padded.disparity[40:]).all()


def test_colour_jitter_modes():
    image = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
    sample = TrainingSample(image, image.copy(), None, "same-views")
    same, _ = Augmentation((16, 16), "same").apply(sample, np.random.default_rng(1))
    per_view, _ = Augmentation((16, 16), "per-view").apply(sample, np.random.default_rng(1))
    assert not np.allclose(same.left, image)
    np.testing.assert_array_equal(same.left, same.right)
    assert not np.allclose(per_view.left, per_view.right)
    with pytest.raises(UsageError):
        Augmentation((16, 16), "sideways")


def test_batches_and_validation_set_are_reproducible():
    source = parse_data_spec("synthetic:4", CROP, 16, seed=2)
    maker = BatchMaker(source, 3, Augmentation(CROP), seed=2)
    batch = maker.make(1)
    assert tuple(batch.left.shape) == (3, 3, 32, 64) and tuple(batch.disparity.shape) == (3, 32, 64)
    assert batch.teacher is None
    again = BatchMaker(parse_data_spec("synthetic:4", CROP, 16, seed=2), 3, Augmentation(CROP), seed=2).make(1)
    assert batch.indices == again.indices and (batch.left == again.left).all()
    first = validation_samples(2, CROP, 16)
    second = validation_samples(2, CROP, 16)
    np.testing.assert_array_equal(first[1].left, second[1].left)
    training_scenes = [source.load(i).left for i in range(4)]
    assert not any(np.array_equal(first[0].left, scene) for scene in training_scenes)
