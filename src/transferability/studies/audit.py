"""Transfer-attack audits: surrogates × victims × attacks, at the field's standard.

An audit answers "will adversarial examples made on public models fool my deployed
model?". Each (attack, surrogate) pair is one job of the results store (``audit_cell``): it
crafts adversarial examples, **quantises them to 8 bits** (the values a PNG holds, with the
ε-bound checked after rounding; :func:`~transferability.attacks.norms.quantize`), or writes
them as PNG and reads them back, and records for every victim and image whether it was
fooled, plus the perturbation's L2, L∞ and SSIM (:mod:`~transferability.stealth`). The
final ``audit`` job turns the cells into:

- one row per (attack, surrogate, victim) with both denominators (all ``n`` images, and the
  images both models classify correctly; see :mod:`~transferability.transfer_matrix`) and
  a percentile bootstrap interval over images for each;
- the attack × victim-family table (families such as ``cnn``, ``transformer``,
  ``defended``), transfer pairs only (surrogate ≠ victim), with intervals and the rank of
  each attack within its family; the family ``white box`` holds each attack's success on
  its own surrogates, the ceiling of its transfer;
- the field's orderings as claims decided from paired per-image differences
  (:func:`~transferability.stats.claim` with the bootstrap): MI-FGSM < DI, DI ≤ SIA and
  BSR, an ensemble surrogate > a single one, a targeted logit loss > targeted CE
  (Zhao et al., "On Success and Simplicity: A Second Look at Transferable Targeted
  Attacks", NeurIPS 2021).

A protocol (:class:`AuditSettings`, read from a YAML file) fixes the surrogates, victims, ε, steps,
images and seeds, so that a published setting can be rerun and compared.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .._files import check_writable_dir
from .._results import Result
from .._validation import (
    Constraint,
    Each,
    Flag,
    Integer,
    OneOf,
    Optional,
    Positive,
    Seed,
    Table,
    Text,
    check_count,
    check_eps,
    check_images,
    check_int,
    check_labels_tensor,
    check_seed,
)
from ..attacks import AttackSpec, attack_info, list_attacks, norms, random_targets
from ..features import predict
from ..jobs import Job, Output, ResultStore, given, job_kind, open_store, run_jobs
from ..models import Ensemble
from ..stats import claim
from ..stealth import stealth
from ..transfer_matrix import _check_models
from ..utils import batches
from . import Settings, Study, register_study, setting

__all__ = ["AuditResult", "audit", "FAMILIES", "ORDERINGS"]

log = logging.getLogger("transferability")

#: The usual victim families; any other name is accepted.
FAMILIES = ("cnn", "transformer", "defended")
#: The orderings the field reports (claimed-better attack, other attack).
ORDERINGS = (("mi-di", "mifgsm"), ("sia", "mi-di"), ("bsr", "mi-di"))
ENSEMBLE, TARGETED, ENSEMBLE_ATTACK = "ensemble", "targeted", "mifgsm-ensemble"


# ---- one cell: an attack on one surrogate, shown to every victim ---------------------------

def _png_roundtrip(x_adv: torch.Tensor, folder: Path, start: int) -> torch.Tensor:
    """Write ``x_adv`` as 8-bit PNG files ``{start+i:06d}.png`` and read them back."""
    from PIL import Image

    pixels = (x_adv.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
    back = []
    for i, image in enumerate(pixels):
        array = image.permute(1, 2, 0).numpy()
        path = folder / f"{start + i:06d}.png"
        Image.fromarray(array[..., 0] if array.shape[2] == 1 else array).save(path)
        with Image.open(path) as read:
            loaded = torch.from_numpy(np.array(read, dtype=np.uint8))
        back.append(loaded.reshape(image.shape[1], image.shape[2], -1).permute(2, 0, 1))
    return torch.stack(back).to(x_adv.device, x_adv.dtype) / 255


@job_kind("audit_cell", artifact="tensors")
def audit_cell_job(config: dict, inputs: dict) -> Output:
    """Attack ``surrogate`` with ``config["attack"]`` and show the (quantised) examples to
    each ``victim:NAME``: per victim and image, wrong (untargeted) or on target (targeted)."""
    surrogate = inputs["surrogate"].artifact
    victims = {k.split(":", 1)[1]: v.artifact for k, v in inputs.items()
               if k.startswith("victim:")}
    x, y = inputs["x"].artifact, inputs["y"].artifact
    targets = inputs["targets"].artifact if "targets" in inputs else None
    attack = AttackSpec.of(config["attack"]).create(surrogate)
    eps, norm = attack.eps, attack.norm
    folder = config.get("save_png")
    if folder:
        folder = check_writable_dir(Path(folder) / config["name"], "save_png")
    hit = {name: [] for name in [*victims, "(white box)"]}
    quality: dict[str, list] = {"l2": [], "linf": [], "ssim": []}
    start, batch = 0, config["batch_size"]
    labels = y if targets is None else targets
    for i, (xb, lb) in enumerate(batches(x, labels, batch_size=batch)):
        x_adv = attack(xb, lb, batch=i).to(xb.device)  # each batch draws its own randomness
        if config["quantize"]:
            x_adv = norms.quantize(xb, x_adv, eps, norm)
        if folder:
            x_adv = _png_roundtrip(x_adv, folder, start)
        if config["quantize"] or folder:
            norms.check_bound(xb, x_adv, eps, norm)
        for name, model in [*victims.items(), ("(white box)", surrogate)]:
            pred = predict(model, x_adv, batch_size=batch).argmax(1).cpu()
            hit[name].append(pred == lb.cpu() if targets is not None else pred != lb.cpu())
        for k, v in stealth(xb, x_adv).items():
            quality[k].append(v)
        start += len(xb)
    tensors = {f"hit:{k}": torch.cat(v) for k, v in hit.items()}
    tensors.update({f"stealth:{k}": torch.cat(v) for k, v in quality.items()})
    value = {"attack": repr(attack), **{k: float(torch.cat(v).mean()) for k, v in quality.items()}}
    return Output(value, tensors)


@job_kind("audit_clean", artifact="tensors")
def audit_clean_job(config: dict, inputs: dict) -> Output:
    """Whether ``model`` classifies each image correctly."""
    logits = predict(inputs["model"].artifact, inputs["x"].artifact,
                     batch_size=config["batch_size"])
    correct = logits.argmax(1).cpu() == inputs["y"].artifact.cpu()
    return Output({"accuracy": float(correct.double().mean())}, {"correct": correct})


# ---- the result ------------------------------------------------------------------------------

@dataclass(frozen=True)
class AuditResult(Result):
    """The tables of an audit (see the module docstring): ``rows`` per (attack, surrogate,
    victim), ``families`` per (attack, victim family), ``targeted`` rows, the ordering
    ``claims`` (text) and ``verdicts`` (their fields), and the ``settings``."""

    rows: list
    families: list
    targeted: list
    claims: list
    verdicts: list
    settings: dict = field(default_factory=dict)

    def ranking(self, family: str, protocol: str = "both_correct") -> list[str]:
        """The attacks on ``family``, most successful first."""
        key = f"rate_{protocol}"
        rows = [r for r in self.families if r["family"] == family and r[key] is not None]
        return [r["attack"] for r in sorted(rows, key=lambda r: -r[key])]

    def matrices(self) -> dict:
        """One :class:`~transferability.transfer_matrix.TransferMatrix` per attack."""
        from ..transfer_matrix import TransferMatrix

        out = {}
        n = self.settings.get("n", 0)
        for attack in dict.fromkeys(r["attack"] for r in self.rows):
            rows = [r for r in self.rows if r["attack"] == attack]
            wb = {r["surrogate"]: r for r in rows if r["white_box"]}
            cross = [r for r in rows if not r["white_box"]]
            s_names = list(dict.fromkeys(r["surrogate"] for r in cross))
            v_names = list(dict.fromkeys(r["victim"] for r in cross))
            cell = {(r["surrogate"], r["victim"]): r for r in cross}

            def grid(key, cell=cell, s_names=s_names, v_names=v_names):
                return [[cell[s, v][key] for v in v_names] for s in s_names]
            clean = {**{r["victim"]: r["victim_correct"] for r in cross},
                     **{s: wb[s]["victim_correct"] for s in s_names}}
            out[attack] = TransferMatrix(
                surrogates=s_names, victims=v_names, n=n, fooled=grid("fooled"),
                both_correct=grid("both_correct"),
                fooled_both_correct=grid("fooled_both_correct"), clean_correct=clean,
                white_box_fooled=[wb[s]["fooled"] for s in s_names],
                white_box_fooled_correct=[wb[s]["fooled_both_correct"] for s in s_names],
                attack=attack)
        return out


# ---- statistics over images ------------------------------------------------------------------

def _ratio_ci(num: np.ndarray, den: np.ndarray, idx: np.ndarray) -> tuple:
    """``Σnum/Σden`` over images and its percentile bootstrap interval (``idx``: the
    resampled image indices, B×N)."""
    total = den.sum()
    if total == 0:
        return None, None, None
    boot_den = den[idx].sum(axis=1)
    boot = num[idx].sum(axis=1) / np.maximum(boot_den, 1)
    boot = boot[boot_den > 0]
    low, high = np.quantile(boot, [0.025, 0.975])
    return float(num.sum() / total), float(low), float(high)


def _rates(fooled: np.ndarray, both: np.ndarray, idx: np.ndarray) -> dict:
    """Both denominators with intervals, from per-image counts summed over pairs (P×N)."""
    out = {}
    ones = np.ones_like(fooled)
    for protocol, num, den in (("all", fooled, ones), ("both_correct", fooled & both, both)):
        rate, low, high = _ratio_ci(num.sum(0).astype(float), den.sum(0).astype(float), idx)
        out.update({f"rate_{protocol}": rate, f"low_{protocol}": low,
                    f"high_{protocol}": high})
    return out


def _per_image(fooled: np.ndarray, both: np.ndarray) -> np.ndarray:
    """Per image: the share of transfer pairs fooled among those where both models are
    correct (NaN where there is none)."""
    den = both.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (fooled & both).sum(0) / np.maximum(den, 1), np.nan)


def _ordering(statement: str, better: np.ndarray, worse: np.ndarray, seed: int):
    keep = ~(np.isnan(better) | np.isnan(worse))
    return claim(statement, better[keep] - worse[keep], interval="bootstrap", seed=seed)


# ---- the audit --------------------------------------------------------------------------------

def _check_attacks(attacks, surrogates: dict[str, nn.Module],
                   base: AttackSpec) -> dict[str, dict]:
    """``{label: {"attack": spec dict, "surrogates": names}}``, each attack's own options
    laid over ``base`` (the options every attack shares). Every attack is built once on each
    surrogate it will attack, so that an unknown option, a missing layer or SGM without
    residual blocks fails before any work. ``options["surrogates"]`` limits an attack to
    some surrogates (e.g. SGM to those with residual blocks)."""
    if isinstance(attacks, str) or not attacks:
        raise ValueError("attacks: expected a list of attack names or a mapping "
                         "label -> options")
    if not isinstance(attacks, Mapping):
        attacks = {a: {} for a in attacks}
    out = {}
    for label, options in attacks.items():
        if options is not None and not isinstance(options, Mapping):
            raise ValueError(f"attacks: the options of {label!r} must be a mapping")
        options = dict(options or {})
        kind = options.pop("attack", label)
        if kind not in list_attacks():
            raise ValueError(f"attacks: unknown attack {kind!r}; available: "
                             f"{', '.join(list_attacks())}")
        names = options.pop("surrogates", None)
        names = list(surrogates) if names is None else list(names)
        unknown = sorted(set(names) - set(surrogates))
        if unknown or not names:
            raise ValueError(f"attacks: {label!r} names surrogates {unknown or names} that "
                             f"are not among {list(surrogates)}")
        spec = AttackSpec(kind, options).with_defaults(base)  # fgsm: no steps, by its entry
        if attack_info(kind).needs_ensemble:
            names = [ENSEMBLE]
            spec.create(Ensemble([surrogates[n] for n in surrogates]))
        else:
            for name in names:
                spec.create(surrogates[name])
        out[label] = {"attack": spec.to_dict(), "surrogates": names}
    return out


def _families(families: Mapping | None, victims: Mapping) -> dict[str, str]:
    """Every victim's family (``cnn`` unless given); a family of no victim is refused."""
    families = dict(families or {})
    unknown = sorted(set(families) - set(victims))
    if unknown:
        raise ValueError(f"families: {unknown[0]!r} is not a victim")
    return {v: families.get(v, "cnn") for v in victims}


