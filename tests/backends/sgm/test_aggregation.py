import numpy as np
import pytest

from depthapp.backends.sgm import aggregation, reference
from depthapp.backends.sgm.aggregation import PATH_DIRECTIONS


def _volume(rng, dtype, shape=(7, 9, 6)):
    cost = rng.integers(0, 50, shape)
    if dtype == np.float32:
        return (cost + rng.random(shape)).astype(np.float32)
    return cost.astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("path", range(8))
def test_each_path_follows_the_recurrence(path, dtype, rng):
    cost = _volume(rng, dtype)
    p1 = rng.integers(1, 8, cost.shape[:2])
    p2 = rng.integers(8, 40, cost.shape[:2])
    got = aggregation.aggregate_cost(cost, p1, p2, paths=(path,))
    expected = reference.aggregate_path(cost, p1, p2, path)
    if dtype == np.float32:
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-3)
    else:
        assert got.dtype == np.uint16
        np.testing.assert_array_equal(got, expected)


def test_path_recurrence_by_hand():
    # One row, left-to-right: L(x=0) = C; L(x=1, d) = C + min(L(d), L(d+-1) + P1, min + P2) - min
    cost = np.array([[[0, 9, 9], [5, 5, 0]]], np.uint8)
    got = aggregation.aggregate_cost(cost, 2, 7, paths=(0,))
    # previous L = (0, 9, 9), min 0: d0: 5 + min(0) = 5; d1: 5 + min(9, 0+2, 9+2, 7) = 7;
    # d2: 0 + min(9, 9 + 2, 0 + 7) = 7
    np.testing.assert_array_equal(got[0, 1], [5, 7, 7])


@pytest.mark.parametrize("paths", [4, 8])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_all_paths_sum_the_single_paths(paths, dtype, rng):
    cost = _volume(rng, dtype, (6, 11, 5))
    p2 = rng.integers(10, 30, (paths,) + cost.shape[:2])  # one map per path
    got = aggregation.aggregate_cost(cost, 4, p2, paths=paths)
    expected = reference.aggregate(cost, 4, p2, paths=aggregation.path_indices(paths))
    np.testing.assert_allclose(got.astype(np.float64), expected, rtol=1e-5, atol=1e-2)


def test_wide_penalties_take_the_int32_recurrence(rng):
    # P2 beyond int16's range: the sweeps work in int32 and sum into uint32
    cost = _volume(rng, np.uint16, (6, 9, 5)) * 300
    got = aggregation.aggregate_cost(cost, 40, 20000, paths=8)
    assert got.dtype == np.uint32
    np.testing.assert_array_equal(got, reference.aggregate(cost, 40, 20000,
                                                           paths=aggregation.PATHS_8))


@pytest.mark.parametrize("paths", [8, 4, (2,), (0, 3, 5), (1, 6)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_aggregate_and_select_equals_the_two_steps(paths, dtype, rng):
    # The fused pass selects each row as the two sweeps finish it; the result must be what
    # winner-take-all gives on the finished volume, for every split of paths between the sweeps.
    cost = _volume(rng, dtype, (13, 17, 9))
    p2 = rng.integers(10, 30, cost.shape[:2])
    volume = aggregation.aggregate_cost(cost, 3, p2, paths=paths)
    for rows, uniqueness in (((0, 13), 0.0), ((4, 10), 15.0)):
        expected = aggregation.winner_take_all(volume[rows[0]:rows[1]], uniqueness, min_disp=-2)
        got = aggregation.aggregate_and_select(cost, 3, p2, paths, rows, uniqueness,
                                               min_disp=-2)
        for name in ("disparity", "right_disparity", "confidence"):
            np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), name)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("threads", [1, 3])
