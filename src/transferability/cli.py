"""The ``transferability`` command line. Every command has ``--help``.

Errors from bad input (``ValueError``) are printed as one line and exit with status 2,
never as a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path

from ._validation import count_arg as _count
from ._validation import radius_arg as _radius
from ._validation import seed_arg as _seed

__all__ = ["main", "build_parser"]

log = logging.getLogger("transferability")


# ---- argument types: bad values are refused by argparse (exit 2) before any work ----------
def _name_accuracy(text: str) -> tuple[str, float]:
    """``NAME=ACC`` with ACC in [0, 1] (a source's accuracy on its own task)."""
    from ._validation import check_unit_interval

    name, sep, value = text.rpartition("=")
    try:
        if not sep or not name:
            raise ValueError
        return name, check_unit_interval(float(value), "value")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=ACCURACY with an accuracy in [0, 1], "
                                         f"got {text!r}") from None


# ---- shared option groups ------------------------------------------------------------------

def _attack(args):
    """The :class:`~transferability.attacks.AttackSpec` of ``--attack --eps --steps
    --step-size --loss [--norm] [--seed]``: the one place where the command line meets the attacks'
    spelling (``alpha`` = step size), checked as every spec is (one rule for ``eps``).
    Options left out keep the defaults of the use (α: the authors' attack; transfer matrix:
    the attack's own; a study: its settings' spec)."""
    from .attacks import AttackSpec

    given = {"eps": args.eps, "steps": args.steps, "alpha": args.step_size, "loss": args.loss,
             "norm": getattr(args, "norm", None)}
    options = {k: v for k, v in given.items() if v is not None}
    if args.attack == "fgsm" and {"steps", "alpha"} & set(options):
        raise ValueError("--steps, --step-size: fgsm takes one step of size eps; use bim or pgd "
                         "for iterations")
    return AttackSpec(args.attack, options, getattr(args, "seed", None))