def _shared(shared: Mapping | None, seed: int) -> AttackSpec:
    """The options every attack of the grid shares: ``eps`` (required), ``steps`` (default
    10), ``norm`` (``"linf"``) and any other, with the seed, as a spec of MI-FGSM (the
    ensemble's attack)."""
    if shared is not None and not isinstance(shared, Mapping):
        raise ValueError(f"shared: expected a dict, got {type(shared).__name__}")
    shared = dict(shared or {})
    if "eps" not in shared:
        raise ValueError("shared: needs 'eps', the perturbation budget")
    eps = check_eps(shared.pop("eps"), "eps")
    steps = check_int(shared.pop("steps", 10), "steps")
    norm = norms.check_norm(shared.pop("norm", "linf"))
    return AttackSpec("mifgsm", {**shared, "eps": eps, "steps": steps, "norm": norm}, seed)


def _cell_jobs(attacks: dict, base: AttackSpec, surrogates, victims, gm, gx, gy, *,
               ens, targeted_attack, targeted_steps, num_classes, y, seed, quantize,
               save_png, batch_size) -> tuple[dict, dict]:
    """The grid's jobs: one ``audit_cell`` per (attack, surrogate), the ensemble's, and the
    targeted attacks' per (loss, surrogate)."""
    def cell(label, spec: dict, surrogate, targets=None):
        config = {"attack": spec, "quantize": bool(quantize), "save_png": save_png,
                  "batch_size": batch_size, "name": f"{label}__{surrogate}".replace("/", "_")}
        inputs = {"surrogate": gm[surrogate], "x": gx, "y": gy,
                  **{f"victim:{v}": gm[v] for v in victims}}
        if targets is not None:
            inputs["targets"] = targets
        return Job("audit_cell", config, inputs, label=f"{label}/{surrogate}")

    cells = {}
    for label, entry in attacks.items():
        if attack_info(entry["attack"]["name"]).needs_ensemble and ens is None:
            continue  # no ensemble to attack
        for s in entry["surrogates"]:
            cells[label, s] = cell(label, entry["attack"], s)
    if ens is not None:
        cells[ENSEMBLE_ATTACK, ENSEMBLE] = cell(ENSEMBLE_ATTACK, base.to_dict(), ENSEMBLE)
    targeted = {}
    if targeted_attack:
        gt = given(random_targets(y, num_classes, seed), "targets")
        for loss in ("logit", "ce"):
            spec = AttackSpec(targeted_attack, {
                "steps": check_int(targeted_steps, "targeted_steps"), "targeted": True,
                "loss": loss}).with_defaults(base)
            for s in surrogates:
                targeted[loss, s] = cell(f"{TARGETED}-{loss}", spec.to_dict(), s, gt)
    return cells, targeted