def test_thread_count_does_not_change_results(threads, dtype, rng):
    # One thread runs the two sweeps one after the other; two or more run them at once, and
    # which reaches a row first varies from run to run: the sums, float ones included, must
    # be identical whatever the order.
    from depthapp.backends.sgm import native

    cost = _volume(rng, dtype, (31, 23, 12))
    before = native.threads()
    expected = aggregation.aggregate_cost(cost, 5, 40, paths=8)
    try:
        native.set_threads(threads)
        assert native.threads() == threads
        got = [aggregation.aggregate_cost(cost, 5, 40, paths=8) for _ in range(5)]
        selected = aggregation.aggregate_and_select(cost, 5, 40, paths=8)
    finally:
        native.set_threads(before)
    for result in got:
        np.testing.assert_array_equal(result, expected)
    np.testing.assert_array_equal(selected.disparity,
                                  aggregation.winner_take_all(expected).disparity)


def test_paths_run_in_the_documented_directions():
    # A single cheap pixel spreads only along the paths that travel away from it.
    cost = np.full((5, 5, 2), 10, np.uint8)
    cost[2, 2, 1] = 0
    for path, (dy, dx) in enumerate(PATH_DIRECTIONS):
        single = aggregation.aggregate_cost(cost, 1, 100, paths=(path,)).astype(int)
        downstream = single[2 + dy, 2 + dx]
        upstream = single[2 - dy, 2 - dx]
        assert downstream[1] < downstream[0], path  # the cheap disparity propagated
        assert upstream[1] == upstream[0], path


def test_accumulator_widens_when_uint16_could_overflow(rng):
    cost = np.full((3, 4, 2), 60000, np.uint16)
    result = aggregation.aggregate_cost(cost, 1, 2, paths=8)
    assert result.dtype == np.uint32
    np.testing.assert_array_equal(result, 8 * 60000)
    assert aggregation.aggregate_cost(_volume(rng, np.uint8), 10, 200).dtype == np.uint16


def test_bad_inputs_raise_clear_errors(rng):
    cost = _volume(rng, np.float32)
    with pytest.raises(ValueError, match=r"\(H, W, D\)"):
        aggregation.aggregate_cost(cost[0], 1, 2)
    with pytest.raises(ValueError, match="NaN"):
        bad = cost.copy()
        bad[0, 0, 0] = np.nan
        aggregation.aggregate_cost(bad, 1, 2)
    with pytest.raises(ValueError, match="p2 has shape"):
        aggregation.aggregate_cost(cost, 1, np.ones((3, 7, 9)), paths=8)
    with pytest.raises(ValueError, match="non-negative"):
        aggregation.aggregate_cost(cost, -1, 2)
    with pytest.raises(ValueError, match="paths"):
        aggregation.aggregate_cost(cost, 1, 2, paths=5)


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
@pytest.mark.parametrize("uniqueness", [0, 10, 35])
@pytest.mark.parametrize("subpixel", [False, True])
def test_winner_take_all_matches_the_reference(dtype, uniqueness, subpixel, rng):
    volume = rng.integers(0, 40, (8, 21, 10)).astype(dtype)
    result = aggregation.winner_take_all(volume, uniqueness, subpixel, min_disp=2)
    disparity, right = reference.winner_take_all(volume, uniqueness, subpixel)
    np.testing.assert_allclose(result.disparity, disparity + 2, atol=1e-5, equal_nan=True)
    np.testing.assert_array_equal(result.right_disparity, right + 2)
    assert np.all((result.confidence >= 0) & (result.confidence <= 1))
    if uniqueness:
        assert np.isnan(result.disparity).any()


def test_subpixel_recovers_a_parabola_minimum():
    truth = np.array([[3.3, 5.75], [1.6, 6.0]])
    d = np.arange(10, dtype=np.float64)
    volume = ((d[None, None, :] - truth[..., None]) ** 2 * 4).astype(np.float32)
    refined = aggregation.subpixel_refine(volume, np.rint(truth))
    np.testing.assert_allclose(refined, truth, atol=1e-5)
    wta = aggregation.winner_take_all(volume, subpixel=True)
    np.testing.assert_allclose(wta.disparity, truth, atol=1e-5)
    flat = aggregation.winner_take_all(volume, subpixel=False)
    np.testing.assert_array_equal(flat.disparity, np.rint(truth))