def _shown(value) -> str:
    """A setting's value as its option is written (``0 1 2``, ``0.1``)."""
    if isinstance(value, tuple | list):
        return " ".join(_shown(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _setting_options(p, study, attack_opts) -> None:
    """One option per declared field of ``study``'s settings (:func:`~transferability.
    studies.setting`): its rule parses and checks the value (a bad one exits with status 2,
    naming the option, before any work); its help gives the defaults, full and quick. A
    field that holds an attack is the ``--attack --eps --steps --step-size --loss`` group."""
    from ._validation import Flag
    from .attacks import AttackRule

    full, quick = study.full, study.quick
    for f in type(full).declared():
        if not f.metadata["option"]:
            continue
        rule, option = f.metadata["rule"], "--" + f.name.replace("_", "-")
        value, fast = getattr(full, f.name), getattr(quick, f.name, None)
        if isinstance(rule, AttackRule):
            steps = value.options.get("steps", "the attack's own")
            if fast is not None and fast.options.get("steps", steps) != steps:
                steps = f"{steps}; --quick {fast.options['steps']}"
            eps = value.options.get("eps")
            attack_opts(p, use="default: the attack's own" if eps is None else
                        f"default {eps:g}", default_steps=str(steps), name=value.name)
            continue
        default = "" if value is None else f"default {_shown(value)}"
        if quick is not None and fast != value:
            default += f"; --quick {_shown(fast)}"
        help_text = f.metadata["help"] + (f" ({default})" if default else "")
        if isinstance(rule, Flag):
            p.add_argument(option, action=argparse.BooleanOptionalAction, default=None,
                           help=help_text)
        else:
            shape = rule.describe()  # {a,b} for a choice, else the field's name
            p.add_argument(option, type=rule.arg_type(option), nargs=rule.nargs, default=None,
                           metavar=shape if shape.startswith("{") else f.name.upper(),
                           help=help_text)


def _per_class(value, option: str, *datasets) -> None:
    """An images-per-class option (``--n-per-class``, ``--alpha-per-class``, ``--shots``)
    against the smallest class of ``datasets``: the one rule
    (:func:`~transferability.data.check_per_class`), checked before any work."""
    from .data import check_per_class

    if value is not None:
        check_per_class(value, option, *datasets)


def _layer(args) -> dict:
    return {"layer": args.feature_layer, "layer_input": args.feature_layer_input}


def _prepare(args) -> None:
    """Check the cache and output folders before any computation; ``--cache-dir`` also
    governs the data cache (it becomes ``$TRANSFERABILITY_CACHE`` for this process)."""
    from ._files import check_writable_dir
    from .utils import cache_dir

    if hasattr(args, "device"):  # a device this machine has, and a precision it runs
        from .devices import check_precision, resolve_device
        if args.device is None:
            from_env = os.environ.get("TRANSFERABILITY_DEVICE")
            option = "--device" if from_env is None else "--device ($TRANSFERABILITY_DEVICE)"
            args.device = resolve_device(from_env or "auto", option)
        else:
            args.device = resolve_device(args.device, "--device")
        check_precision(getattr(args, "precision", "fp32"), args.device, "--precision")
    if getattr(args, "cache_dir", None) is not None:
        os.environ["TRANSFERABILITY_CACHE"] = str(args.cache_dir)
        check_writable_dir(args.cache_dir, "--cache-dir")
    elif hasattr(args, "cache_dir"):  # a command that uses the cache
        check_writable_dir(cache_dir(), "cache (set --cache-dir or $TRANSFERABILITY_CACHE)")
    if getattr(args, "out", None) is not None:
        check_writable_dir(args.out, "--out")
    if getattr(args, "store", None) is not None:  # refused before any work; creates nothing
        from .jobs import ResultStore
        ResultStore(args.store).close()
    if getattr(args, "backend", "local") == "local" and (
            getattr(args, "scheduler", None) or getattr(args, "workers", None)):
        raise ValueError("--scheduler, --workers: need --backend dask")
    if getattr(args, "out_file", None) is not None:  # a file, not a folder
        if args.out_file.is_dir():
            raise ValueError(f"--out: {args.out_file} is a folder; expected a file name")
        check_writable_dir(args.out_file.parent, "--out")


def _store(args):
    """The results store of a command: ``--store``, or ``results.sqlite`` in the cache."""
    from .jobs import ResultStore

    if getattr(args, "store", None) is not None:
        return ResultStore(args.store)
    return ResultStore.in_cache(getattr(args, "cache_dir", None))


def _backend(args) -> dict:
    """``backend`` and its options for a study function, from ``--backend --scheduler
    --workers`` (their combination is checked in :func:`_prepare`)."""
    if args.backend == "local":
        return {"backend": "local"}
    options = {"scheduler": args.scheduler} if args.scheduler else {}
    if args.workers is not None:
        if args.scheduler:
            raise ValueError("--workers: starts a local cluster; an existing one (--scheduler) "
                             "has its own workers")
        options["workers"] = args.workers
    return {"backend": "dask", **options}


# ---- commands ------------------------------------------------------------------------------
def _cmd_datasets(args) -> None:
    from .data import dataset_info, list_datasets
    from .report import format_table

    rows = []
    for name in list_datasets():
        d = dataset_info(name)
        rows.append({"name": d.name, "size": d.size, "classes": d.classes, "source": d.source})
    print(format_table(rows))


def _cmd_models(args) -> None:
    from .models import create_model, list_models
    from .report import format_table

    rows = []
    for name in list_models():
        m = create_model(name)
        rows.append({"name": name, "params": sum(p.numel() for p in m.parameters()),
                     "feature_dim": m.feature_dim, "blocks": len(m.backbone)})
    print(format_table(rows))


def _cmd_zoo_build(args) -> None:
    from .baselines import model_accuracy
    from .report import format_table
    from .zoo import build_zoo

    with _store(args) as store:
        zoo = build_zoo(args.spec, args.cache_dir, store=store)
    rows = [{"name": n, "arch": zoo.entries[n].arch,
             "accuracy": model_accuracy(zoo[n].meta),
             "status": "trained" if n in zoo.trained else "cached", "path": str(zoo.path(n))}
            for n in zoo]
    print(format_table(rows))
    print(f"{len(zoo.trained)} trained, {len(zoo.cached)} loaded from cache")


def _cmd_probe(args) -> None:
    from .data import dataset_from_spec
    from .model_args import check_fit, load_models
    from .report import format_table
    from .transfer import linear_probe

    train = dataset_from_spec(args.target, "train", seed=args.seed)
    test = dataset_from_spec(args.target, "test", seed=args.seed)
    _per_class(args.shots, "--shots", train)
    models = load_models(args.sources, args.cache_dir)
    check_fit(models, train.x, "--sources", data=str(args.target), features=True,
              **_layer(args))
    rows = []
    for name, model in models.items():
        r = linear_probe(model, train, test, shots=args.shots, repeats=args.repeats,
                         seed=args.seed, **_layer(args))
        rows.append({"source": name, "accuracy": r.accuracy, "std": r.accuracy_std, "loss": r.loss})
    print(format_table(rows))


def _ensemble_names(names) -> None:
    """``--ensemble``: registered estimators or baselines, checked before any work."""
    from ._validation import check_choice
    from .baselines import BASELINES, ensemble_names
    from .estimators import list_estimators

    for name in ensemble_names(names) or []:
        check_choice(name, "--ensemble", [*list_estimators(), *BASELINES])


def _cmd_rank(args) -> None:
    from .data import dataset_from_spec, split_indices
    from .model_args import check_fit, load_models
    from .ranking import rank_sources
    from .report import write_csv, write_json
    from .studies.adv_knowledge import stored_outputs, stored_splitter

    spec = _attack(args)
    _ensemble_names(args.ensemble)
    drawn = []  # users' data are split now for the checks, and recorded once they passed

    def draw(data, test_fraction, seed):
        positions = split_indices(data, test_fraction, seed)
        drawn.append(((data, test_fraction, seed), positions))
        return positions

    def load(splitter):  # the test split: for the probe, and to check the reference learned
        return (dataset_from_spec(args.target, "train", seed=args.seed, splitter=splitter),
                dataset_from_spec(args.target, "test", seed=args.seed, splitter=splitter)
                if args.validate or args.reference else None)

    train, test = load(draw)
    _per_class(args.shots if args.validate else None, "--shots", train)
    _per_class(args.alpha_per_class if args.reference else None, "--alpha-per-class", train)
    models = load_models(args.sources, args.cache_dir)
    check_fit(models, train.x, "--sources", data=str(args.target), features=True,
              **_layer(args))
    reference = None
    if args.reference:
        from .studies.adv_knowledge import load_reference

        reference = load_reference(args.reference, args.target, args.cache_dir, seed=args.seed,
                                   epochs=args.reference_epochs, train=train)
    elif args.reference_epochs is not None:
        raise ValueError("--reference-epochs: only with --reference train")
    with _store(args) as store:  # the split recorded (an earlier one read back); extractions
        record = stored_splitter(store)  # cached: a second ranking extracts nothing
        if any([list(map(int, p)) for p in record(*split)] != [p.tolist() for p in positions]
               for split, positions in drawn):
            train, test = load(record)  # an earlier run drew it differently: keep its split
        outputs = stored_outputs(store, **_layer(args), float16=args.cache_float16)
        outputs.prefetch(models, [train, *([test] if args.validate else [])])
        result = rank_sources(models, train, estimators=args.estimators,
                              test=test if args.validate else None, reference_data=test,
                              shots=args.shots, repeats=args.repeats, seed=args.seed,
                              reference=reference, alpha_per_class=args.alpha_per_class,
                              attack=spec.name, attack_options=spec.options,
                              source_accuracy=dict(args.source_acc or []),
                              ensemble=args.ensemble, outputs_fn=outputs, **_layer(args))
    print(result.format())
    files = [write_csv(result.rows, args.out / "rank.csv"),
             write_json({"target": str(args.target), **result.to_dict()}, args.out / "rank.json")]
    print("wrote " + ", ".join(map(str, files)))


def _cmd_robustness(args) -> None:
    from .attacks import benchmark, robust_accuracy
    from .data import Count, dataset_from_spec
    from .model_args import check_fit, load_models
    from .report import write_json

    # only the images kept are read: the first N, or a seeded class-stratified sample
    n = args.n_examples and Count(args.n_examples, "--n-examples")
    data = dataset_from_spec(args.dataset, "test", seed=args.seed, n_examples=n or None)
    x, y = data.x, data.y
    counts = dict(zip(data.class_names, data.class_counts().tolist(), strict=True))
    print(f"{len(data)} test images of {args.dataset}, per class: "
          + ", ".join(f"{name} {count}" for name, count in counts.items()))
    models = load_models([args.model], args.cache_dir)
    if len(models) != 1:
        raise ValueError(f"--model: expected one model, {args.model!r} names {len(models)}")
    check_fit(models, x, "--model", data=str(args.dataset), num_classes=data.num_classes)
    (name, model), = models.items()
    if args.attack == "autoattack":
        result = benchmark(model, x, y, threat_model={"linf": "Linf", "l2": "L2"}[args.norm],
                           eps=args.eps, batch_size=args.batch_size, version=args.version,
                           seed=args.seed)
    else:
        result = robust_accuracy(model, x, y, args.eps, attack="pgd", norm=args.norm,
                                 batch_size=args.batch_size, seed=args.seed)
    print(f"{name} on {args.dataset} ({result.n} test images), {args.norm} eps={args.eps:.6g}, "
          f"{result.attack}: clean {result.accuracy:.4f} ({result.clean_correct}/"
          f"{result.n}), robust {result.robust_accuracy:.4f} ({result.robust_correct}/"
          f"{result.n})" + (f" in {result.seconds:.1f} s" if result.seconds else ""))
    for attack, acc in result.per_attack.items():
        print(f"  after {attack}: {acc:.4f}")
    out = write_json({"model": name, "dataset": str(args.dataset), "class_counts": counts,
                      **result.to_dict()}, args.out / "robustness.json")
    print(f"wrote {out}")


def _report(result, out: Path, stem: str) -> None:
    """A study's tables on stdout; its JSON, CSV (the rows) and figures in ``out``."""
    from .html_report import format_result, result_files
    from .report import write_csv, write_json

    print(format_result(result))
    rows = getattr(result, "rows", None)
    files = [write_json(result.to_dict(), out / f"{stem}.json"),
             *([write_csv(rows, out / f"{stem}.csv")] if isinstance(rows, list) else []),
             *result_files(result, out)]
    print("wrote " + ", ".join(map(str, files)))


def _study_settings(args, study):
    """The study's settings: ``--quick``'s or the full ones, the colour task's over them,
    then every option given (each already checked by its field's rule)."""
    from .attacks import AttackRule

    settings = study.quick if getattr(args, "quick", False) else study.full
    if getattr(args, "settings_file", None) is not None:
        settings = study.read(args.settings_file)
    target = getattr(args, "target", None) or getattr(settings, "target", "")
    settings = study.for_target(settings, target)
    changes = {}
    for f in type(settings).declared():
        if isinstance(f.metadata["rule"], AttackRule) and f.metadata["option"]:
            changes[f.name] = _attack(args).with_defaults(getattr(settings, f.name))
        elif getattr(args, f.name, None) is not None:
            changes[f.name] = getattr(args, f.name)
    return settings.replace(**changes)


def _cmd_study(args) -> None:
    """``transferability study NAME`` (and its older names) for every registered study."""
    from .studies import get_study

    study = get_study(args.study_command)
    try:
        settings = _study_settings(args, study)
        with _store(args) as store:
            result = study.run(settings, store=store, cache_dir=args.cache_dir,
                               device=args.device, **_backend(args))
    except ValueError as exc:  # a setting's name is its option's: say it as typed
        name, sep, rest = str(exc).partition(": ")
        fields = {f.name for f in type(study.full).declared() if f.metadata["option"]}
        if sep and name in fields:
            raise ValueError(f"--{name.replace('_', '-')}: {rest}") from None
        raise
    _report(result, args.out, study.name.replace("-", "_"))


def _cmd_attack(args) -> None:
    from .data import Count, dataset_from_spec
    from .model_args import check_fit, resolve_models
    from .transfer_matrix import transfer_matrix

    spec = _attack(args)
    if "eps" not in spec.options:
        raise ValueError("--eps: the attack command needs a perturbation budget ([0,1] scale)")
    n = args.n_per_class and Count(args.n_per_class, "--n-per-class")
    data = dataset_from_spec(args.dataset, args.split, seed=args.seed, per_class=n or None)
    # one resolution for both roles: the same model given twice is one model (white-box)
    surrogates, victims = resolve_models(args.surrogates, args.victims,
                                         cache_dir=args.cache_dir,
                                         names=["surrogates", "victims"])
    for option, group in (("--surrogates", surrogates), ("--victims", victims)):
        check_fit(group, data.x, option, data=str(args.dataset), num_classes=data.num_classes)
    matrix = transfer_matrix(surrogates, victims, data.x, data.y, attack=spec.name,
                             attack_options=spec.kwargs,
                             batch_size=args.batch_size)
    matrix = dataclasses.replace(matrix, meta={"dataset": str(args.dataset),
                                               "split": args.split})
    print(matrix)
    out = args.out
    files = [matrix.to_csv(out / "transfer_matrix.csv"),
             matrix.to_json(out / "transfer_matrix.json"),
             matrix.plot(out / "transfer_matrix.png", protocol=args.protocol)]
    print("wrote " + ", ".join(map(str, files)))


def _cmd_demo(args) -> None:
    from .demo import run_demo

    with _store(args) as store:
        _, report = run_demo(args.out, quick=args.quick, target=args.target,
                             cache_dir=args.cache_dir, store=store)
    print(report)


def _cmd_results_list(args) -> None:
    import time

    from .report import format_table

    with _store(args) as store:
        records = store.records(kind=args.kind, study=args.study)
        rows = [{"key": r.key[:12], "kind": r.kind, "label": r.label, "study": r.study,
                 "seconds": r.duration,
                 "finished": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.finished)),
                 "code": "current" if r.current else "stale"} for r in records]
        print(format_table(rows) if rows else "no results")
        print(f"{len(rows)} of {len(store)} job(s) in {store.path}")


