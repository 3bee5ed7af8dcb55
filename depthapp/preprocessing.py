"""How a network's input is prepared: one object per checkpoint.

The two models are torchvision's ``Weights.transforms`` (the weights say how to normalise) and
RAFT-Stereo's ``InputPadder`` (pad to the multiple the network's downsampling needs, crop the
output back exactly). A weights record references its :class:`Preprocessing`; the backend, its
export and its training adapter all prepare images through it, so the rule is written once.

Works on numpy arrays and torch tensors alike (``(..., C, H, W)``); torch is imported only
when a tensor is given, so classical backends never load it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Optional

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# How pixel values become network input:
# - "mean_std": RGB scaled to [0, 1], then (x - mean) / std per channel (torchvision's Normalize);
# - "standardise": each RGB channel to zero mean and unit (unbiased) std over the image;
# - "grey_standardise": BT.601 luma in 0..255, zero mean and unit (population) std over the image.
NORMALISATIONS = ("mean_std", "standardise", "grey_standardise")
# Where padding goes: rows at the top or the bottom, columns at the left or the right.
PAD_MODES = ("top_right", "top_left", "bottom_right")


@dataclass(frozen=True)
class Padding:
    """The zero padding added to one image, ``(top, bottom, left, right)``: undone by
    :meth:`unpad` on anything of the padded size (disparity, confidence, a probability volume)."""

    top: int
    bottom: int
    left: int
    right: int

    def unpad(self, array):
        height, width = array.shape[-2:]
        return array[..., self.top:height - self.bottom, self.left:width - self.right]


@dataclass(frozen=True)
class Preprocessing:
    """Normalisation and padding a network expects.

    Attributes:
        normalisation: one of :data:`NORMALISATIONS`.
        mean, std: per-channel statistics for ``mean_std`` (of [0, 1] values).
        pad_multiple: the padded height and width are multiples of this (1 = no padding).
        pad_mode: one of :data:`PAD_MODES`.
        min_size: the padded sides are at least this (PSMNet's pyramid pooling needs 256).
    """

    normalisation: str
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    pad_multiple: int = 1
    pad_mode: str = "top_right"
    min_size: int = 0

    def __post_init__(self):
        if self.normalisation not in NORMALISATIONS:
            raise ValueError(f"unknown normalisation {self.normalisation!r}")
        if self.pad_mode not in PAD_MODES:
            raise ValueError(f"unknown pad mode {self.pad_mode!r}")
        if self.normalisation == "mean_std" and not (len(self.mean) == len(self.std) > 0):
            raise ValueError("mean_std normalisation needs a mean and a std per channel")

    # ------------------------------------------------------------------ padding
    def padded_size(self, height: int, width: int) -> tuple[int, int]:
        """The smallest size ``>= (height, width)`` and ``>= min_size`` divisible by the multiple."""
        return (round_up(max(height, self.min_size), self.pad_multiple),
                round_up(max(width, self.min_size), self.pad_multiple))

    def padding(self, height: int, width: int, padded: Optional[tuple[int, int]] = None) -> Padding:
        """Where the padding of a ``height x width`` image to ``padded`` (default
        :meth:`padded_size`) goes."""
        padded_h, padded_w = padded or self.padded_size(height, width)
        extra_h, extra_w = padded_h - height, padded_w - width
        top, bottom = (0, extra_h) if self.pad_mode == "bottom_right" else (extra_h, 0)
        left, right = (extra_w, 0) if self.pad_mode == "top_left" else (0, extra_w)
        return Padding(top, bottom, left, right)

    def pad(self, images, padded: Optional[tuple[int, int]] = None):
        """Zero-pad ``(..., H, W)`` images; returns the padded images and their :class:`Padding`."""
        height, width = images.shape[-2:]
        padding = self.padding(height, width, padded)
        if not any((padding.top, padding.bottom, padding.left, padding.right)):
            return images, padding
        if isinstance(images, np.ndarray):
            widths = [(0, 0)] * (images.ndim - 2) + [(padding.top, padding.bottom),
                                                     (padding.left, padding.right)]
            return np.pad(images, widths), padding
        import torch.nn.functional as F

        return F.pad(images, (padding.left, padding.right, padding.top, padding.bottom)), padding

    # ------------------------------------------------------------------ normalisation
    def normalise(self, images):
        """Network input from ``(..., 3, H, W)`` RGB floats in [0, 1] (numpy or torch, any
        device); ``grey_standardise`` returns ``(..., 1, H, W)``."""
        if self.normalisation == "mean_std":
            return (images - _like(self.mean, images)) / _like(self.std, images)
        if self.normalisation == "standardise":
            return _standardise(images, unbiased=True)
        luma = (images * 255.0 * _like((0.299, 0.587, 0.114), images)).sum(-3, keepdims=True) \
            if isinstance(images, np.ndarray) else \
            (images * 255.0 * _like((0.299, 0.587, 0.114), images)).sum(dim=-3, keepdim=True)
        return _standardise(luma, unbiased=False)

    def prepare(self, image: np.ndarray, padded: Optional[tuple[int, int]] = None):
        """One ``(H, W, 3)`` uint8 RGB image -> ``(1, C, Hp, Wp)`` float32 network input
        (numpy) and its :class:`Padding`."""
        if self.normalisation == "grey_standardise":
            from .data import luma  # the backends' own grey, bit for bit

            network_input = _standardise(luma(image)[None, None], unbiased=False)
        else:
            chw = np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)
            network_input = self.normalise(chw / np.float32(255.0))
        return self.pad(network_input.astype(np.float32, copy=False), padded)

    # ------------------------------------------------------------------ description
    def describe(self) -> str:
        if self.normalisation == "mean_std":
            text = (f"RGB / 255, mean {_numbers(self.mean)} and std {_numbers(self.std)}")
        elif self.normalisation == "standardise":
            text = "RGB, each channel standardised over the image ((x - mean) / std)"
        else:
            text = ("grey = 0.299 R + 0.587 G + 0.114 B in 0..255, standardised per image "
                    "((x - mean) / std, no /255)")
        if self.pad_multiple > 1 or self.min_size:
            where = self.pad_mode.replace("_", " and ")
            text += (f"; zero-pad {where} to a multiple of {self.pad_multiple}"
                     + (f" (at least {self.min_size})" if self.min_size else "") + ", crop back")
        return text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Preprocessing":
        return cls(normalisation=data["normalisation"], mean=tuple(data.get("mean") or ()),
                   std=tuple(data.get("std") or ()), pad_multiple=int(data.get("pad_multiple", 1)),
                   pad_mode=data.get("pad_mode", "top_right"), min_size=int(data.get("min_size", 0)))


def round_up(value: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` (at least 1) that is ``>= value``: padded sizes and
    disparity ranges alike."""
    multiple = max(1, multiple)
    return int(math.ceil(value / multiple) * multiple)


def _numbers(values) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"


def _like(values, images):
    """``values`` as a per-channel ``(C, 1, 1)`` array of ``images``' kind, dtype and device."""
    if isinstance(images, np.ndarray):
        return np.asarray(values, dtype=images.dtype).reshape(-1, 1, 1)
    import torch

    return torch.as_tensor(values, dtype=images.dtype, device=images.device).view(-1, 1, 1)


def _standardise(images, unbiased: bool):
    """Each channel of ``(..., C, H, W)`` to zero mean and unit std over its image; a flat
    channel (std 0) is divided by 1, so it stays finite."""
    if isinstance(images, np.ndarray):
        mean = images.mean(axis=(-2, -1), keepdims=True)
        std = images.std(axis=(-2, -1), keepdims=True, ddof=1 if unbiased else 0)
        return (images - mean) / np.where(std > 0, std, 1).astype(images.dtype)
    import torch

    mean = images.mean(dim=(-2, -1), keepdim=True)
    std = images.std(dim=(-2, -1), keepdim=True, unbiased=unbiased)
    return (images - mean) / torch.where(std > 0, std, torch.ones_like(std))


# The checkpoints' preprocessing (their weights records reference these).
PSMNET_OFFICIAL = Preprocessing("mean_std", IMAGENET_MEAN, IMAGENET_STD, pad_multiple=16,
                                pad_mode="top_right", min_size=256)
MCCNN_GREY = Preprocessing("grey_standardise")