def test_left_right_check_on_a_synthetic_shift():
    height, width, shift = 4, 30, 3
    left = np.full((height, width), float(shift), np.float32)
    right = np.full((height, width), float(shift), np.float32)
    right[:, 10] = 7.0  # left pixel 13 matches right pixel 10, which disagrees
    checked = aggregation.left_right_check(left, right, max_diff=1)
    assert np.isnan(checked[:, 13]).all()
    assert np.isfinite(np.delete(checked, 13, axis=1)).all()
    # Matches outside the right image cannot be checked and are kept (dense left border).
    left[:, 1] = 5.0
    assert np.isfinite(aggregation.left_right_check(left, right, 1)[:, 1]).all()
    # Sub-pixel values (OpenCV's rule): 5.4 is checked as 5 at x - 5 and as 6 at x - 6; the
    # right view says 3 at both, 2 and 3 px off: invalid at max_diff 1, valid at 2.
    left[:, 20] = 5.4
    assert np.isnan(aggregation.left_right_check(left, right, 1.0)[:, 20]).all()
    assert np.isfinite(aggregation.left_right_check(left, right, 2.0)[:, 20]).all()
    # 3.6: floor 3 agrees exactly, so it is kept even though it rounds to 4.
    left[:, 20] = 3.6
    assert np.isfinite(aggregation.left_right_check(left, right, 0.0)[:, 20]).all()
    left[:, 20] = shift


@pytest.mark.parametrize("size", [3, 5])
def test_median_filter_ignores_holes_and_keeps_them(size, rng):
    disparity = rng.random((12, 15)).astype(np.float32) * 10
    disparity[rng.random(disparity.shape) < 0.25] = np.nan
    got = aggregation.median_filter(disparity, size)
    radius = size // 2
    for y in range(12):
        for x in range(15):
            if np.isnan(disparity[y, x]):
                assert np.isnan(got[y, x])
                continue
            window = disparity[max(0, y - radius):y + radius + 1, max(0, x - radius):x + radius + 1]
            values = np.sort(window[np.isfinite(window)])
            assert got[y, x] == values[(len(values) - 1) // 2]


def test_remove_speckles_drops_small_regions_only():
    disparity = np.full((20, 20), 10.0, np.float32)
    disparity[5:8, 5:8] = 30.0  # 9-pixel island
    disparity[12:20, 12:20] = 40.0  # 64-pixel region
    cleaned = aggregation.remove_speckles(disparity, max_size=20, max_diff=2)
    assert np.isnan(cleaned[5:8, 5:8]).all()
    assert np.isfinite(cleaned[12:20, 12:20]).all()
    assert np.isfinite(cleaned[0, 0])
    # A ramp with steps <= max_diff is one region however large its range.
    ramp = np.tile(np.arange(20, dtype=np.float32), (3, 1))
    assert np.isfinite(aggregation.remove_speckles(ramp, 59, 1.0)).all()
    assert np.isnan(aggregation.remove_speckles(ramp, 60, 1.0)).all()


def test_a_set_cancel_flag_stops_the_sweeps_before_the_next_row(rng):
    # The flag is what CancelToken.cancel sets; set beforehand, no row may be computed.
    from depthapp.jobs import CancelToken

    token = CancelToken()
    token.cancel()
    assert token.flag[0] == 1
    cost = _volume(rng, np.uint8, (40, 30, 8))
    sweeps = aggregation._sweeps(cost, 3, 20, 8)
    volume = np.full(cost.shape, 12345, np.uint16)
    sweeps.run(volume, token.flag)
    assert np.all(volume == 12345)
    sweeps.run(volume, CancelToken().flag)  # not cancelled: every row computed
    np.testing.assert_array_equal(volume, aggregation.aggregate_cost(cost, 3, 20, 8))


def test_more_disparities_than_16_bit_indices_hold_are_refused():
    cost = np.zeros((1, 1, 40000), np.uint8)
    with pytest.raises(ValueError, match="32767"):
        aggregation.aggregate_cost(cost, 1, 2, paths=(0,))
