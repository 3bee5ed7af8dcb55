"""Training losses: supervised, self-supervised (photometric) and distillation.

All functions are device-agnostic torch and follow their inputs' device. Shapes:
images ``(N, C, H, W)`` float in [0, 1]; disparities ``(N, H, W)`` (left ``x`` matches right
``x - d``); ground truth uses NaN (or any non-finite value) for "unknown". Losses are computed
in float32 even under autocast, where soft-argmin outputs may arrive in half precision.

References:
- smooth-L1 on valid ground truth: GC-Net (Kendall et al. 2017 use L1), PSMNet (Chang & Chen 2018).
- photometric: Godard et al., Unsupervised Monocular Depth Estimation with Left-Right
  Consistency, CVPR 2017 (0.85 (1 - SSIM) / 2 + 0.15 L1, 3x3 SSIM, edge-aware smoothness,
  left-right consistency); Godard et al., Digging Into Self-Supervised Monocular Depth
  Estimation, ICCV 2019 (per-pixel minimum reprojection / auto-masking, mean-normalised
  disparity in the smoothness term).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

OCCLUSION_MODES = ("geometric", "lr", "min-reprojection", "none")


def _check_disparity(disparity: torch.Tensor, name: str = "disparity") -> None:
    if disparity.dim() != 3:
        raise ValueError(f"{name} must be (N, H, W), got {tuple(disparity.shape)}")


def valid_disparity_mask(target: torch.Tensor, max_disp: Optional[float] = None) -> torch.Tensor:
    """``(N, H, W)`` bool: finite, non-negative and (when given) below ``max_disp``, as PSMNet's
    ``mask = disp_true < maxdisp``: pixels the network cannot represent do not pull on it."""
    mask = torch.isfinite(target) & (target >= 0)
    if max_disp is not None:
        mask &= target < max_disp
    return mask


def supervised_loss(prediction: torch.Tensor, target: torch.Tensor,
                    max_disp: Optional[float] = None) -> torch.Tensor:
    """Smooth-L1 (Huber, beta 1 px) between ``prediction`` and the valid pixels of ``target``,
    both ``(N, H, W)``; 0 (with a gradient) when no pixel is valid."""
    _check_disparity(prediction, "prediction")
    _check_disparity(target, "target")
    mask = valid_disparity_mask(target, max_disp)
    if not bool(mask.any()):
        return prediction.float().sum() * 0.0
    return F.smooth_l1_loss(prediction.float()[mask], target.float()[mask], reduction="mean")


def distillation_loss(prediction: torch.Tensor, teacher: torch.Tensor,
                      max_disp: Optional[float] = None) -> torch.Tensor:
    """Smooth-L1 to another backend's disparity ``(N, H, W)`` where the teacher is valid (NaN
    where it refused, e.g. SGM's left-right check): the teacher's holes teach nothing."""
    return supervised_loss(prediction, teacher, max_disp)


def end_point_error(prediction: torch.Tensor, target: torch.Tensor,
                    max_disp: Optional[float] = None) -> torch.Tensor:
    """Mean absolute disparity error over valid target pixels (Scene Flow's EPE), a 0-d tensor
    (NaN when nothing is valid)."""
    mask = valid_disparity_mask(target, max_disp)
    if not bool(mask.any()):
        return torch.tensor(float("nan"), device=prediction.device)
    return (prediction.detach().float()[mask] - target.float()[mask]).abs().mean()


# ----------------------------------------------------------------------------- warping

def warp_right_to_left(right: torch.Tensor, disparity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``right`` ``(N, C, H, W)`` at ``x - d`` for every left pixel (bilinear,
    differentiable in ``d``); returns the warped image and a ``(N, H, W)`` bool mask of pixels
    whose source lies inside the right image."""
    _check_disparity(disparity)
    n, _, height, width = right.shape
    disparity = disparity.to(right.dtype)
    xs = torch.arange(width, device=right.device, dtype=right.dtype).view(1, 1, width)
    ys = torch.arange(height, device=right.device, dtype=right.dtype).view(1, height, 1)
    source_x = xs - disparity
    grid_x = 2.0 * source_x / max(width - 1, 1) - 1.0
    grid_y = (2.0 * ys / max(height - 1, 1) - 1.0).expand(n, height, width)
    grid = torch.stack([grid_x, grid_y], dim=-1)
    warped = F.grid_sample(right, grid, mode="bilinear", padding_mode="border", align_corners=True)
    inside = (source_x >= 0) & (source_x <= width - 1)
    return warped, inside


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-pixel SSIM ``(N, C, H, W)`` over 3x3 windows (reflection padded), as Monodepth."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    x, y = F.pad(x, (1, 1, 1, 1), mode="reflect"), F.pad(y, (1, 1, 1, 1), mode="reflect")
    mu_x, mu_y = F.avg_pool2d(x, 3, 1), F.avg_pool2d(y, 3, 1)
    sigma_x = F.avg_pool2d(x * x, 3, 1) - mu_x ** 2
    sigma_y = F.avg_pool2d(y * y, 3, 1) - mu_y ** 2
    sigma_xy = F.avg_pool2d(x * y, 3, 1) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)
    denominator = (mu_x ** 2 + mu_y ** 2 + c1) * (sigma_x + sigma_y + c2)
    return numerator / denominator


