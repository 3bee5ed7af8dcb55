"""The abstract backend every disparity method implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, ClassVar, Optional

import numpy as np

from ..allocator import reuse_freed_memory
from ..data import DisparityResult, StereoPair
from ..device import available_memory_bytes, resolve_device
from ..errors import InputError, ParameterError, UsageError, literal
from ..jobs import CancelToken, ProgressCallback, StageProgress
from ..limits import MAX_DISPARITY_LEVELS
from ..params import Parameter, validate_overrides
from ..preprocessing import Preprocessing, round_up
from ..timing import StageTimer

if TYPE_CHECKING:
    from ..export.spec import ExportSpec


class Backend(ABC):
    """A disparity method. Subclasses declare their parameters and capabilities once, as data;
    the CLI, the viewer, evaluation, export and training read them from here.

    Class attributes:
        name: registry name (``--backend NAME``).
        description: one line for listings.
        parameters: declared :class:`~depthapp.params.Parameter` tuple; CLI flags and GUI
            controls are generated from it (defaults: :meth:`default_params`).
        default_max_disp: disparity levels when neither user, weights nor calibration decide.
        disparity_multiple: ``max_disp`` is rounded up to a multiple of this.
        supports_cuda: whether ``device='cuda'`` is possible.
        learned: needs weights; ``default_weights``: the registry id it loads when none are
            given (None: it needs them named).
        interactive: fast enough (well under a second on the sample) to recompute while a
            viewer slider moves.
        preprocessing: how a network's input is prepared
            (:class:`~depthapp.preprocessing.Preprocessing`); a weights record's own wins.
        kind: how listings describe it: "learned", "classical" (the default from ``learned``),
            or e.g. "exported model".
        presets: named parameter sets, e.g. ``{"fast": {...}}`` for the live camera.
        model_file_types: the extensions of the model file it runs (``model=`` / ``--model
            FILE``, e.g. ``(".onnx",)``); empty when it takes none. The viewer asks for the
            file when such a backend is picked.
        stage_shares: the usual share of the compute time of each stage its ``_compute``
            times (any scale), for the ETA of ``compute(progress=...)``; empty: stages are
            shown by name without an ETA.
        export_refusals: ``{format: why}`` for export formats refused before any work.
        reuses_freed_memory: compute inside :func:`~depthapp.allocator.reuse_freed_memory`
            (set where it was measured to pay: it saves the page faults of large blocks and
            costs some peak memory, which ``estimate_memory`` must then count).

    Optional capabilities are methods: :meth:`export_spec` (``depthapp export``) and
    :meth:`training_adapter` (``depthapp train``, ``adapt``, the viewer's "Adapt").
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    parameters: ClassVar[tuple[Parameter, ...]] = ()
    default_max_disp: ClassVar[int] = 128
    disparity_multiple: ClassVar[int] = 1
    #: The smallest disparity increment the output can show (px); 0 for continuous values.
    disparity_step: ClassVar[float] = 0.0
    supports_cuda: ClassVar[bool] = False
    learned: ClassVar[bool] = False
    default_weights: ClassVar[Optional[str]] = None
    interactive: ClassVar[bool] = False
    preprocessing: ClassVar[Optional[Preprocessing]] = None
    kind: ClassVar[str] = ""
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    model_file_types: ClassVar[tuple[str, ...]] = ()
    stage_shares: ClassVar[dict[str, float]] = {}
    export_refusals: ClassVar[dict[str, str]] = {}
    reuses_freed_memory: ClassVar[bool] = False

    @classmethod
    def kind_label(cls) -> str:
        return cls.kind or ("learned" if cls.learned else "classical")

    def __init__(self, max_disp: Optional[int] = None, device: str = "auto",
                 weights: Optional[str] = None, **params: Any):
        self.check_available()
        # Only the user's values come in; every default is the class's answer for these
        # weights, so every path that builds this backend (API, CLI, eval, viewer, camera,
        # export, training) gets the same parameters.
        self.overrides = validate_overrides(self.parameters, params, self.name)
        self.params = {**self.default_params(weights), **self.overrides}
        self.max_disp = self.round_max_disp(max_disp if max_disp else self.default_max_disp)
        self.device = resolve_device(device, self.supports_cuda, owner=f"backend {self.name}")
        self.weights = weights

    @classmethod
    def default_params(cls, weights: Optional[str] = None) -> dict[str, Any]:
        """Every parameter's default for ``weights`` (None: the backend's default weights).

        The one place defaults come from: whoever builds a backend passes only the values the
        user chose. A backend whose defaults depend on its checkpoint (MC-CNN's per-variant
        settings) answers for the checkpoint here."""
        return cls.declared_defaults()

    @classmethod
    def declared_defaults(cls) -> dict[str, Any]:
        """The ``default`` of each declared parameter."""
        return {p.name: p.default for p in cls.parameters}

    @classmethod
    def training_adapter(cls) -> Optional[type]:
        """The :class:`~depthapp.training.models.TrainingAdapter` subclass that trains this
        backend's network, or None: not trainable. Imported when asked (training needs torch)."""
        return None

    def export_spec(self, height: int, width: int) -> "ExportSpec":
        """``depthapp export``: the network as a module and how its input is prepared, for
        ``height x width`` images (:class:`~depthapp.export.spec.ExportSpec`). Backends that
        can be exported override this; :meth:`can_export` says whether one does."""
        raise UsageError(f"backend {self.name} cannot be exported")

    @classmethod
    def can_export(cls) -> bool:
        return cls.export_spec is not Backend.export_spec

    @classmethod
    def check_available(cls) -> None:
        """Raise :class:`~depthapp.errors.BackendUnavailableError` if this backend cannot run."""

    @classmethod
    def weights_max_disp(cls, weights: Optional[str]) -> Optional[int]:
        """The disparity range the given (or default) weights were trained for, if known."""
        return None

    @classmethod
    def round_max_disp(cls, max_disp: int) -> int:
        if isinstance(max_disp, bool) or not isinstance(max_disp, (int, np.integer)):
            raise ParameterError(f"{{}} must be a whole number, got {max_disp!r}", "max_disp")
        max_disp = int(max_disp)
        if not 1 <= max_disp <= MAX_DISPARITY_LEVELS:
            raise ParameterError(f"{{}} must be 1..{MAX_DISPARITY_LEVELS}, got {max_disp}", "max_disp")
        return round_up(max_disp, cls.disparity_multiple)

    # Size limits, checked by compute() before any work ----------------------------------------
    def estimate_memory(self, height: int, width: int) -> int:
        """Peak bytes of host memory one ``height x width`` pair needs with these parameters.

        This default is one float32 cost volume plus image-sized buffers; backends that know
        better override it."""
        return height * width * (4 * self.max_disp + 64)

    def min_pair_size(self) -> tuple[int, int]:
        """The smallest ``(width, height)`` this backend can match with its parameters and
        disparity range."""
        return 1, 1

    def max_disp_for_width(self, width: int) -> Optional[int]:
        """The largest ``max_disp`` worth searching on images ``width`` pixels wide, or None
        when the range is fixed by something else (a network's weights). Classical methods
        need no level beyond the width."""
        if self.learned:
            return None
        return round_up(max(1, width), self.disparity_multiple)

    def fit_max_disp(self, width: int) -> tuple[int, Optional[str]]:
        """The range to search on ``width``-pixel images and, when that is below ``max_disp``,
        the note saying so. The one rule for a ``--max-disp`` beyond the image: every command
        clamps and says so (run before it starts, the others per pair in :meth:`compute`)."""
        limit = self.max_disp_for_width(width)
        if limit is None or self.max_disp <= limit:
            return self.max_disp, None
        return limit, (f"max disparity {self.max_disp} is beyond the {width} px wide image: "
                       f"searching {limit} levels (the most backend {self.name} can use here)")

    def check_pair(self, pair: StereoPair) -> None:
        """Refuse, in one line and before any work, a pair this backend cannot or should not
        match: smaller than its window or than its disparity range needs, or needing more
        memory than is free."""
        min_width, min_height = self.min_pair_size()
        if pair.width < min_width or pair.height < min_height:
            raise InputError(f"{pair.name}: {pair.width}x{pair.height} is too small for backend "
                             f"{self.name} (it needs at least {min_width}x{min_height} with max "
                             f"disparity {self.max_disp} and these parameters)")
        self.check_memory(pair)

    def check_memory(self, pair: StereoPair) -> None:
        """Refuse a pair whose :meth:`estimate_memory` exceeds the free host memory (backends
        with a device budget and better advice override this)."""
        needed = self.estimate_memory(pair.height, pair.width)
        available = None if self.device.startswith("cuda") else available_memory_bytes("cpu")
        if available is not None and needed > available:
            raise InputError.naming(f"{literal(pair.name)}: {pair.width}x{pair.height} at max "
                                    f"disparity {self.max_disp} needs about {needed / 2**30:.1f} "
                                    f"GiB for backend {self.name}, more than the "
                                    f"{available / 2**30:.1f} GiB of memory free; pass a smaller "
                                    "{} or downscale the images", "max_disp")

    def compute(self, pair: StereoPair, cancel: Optional[CancelToken] = None,
                progress: Optional[ProgressCallback] = None) -> DisparityResult:
        """Disparity of ``pair.left``; shape ``(H, W)`` float32, NaN where invalid.

        ``progress`` gets a :class:`~depthapp.jobs.Progress` as each stage begins and at the
        end, with an ETA from :attr:`stage_shares`. The pair is checked first
        (:meth:`check_pair`)."""
        levels, clamp_note = self.fit_max_disp(pair.width)
        if clamp_note is None:
            return self._checked_compute(pair, cancel, progress)
        # Only for this pair: the next, wider one gets the range that was asked for.
        asked, self.max_disp = self.max_disp, levels
        try:
            result = self._checked_compute(pair, cancel, progress)
        finally:
            self.max_disp = asked
        result.messages.append(clamp_note)
        return result

    def _checked_compute(self, pair: StereoPair, cancel: Optional[CancelToken],
                         progress: Optional[ProgressCallback]) -> DisparityResult:
        self.check_pair(pair)
        timer = self.make_timer()
        stages = StageProgress(progress, self.stage_shares) if progress else None
        if stages:
            timer.on_stage = stages.start
        with reuse_freed_memory() if self.reuses_freed_memory else nullcontext():
            output = self._compute(pair, timer, cancel or CancelToken())
        if stages:
            stages.complete()
        confidence = None
        if isinstance(output, tuple):
            output, confidence = output
        disparity = np.asarray(output, dtype=np.float32)
        if disparity.shape != (pair.height, pair.width):
            raise AssertionError(  # a backend bug, not a user error
                f"backend {self.name} returned {disparity.shape} for a {pair.height}x{pair.width} pair")
        return DisparityResult(disparity=disparity, backend=self.name, parameters=dict(self.params),
                               max_disp=self.max_disp, confidence=confidence,
                               timings=timer.timings, device=self.device)

    def make_timer(self) -> StageTimer:
        if self.device.startswith("cuda"):
            import torch

            return StageTimer(sync=torch.cuda.synchronize)
        return StageTimer()

    @abstractmethod
    def _compute(self, pair: StereoPair, timer: StageTimer, cancel: CancelToken):
        """Return ``disparity`` or ``(disparity, confidence)`` as ``(H, W)`` arrays."""
