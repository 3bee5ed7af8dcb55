import numpy as np
import pytest

from depthapp.training.synthetic import SyntheticConfig, generate


def _warp_right_to_left(right, disparity):
    """Bilinear sample of ``right`` at ``x - d`` (numpy reference, independent of the losses)."""
    height, width = disparity.shape
    source = np.arange(width)[None, :] - disparity
    low = np.clip(np.floor(source).astype(int), 0, width - 2)
    fraction = np.clip(source - low, 0, 1)[..., None]
    rows = np.arange(height)[:, None]
    return (1 - fraction) * right[rows, low] + fraction * right[rows, low + 1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_right_view_warped_by_ground_truth_reproduces_left_on_visible_pixels(seed):
    sample = generate(seed, height=96, width=192, max_disparity=40.0, photometric=False)
    visible = ~sample.occluded
    assert 0.5 < visible.mean() < 1.0  # objects really occlude something, most pixels are seen
    error = np.abs(_warp_right_to_left(sample.right, sample.disparity) - sample.left).mean(axis=2)
    off_by_one = np.abs(_warp_right_to_left(sample.right, sample.disparity + 1.0) - sample.left).mean(axis=2)
    assert error[visible].mean() < 0.012
    assert np.percentile(error[visible], 95) < 0.04
    assert off_by_one[visible].mean() > 3 * error[visible].mean()
    # Where the mask says "occluded" the warp is wrong far more often: the mask is not arbitrary.
    inside = sample.occluded & (np.arange(192)[None, :] - sample.disparity >= 0)
    if inside.sum() > 50:
        assert error[inside].mean() > 3 * error[visible].mean()


def test_ground_truth_is_exact_for_the_right_view_too():
    sample = generate(7, height=64, width=128, max_disparity=30.0, photometric=False)
    # Right pixel x shows the point with left coordinate x + d_R; where that left pixel sees the
    # same surface, its disparity equals d_R (planes evaluated at the same point).
    height, width = sample.right_disparity.shape
    target = np.rint(np.arange(width)[None, :] + sample.right_disparity).astype(int)
    inside = target < width
    rows = np.broadcast_to(np.arange(height)[:, None], (height, width))
    same = inside & (sample.left_surface[rows, np.clip(target, 0, width - 1)] == sample.right_surface)
    left_d = sample.disparity[rows, np.clip(target, 0, width - 1)]
    # Rounding to the pixel grid moves along a slanted plane by at most half a pixel times the slant.
    assert np.abs(left_d - sample.right_disparity)[same].max() < 0.5


def test_same_seed_same_pair_and_photometric_changes_leave_geometry_alone():
    a = generate((3, 4), height=48, width=96)
    b = generate((3, 4), height=48, width=96)
    clean = generate((3, 4), height=48, width=96, photometric=False)
    other = generate((3, 5), height=48, width=96)
    np.testing.assert_array_equal(a.left, b.left)
    np.testing.assert_array_equal(a.right, b.right)
    np.testing.assert_array_equal(a.disparity, clean.disparity)
    assert not np.array_equal(a.left, clean.left)  # gain/bias/gamma/noise applied
    assert not np.array_equal(a.disparity, other.disparity)
    for image in (a.left, a.right):
        assert image.dtype == np.float32 and image.min() >= 0 and image.max() <= 1


def test_disparities_stay_in_the_configured_range():
    config = SyntheticConfig(height=64, width=128, max_disparity=20.0, min_disparity=2.0)
    for seed in range(5):
        d = generate(seed, config).disparity
        assert d.min() >= 2.0 - 1e-4 and d.max() < 20.0
        assert d.shape == (64, 128) and np.isfinite(d).all()


def test_to_pair_gives_a_stereo_pair_with_ground_truth():
    pair = generate(1, height=32, width=64).to_pair("s1")
    assert pair.left.dtype == np.uint8 and pair.gt_disparity.shape == (32, 64) and pair.name == "s1"


def test_bad_config_is_refused():
    with pytest.raises(ValueError):
        SyntheticConfig(max_disparity=0.0)
    with pytest.raises(ValueError):
        SyntheticConfig(max_slant=1.0)
