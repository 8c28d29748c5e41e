"""The :class:`Attack` base class: argument checks, labels, the attack objective, gradients.

An attack is built once and called many times, as in torchattacks::

    attack = PGD(model, eps=0.3, alpha=0.01, steps=40)
    x_adv = attack(x, y)

Each call validates its inputs, runs the model in eval mode with its parameters frozen
(both restored afterwards, so no ``.grad`` ever reaches a parameter), moves the data to the
model's device and returns a detached ``x_adv`` there. Subclasses only write
:meth:`Attack.perturb`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import (
    check_choice,
    check_eps,
    check_images,
    check_int,
    check_labels_tensor,
    check_seed,
    model_device,
    model_dtype,
)
from ..features import check_finite_outputs, run_model
from ..utils import batch_seed, evaluating, frozen
from .norms import check_norm

__all__ = ["Attack", "InputTransform", "LOSSES", "margin", "GradientMaskingWarning", "Compose",
           "random_targets", "attack_batch"]

LOSSES = ("ce", "margin", "logit")

#: A sample is "confident" when its top softmax probability exceeds this; the masking
#: warning fires when at least MASKED_SHARE of a batch is confident with a zero or
#: non-finite input gradient.
CONFIDENT, MASKED_SHARE = 0.99, 0.25


class GradientMaskingWarning(UserWarning):
    """The attack's input gradients vanish (or are not finite) on confident predictions, so
    its success rate understates the model's vulnerability (for example a saturated softmax
    under cross-entropy in float32). Try ``loss="margin"``."""

#: A differentiable map applied to the adversarial input before each forward pass (for
#: example :class:`~transferability.attacks.DI`), called as ``transform(x, generator)``.
#: A multi-copy transform (SI, Admix, SIA, BSR) returns ``k·N`` images, copy-major (all N
#: images of copy 0, then copy 1, ...); the attack averages the gradient over the copies.
InputTransform = Callable[[torch.Tensor, "torch.Generator | None"], torch.Tensor]


class Compose:
    """Input transforms applied in order, e.g. ``Compose([SI(), DI()])`` for SI-DI: each
    sees all the copies the previous one made."""

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise ValueError(f"input_transform: expected callables, got {t!r}")

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        for t in self.transforms:
            x = t(x, generator)
        return x


def attack_batch(attack: Callable, x: torch.Tensor, y: torch.Tensor | None,
                 batch: int) -> torch.Tensor:
    """``x_adv`` of batch ``batch`` (0, 1, ...) of a run: ``attack(x, y, batch=batch)`` for an
    :class:`Attack` (that batch's random draws, see its ``seed``), ``attack(x, y)`` for any
    other callable (a torchattacks attack draws from torch's global generator)."""
    return attack(x, y, batch=batch) if isinstance(attack, Attack) else attack(x, y)


def random_targets(y: torch.Tensor, num_classes: int, seed: int = 0) -> torch.Tensor:
    """A target class for each label, uniform over the ``num_classes − 1`` other classes
    (the random-target protocol of Zhao et al., "On Success and Simplicity", NeurIPS 2021)."""
    y = check_labels_tensor(y, "y", num_classes=num_classes)
    g = torch.Generator().manual_seed(check_seed(seed))
    shift = torch.randint(1, num_classes, (len(y),), generator=g).to(y.device)
    return (y + shift) % num_classes


def margin(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-sample logit margin ``z_y − max_{j≠y} z_j`` (positive when ``y`` wins).

    Carlini & Wagner (2017), objective f6, with the confidence clamp κ left off so every
    step keeps pushing (the unclamped form PGD uses, e.g. Madry et al.'s "CW loss").
    """
    true = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.masked_fill(F.one_hot(labels, logits.shape[1]).bool(), float("-inf"))
    return true - others.amax(dim=1)


class Attack:
    """Base class of the attacks: holds the model and the options they all share.

    Args:
        model: a classifier mapping images in [0, 1] to **logits** (normalisation inside).
        eps: radius of the threat model's ball, in the [0, 1] pixel scale (ε > 0).
        norm: ``"linf"`` or ``"l2"``.
        targeted: if true, ``y`` holds target classes and the attack pushes towards them.
        loss: ``"ce"`` (cross-entropy), ``"margin"`` (Carlini–Wagner logit margin) or
            ``"logit"`` (the label's logit alone, the targeted loss of Zhao et al. 2021).
        use_predictions: attack the model's own predicted labels and ignore ``y``, as
            Liang et al. (2021) do. Calling with ``y=None`` does the same.
        seed: seeds the random start and input transforms. A call draws afresh from
            :func:`~transferability.utils.batch_seed` ``(seed, batch)``: ``seed`` itself for
            a single call (or ``batch=0``), a stream of its own for each batch ``i`` of a
            run, so every batch draws new randomness while the same seed, inputs and batch
            size give the same ``x_adv`` however the run is scheduled or resumed (an
            :class:`~transferability.models.Ensemble` samples its members by the same rule).
            ``None`` uses torch's global generator.
        input_transform: a differentiable ``(x, generator) -> x`` applied before every
            forward pass of the attack, e.g. :class:`DI` input diversity; a list is
            applied in order (:class:`Compose`).
        gradient_transform: a map ``grad -> grad`` applied to every input gradient, e.g.
            :class:`TI`'s smoothing.
        copies_batch: with a multi-copy input transform, forward and backward this many
            copies at a time (``None``: all at once). Bounds memory; the result is the same.
    """

    #: the values ``loss`` accepts
    losses = LOSSES

    #: True for attacks that reach the model only through :meth:`gradient` (and keep the
    #: base ``_loss``): given labels, a call then makes no separate clean pass, and the
    #: first gradient's forward pass checks the outputs and labels instead (one forward
    #: pass fewer per call)
    checks_in_gradient = False

    def __init__(self, model: nn.Module, eps: float, *, norm: str = "linf",
                 targeted: bool = False, loss: str = "ce", use_predictions: bool = False,
                 seed: int | None = None, input_transform: InputTransform | None = None,
                 gradient_transform: Callable | None = None, copies_batch: int | None = None):
        if not isinstance(model, nn.Module):
            raise ValueError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        if targeted and use_predictions:
            raise ValueError("use_predictions: cannot be combined with targeted=True "
                             "(y holds the target classes)")
        if isinstance(input_transform, list | tuple):
            input_transform = Compose(input_transform)
        if input_transform is not None and not callable(input_transform):
            raise ValueError(f"input_transform: expected a callable, got {input_transform!r}")
        if gradient_transform is not None and not callable(gradient_transform):
            raise ValueError(f"gradient_transform: expected a callable, got "
                             f"{gradient_transform!r}")
        self.model = model
        self.eps = check_eps(eps)  # the one rule: > 0
        self.norm = check_norm(norm)
        self.targeted = bool(targeted)
        self.loss = check_choice(loss, "loss", self.losses)
        self.use_predictions = bool(use_predictions)
        self.seed = None if seed is None else check_seed(seed)
        self.input_transform = input_transform
        self.gradient_transform = gradient_transform
        self.copies_batch = None if copies_batch is None else check_int(copies_batch,
                                                                         "copies_batch")
        # a model with its own attack objective (e.g. models.Ensemble) combines the logits
        # or losses of its members itself, and may sample them per step
        self._model_objective = getattr(model, "attack_objective", None)
        self._confident: torch.Tensor | None = None  # set per call until the first gradient
        self._unchecked = False  # outputs and labels not checked yet in this call
        self._warned_masking = False

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items()
                         if k != "model" and not k.startswith("_"))
        return f"{type(self).__name__}({args})"

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None = None, *,
                 batch: int | None = None) -> torch.Tensor:
        """Return adversarial examples for ``x`` (N×C×H×W in [0, 1]) on the model's device.

        ``y`` holds the true labels (untargeted) or the target classes (``targeted``).
        With ``y=None`` or ``use_predictions`` the model's clean predictions are attacked.
        ``batch``: the position (0, 1, ...) of ``x`` among the batches of a run, which
        picks its random draws (see ``seed``; :func:`attack_batch` passes it to any attack).
        """
        seed = None if self.seed is None else batch_seed(self.seed, batch)
        x = check_images(x, "x")
        if len(x) == 0:
            raise ValueError("x: is an empty batch")
        if self.targeted and y is None:
            raise ValueError("y: a targeted attack needs the target classes")
        device = model_device(self.model)
        x = x.detach().to(device, model_dtype(self.model))
        with evaluating(self.model), frozen(self.model):
            if (y is None or self.use_predictions or not self.checks_in_gradient
                    or self._model_objective is not None
                    or type(self)._loss is not Attack._loss):  # a loss of its own
                with torch.no_grad():
                    logits = check_finite_outputs(run_model(self.model, x), "model")
                num_classes = self._check_outputs(logits)
                if not self._warned_masking:
                    self._confident = logits.softmax(dim=1).amax(dim=1) > CONFIDENT
                if y is None or self.use_predictions:
                    y = logits.argmax(dim=1)
                else:
                    y = check_labels_tensor(y, "y", n=len(x), num_classes=num_classes).to(device)
            else:  # the first gradient's forward pass checks the outputs and label values
                y = check_labels_tensor(y, "y", n=len(x), values=False).to(device)
                self._unchecked = True
            generator = None
            if seed is not None:
                generator = torch.Generator(device=device).manual_seed(seed)
            if self._model_objective is not None and hasattr(self.model, "reset"):
                self.model.reset(batch)  # the batch's own sampled members, on every call
            try:
                x_adv = self.perturb(x, y, generator)
            finally:
                self._unchecked = False
        return x_adv.detach()

    def perturb(self, x: torch.Tensor, y: torch.Tensor,
                generator: torch.Generator | None) -> torch.Tensor:
        """The attack itself, on validated inputs (model in eval mode, parameters frozen)."""
        raise NotImplementedError

    def objective(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The quantity the attack ascends, summed over the batch.

        Untargeted: the loss on the true label (cross-entropy, or minus the margin);
        targeted: minus the loss on the target. Summing rather than averaging keeps each
        sample's gradient independent of the batch size.
        """
        if self.loss == "ce":
            loss = F.cross_entropy(logits, y, reduction="sum")
        elif self.loss == "margin":
            loss = -margin(logits, y).sum()
        else:
            loss = -logits.gather(1, y[:, None]).sum()
        return -loss if self.targeted else loss

    def gradient(self, x_adv: torch.Tensor, y: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """∇ₓ of :meth:`objective` at ``x_adv`` (through ``input_transform`` if any, averaged
        over its copies, then through ``gradient_transform``).

        Uses ``torch.autograd.grad`` on the input alone; the parameters are frozen, so no
        weight gradients are computed or stored. Copies go through the model
        ``copies_batch`` at a time: the gradient with respect to each chunk of copies is
        taken first, then pulled back through the transform in one pass.
        """
        x_adv = x_adv.detach().requires_grad_(True)
        with torch.enable_grad():
            inputs = x_adv
            if self.input_transform is not None:
                inputs = self.input_transform(x_adv, generator)
            k, rest = divmod(len(inputs), len(x_adv))
            if rest:
                raise ValueError(f"input_transform: returned {len(inputs)} images for a batch "
                                 f"of {len(x_adv)}; expected a multiple")
            labels = y if k == 1 else y.repeat(k)
            chunk = len(inputs) if self.copies_batch is None else self.copies_batch * len(x_adv)
            if chunk >= len(inputs):
                objective = self._loss(inputs, labels)
                (grad,) = torch.autograd.grad(objective / k if k > 1 else objective, x_adv)
            else:
                leaf = inputs.detach()
                parts = []
                for start in range(0, len(leaf), chunk):
                    part = leaf[start:start + chunk].requires_grad_(True)
                    objective = self._loss(part, labels[start:start + chunk]) / k
                    parts.append(torch.autograd.grad(objective, part)[0])
                (grad,) = torch.autograd.grad(inputs, x_adv, torch.cat(parts))
        if self.gradient_transform is not None:
            grad = self.gradient_transform(grad)
        if self._confident is not None and len(grad) == len(self._confident):
            self._check_masking(grad)  # once per call: the first gradient only
        return grad

    def gradients(self, points: torch.Tensor, y: torch.Tensor,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        """The gradient at each of k points per image, ``points`` shaped k×N×C×H×W, taken
        ``copies_batch`` points at a time (all at once by default); returns k×N×C×H×W."""
        k, n = points.shape[:2]
        per = k if self.copies_batch is None else self.copies_batch
        out = []
        for start in range(0, k, per):
            chunk = points[start:start + per]
            grad = self.gradient(chunk.flatten(0, 1), y.repeat(len(chunk)), generator)
            out.append(grad.view(chunk.shape))
        return torch.cat(out)

    def _loss(self, inputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The summed objective of one forward pass (feature-level attacks replace it)."""
        if self._model_objective is None:
            logits = self._first_logits(inputs, y) if self._unchecked else self.model(inputs)
            return self.objective(logits, y)
        return self._model_objective(inputs, y, self.objective)

    def _first_logits(self, inputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The first forward pass of a call that made no clean pass: it runs the checks the
        clean pass would (finite N×C logits, labels in range, which inputs are confident),
        with one wait for the device on valid input (the checks' own errors otherwise)."""
        logits = run_model(self.model, inputs)
        if logits.ndim == 2 and len(y) and logits.shape[1] >= 2:
            finite, low, high, positive = torch.stack([
                torch.isfinite(logits).all().long(), *torch.aminmax(y.detach()),
                (logits >= 0).all().long()]).tolist()
            if not finite:
                check_finite_outputs(logits, "model")
            if low < 0 or high >= logits.shape[1]:
                check_labels_tensor(y, "y", num_classes=logits.shape[1])
            if positive:  # maybe probabilities: the warning's own test
                self._check_outputs(logits)
        else:
            check_finite_outputs(logits, "model")
            check_labels_tensor(y, "y", num_classes=self._check_outputs(logits))
        if not self._warned_masking:
            self._confident = logits.detach().softmax(dim=1).amax(dim=1) > CONFIDENT
        self._unchecked = False
        return logits

    def _check_masking(self, grad: torch.Tensor) -> None:
        """Warn (once per attack object) when gradients vanish on confident predictions."""
        peak = grad.flatten(1).abs().amax(dim=1)  # NaN and inf propagate into the peak
        dead = ~(torch.isfinite(peak) & (peak > 0))
        masked = int((dead & self._confident).sum())
        self._confident = None
        if masked >= MASKED_SHARE * len(grad):
            self._warned_masking = True
            warnings.warn(
                f"{type(self).__name__}: the input gradient is zero or not finite for {masked} "
                f"of {len(grad)} inputs that the model classifies with confidence > {CONFIDENT} "
                f"(loss={self.loss!r}); the attack cannot move them, so its success rate "
                "understates the model's vulnerability. Try loss='margin'.",
                GradientMaskingWarning, stacklevel=4)

    def _check_outputs(self, logits: torch.Tensor) -> int:
        if logits.ndim != 2 or logits.shape[1] < 2:
            raise ValueError("model: expected outputs shaped N×C with C >= 2 classes, got "
                             f"shape {tuple(logits.shape)}")
        rows = logits.sum(dim=1)
        if (logits >= 0).all() and torch.allclose(rows, torch.ones_like(rows), atol=1e-4):
            warnings.warn("model: outputs look like probabilities (non-negative rows summing to "
                          "1); attacks need logits, since gradients through a softmax vanish "
                          "and mislead the attack. Remove the final softmax.", UserWarning,
                          stacklevel=3)
        return int(logits.shape[1])