def audit(surrogates: Mapping[str, nn.Module], victims: Mapping[str, nn.Module],
          x: torch.Tensor, y: torch.Tensor, attacks: Sequence[str] | Mapping[str, dict], *,
          shared: Mapping | None = None, families: Mapping[str, str] | None = None,
          ensemble: bool = True,
          targeted_attack: str | None = "mi-di", targeted_steps: int = 300,
          quantize: bool = True, save_png: str | Path | None = None, seed: int = 0,
          n_boot: int = 1000, batch_size: int = 128, store: ResultStore | None = None,
          cache_dir=None, backend: str = "local", show_progress: bool | None = None,
          settings: dict | None = None, **backend_options) -> AuditResult:
    """Run the audit grid (see the module docstring) through the results store.

    Args:
        surrogates, victims: mappings from name to model (logits out, images in [0, 1]).
        x, y: the images and their labels. With ``quantize`` the images are first put on the
            8-bit grid, as a PNG image set would be.
        attacks: registered attack names, or ``{label: options}`` (``options["attack"]``
            names the registered attack when the label differs; ``layer`` for ILA/FIA).
        shared: options every attack shares: ``eps`` (required), ``steps`` (default 10),
            ``norm`` (``"linf"``) and any other; an attack's own options override them. The
            seed is ``seed``.
        families: victim name → family (``cnn``, ``transformer``, ``defended``, ...);
            default ``cnn``.
        ensemble: also attack an :class:`~transferability.models.Ensemble` of the
            surrogates (loss ensemble) with MI-FGSM, for "ensemble > single" (and SVRE).
        targeted_attack: run this attack targeted, with the logit loss and with CE, at
            ``targeted_steps`` steps, towards random targets (``None``: skip).
        save_png: write every adversarial image as PNG under this folder (one folder per
            cell) and evaluate the images read back.
        n_boot: bootstrap resamples over images for every interval.
        batch_size: images per attack call; batch i draws its own randomness from ``seed``
            and i (:func:`~transferability.utils.batch_seed`), so it is part of the setting.
    """
    surrogates = _check_models(surrogates, "surrogates")
    victims = _check_models(victims, "victims")
    x = check_images(x, "x")
    y = check_labels_tensor(y, "y", n=len(x)).cpu()
    if len(x) == 0:
        raise ValueError("x: is empty")
    seed = check_seed(seed)
    base = _shared(shared, seed)
    n_boot = check_count(n_boot, "n_boot")
    families = _families(families, victims)
    attacks = _check_attacks(attacks, surrogates, base)
    if save_png is not None:
        save_png = str(check_writable_dir(save_png, "save_png"))
    if quantize:
        x = torch.round(x * norms.LEVELS) / norms.LEVELS
    with torch.no_grad():
        num_classes = predict(next(iter(surrogates.values())), x[:1]).shape[1]
    check_labels_tensor(y, "y", num_classes=num_classes)

    gx, gy = given(x, "images"), given(y, "labels")
    gm = {name: given(m, name) for name, m in {**surrogates, **victims}.items()}
    ens = Ensemble(list(surrogates.values()), combine="loss") if (
        ensemble and len(surrogates) > 1) else None
    if ens is not None:
        gm[ENSEMBLE] = given(ens, ENSEMBLE)
    clean = {name: Job("audit_clean", {"batch_size": batch_size},
                       {"model": g, "x": gx, "y": gy}, label=f"clean/{name}")
             for name, g in gm.items()}
    cells, targeted = _cell_jobs(attacks, base, surrogates, victims, gm, gx, gy, ens=ens,
                                 targeted_attack=targeted_attack,
                                 targeted_steps=targeted_steps, num_classes=num_classes, y=y,
                                 seed=seed, quantize=quantize, save_png=save_png,
                                 batch_size=batch_size)
    options = base.options
    settings = {**(settings or {}), "n": len(x), "eps": options["eps"],
                "steps": options["steps"], "norm": options["norm"], "seed": seed,
                "quantize": bool(quantize), "n_boot": n_boot, "families": families,
                "attacks": attacks,
                "targeted": {"attack": targeted_attack, "steps": targeted_steps}}
    inputs = {f"cell:{a}|{s}": j for (a, s), j in cells.items()}
    inputs.update({f"targeted:{a}|{s}": j for (a, s), j in targeted.items()})
    inputs.update({f"clean:{m}": j for m, j in clean.items()})
    final = Job("audit", {"settings": settings, "surrogates": list(surrogates),
                          "victims": list(victims)}, inputs, label="audit")
    with open_store(store, cache_dir) as store:
        run = run_jobs([final], store, study="audit", backend=backend,
                       show_progress=show_progress, **backend_options)
    return AuditResult.from_dict(run.value(final))


