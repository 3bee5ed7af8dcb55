"""What the trainer needs to know about each learned backend: a small adapter per network.

The trainer never touches a network's internals; an adapter says how to

- build the network (``variants``: named sizes, e.g. GC-Net ``paper`` or ``tiny``),
- prepare images for it: its backend's :class:`~depthapp.preprocessing.Preprocessing`,
- run it in training mode (``train_outputs``: one or several disparity maps with loss weights,
  e.g. PSMNet's three hourglass outputs 0.5 / 0.7 / 1.0),
- run it on a whole image (``predict``: padding as its backend pads, cropped back),
- name its parts (``parts``: ``feature`` -> the feature tower) for ``--freeze``,
- load initial weights (``--init``: registry id or file) and export what its backend loads.

Images reach adapters as ``(N, 3, H, W)`` float tensors in [0, 1]; disparities leave as
``(N, H, W)``. Adapters import their backend's model module only when used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UsageError, WeightsError
from ..preprocessing import Preprocessing, round_up

@dataclass
class TrainOutputs:
    """Disparities ``(N, H, W)`` of a training forward pass with their loss weights; the last
    one is the network's final answer (used for the logged EPE)."""

    disparities: list[torch.Tensor]
    weights: list[float]

    @property
    def final(self) -> torch.Tensor:
        return self.disparities[-1]


