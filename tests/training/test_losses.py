import numpy as np
import pytest
import torch

from depthapp.training.losses import (distillation_loss, edge_aware_smoothness, end_point_error,
                                      left_right_consistency_mask, mean_photometric_error,
                                      photometric_loss, supervised_loss, visibility_mask,
                                      warp_right_to_left)
from depthapp.training.synthetic import generate


def _tensor_image(array):
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)[None].float()


def _shifted_pair(shift: int, device):
    """A textured right image and the left image it becomes under a constant disparity."""
    rng = np.random.default_rng(0)
    right = rng.random((1, 3, 40, 80)).astype(np.float32)
    right = torch.nn.functional.avg_pool2d(torch.from_numpy(right), 3, 1, 1)  # some structure
    left = torch.zeros_like(right)
    left[..., shift:] = right[..., :80 - shift]  # left x shows right x - shift
    return left.to(device), right.to(device)


def test_photometric_loss_is_zero_for_a_perfect_warp_and_grows_with_the_error(device):
    left, right = _shifted_pair(5, device)
    losses = {}
    for offset in (0.0, 0.5, 1.0, 2.0, 3.0):
        disparity = torch.full((1, 40, 80), 5.0 + offset, device=device)
        losses[offset], parts = photometric_loss(left, right, disparity, occlusion="none")
    assert float(losses[0.0]) < 1e-6
    values = [float(losses[o]) for o in (0.0, 0.5, 1.0, 2.0)]
    assert all(a < b for a, b in zip(values, values[1:]))
    assert float(losses[1.0]) > 0.05
    # Too small a disparity is penalised as well.
    low, _ = photometric_loss(left, right, torch.full((1, 40, 80), 4.0, device=device), occlusion="none")
    assert float(low) > 0.05


def test_photometric_loss_prefers_the_true_disparity_of_a_synthetic_scene(device):
    sample = generate(11, height=64, width=128, max_disparity=30.0, photometric=False)
    left, right = _tensor_image(sample.left).to(device), _tensor_image(sample.right).to(device)
    truth = torch.from_numpy(sample.disparity)[None].to(device)
    results = {}
    for mode in ("geometric", "min-reprojection", "none"):
        exact, parts = photometric_loss(left, right, truth, occlusion=mode, smoothness_weight=0.0)
        shifted, _ = photometric_loss(left, right, truth + 1.5, occlusion=mode, smoothness_weight=0.0)
        results[mode] = float(exact)
        assert float(exact) < 0.5 * float(shifted), mode
        assert 0.0 <= parts["masked"] < 0.5
    # Leaving out occluded pixels removes error, never adds it.
    assert results["geometric"] <= results["none"] + 1e-6


def test_occlusion_masks_match_the_generator(device):
    sample = generate(5, height=64, width=160, max_disparity=40.0, photometric=False)
    truth = torch.from_numpy(sample.disparity)[None].to(device)
    right_truth = torch.from_numpy(sample.right_disparity)[None].to(device)
    in_view = np.arange(160)[None, :] - sample.disparity >= 0
    expected = ~sample.occluded
    geometric = visibility_mask(truth)[0].cpu().numpy()
    lr = left_right_consistency_mask(truth, right_truth)[0].cpu().numpy()
    assert sample.occluded[in_view].mean() > 0.02  # something is occluded
    hidden = sample.occluded & in_view
    # The left disparity alone can only reveal occluders that the left view shows too: an
    # occluder of pixel x lies left of x + max_disparity, inside the image for these columns.
    occluder_in_left_view = np.arange(160)[None, :] < 160 - 41
    seen_in_left = np.broadcast_to(occluder_in_left_view, hidden.shape)
    for mask, caught in ((geometric, hidden & seen_in_left), (lr, hidden)):
        agreement = (mask[in_view] == expected[in_view]).mean()
        assert agreement > 0.97
        assert caught.sum() > 30
        assert (~mask[caught]).mean() > 0.8  # most truly occluded pixels are caught