def _targeted(inputs: dict, victims, families, idx, verdicts: list, seed: int) -> list[dict]:
    """The targeted attacks' hit rates per (loss, victim family), and the verdict "logit
    loss > CE" appended to ``verdicts``."""
    target_rows, target_images = [], {}
    for key, out in inputs.items():
        if not key.startswith("targeted:"):
            continue
        label, surrogate = key[9:].split("|")
        for v in victims:
            if v == surrogate:
                continue
            hit = out.artifact[f"hit:{v}"].numpy()
            target_images.setdefault(label, {}).setdefault(families[v], []).append(hit)
    for loss, by_family in target_images.items():
        for family, hits in by_family.items():
            hits = np.stack(hits)
            target_rows.append({"loss": loss, "family": family, "pairs": len(hits),
                                **_rates(hits, np.ones_like(hits), idx)})
    if {"logit", "ce"} <= set(target_images):
        def targeted_success(loss):
            return np.concatenate(list(target_images[loss].values())).mean(0)
        verdicts.append(_ordering("targeted logit loss > targeted CE (hit rate, per image)",
                                  targeted_success("logit"), targeted_success("ce"),
                                  seed))
    return target_rows


@job_kind("audit")
def audit_job(config: dict, inputs: dict) -> dict:
    """The audit's tables from its cells (see the module docstring)."""
    settings = config["settings"]
    victims, families = config["victims"], settings["families"]
    correct = {k.split(":", 1)[1]: v.artifact["correct"].numpy()
               for k, v in inputs.items() if k.startswith("clean:")}
    n = settings["n"]
    idx = np.random.default_rng(settings["seed"]).integers(0, n, size=(settings["n_boot"], n))
    rows, per_family, images = [], {}, {}
    for key, out in inputs.items():
        if not key.startswith("cell:"):
            continue
        attack, surrogate = key[5:].split("|")
        hits = out.artifact
        pairs = {v: hits[f"hit:{v}"].numpy() for v in victims}
        pairs["(white box)"] = hits["hit:(white box)"].numpy()
        quality = {k: float(hits[f"stealth:{k}"].double().mean()) for k in ("l2", "linf", "ssim")}
        for v, fooled in pairs.items():
            white = v == "(white box)" or v == surrogate
            name = surrogate if v == "(white box)" else v
            both = correct[surrogate] & correct[name]
            rows.append({"attack": attack, "surrogate": surrogate, "victim": name,
                         "family": "white box" if white else families[v], "white_box": white,
                         "n": n, "fooled": int(fooled.sum()), "both_correct": int(both.sum()),
                         "fooled_both_correct": int((fooled & both).sum()),
                         "victim_correct": int(correct[name].sum()),
                         **_rates(fooled[None], both[None], idx), **quality})
            group = per_family.setdefault((attack, "white box" if white else families[v]),
                                          [[], [], []])
            group[0].append(fooled)
            group[1].append(both)
            group[2].append(quality)
            if not white:
                images.setdefault((attack, surrogate), [[], []])
                images[attack, surrogate][0].append(fooled)
                images[attack, surrogate][1].append(both)
    fam_rows = []
    for (attack, family), (fooled, both, quality) in per_family.items():
        fam_rows.append({"attack": attack, "family": family, "pairs": len(fooled),
                         **_rates(np.stack(fooled), np.stack(both), idx),
                         **{k: float(np.mean([q[k] for q in quality]))
                            for k in ("l2", "linf", "ssim")}})
    for family in dict.fromkeys(r["family"] for r in fam_rows):
        ranked = sorted((r for r in fam_rows if r["family"] == family),
                        key=lambda r: -(r["rate_both_correct"] or 0))
        for rank, r in enumerate(ranked, 1):
            r["rank"] = rank
    fam_rows.sort(key=lambda r: (r["family"], r["rank"]))

    def success(attack, surrogates):
        """Per image, over the given surrogates' transfer pairs (both models correct)."""
        parts = [images[attack, s] for s in surrogates if (attack, s) in images]
        if not parts:
            return None
        return _per_image(np.concatenate([np.stack(p[0]) for p in parts]),
                          np.concatenate([np.stack(p[1]) for p in parts]))

    singles = config["surrogates"]
    verdicts = []
    for better, worse in ORDERINGS:
        a, b = success(better, singles), success(worse, singles)
        if a is not None and b is not None:
            verdicts.append(_ordering(f"{better} > {worse} (transfer success, per image)",
                                      a, b, settings["seed"]))
    ens, single = success(ENSEMBLE_ATTACK, [ENSEMBLE]), success("mifgsm", singles)
    if ens is not None and single is not None:
        verdicts.append(_ordering("ensemble surrogate > single surrogates (mifgsm)", ens,
                                  single, settings["seed"]))
    target_rows = _targeted(inputs, victims, families, idx, verdicts, settings["seed"])
    return AuditResult(rows, fam_rows, target_rows, [str(c) for c in verdicts],
                       [c.to_dict() for c in verdicts], settings).to_dict()


