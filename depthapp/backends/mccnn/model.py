"""MC-CNN networks (Zbontar & LeCun, JMLR 2016) in the layout of the ``mccnn`` checkpoints.

Both take one grey image standardised per image and see 11x11 patches (five valid 3x3
convolutions). Module names reproduce the checkpoint keys (``conv_blocks.0.weight`` ...
``fl_blocks.6.bias``) so the published files load unchanged.

* fast: 64 feature maps, no ReLU after the last convolution, features L2-normalised; the
  matching cost of two pixels is minus the cosine similarity of their features, in [-1, 1].
* accurate: 112 feature maps (ReLU after every convolution), then a decision network of
  fully connected layers 224 -> 384 -> 384 -> 384 -> 1 + sigmoid on the concatenated left and
  right features, applied per disparity; the cost is minus the similarity, in [-1, 0].
"""

from __future__ import annotations

import torch
from torch import nn

PATCH_SIZE = 11
PATCH_RADIUS = PATCH_SIZE // 2


def _conv_stack(channels: int, final_relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for index in range(5):
        layers.append(nn.Conv2d(1 if index == 0 else channels, channels, kernel_size=3))
        if index < 4 or final_relu:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class FastMCCNN(nn.Module):
    """``(B, 1, H + 10, W + 10)`` standardised grey -> ``(B, 64, H, W)`` unit-norm features."""

    variant = "fast"
    channels = 64

    def __init__(self):
        super().__init__()
        self.conv_blocks = _conv_stack(self.channels, final_relu=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.conv_blocks(image), p=2, dim=1)


class AccurateMCCNN(nn.Module):
    """Features: ``(B, 1, H + 10, W + 10)`` -> ``(B, 112, H, W)``; :meth:`similarity` scores
    pairs of ``(..., 112)`` feature vectors in (0, 1)."""

    variant = "accurate"
    channels = 112

    def __init__(self):
        super().__init__()
        self.conv_blocks = _conv_stack(self.channels, final_relu=True)
        self.fl_blocks = nn.Sequential(
            nn.Linear(2 * self.channels, 384), nn.ReLU(),
            nn.Linear(384, 384), nn.ReLU(),
            nn.Linear(384, 384), nn.ReLU(),
            nn.Linear(384, 1), nn.Sigmoid())

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.conv_blocks(image)

    def split_first_layer(self, left: torch.Tensor, right: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The first decision layer is linear in the concatenation, so it splits into a left
        and a right half computed once per image instead of once per disparity.

        ``(H, W, 112)`` x2 -> ``(H, W, 384)`` x2 whose sum (before the ReLU) is the layer's output.
        """
        first = self.fl_blocks[0]
        left_weight, right_weight = first.weight[:, : self.channels], first.weight[:, self.channels:]
        return left @ left_weight.T + first.bias, right @ right_weight.T

    def decide(self, hidden: torch.Tensor) -> torch.Tensor:
        """``(..., 384)`` pre-activation of the first layer -> ``(...)`` similarity."""
        x = torch.relu(hidden)
        for layer in list(self.fl_blocks)[2:]:
            x = layer(x)
        return x.squeeze(-1)

    def similarity(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """``(..., 112)`` x2 -> ``(...)`` in (0, 1): the checkpoint's own forward on pairs."""
        return self.fl_blocks(torch.cat((left, right), -1)).squeeze(-1)


def architecture_for(state_dict: dict) -> type[nn.Module]:
    """FastMCCNN or AccurateMCCNN from the keys of a checkpoint's state dict."""
    return AccurateMCCNN if any(key.startswith("fl_blocks.") for key in state_dict) else FastMCCNN


def extract_state_dict(checkpoint: dict) -> dict:
    """The network weights of an ``mccnn`` checkpoint (``{"model": ..., "optimizer": ...}``),
    or of a bare state dict; a ``module.`` prefix is removed."""
    state_dict = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else checkpoint
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state_dict.items()}


def build_network(state_dict: dict, source: str) -> nn.Module:
    """The matching network for ``state_dict``; ValueError naming the mismatched keys."""
    network = architecture_for(state_dict)()
    expected = network.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong = [f"{k} {tuple(state_dict[k].shape)} (model {tuple(expected[k].shape)})"
             for k in expected if k in state_dict and state_dict[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        details = "; ".join(f"{label}: {', '.join(keys[:3])}" for label, keys in
                            (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys)
        raise ValueError(f"{source}: not an MC-CNN fast/accurate checkpoint ({details})")
    network.load_state_dict(state_dict)
    return network.eval()