class TrainingAdapter:
    """Base class; see the module docstring. Subclasses set the class attributes and implement
    :meth:`build_network`."""

    backend: ClassVar[str] = ""
    architecture: ClassVar[str] = ""
    variants: ClassVar[dict[str, dict[str, Any]]] = {}
    default_variant: ClassVar[str] = ""
    # The disparity rounding and default range: the backend's own unless set here (a network
    # that no registered backend runs sets both).
    disparity_multiple: ClassVar[Optional[int]] = None
    default_max_disp: ClassVar[Optional[int]] = None
    min_input: ClassVar[int] = 1
    default_crop: ClassVar[tuple[int, int]] = (256, 512)
    part_aliases: ClassVar[dict[str, tuple[str, ...]]] = {}
    # The training recipe of the paper, reported on the model card.
    paper_recipe: ClassVar[str] = ""
    # Variants the backend of the same name can build (and so load weights of).
    backend_variants: ClassVar[tuple[str, ...]] = ()
    # Whether that backend's output is the network's own (False: it adds post-processing).
    same_output_as_backend: ClassVar[bool] = True

    def __init__(self, variant: Optional[str] = None, max_disp: Optional[int] = None):
        variant = variant or self.default_variant
        if variant not in self.variants:
            raise UsageError(f"backend {self.backend} has no variant {variant!r} "
                             f"(variants: {', '.join(self.variants)})")
        self.variant = variant
        if self.disparity_multiple is None:
            from ..backends import get_backend_class

            facts = get_backend_class(self.backend)
        else:
            facts = self
        self.max_disp = round_up(int(max_disp or facts.default_max_disp), facts.disparity_multiple)

    @property
    def preprocessing(self) -> Preprocessing:
        """Normalisation and padding: the backend's own, so training sees what inference does."""
        from ..backends import get_backend_class

        return get_backend_class(self.backend).preprocessing

    @property
    def input_multiple(self) -> int:
        return self.preprocessing.pad_multiple

    # -------------------------------------------------------------------------- building

    def build(self, seed: Optional[int] = None) -> nn.Module:
        """A freshly initialised network (deterministic for a given ``seed``)."""
        if seed is not None:
            torch.manual_seed(seed)
        model = self.build_network()
        self.initialize(model)
        return model

    def build_network(self) -> nn.Module:
        raise NotImplementedError

    def initialize(self, model: nn.Module) -> None:
        """Weight initialisation of the paper, when it differs from PyTorch's default."""

    def describe(self) -> str:
        options = ", ".join(f"{k}={v}" for k, v in self.variants[self.variant].items())
        return f"{self.architecture} ({self.variant}{': ' + options if options else ''}), max disparity {self.max_disp}"

    def check_crop(self, crop: tuple[int, int]) -> None:
        height, width = crop
        problems = []
        if height % self.input_multiple or width % self.input_multiple:
            problems.append(f"a multiple of {self.input_multiple}")
        if min(height, width) < self.min_input:
            problems.append(f"at least {self.min_input} on each side")
        if problems:
            raise UsageError(f"--crop {height}x{width}: {self.architecture} needs a crop "
                             + " and ".join(problems))

    def check_batch(self, crop: tuple[int, int], batch: int) -> None:
        """UsageError for a crop/batch combination the network cannot train on."""

    def supervised_objective(self, model: nn.Module, left: torch.Tensor, right: torch.Tensor,
                             truth: torch.Tensor, max_disp: int):
        """The network's own supervised loss as ``(loss, final disparity)``, or None for the
        default (smooth-L1 on :meth:`train_outputs`)."""
        return None

    # -------------------------------------------------------------------------- running

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Network input from ``(N, 3, H, W)`` images in [0, 1]."""
        return self.preprocessing.normalise(images)

    def train_outputs(self, model: nn.Module, left: torch.Tensor, right: torch.Tensor) -> TrainOutputs:
        """Training forward pass on prepared inputs whose size suits the network."""
        return TrainOutputs([model(left, right)], [1.0])

    def forward_eval(self, model: nn.Module, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """Inference on prepared, padded inputs: ``(N, H, W)`` disparity."""
        return model(left, right)

    def padded_size(self, height: int, width: int) -> tuple[int, int]:
        padded_h, padded_w = self.preprocessing.padded_size(height, width)
        return max(self.min_input, padded_h), max(self.min_input, padded_w)

    def predict(self, model: nn.Module, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """Disparity ``(N, H, W)`` of whole images ``(N, 3, H, W)`` in [0, 1], padded and cropped
        back as the backend does (the model's train/eval mode is left as the caller set it)."""
        target = self.padded_size(*left.shape[-2:])
        (left, padding), (right, _) = (self.preprocessing.pad(self.prepare(image), target)
                                       for image in (left, right))
        return padding.unpad(self.forward_eval(model, left, right))

    # -------------------------------------------------------------------------- parts and weights

    def parts(self, model: nn.Module, names: Sequence[str]) -> dict[str, nn.Module]:
        """Submodules for ``--freeze``: an alias (``feature``) or any dotted module name."""
        found: dict[str, nn.Module] = {}
        known = dict(model.named_modules())
        for name in names:
            targets = self.part_aliases.get(name, (name,))
            for target in targets:
                if target not in known or target == "":
                    aliases = ", ".join(self.part_aliases) or "none"
                    top = ", ".join(n for n, _ in model.named_children())
                    raise UsageError(f"--freeze {name}: {self.architecture} has no part {target!r} "
                                     f"(aliases: {aliases}; top-level modules: {top})")
                found[target] = known[target]
        return found

    def load_state(self, model: nn.Module, state: dict, source: str) -> None:
        """Load a state dict strictly (``num_batches_tracked`` may be missing), WeightsError
        naming ``source`` otherwise."""
        from ..backends.gcnet.learned import load_state_dict_checked, strip_checkpoint

        load_state_dict_checked(model, strip_checkpoint(state), source)

    def load_init(self, model: nn.Module, spec: str) -> str:
        """Load ``--init`` (registry id or checkpoint file, also a training run's folder or its
        ``checkpoint.pt``); returns a label for the model card."""
        from pathlib import Path

        from ..weights import ResolvedWeights, load_checkpoint, resolve_weights

        path = Path(spec).expanduser()
        if path.is_dir():
            for name in ("weights.pt", "checkpoint.pt"):
                if (path / name).is_file():
                    path = path / name
                    break
            else:
                raise WeightsError(f"{path}: no weights.pt or checkpoint.pt in this folder")
            resolved = ResolvedWeights(path, None)
        else:
            resolved = resolve_weights(spec, self.backend, default_id=None, fetch_missing=True)
        state = load_checkpoint(resolved)
        if "trainer" in state and "model" in state:  # our own resumable checkpoint
            state = state["model"]
        self.load_state(model, state, resolved.label)
        return resolved.label

    def export_state(self, model: nn.Module, half: bool = True) -> dict[str, torch.Tensor]:
        """The state dict the backend loads with ``--weights FILE`` (floating tensors in fp16
        when ``half``: half the size, and what the card's accuracy is measured with)."""
        state = {}
        for key, value in model.state_dict().items():
            value = value.detach().cpu().clone()
            if half and value.is_floating_point():
                value = value.half()
            state[key] = value
        return state

    def backend_options(self) -> dict[str, Any]:
        """Keyword arguments of ``create_backend`` that select this variant (besides weights)."""
        return {}


# ----------------------------------------------------------------------------- test network

def concatenation_volume(left_features: torch.Tensor, right_features: torch.Tensor,
                         levels: int) -> torch.Tensor:
    """``(N, C, H, W)`` x2 -> ``(N, 2C, levels, H, W)``: left features beside the right features
    shifted by each disparity, zero where ``x - d < 0``. Built by padding and stacking, whose
    backward pass is one gather (slice assignment would copy the whole volume's gradient once
    per level)."""
    width = left_features.shape[-1]
    lefts, rights = [], []
    for d in range(levels):
        if d == 0:
            lefts.append(left_features)
            rights.append(right_features)
        elif d < width:
            lefts.append(F.pad(left_features[..., d:], (d, 0)))
            rights.append(F.pad(right_features[..., :width - d], (d, 0)))
        else:
            lefts.append(torch.zeros_like(left_features))
            rights.append(torch.zeros_like(right_features))
    return torch.cat([torch.stack(lefts, 2), torch.stack(rights, 2)], 1)


class Conv2Plus1d(nn.Module):
    """A factorised 3x3x3 convolution of ``(N, C, D, H, W)`` volumes: 3x3 over (H, W), then 3
    over D, both as 2-D convolutions (PyTorch's CPU conv3d is an order of magnitude slower than
    its conv2d, and the test network must train in seconds)."""

    def __init__(self, in_channels: int, out_channels: int, relu: bool = True,
                 middle_channels: Optional[int] = None):
        super().__init__()
        middle = middle_channels or out_channels
        self.spatial = nn.Conv2d(in_channels, middle, 3, padding=1)
        self.depth = nn.Conv2d(middle, out_channels, (3, 1), padding=(1, 0))
        self.relu = relu

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        n, channels, levels, height, width = volume.shape
        x = volume.transpose(1, 2).reshape(n * levels, channels, height, width)
        x = torch.relu(self.spatial(x))
        middle = x.shape[1]
        x = x.reshape(n, levels, middle, height * width).transpose(1, 2)  # (N, C', D, H*W)
        x = self.depth(x)
        if self.relu:
            x = torch.relu(x)
        return x.reshape(n, x.shape[1], levels, height, width)


class TinyStereoNet(nn.Module):
    """A minimal 3-D cost-volume network for tests and as a template.

    ``(N, 3, H, W)`` x2 (H, W even) -> features ``(N, F, H/2, W/2)`` -> concatenation volume
    over ``max_disp / 2`` levels -> three factorised 3-D convolutions -> cost
    ``(N, 1, D/2, H/2, W/2)`` -> trilinear upsampling to ``(N, D, H, W)`` -> soft argmin
    ``(N, H, W)``.
    """

    def __init__(self, max_disp: int = 32, features: int = 8):
        super().__init__()
        self.max_disp = max_disp
        f = features
        self.feature = nn.Sequential(
            nn.Conv2d(3, f, 5, stride=2, padding=2, bias=False), nn.BatchNorm2d(f), nn.ReLU(inplace=True),
            nn.Conv2d(f, f, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(f, f, 3, padding=1))
        self.aggregation = nn.Sequential(Conv2Plus1d(2 * f, f), Conv2Plus1d(f, f),
                                         Conv2Plus1d(f, 1, relu=False, middle_channels=f))

    def forward(self, left, right):
        features = self.feature(torch.cat([left, right], dim=0))
        left_features, right_features = features.chunk(2, dim=0)
        height, width = left_features.shape[-2:]
        cost = self.aggregation(concatenation_volume(left_features, right_features, self.max_disp // 2))
        cost = F.interpolate(cost, size=(self.max_disp, 2 * height, 2 * width), mode="trilinear",
                             align_corners=False).squeeze(1)
        probability = torch.softmax(-cost.float(), dim=1)
        levels = torch.arange(self.max_disp, device=cost.device, dtype=probability.dtype)
        return (probability * levels.view(1, -1, 1, 1)).sum(dim=1)


class TinyAdapter(TrainingAdapter):
    """The test network (not a backend): trains in seconds on the CPU."""

    backend = "tiny"
    architecture = "tiny test network"
    variants = {"tiny": {"features": 8}, "micro": {"features": 4}, "small": {"features": 16}}
    default_variant = "tiny"
    preprocessing = Preprocessing("standardise", pad_multiple=2, pad_mode="top_left")
    disparity_multiple = 2
    default_max_disp = 32
    default_crop = (64, 128)
    part_aliases = {"feature": ("feature",), "aggregation": ("aggregation",)}

    def build_network(self) -> nn.Module:
        return TinyStereoNet(self.max_disp, **self.variants[self.variant])


# ----------------------------------------------------------------------------- GC-Net

class GCNetAdapter(TrainingAdapter):
    """GC-Net (Kendall et al. 2017), :mod:`depthapp.backends.gcnet.model`."""

    backend = "gcnet"
    architecture = "GC-Net"
    variants = {
        "paper": {"features": 32, "residual_blocks": 8},
        "small": {"features": 16, "residual_blocks": 4},
        "tiny": {"features": 8, "residual_blocks": 1},
    }
    default_variant = "paper"
    backend_variants = ("paper",)
    min_input = 32
    default_crop = (256, 512)
    part_aliases = {"feature": ("unary",), "unary": ("unary",), "aggregation": ("regularization",)}
    paper_recipe = ("RMSProp, lr 1e-3, batch 1, 256x512 crops, Scene Flow, ~150k iterations; "
                    "L1 loss on ground truth")

    def build_network(self) -> nn.Module:
        from ..backends.gcnet.model import GCNet

        return GCNet(self.max_disp, **self.variants[self.variant])


# ----------------------------------------------------------------------------- GA-Net

class GANetAdapter(TrainingAdapter):
    """GA-Net (Zhang et al. 2019), :mod:`depthapp.backends.ganet.model`: GA-Net-11 and
    GA-Net-deep, plus narrow ``tiny11`` / ``tinydeep`` models of the same structure for the CPU.

    Training mode returns the intermediate disparities first; the losses weigh them as the
    authors' ``train.py`` does: GA-Net-11 0.4 / 1.2, GA-Net-deep 0.2 / 0.6 / 1.0."""

    backend = "ganet"
    architecture = "GA-Net"
    variants = {"11": {}, "deep": {}, "tiny11": {}, "tinydeep": {}}
    default_variant = "11"
    backend_variants = ("11", "deep")
    min_input = 48
    default_crop = (240, 576)
    part_aliases = {"feature": ("feature", "conv_x", "conv_y"),
                    "guidance": ("conv_start", "conv_refine", "bn_relu", "guidance"),
                    "aggregation": ("cost_agg",)}
    paper_recipe = ("Adam (0.9, 0.999), lr 1e-3, batch 16, 240x576 crops, Scene Flow 10 epochs (then "
                    "KITTI fine-tuning); smooth-L1, GA-Net-11 outputs weighted 0.4/1.2, deep 0.2/0.6/1.0")

    def _config(self):
        from ..backends.ganet.model import VARIANTS, tiny_config

        if self.variant.startswith("tiny"):
            return tiny_config(deep=self.variant == "tinydeep")
        return VARIANTS[self.variant]

    def build_network(self) -> nn.Module:
        from ..backends.ganet.model import GANet

        # SGA and LGA pick their backward by device: Triton kernels on CUDA, torch elsewhere.
        return GANet(self.max_disp, config=self._config())

    def train_outputs(self, model, left, right) -> TrainOutputs:
        outputs = model(left, right)
        if not isinstance(outputs, tuple):
            outputs = (outputs,)
        weights = [0.2, 0.6, 1.0] if len(outputs) == 3 else [0.4, 1.2] if len(outputs) == 2 else [1.0]
        return TrainOutputs(list(outputs), weights)

    def forward_eval(self, model, left, right) -> torch.Tensor:
        return model.infer(left, right)[0]

    def backend_options(self) -> dict[str, Any]:
        return {} if self.variant.startswith("tiny") else {"variant": self.variant}


# ----------------------------------------------------------------------------- PSMNet

class PSMNetAdapter(TrainingAdapter):
    """PSMNet stacked hourglass (Chang & Chen 2018), :mod:`depthapp.backends.psmnet.model`.

    Training uses the three hourglass outputs with the paper's weights 0.5 / 0.7 / 1.0."""

    backend = "psmnet"
    architecture = "PSMNet"
    variants = {"stackhourglass": {}}
    default_variant = "stackhourglass"
    backend_variants = ("stackhourglass",)
    min_input = 256  # the widest SPP pooling is 64x64 at quarter resolution
    default_crop = (256, 512)
    part_aliases = {"feature": ("feature_extraction",),
                    "aggregation": ("dres0", "dres1", "dres2", "dres3", "dres4",
                                    "classif1", "classif2", "classif3")}
    paper_recipe = ("Adam (0.9, 0.999), lr 1e-3, batch 12, 256x512 crops, Scene Flow 10 epochs; "
                    "smooth-L1 on the three outputs weighted 0.5/0.7/1.0")

    def build_network(self) -> nn.Module:
        from ..backends.psmnet.model import PSMNet

        return PSMNet(self.max_disp)

    def initialize(self, model: nn.Module) -> None:
        # The official initialisation (models/stackhourglass.py).
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                n = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
                module.weight.data.normal_(0, math.sqrt(2.0 / n))
            elif isinstance(module, nn.Conv3d):
                n = module.kernel_size[0] * module.kernel_size[1] * module.kernel_size[2] * module.out_channels
                module.weight.data.normal_(0, math.sqrt(2.0 / n))
            elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm3d)):
                module.weight.data.fill_(1)
                module.bias.data.zero_()
            elif isinstance(module, nn.Linear):
                module.bias.data.zero_()

    def check_batch(self, crop: tuple[int, int], batch: int) -> None:
        # The 64x64 SPP pooling of the quarter-resolution features must leave BatchNorm more
        # than one value per channel in training.
        pooled = batch * (crop[0] // 256) * (crop[1] // 256)
        if pooled < 2:
            raise UsageError(f"--crop {crop[0]}x{crop[1]} with --batch {batch}: PSMNet's pyramid pooling "
                             f"leaves one value per channel for BatchNorm; use a crop of at least "
                             f"256x512 (the paper's) or --batch 2")

    def train_outputs(self, model, left, right) -> TrainOutputs:
        from ..backends.psmnet.model import disparity_regression

        left_features, right_features = model.features(left, right)
        # The backend's own volume builder writes into a preallocated tensor (inference only);
        # this one is the same tensor and differentiable.
        volume = concatenation_volume(left_features, right_features, model.max_disp // 4)
        cost1, cost2, cost3 = model.aggregate_heads(volume)
        disparities = [disparity_regression(cost, model.max_disp) for cost in (cost1, cost2, cost3)]
        return TrainOutputs(disparities, [0.5, 0.7, 1.0])

    def load_state(self, model, state, source) -> None:
        from ..backends.psmnet.model import load_official_state_dict

        try:
            load_official_state_dict(model, state, source)
        except ValueError as error:
            raise WeightsError(str(error)) from None


# ----------------------------------------------------------------------------- MC-CNN

class DenseMCCNN(nn.Module):
    """An MC-CNN network (:mod:`depthapp.backends.mccnn.model`) run densely for training.

    ``forward(left, right)``: standardised grey ``(N, 1, H, W)`` x2 -> disparity ``(N, H, W)``,
    the soft-argmax of the similarity over ``0 .. max_disp - 1`` at temperature
    ``temperature`` (differentiable, for the photometric and distillation losses).
    :meth:`similarity` gives the ``(N, D, H, W)`` similarity volume itself (fast: cosine of the
    unit features, -1 where ``x - d`` leaves the right image).
    """

    def __init__(self, max_disp: int, variant: str, temperature: float = 0.05):
        super().__init__()
        from ..backends.mccnn.model import AccurateMCCNN, FastMCCNN

        self.network = FastMCCNN() if variant == "fast" else AccurateMCCNN()
        self.variant = variant
        self.max_disp = max_disp
        self.temperature = temperature

    def features(self, image: torch.Tensor) -> torch.Tensor:
        from ..backends.mccnn.model import PATCH_RADIUS

        return self.network(F.pad(image, (PATCH_RADIUS,) * 4, mode="replicate"))

    def similarity(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        left_features = self.features(left)
        right_features = self.features(right)
        width = left.shape[-1]
        levels = []
        for d in range(self.max_disp):
            if d >= width:
                levels.append(torch.full_like(left_features[:, 0], -1.0))
                continue
            shifted = F.pad(right_features[..., :width - d], (d, 0))
            if self.variant == "fast":
                score = (left_features * shifted).sum(dim=1)
            else:
                pairs = torch.cat((left_features, shifted), dim=1).permute(0, 2, 3, 1)
                score = self.network.similarity(pairs[..., :self.network.channels],
                                                pairs[..., self.network.channels:])
            if d:
                score = torch.cat((torch.full_like(score[..., :d], -1.0), score[..., d:]), dim=-1)
            levels.append(score)
        return torch.stack(levels, dim=1)

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        probability = torch.softmax(self.similarity(left, right).float() / self.temperature, dim=1)
        values = torch.arange(self.max_disp, device=probability.device, dtype=probability.dtype)
        return (probability * values.view(1, -1, 1, 1)).sum(dim=1)


def mccnn_hinge_loss(similarity: torch.Tensor, target: torch.Tensor, margin: float = 0.2,
                     negative_low: float = 1.5, negative_high: float = 18.0) -> torch.Tensor:
    """Zbontar & LeCun's hinge loss, densely: for every pixel with ground truth, the similarity
    at the true disparity (linear between the two nearest levels) must beat the similarity of
    each wrong disparity ``1.5 <= |d - d_gt| <= 18`` (the paper's Middlebury negative range)
    by ``margin``: mean of ``max(0, margin + s_neg - s_pos)``. ``similarity`` ``(N, D, H, W)``,
    ``target`` ``(N, H, W)`` with NaN unknown."""
    levels = similarity.shape[1]
    valid = torch.isfinite(target) & (target >= 0) & (target <= levels - 1)
    if not bool(valid.any()):
        return similarity.sum() * 0.0
    truth = torch.where(valid, target, torch.zeros_like(target))
    low = truth.floor().clamp(0, levels - 1).long()
    high = (low + 1).clamp(max=levels - 1)
    weight = (truth - low.float()).unsqueeze(1)
    positive = (1 - weight) * similarity.gather(1, low.unsqueeze(1)) + weight * similarity.gather(1, high.unsqueeze(1))
    d = torch.arange(levels, device=similarity.device, dtype=truth.dtype).view(1, -1, 1, 1)
    distance = (d - truth.unsqueeze(1)).abs()
    negative = (distance >= negative_low) & (distance <= negative_high) & valid.unsqueeze(1)
    hinge = torch.relu(margin + similarity - positive)
    return (hinge * negative).sum() / negative.sum().clamp(min=1)


class MCCNNAdapter(TrainingAdapter):
    """MC-CNN (Zbontar & LeCun 2016), :mod:`depthapp.backends.mccnn`. The patch network is run
    densely over crops; ``--loss supervised`` is the paper's hinge loss (fast) on every pixel
    with ground truth instead of sampled patch pairs, the other losses act on the soft-argmax of
    the similarity. The exported file is the bare network, which the ``mccnn`` backend runs
    inside its full method (cross aggregation, SGM, left-right check, refinement): the card's
    accuracy is the raw network's winner, the backend's is better."""

    backend = "mccnn"
    architecture = "MC-CNN"
    variants = {"fast": {}, "accurate": {}}
    default_variant = "fast"
    backend_variants = ("fast", "accurate")
    min_input = 11
    default_crop = (128, 256)
    part_aliases = {"feature": ("network.conv_blocks",), "decision": ("network.fl_blocks",)}
    paper_recipe = ("SGD with momentum 0.9, lr 0.003 (fast: batch 128 pairs of 9x9 patches), ~14 "
                    "epochs of KITTI/Middlebury patches; hinge loss margin 0.2 (fast), binary "
                    "cross-entropy (accurate)")
    same_output_as_backend = False

    def build_network(self) -> nn.Module:
        return DenseMCCNN(self.max_disp, self.variant)

    def supervised_objective(self, model, left, right, truth, max_disp):
        if self.variant != "fast":
            return None  # the accurate network learns from smooth-L1 on its soft-argmax
        similarity = model.similarity(left, right)
        loss = mccnn_hinge_loss(similarity.float(), truth)
        with torch.no_grad():
            probability = torch.softmax(similarity.float() / model.temperature, dim=1)
            values = torch.arange(similarity.shape[1], device=similarity.device, dtype=probability.dtype)
            disparity = (probability * values.view(1, -1, 1, 1)).sum(dim=1)
        return loss, disparity

    def load_state(self, model, state, source) -> None:
        from ..backends.mccnn.model import architecture_for, extract_state_dict

        state = extract_state_dict(state)
        wanted = type(model.network)
        if architecture_for(state) is not wanted:
            raise WeightsError(f"{source}: holds an MC-CNN {architecture_for(state).variant} network, "
                               f"not {self.variant} (pass --variant {architecture_for(state).variant})")
        from ..backends.gcnet.learned import load_state_dict_checked

        load_state_dict_checked(model.network, state, source)

    def export_state(self, model, half: bool = True) -> dict[str, torch.Tensor]:
        state = super().export_state(model, half)
        return {key[len("network."):]: value for key, value in state.items() if key.startswith("network.")}


# ----------------------------------------------------------------------------- lookup

def trainable_backends() -> list[str]:
    """Backends that declare a training adapter (:meth:`Backend.training_adapter`)."""
    from ..backends import list_backends

    return [info.name for info in list_backends()
            if info.available and info.cls.training_adapter() is not None]


def get_adapter(backend: str, variant: Optional[str] = None,
                max_disp: Optional[int] = None) -> TrainingAdapter:
    """The training adapter of ``backend`` (UsageError if it cannot be trained here); ``tiny``
    is the test network, which has no backend."""
    from ..backends import get_backend_class

    if backend == TinyAdapter.backend:
        return TinyAdapter(variant=variant, max_disp=max_disp)
    adapter = get_backend_class(backend).training_adapter()
    if adapter is None:
        raise UsageError(f"backend {backend} is not trainable (trainable: "
                         f"{', '.join(trainable_backends())})")
    return adapter(variant=variant, max_disp=max_disp)


__all__ = ["GCNetAdapter", "PSMNetAdapter", "TinyAdapter", "TinyStereoNet", "TrainOutputs",
           "TrainingAdapter", "get_adapter", "trainable_backends"]