class _Victims(Constraint):
    """The victims of a protocol: ``{model: ARG, family: NAME}`` entries (family: ``cnn``
    unless given)."""

    def check(self, value, name: str) -> tuple:
        if isinstance(value, str | Mapping) or not isinstance(value, Sequence) or not value:
            raise ValueError(f"{name}: expected a list of {{model: ..., family: ...}}")
        for v in value:
            if not isinstance(v, Mapping) or "model" not in v or set(v) - {"model", "family"}:
                raise ValueError(f"{name}: expected {{model: ARG, family: NAME}}, got {v!r}")
        return tuple({"model": v["model"], "family": v.get("family", "cnn")} for v in value)

    def invalid(self) -> tuple:
        return ("cnn", (), ({"family": "cnn"},), ({"model": "m", "size": 3},))


#: The keys of a protocol's ``data`` and ``targeted`` entries.
DATA_KEYS, TARGETED_KEYS = {"dataset", "split", "n_per_class"}, {"attack", "steps"}
#: The bundled protocol (``transferability study audit`` without ``--protocol``).
BUNDLED = "audit.yaml"


@dataclass(frozen=True)
class AuditSettings(Settings):
    """An audit protocol (YAML; see ``docs/audit.md``), its keys the fields below; read by
    :meth:`from_protocol`, whose ``folder`` resolves the protocol's relative zoo paths."""

    surrogates: tuple[str, ...] = setting((), Each(Text()), "surrogate models", option=False)
    victims: tuple[dict, ...] = setting(({"model": "m"},), _Victims(), "victims and their "
                                        "families", option=False)
    data: dict = setting({"dataset": "digits"}, Table(min_len=1), "the images",
                         option=False)
    attacks: dict = setting({"mifgsm": {}}, Table(min_len=1), "attack label -> options",
                            option=False)
    only: tuple[str, ...] | None = setting(None, Optional(Each(Text())),
                                           "run only these of the protocol's attacks")
    attack_per_class: int | None = setting(None, Optional(Integer(1, 100_000)),
                                           "images attacked per class (default: the "
                                           "protocol's data.n_per_class)")
    eps: float = setting(0.2, Positive(), "perturbation budget, [0,1] pixel scale")
    steps: int = setting(10, Integer(1, 100_000), "attack iterations")
    norm: str = setting("linf", OneOf(*norms.NORMS), "threat model")
    seed: int = setting(0, Seed(), "seed of the data draw and the attacks")
    quantize: bool = setting(True, Flag(), "put the images on the 8-bit grid first")
    ensemble: bool = setting(True, Flag(), "also attack an ensemble of the surrogates")
    targeted: dict = setting({}, Table(), "{attack, steps} of the targeted attacks",
                             option=False)
    n_boot: int = setting(1000, Integer(1, 1_000_000), "bootstrap resamples")
    batch_size: int = setting(128, Integer(1, 1 << 16), "images per attack call")
    save_png: str | None = setting(None, Optional(Text()), "write the adversarial images "
                                   "as PNG in this folder and evaluate what is read back")
    name: str = setting("audit", Text(), "the protocol's name", option=False)
    folder: str = setting(".", Text(), "the protocol's folder", option=False)

    def check(self) -> None:
        for key, keys, value in (("data", DATA_KEYS, self.data),
                                 ("targeted", TARGETED_KEYS, self.targeted)):
            unknown = sorted(set(value) - keys)
            if unknown:
                raise ValueError(f"{key}: unknown key(s) {unknown}; allowed: {sorted(keys)}")
        if "dataset" not in self.data:
            raise ValueError("data: missing key 'dataset'")
        unknown = sorted(set(self.only or ()) - set(self.attacks))
        if unknown:
            raise ValueError(f"only: {unknown[0]!r} is not in the protocol's attacks "
                             f"{sorted(self.attacks)}")

    @classmethod
    def from_protocol(cls, path: str | Path) -> AuditSettings:
        """The settings of the protocol file at ``path``."""
        from .._files import read_yaml

        protocol = read_yaml(path, "protocol")
        if not isinstance(protocol, dict):
            raise ValueError("protocol: expected a mapping at the top level")
        keys = {f.name for f in cls.declared()} - {"only", "attack_per_class", "save_png",
                                                   "folder"}
        unknown = sorted(set(protocol) - keys)
        if unknown:
            raise ValueError(f"protocol: unknown key(s) {unknown}; allowed: {sorted(keys)}")
        for key in ("surrogates", "victims", "data", "attacks", "eps"):
            if key not in protocol:
                raise ValueError(f"protocol: missing key {key!r}")
        protocol = {**protocol, "name": protocol.get("name", str(path)),
                    "targeted": protocol.get("targeted") or {}}
        return cls(**protocol, folder=str(Path(str(path)).parent))

    def located(self, item: str) -> str:
        """A model argument with a relative zoo spec read from the protocol's folder."""
        spec, sep, name = item.rpartition(":")
        spec = spec if sep else item
        if spec.endswith((".yaml", ".yml")) and not Path(spec).is_absolute():
            return str(Path(self.folder) / spec) + (sep + name if sep else "")
        return item


