"""Learning without forgetting for robust transfer (Shafahi et al., ICLR 2020, Sec. 5).

Fine-tuning minimises ``CE(f(x), y) + λ·mean_i ‖φ(x_i) − φ₀(x_i)‖₁``: φ are the
penultimate features of the model being tuned, φ₀ those of the frozen (robust) source on
the same clean training images, so the tuned features stay close to the robust ones.
φ₀ is computed once, before training (:meth:`LwF.indexed`); training then runs on
``(x, index)`` pairs — ``fit`` hands each batch's sample indices over where it would hand
labels — and :meth:`LwF.loss` looks up the batch's labels and φ₀ by index.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import check_positive
from ..data.dataset import as_tensors
from ..features import extract, forward_with_features
from ..training import TrainingMethod

__all__ = ["LwF"]


class LwF(TrainingMethod):
    """The LwF loss above with ``lam`` (λ ≥ 0, their 0.005) and the features of ``layer``
    (default: the input of the last ``nn.Linear``, see :mod:`transferability.features`).
    Bind it to a source with :meth:`indexed` and train on what that returns, as
    :func:`~transferability.transfer.fine_tune` does with ``method="lwf"``."""

    name = "lwf"

    def __init__(self, lam: float = 0.005, layer: str | None = None):
        super().__init__()
        self.options = {"lam": check_positive(lam, "lam", allow_zero=True), "layer": layer}
        self.labels: torch.Tensor | None = None
        self.phi0: torch.Tensor | None = None

    def indexed(self, source: nn.Module, train) -> tuple[torch.Tensor, torch.Tensor]:
        """Compute φ₀ = the source's features on the training images (eval mode, one
        :func:`extract` pass) and return the training set as ``(x, index)``."""
        x, y = as_tensors(train, "train")
        self.phi0 = extract(source, x, layer=self.options["layer"], name="source").features
        self.labels = y
        return x, torch.arange(len(y))

    def loss(self, model, x, index):
        if self.phi0 is None:
            raise ValueError("train: LwF trains on the (x, index) pairs of "
                             "LwF.indexed(source, train); use fine_tune(method='lwf')")
        if self.phi0.device != index.device:
            self.phi0, self.labels = self.phi0.to(index.device), self.labels.to(index.device)
        features, logits = forward_with_features(model, x, layer=self.options["layer"])
        phi0 = self.phi0[index]
        if features.shape[1] != phi0.shape[1]:
            raise ValueError(f"model: its features have {features.shape[1]} dimensions, the "
                             f"source's {phi0.shape[1]}; LwF needs one feature space")
        penalty = (features - phi0.to(features.dtype)).abs().sum(1).mean()
        return F.cross_entropy(logits, self.labels[index]) + self.options["lam"] * penalty
