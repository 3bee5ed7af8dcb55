import numpy as np
import pytest

from depthapp.backends.sgm import cost, reference


@pytest.mark.parametrize("window", [(3, 3), (5, 5), (7, 5), (7, 7), (7, 9)])
def test_census_matches_the_direct_definition(window, rng):
    image = rng.integers(0, 12, (11, 14)).astype(np.float32)  # many ties: "<" must be strict
    np.testing.assert_array_equal(cost.census_transform(image, window),
                                  reference.census_transform(image, window))


def test_census_bits_by_hand():
    image = np.array([[1, 5, 9], [2, 5, 3], [9, 0, 5]], np.float32)
    # Neighbours of the centre (5) in row-major order, centre skipped: 1 5 9 2 3 9 0 5;
    # darker than 5 -> bits 0 (1), 3 (2), 4 (3), 6 (0).
    assert int(cost.census_transform(image, (3, 3))[1, 1]) == 0b1011001


def test_census_window_limits():
    with pytest.raises(ValueError, match="odd"):
        cost.check_window((4, 5))
    with pytest.raises(ValueError, match="64-bit"):
        cost.check_window((9, 9))
    assert cost.check_window((7, 9)) == (7, 9)


@pytest.mark.parametrize("min_disp", [0, 3, -4])
def test_hamming_cost_matches_the_direct_definition(min_disp, rng):
    left = rng.integers(0, 30, (9, 16)).astype(np.float32)
    right = np.roll(left, -2, axis=1) + rng.integers(0, 4, left.shape)
    weights = cost.CostWeights(census=1, intensity=0, gradient=0, border_cost=77)
    got = cost.matching_cost(left, right, 7, min_disp, (5, 5), weights)
    expected = reference.hamming_cost(reference.census_transform(left, (5, 5)),
                                      reference.census_transform(right, (5, 5)), 7, min_disp,
                                      outside=77)
    assert got.dtype == np.uint8 and got.shape == (9, 16, 7)
    np.testing.assert_array_equal(got, expected)


def test_combined_cost_matches_its_formula(rng):
    left = rng.integers(0, 255, (8, 20)).astype(np.float32)
    right = rng.integers(0, 255, (8, 20)).astype(np.float32)
    weights = cost.CostWeights(census=1, intensity=0.5, intensity_cap=20, gradient=1.5,
                               gradient_cap=10, border_cost=9)
    got = cost.matching_cost(left, right, 6, 0, (3, 3), weights).astype(np.float64)
    hamming = reference.hamming_cost(reference.census_transform(left, (3, 3)),
                                     reference.census_transform(right, (3, 3)), 6, 0)
    grad_l, grad_r = cost.horizontal_gradient(left), cost.horizontal_gradient(right)
    for k in range(6):
        for x in range(20):
            if x - k < 0:
                assert np.all(got[:, x, k] == 9)
                continue
            expected = (hamming[:, x, k]
                        + 0.5 * np.minimum(np.abs(left[:, x] - right[:, x - k]), 20)
                        + 1.5 * np.minimum(np.abs(grad_l[:, x] - grad_r[:, x - k]), 10))
            np.testing.assert_array_equal(got[:, x, k], np.minimum(np.floor(expected + 0.5), 255))


def test_true_shift_has_the_lowest_cost(textured_pair):
    left, right = textured_pair(20, 40, disparity=5)
    volume = cost.matching_cost(left, right, 12, 0, (7, 7), cost.CostWeights())
    winners = volume[:, 12:].argmin(axis=2)  # away from the border band
    assert np.mean(winners == 5) > 0.99