def bundled_protocol() -> AuditSettings:
    """The bundled protocol: grey-scale mixtures, a small zoo, every transfer attack."""
    from importlib import resources

    return AuditSettings.from_protocol(resources.files("transferability.configs") / BUNDLED)


def run_audit(settings: AuditSettings, *, store: ResultStore | None = None, cache_dir=None,
              backend: str = "local", device=None, show_progress: bool | None = None,
              **backend_options) -> AuditResult:
    """The audit of a protocol: its images drawn and its models read and checked (their
    fit to the images) before any job, then :func:`audit` on ``backend``."""
    from ..data import Count, dataset_from_spec
    from ..model_args import check_fit, resolve_models

    s = settings
    if s.save_png is not None:
        check_writable_dir(s.save_png, "save_png")
    attacks = {a: s.attacks[a] for a in (s.only or s.attacks)}
    n = (Count(s.attack_per_class, "attack_per_class") if s.attack_per_class else
         Count(s.data["n_per_class"], "data.n_per_class") if s.data.get("n_per_class")
         else None)
    dataset = dataset_from_spec(s.data["dataset"], s.data.get("split", "test"), seed=s.seed,
                                per_class=n)
    groups = resolve_models([s.located(m) for m in s.surrogates],
                            *[[s.located(v["model"])] for v in s.victims], cache_dir=cache_dir,
                            names=["surrogates", *(["victims"] * len(s.victims))],
                            device=device)
    surrogates, families, victims = groups[0], {}, {}
    for v, group in zip(s.victims, groups[1:], strict=True):
        victims.update(group)
        families.update(dict.fromkeys(group, v["family"]))
    for option, group in (("surrogates", surrogates), ("victims", victims)):
        check_fit(group, dataset.x, option, data=str(s.data["dataset"]),
                  num_classes=dataset.num_classes)
    return audit(surrogates, victims, dataset.x, dataset.y, attacks,
                 shared={"eps": s.eps, "steps": s.steps, "norm": s.norm},
                 families=families, ensemble=s.ensemble,
                 targeted_attack=s.targeted.get("attack"),
                 targeted_steps=s.targeted.get("steps", 300), quantize=s.quantize,
                 save_png=s.save_png, seed=s.seed, n_boot=s.n_boot, batch_size=s.batch_size,
                 store=store, cache_dir=cache_dir, backend=backend, device=device,
                 show_progress=show_progress, settings={"protocol": s.name},
                 **backend_options)


#: The audit's descriptor (``transferability study audit``, and ``transferability audit``).
STUDY = register_study(Study(
    "audit", "Transfer-attack audit", AuditResult, "audit", run_audit, bundled_protocol(),
    help="Transfer-attack audit: surrogates × victims × attacks from a protocol (YAML), "
         "8-bit images, both denominators with bootstrap intervals, success per victim "
         "family, the field's orderings as verdicts, stealthiness; a heatmap per attack.",
    aliases=("audit",), read=AuditSettings.from_protocol, read_option="--protocol"))