def test_warp_reports_samples_outside_the_right_image(device):
    right = torch.rand(1, 3, 8, 16, device=device)
    warped, inside = warp_right_to_left(right, torch.full((1, 8, 16), 4.0, device=device))
    assert warped.shape == right.shape
    assert not inside[0, :, :4].any() and inside[0, :, 4:].all()
    torch.testing.assert_close(warped[..., 4:], right[..., :12])


def test_photometric_loss_has_a_gradient_towards_the_truth(device):
    left, right = _shifted_pair(6, device)
    disparity = torch.full((1, 40, 80), 5.3, device=device, requires_grad=True)
    loss, _ = photometric_loss(left, right, disparity, occlusion="none", smoothness_weight=0.0)
    loss.backward()
    assert disparity.grad[0, :, 10:70].mean() < 0  # increasing d lowers the loss


def test_supervised_and_distillation_use_only_valid_targets(device):
    prediction = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]], device=device, requires_grad=True)
    target = torch.tensor([[[1.0, float("nan"), 3.5, 100.0]]], device=device)
    loss = supervised_loss(prediction, target, max_disp=64)
    # Pixels 0 and 2 only: smooth-L1 of errors 0 and 0.5 -> (0 + 0.5 * 0.25) / 2.
    assert float(loss.detach()) == pytest.approx(0.0625)
    loss.backward()
    assert prediction.grad[0, 0, 1] == 0 and prediction.grad[0, 0, 3] == 0
    assert float(distillation_loss(prediction, target, 64).detach()) == pytest.approx(0.0625)
    nothing = supervised_loss(prediction, torch.full_like(target, float("nan")))
    assert float(nothing.detach()) == 0.0 and nothing.requires_grad
    assert float(end_point_error(prediction, target, 64)) == pytest.approx(0.25)


def test_smoothness_is_zero_for_constant_disparity_and_edge_aware(device):
    image = torch.zeros(1, 3, 16, 16, device=device)
    image[..., 8:] = 1.0  # an image edge at column 8
    flat = torch.full((1, 16, 16), 3.0, device=device)
    assert float(edge_aware_smoothness(flat, image)) == pytest.approx(0.0, abs=1e-7)
    step_at_edge = flat.clone()
    step_at_edge[..., 8:] = 6.0
    step_elsewhere = flat.clone()
    step_elsewhere[..., 4:] = 6.0
    assert float(edge_aware_smoothness(step_at_edge, image)) < float(edge_aware_smoothness(step_elsewhere, image))


def test_mean_photometric_error_ranks_disparities(device):
    left, right = _shifted_pair(4, device)
    good = mean_photometric_error(left, right, torch.full((1, 40, 80), 4.0, device=device))
    bad = mean_photometric_error(left, right, torch.full((1, 40, 80), 7.0, device=device))
    assert good < 1e-6 < bad


def test_mccnn_hinge_loss_wants_the_true_disparity_ahead_by_the_margin(device):
    from depthapp.training.models import mccnn_hinge_loss

    target = torch.full((1, 2, 2), 5.0, device=device)
    similarity = torch.full((1, 32, 2, 2), -0.5, device=device)
    similarity[:, 5] = 0.9  # 1.4 ahead of every wrong disparity: no loss
    assert float(mccnn_hinge_loss(similarity, target)) == 0.0
    similarity[:, 12] = 0.8  # a wrong disparity 7 px away, only 0.1 behind
    assert float(mccnn_hinge_loss(similarity, target)) > 0.0
    near = torch.full((1, 32, 2, 2), -0.5, device=device)
    near[:, 5] = 0.9
    near[:, 6] = 0.9  # 1 px away is not a negative (the paper's 1.5 px lower bound)
    assert float(mccnn_hinge_loss(near, target)) == 0.0
    # Pixels without ground truth teach nothing.
    assert float(mccnn_hinge_loss(similarity, torch.full((1, 2, 2), float("nan"), device=device))) == 0.0
