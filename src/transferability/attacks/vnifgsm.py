"""VNI-FGSM: variance tuning with Nesterov look-ahead (Wang & He, CVPR 2021, Sec. 3.3)."""

from __future__ import annotations

from .nifgsm import nesterov_point
from .registry import register_attack
from .vmifgsm import VMIFGSM

__all__ = ["VNIFGSM"]


@register_attack("vnifgsm", randomized=True, grads_per_step=21, quick={"samples": 2})
class VNIFGSM(VMIFGSM):
    """:class:`VMIFGSM` with ĝ taken at NI-FGSM's look-ahead point ``x_t + α·μ·g_t`` (``g``
    normalised by the mean, as in the authors' code: :func:`nesterov_point`); the
    variance is sampled around ``x_t`` and relative to that ĝ, as in the authors' code.
    Defaults and cost (N + 1 gradients a step) as for VMI-FGSM."""

    def _point(self, x_adv, memory):
        return nesterov_point(x_adv, self.alpha, self.decay, memory)