def _one_record(store, key: str):
    found = store.find(key)
    if not found or len(key) < 4:
        raise ValueError(f"KEY: no job {key!r} in {store.path}; `transferability results "
                         "list` shows the keys (4 characters or more)")
    if len(found) > 1:
        raise ValueError(f"KEY: {key!r} matches {len(found)} jobs; give more characters")
    return found[0]


def _cmd_results_show(args) -> None:
    import json

    with _store(args) as store:
        record = _one_record(store, args.key)
    print(json.dumps({**record.as_dict(), "current": record.current}, indent=2,
                     sort_keys=True))


def _cmd_results_export(args) -> None:
    from .jobs.export import export_records

    with _store(args) as store:
        path = export_records(store.records(kind=args.kind, study=args.study),
                              args.format, args.out_file or Path(f"results.{args.format}"))
    print(f"wrote {path}")


def _cmd_results_gc(args) -> None:
    with _store(args) as store:
        stale = store.stale()
        if not stale:
            print(f"nothing to drop: every job in {store.path} is current")
        else:
            kinds = sorted({r.kind for r in stale})
            print(f"{len(stale)} job(s) of {len(store)} were computed by code that has "
                  f"changed since ({', '.join(kinds)})")
            if not args.yes:
                try:
                    answer = input("drop them and their artifacts? [y/N] ")
                except EOFError:
                    answer = ""
                if answer.strip().lower() not in ("y", "yes"):
                    print("nothing dropped")
                    return
            print(f"dropped {store.delete(r.key for r in stale)} job(s)")
        removed = store.remove_orphans()
        if removed:
            print(f"removed {removed} artifact file(s) that no job refers to")