def erode(mask: torch.Tensor) -> torch.Tensor:
    """``(N, H, W)`` bool mask shrunk by one pixel (3x3): pixels whose SSIM window reaches a
    left-out pixel (e.g. a source outside the right image, clamped to its border) go too."""
    return -F.max_pool2d(-mask.float().unsqueeze(1), 3, stride=1, padding=1).squeeze(1) > 0.5


def photometric_error(target: torch.Tensor, reconstruction: torch.Tensor,
                      alpha: float = 0.85) -> torch.Tensor:
    """``alpha (1 - SSIM) / 2 + (1 - alpha) |x - y|``, averaged over channels: ``(N, H, W)``."""
    l1 = (target - reconstruction).abs().mean(dim=1)
    structure = ((1.0 - ssim(target, reconstruction)) / 2.0).clamp(0.0, 1.0).mean(dim=1)
    return alpha * structure + (1.0 - alpha) * l1


def edge_aware_smoothness(disparity: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Mean of ``|grad d*| exp(-|grad I|)`` with ``d* = d / mean(d)`` (scale-free, Monodepth2),
    ``disparity`` ``(N, H, W)``, ``image`` ``(N, C, H, W)``: a 0-d tensor."""
    normalised = disparity / (disparity.mean(dim=(1, 2), keepdim=True).abs() + 1e-7)
    grad_dx = (normalised[:, :, :-1] - normalised[:, :, 1:]).abs()
    grad_dy = (normalised[:, :-1, :] - normalised[:, 1:, :]).abs()
    image_dx = (image[:, :, :, :-1] - image[:, :, :, 1:]).abs().mean(dim=1)
    image_dy = (image[:, :, :-1, :] - image[:, :, 1:, :]).abs().mean(dim=1)
    return (grad_dx * torch.exp(-image_dx)).mean() + (grad_dy * torch.exp(-image_dy)).mean()


# ----------------------------------------------------------------------------- occlusion

def visibility_mask(disparity: torch.Tensor, tolerance: float = 0.5) -> torch.Tensor:
    """``(N, H, W)`` bool: left pixels whose match ``x - d`` is not hidden in the right view by
    a nearer surface, judged from the left disparity alone (a z-buffer of the right view).

    Every left pixel is splatted onto the two right pixels around ``x - d`` keeping the largest
    disparity (the nearest surface); pixel ``x`` is visible when neither right pixel its
    bilinear sample reads holds a disparity larger than ``d(x) + tolerance``. Occluders that
    the left view does not show (beyond its right edge) cannot be seen this way.
    """
    _check_disparity(disparity)
    n, height, width = disparity.shape
    d = disparity.detach().float()
    xs = torch.arange(width, device=d.device, dtype=d.dtype)
    target = xs - d
    inside = (target >= 0) & (target <= width - 1)
    low = torch.floor(target).clamp(0, width - 1).long()
    high = (low + 1).clamp(max=width - 1)
    values = torch.where(inside, d, torch.full_like(d, float("-inf")))
    nearest = torch.full_like(d, float("-inf"))
    nearest.scatter_reduce_(2, low, values, reduce="amax")
    nearest.scatter_reduce_(2, high, values, reduce="amax")
    seen = torch.maximum(nearest.gather(2, low), nearest.gather(2, high))
    return d >= seen - tolerance


def left_right_consistency_mask(left_disparity: torch.Tensor, right_disparity: torch.Tensor,
                                threshold: float = 1.0) -> torch.Tensor:
    """``(N, H, W)`` bool: ``|d_L(x) - d_R(x - d_L(x))| <= threshold`` (the classic LR check);
    ``right_disparity`` is the right view's disparity (right ``x`` matches left ``x + d``)."""
    _check_disparity(left_disparity, "left_disparity")
    _check_disparity(right_disparity, "right_disparity")
    sampled, inside = warp_right_to_left(right_disparity.detach().unsqueeze(1).float(),
                                         left_disparity.detach().float())
    return inside & ((sampled.squeeze(1) - left_disparity.detach().float()).abs() <= threshold)


def photometric_loss(left: torch.Tensor, right: torch.Tensor, disparity: torch.Tensor,
                     occlusion: str = "geometric", right_disparity: Optional[torch.Tensor] = None,
                     smoothness_weight: float = 0.01, alpha: float = 0.85) -> tuple[torch.Tensor, dict]:
    """Self-supervised loss of a left disparity ``(N, H, W)`` for images ``(N, 3, H, W)`` in [0, 1].

    Returns ``(loss, parts)`` where ``parts`` holds ``photometric``, ``smoothness`` and
    ``masked`` (the share of pixels left out) as floats. ``occlusion``:

    - ``geometric``: leave out pixels that the predicted disparity itself says are hidden in the
      right view (:func:`visibility_mask`) or fall outside it;
    - ``lr``: leave out pixels failing the left-right check with ``right_disparity``;
    - ``min-reprojection``: Monodepth2's auto-mask: keep a pixel only where the warped right
      image explains it better than the unwarped one, so pixels that no disparity explains
      (occlusions, specularities, textureless areas) stop pulling;
    - ``none``: only pixels whose match leaves the image are left out.

    Pixels whose match leaves the right image are always left out, with a one-pixel margin
    (their SSIM window would compare against the image border).
    """
    if occlusion not in OCCLUSION_MODES:
        raise ValueError(f"occlusion must be one of {', '.join(OCCLUSION_MODES)}, got {occlusion!r}")
    _check_disparity(disparity)
    left, right, disparity = left.float(), right.float(), disparity.float()
    warped, mask = warp_right_to_left(right, disparity)
    mask = erode(mask)
    error = photometric_error(left, warped, alpha)
    if occlusion == "geometric":
        mask = mask & visibility_mask(disparity)
    elif occlusion == "lr":
        if right_disparity is None:
            raise ValueError("occlusion='lr' needs right_disparity")
        mask = mask & left_right_consistency_mask(disparity, right_disparity.float())
    elif occlusion == "min-reprojection":
        identity = photometric_error(left, right, alpha)
        mask = mask & (error.detach() < identity)
    count = mask.sum()
    photometric = (error * mask).sum() / count.clamp(min=1)
    smoothness = edge_aware_smoothness(disparity, left)
    loss = photometric + smoothness_weight * smoothness
    parts = {"photometric": float(photometric.detach()), "smoothness": float(smoothness.detach()),
             "masked": float(1.0 - count.item() / mask.numel())}
    return loss, parts


def mean_photometric_error(left: torch.Tensor, right: torch.Tensor, disparity: torch.Tensor) -> float:
    """Mean photometric error of ``disparity`` over pixels whose match is inside the right image
    and visible (:func:`visibility_mask`): the "before/after" number of camera adaptation."""
    with torch.no_grad():
        disparity = torch.nan_to_num(disparity.float(), nan=0.0)
        warped, mask = warp_right_to_left(right.float(), disparity)
        mask = erode(mask) & visibility_mask(disparity)
        error = photometric_error(left.float(), warped)
        return float((error * mask).sum() / mask.sum().clamp(min=1))


__all__ = ["OCCLUSION_MODES", "distillation_loss", "edge_aware_smoothness", "end_point_error", "erode",
           "left_right_consistency_mask", "mean_photometric_error", "photometric_error",
           "photometric_loss", "ssim", "supervised_loss", "valid_disparity_mask",
           "visibility_mask", "warp_right_to_left"]