def _cmd_report(args) -> None:
    from .html_report import write_report

    with _store(args) as store:
        path = write_report(store, args.out_file)
    print(f"wrote {path}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="transferability",
        description="Measure, predict and control knowledge and adversarial transferability.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    models_help = ("checkpoints, zoo specs ('demo', YAML), SPEC:NAME items, "
                   "py:MODULE:FUNCTION entry points returning an nn.Module, or hub models "
                   "timm:NAME, torchvision:NAME, hf-hub:ORG/NAME (?weights=none|FILE)")

    def command(name, func, help_text, parent=sub, **kw):
        p = parent.add_parser(name, help=help_text, description=help_text, **kw)
        p.set_defaults(func=func)
        return p

    def seed_opt(p):
        p.add_argument("--seed", type=_seed, default=0, help="an integer in [0, 2**32-1]")

    def cache_opt(p, store: bool = True):
        p.add_argument("--cache-dir", type=Path, default=None,
                       help="model, feature and data cache (default $TRANSFERABILITY_CACHE or "
                            "~/.cache/transferability)")
        if store:
            p.add_argument("--store", type=Path, default=None, metavar="PATH",
                           help="results store, an SQLite file (default: results.sqlite in "
                                "the cache folder)")

    def old_spelling(p, option, action):
        """``option``: an older spelling of ``action``'s option, still read, not in the help."""
        p.add_argument(option, dest=action.dest, type=action.type, default=argparse.SUPPRESS,
                       help=argparse.SUPPRESS)

    def out_opt(p, default):
        p.add_argument("--out", type=Path, default=Path(default), help="output folder")

    def attack_opts(p, *, use: str, default_steps: str, name: str = "pgd"):
        p.add_argument("--attack", default=name,
                       help="fgsm, bim, pgd, mifgsm, di, mi-di, nifgsm, vmifgsm, vnifgsm, pgn, "
                            f"ti, si, admix, sia, bsr, sgm, linbp (docs/audit.md; default {name})")
        p.add_argument("--eps", type=_radius, default=None,
                       help=f"perturbation budget, [0,1] pixel scale: 0.031 or 8/255 ({use})")
        p.add_argument("--steps", type=_count(100_000), default=None,
                       help=f"attack iterations (default {default_steps})")
        p.add_argument("--step-size", type=_radius, default=None,
                       help="step per iteration, 0.004 or 1/255 (default: the attack's own rule)")
        p.add_argument("--loss", choices=["ce", "margin"], default=None,
                       help="attack objective; margin resists saturated softmax (default ce)")

    def backend_opts(p):
        p.add_argument("--backend", choices=["local", "dask"], default="local",
                       help="where jobs run: this process, or a Dask cluster")
        p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="join this Dask scheduler (dask-jobqueue, Kubernetes, `dask "
                            "scheduler`); default: start a local cluster on 127.0.0.1")
        p.add_argument("--workers", type=_count(256), default=None,
                       help="workers of the local Dask cluster, one thread each (default 2)")

    def device_opts(p, precision: bool = False):
        p.add_argument("--device", default=None, metavar="DEVICE",
                       help="auto (a GPU when there is one), cpu, cuda, cuda:N or mps; every "
                            "model of the command runs there (default $TRANSFERABILITY_DEVICE "
                            "or auto)")
        if precision:
            p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32",
                           help="autocast for forward passes without gradients (features, "
                                "predictions, an attack's clean pass); fp16 needs a GPU")

    def feature_opts(p):
        p.add_argument("--feature-layer", default=None, metavar="NAME",
                       help="take features from this module (a name from named_modules()); "
                            "default: the input of the last nn.Linear the forward pass calls")
        p.add_argument("--feature-layer-input", action="store_true",
                       help="take the input of --feature-layer instead of its output")

    def reference_opts(p, required: bool):
        p.add_argument("--reference", default="train" if required else None,
                       help="model trained on the target task, for the adversarial scores: "
                            "'train' (a cached cnn) or a model argument naming one model"
                            + ("" if required else "; without it they are skipped")
                            + ". Its accuracy on the target's test images is measured: the "
                              "adversarial scores are n/a unless it is above chance")
        p.add_argument("--reference-epochs", type=_count(10_000), default=None,
                       help="epochs of --reference train (default: by data size, 5 to 50; "
                            "early stopping on a fifth of the train images picks the best)")
        attack_opts(p, use="α; default 0.1", default_steps="50, the authors' α attack")
        old_spelling(p, "--n-per-class", p.add_argument(
            "--alpha-per-class", type=_count(10_000), default=20,
            help="target images per class for the adversarial scores (α)"))

    command("datasets", _cmd_datasets, "List the bundled datasets with size and source.")
    command("models", _cmd_models, "List the model architectures.")

    zoo = sub.add_parser("zoo", help="Build zoos of source models.",
                         description="Build zoos of source models.")
    zoo_sub = zoo.add_subparsers(dest="zoo_command", metavar="ACTION", required=True)
    p = command("build", _cmd_zoo_build, "Train the models of a YAML zoo spec; cached models "
                "are not retrained. SPEC may be 'demo'.", parent=zoo_sub)
    p.add_argument("spec", help="zoo spec YAML path, or 'demo'")
    device_opts(p)
    cache_opt(p)

    p = command("probe", _cmd_probe, "Linear-probe source models on a target dataset.")
    p.add_argument("--target", required=True, help="target dataset name or .npz/folder path")
    p.add_argument("--sources", nargs="+", required=True, help=models_help)
    p.add_argument("--shots", type=_count(100_000), default=None,
                   help="samples per class (few-shot)")
    p.add_argument("--repeats", type=_count(10_000), default=1, help="few-shot draws to average")
    device_opts(p, precision=True)
    feature_opts(p)
    seed_opt(p)
    cache_opt(p, store=False)

    p = command("rank", _cmd_rank,
                "Score source models on a target task with transferability estimators.")
    p.add_argument("--target", required=True, help="target dataset name, .npz/folder path, "
                   "imagefolder:PATH, npz:PATH or hf:PATH")
    p.add_argument("--sources", nargs="+", required=True, help=models_help)
    p.add_argument("--estimators", nargs="+", default=None,
                   help="estimator names (default: all that need no reference model)")
    p.add_argument("--validate", choices=["linear-probe"], default=None,
                   help="also measure real transfer and correlate every estimator with it")
    p.add_argument("--shots", type=_count(100_000), default=None,
                   help="few-shot probe: samples per class (default: full data)")
    p.add_argument("--repeats", type=_count(10_000), default=5, help="few-shot draws to average")
    p.add_argument("--source-acc", nargs="+", type=_name_accuracy, metavar="NAME=ACC",
                   help="each source's test accuracy on its own task, for the source_acc "
                        "baseline (zoo models record it)")
    p.add_argument("--ensemble", nargs="*", metavar="SCORE",
                   help="also score the mean rank of these estimators/baselines (no names or "
                        "'default': the benchmark's choice, see docs/estimators.md)")
    reference_opts(p, required=False)
    device_opts(p, precision=True)
    feature_opts(p)
    p.add_argument("--cache-float16", action="store_true",
                   help="keep the cached features and logits at float16 (big hub models)")
    seed_opt(p)
    out_opt(p, "rank-out")
    cache_opt(p)

    p = command("robustness", _cmd_robustness,
                "Clean and robust accuracy of one model on a dataset's test images under "
                "AutoAttack (Croce & Hein 2020), as RobustBench's benchmark, with its checks.")
    p.add_argument("--model", required=True, help="one model: " + models_help)
    p.add_argument("--dataset", required=True, help="dataset name, .npz/folder path or data "
                   "argument (imagefolder:, npz:, hf:, cifar10:, cifar100:)")
    p.add_argument("--eps", type=_radius, required=True,
                   help="radius in the [0,1] pixel scale: 0.031 or 8/255")
    p.add_argument("--norm", choices=["linf", "l2"], default="linf")
    p.add_argument("--attack", choices=["autoattack", "pgd"], default="autoattack",
                   help="autoattack, or the fast worst case of PGD-20 with CE and margin loss")
    p.add_argument("--version", choices=["standard", "plus", "rand"], default="standard",
                   help="AutoAttack's version (rand: for randomised models)")
    p.add_argument("--n-examples", type=_count(10**7), default=None,
                   help="N test images, a seeded class-stratified sample (the first N where "
                        "the data have their own order: cifar10:, cifar100:); default: all")
    p.add_argument("--batch-size", type=_count(100_000), default=500)
    device_opts(p)
    seed_opt(p)
    out_opt(p, "robustness-out")
    cache_opt(p, store=False)

    study = sub.add_parser("study", help="Run the studies that connect the two transferabilities.",
                           description="Run the studies that connect the two transferabilities.")
    study_sub = study.add_subparsers(dest="study_command", metavar="STUDY", required=True)
    from .studies import list_studies

    for each in list_studies():  # one command per study, its options from its settings
        if each.full is None:
            continue
        for name, parent in ((each.name, study_sub), *((a, sub) for a in each.aliases)):
            p = command(name, _cmd_study, each.help, parent=parent)
            p.set_defaults(study_command=each.name)
            _setting_options(p, each, attack_opts)
            if each.read is not None:
                p.add_argument(each.read_option, dest="settings_file", type=Path, default=None,
                               metavar="FILE", help="read the settings from this file (YAML)")
            if each.quick is not None:
                p.add_argument("--quick", action="store_true",
                               help="the quick settings (their values are in each option's "
                                    "help)")
            backend_opts(p)
            device_opts(p, precision=True)
            out_opt(p, f"{each.name}-out")
            cache_opt(p)

    p = command("attack", _cmd_attack,
                "Craft adversarial examples on surrogates and count how often they fool victims.")
    p.add_argument("--surrogates", nargs="+", required=True, help=models_help)
    p.add_argument("--victims", nargs="+", required=True, help="as --surrogates")
    p.add_argument("--dataset", required=True, help="dataset name or .npz/folder path")
    p.add_argument("--split", default="test", choices=["train", "test", "all"])
    p.add_argument("--n-per-class", type=_count(100_000), default=None,
                   help="attack this many samples per class (default: the whole split)")
    attack_opts(p, use="required", default_steps="the attack's own: 10")
    p.add_argument("--norm", default="linf", choices=["linf", "l2"])
    p.add_argument("--batch-size", type=_count(1 << 16), default=128)
    p.add_argument("--protocol", default="both_correct", choices=["both_correct", "all"],
                   help="denominator of the heatmap")
    device_opts(p, precision=True)
    seed_opt(p)
    out_opt(p, "attack-out")
    cache_opt(p, store=False)

    p = command("demo", _cmd_demo, "Run the study on bundled data and write a report.")
    out_opt(p, "demo-out")
    p.add_argument("--quick", action="store_true", help="a smaller zoo for a fast check")
    p.add_argument("--target", default="mnist", choices=("mnist", "colour-digits",
                                                         "colour-animals"),
                   help="the target task: mnist (default), or the colour task, whose sources "
                        "are colour digit/animal mixtures and whose studies use their colour "
                        "settings")
    device_opts(p, precision=True)
    cache_opt(p)

    results = sub.add_parser("results", help="Look at the finished jobs of the results store.",
                             description="Look at the finished jobs of the results store.")
    results_sub = results.add_subparsers(dest="results_command", metavar="ACTION",
                                         required=True)

    def filters(p):
        p.add_argument("--kind", default=None, help="only jobs of this kind (e.g. train)")
        p.add_argument("--study", default=None, help="only jobs run by this study")

    p = command("list", _cmd_results_list, "List finished jobs.", parent=results_sub)
    filters(p)
    cache_opt(p)
    p = command("show", _cmd_results_show, "Show one job: config, result, provenance.",
                parent=results_sub)
    p.add_argument("key", metavar="KEY", help="a job key, or its first characters")
    cache_opt(p)
    p = command("export", _cmd_results_export, "Export jobs as CSV, JSON or Parquet.",
                parent=results_sub)
    p.add_argument("--format", choices=["csv", "json", "parquet"], default="csv")
    p.add_argument("--out", dest="out_file", type=Path, default=None,
                   help="file (default results.FORMAT)")
    filters(p)
    cache_opt(p)
    p = command("gc", _cmd_results_gc, "Drop jobs (and artifacts) computed by code that has "
                "changed since; asks first.", parent=results_sub)
    p.add_argument("--yes", action="store_true", help="do not ask")
    cache_opt(p)

    p = command("report", _cmd_report, "Write one self-contained HTML report of every study "
                "in the results store (nothing is recomputed).")
    p.add_argument("--out", dest="out_file", type=Path, default=Path("report.html"),
                   help="HTML file")
    cache_opt(p)
    return parser


class _Handler(logging.StreamHandler):
    """Progress messages of the library, to the stderr of the moment."""

    def emit(self, record):
        self.stream = sys.stderr
        super().emit(record)


def main(argv: list[str] | None = None) -> int:
    from .jobs import JobsFailed

    args = build_parser().parse_args(argv)
    handler = _Handler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    saved_cache = os.environ.get("TRANSFERABILITY_CACHE")  # --cache-dir sets it for this call
    try:
        _prepare(args)
        from .devices import use_device
        with use_device(getattr(args, "device", None), getattr(args, "precision", None)):
            args.func(args)
    except ValueError as exc:
        print(f"transferability {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except JobsFailed as exc:
        print(f"transferability {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"transferability {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; finished work is cached and a rerun resumes from it", file=sys.stderr)
        return 130
    finally:
        log.removeHandler(handler)
        if saved_cache is None:
            os.environ.pop("TRANSFERABILITY_CACHE", None)
        else:
            os.environ["TRANSFERABILITY_CACHE"] = saved_cache
    return 0


if __name__ == "__main__":
    sys.exit(main())
