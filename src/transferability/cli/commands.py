"""The commands that take models and data: ``datasets``, ``models``, ``zoo build``,
``probe``, ``rank``, ``robustness``, ``attack``, ``demo`` and ``report``: each a parser
function beside its handler, which calls the library and prints."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .options import (
    MODELS_HELP,
    attack_opts,
    attack_spec,
    cache_opt,
    command,
    count_arg,
    device_opts,
    feature_opts,
    layer,
    name_accuracy,
    old_options,
    open_store,
    out_opt,
    per_class,
    radius_arg,
    reference_opts,
    seed_opt,
)


def _cmd_datasets(args) -> None:
    from ..data import dataset_info, list_datasets
    from ..report import format_table

    rows = []
    for name in list_datasets():
        d = dataset_info(name)
        rows.append({"name": d.name, "family": d.family, "size": d.size, "classes": d.classes,
                     "source": d.source})
    print(format_table(rows))


def _cmd_models(args) -> None:
    from ..models import create_model, list_models
    from ..report import format_table

    rows = []
    for name in list_models():
        m = create_model(name)
        rows.append({"name": name, "params": sum(p.numel() for p in m.parameters()),
                     "feature_dim": m.feature_dim, "blocks": len(m.backbone)})
    print(format_table(rows))


def _cmd_attacks(args) -> None:
    from ..attacks import attack_info, list_attacks
    from ..report import format_table

    rows = []
    for name in list_attacks():
        info = attack_info(name)
        rows.append({"name": name, "steps": info.takes_steps, "random": info.randomized,
                     "grads/step": "-" if info.grads_per_step is None else info.grads_per_step,
                     "ensemble": info.needs_ensemble, "preset of": info.base or "",
                     "summary": info.summary})
    print(format_table(rows))


def _cmd_estimators(args) -> None:
    from ..estimators import get_estimator, list_estimators
    from ..report import format_table

    rows = []
    for name in list_estimators():
        e = get_estimator(name)
        doc = (e.fn.__doc__ or "").strip().splitlines()
        rows.append({"name": name, "inputs": e.inputs, "min_per_class": e.min_per_class,
                     "summary": doc[0] if doc else ""})
    print(format_table(rows))


def add_listings(sub) -> None:
    """``datasets``, ``models``, ``attacks`` and ``estimators``."""
    command(sub, "datasets", _cmd_datasets, "List the bundled datasets with size and source.")
    command(sub, "models", _cmd_models, "List the model architectures.")
    command(sub, "attacks", _cmd_attacks, "List the registered attacks: whether they take "
            "steps and draw random numbers, gradients per step, presets, papers.")
    command(sub, "estimators", _cmd_estimators, "List the registered transferability "
            "estimators: what each takes and the fewest images per class it needs.")


def _cmd_zoo_build(args) -> None:
    from ..baselines import model_accuracy
    from ..report import format_table
    from ..zoo import build_zoo

    with open_store(args) as store:
        zoo = build_zoo(args.spec, args.cache_dir, store=store, device=args.device)
    rows = [{"name": n, "arch": zoo.entries[n].arch,
             "accuracy": model_accuracy(zoo[n].meta),
             "status": "trained" if n in zoo.trained else "cached", "path": str(zoo.path(n))}
            for n in zoo]
    print(format_table(rows))
    print(f"{len(zoo.trained)} trained, {len(zoo.cached)} loaded from cache")


def add_zoo(sub) -> None:
    """``zoo build``."""
    zoo = sub.add_parser("zoo", help="Build zoos of source models.",
                         description="Build zoos of source models.")
    zoo_sub = zoo.add_subparsers(dest="zoo_command", metavar="ACTION", required=True)
    p = command(zoo_sub, "build", _cmd_zoo_build, "Train the models of a YAML zoo spec; cached "
                "models are not retrained. SPEC may be 'demo'.")
    p.add_argument("spec", help="zoo spec YAML path, or 'demo'")
    device_opts(p)
    cache_opt(p)


def _cmd_probe(args) -> None:
    from ..data import dataset_from_spec
    from ..model_args import check_fit, load_models
    from ..report import format_table
    from ..transfer import linear_probe

    train = dataset_from_spec(args.target, "train", seed=args.seed)
    test = dataset_from_spec(args.target, "test", seed=args.seed)
    per_class(args.shots, "--shots", train)
    models = load_models(args.sources, args.cache_dir, device=args.device)
    check_fit(models, train.x, "--sources", data=str(args.target), features=True,
              **layer(args))
    rows = []
    for name, model in models.items():
        r = linear_probe(model, train, test, shots=args.shots, repeats=args.repeats,
                         seed=args.seed, **layer(args))
        rows.append({"source": name, "accuracy": r.accuracy, "std": r.accuracy_std, "loss": r.loss})
    print(format_table(rows))


def add_probe(sub) -> None:
    """``probe``."""
    p = command(sub, "probe", _cmd_probe, "Linear-probe source models on a target dataset.")
    p.add_argument("--target", required=True, help="target dataset name or .npz/folder path")
    p.add_argument("--sources", nargs="+", required=True, help=MODELS_HELP)
    p.add_argument("--shots", type=count_arg(100_000), default=None,
                   help="samples per class (few-shot)")
    p.add_argument("--repeats", type=count_arg(10_000), default=1, help="few-shot draws to average")
    device_opts(p, precision=True)
    feature_opts(p)
    seed_opt(p)
    cache_opt(p, store=False)


def _ensemble_names(names) -> None:
    """``--ensemble``: registered estimators or baselines, checked before any work."""
    from .._validation import check_choice
    from ..baselines import BASELINES, ensemble_names
    from ..estimators import list_estimators

    for name in ensemble_names(names) or []:
        check_choice(name, "--ensemble", [*list_estimators(), *BASELINES])


def _cmd_rank(args) -> None:
    from ..model_args import check_fit, load_models
    from ..ranking import rank_sources
    from ..report import write_csv, write_json
    from ..studies.adv_knowledge import stored_outputs, target_splits

    spec = attack_spec(args)
    _ensemble_names(args.ensemble)
    # the test split: for the probe, and to check the reference learned; users' data are
    # split now for the checks, and the split recorded once they passed
    train, test, record = target_splits(args.target, args.seed,
                                        test=bool(args.validate or args.reference))
    per_class(args.shots if args.validate else None, "--shots", train)
    per_class(args.alpha_per_class if args.reference else None, "--alpha-per-class", train)
    models = load_models(args.sources, args.cache_dir, device=args.device)
    check_fit(models, train.x, "--sources", data=str(args.target), features=True,
              **layer(args))
    reference = None
    if args.reference:
        from ..studies.adv_knowledge import load_reference

        reference = load_reference(args.reference, args.target, args.cache_dir, seed=args.seed,
                                   device=args.device,
                                   epochs=args.reference_epochs, train=train)
    elif args.reference_epochs is not None:
        raise ValueError("--reference-epochs: only with --reference train")
    with open_store(args) as store:  # extractions cached: a second ranking extracts nothing
        train, test = record(store)
        outputs = stored_outputs(store, **layer(args), float16=args.cache_float16)
        outputs.prefetch(models, [train, *([test] if args.validate else [])])
        result = rank_sources(models, train, estimators=args.estimators,
                              test=test if args.validate else None, reference_data=test,
                              shots=args.shots, repeats=args.repeats, seed=args.seed,
                              reference=reference, alpha_per_class=args.alpha_per_class,
                              attack=spec,
                              source_accuracy=dict(args.source_acc or []),
                              ensemble=args.ensemble, outputs_fn=outputs, **layer(args))
    print(result.format())
    files = [write_csv(result.rows, args.out / "rank.csv"),
             write_json({"target": str(args.target), **result.to_dict()}, args.out / "rank.json")]
    print("wrote " + ", ".join(map(str, files)))


def add_rank(sub) -> None:
    """``rank``."""
    p = command(sub, "rank", _cmd_rank,
                "Score source models on a target task with transferability estimators.")
    p.add_argument("--target", required=True, help="target dataset name, .npz/folder path, "
                   "imagefolder:PATH, npz:PATH or hf:PATH")
    p.add_argument("--sources", nargs="+", required=True, help=MODELS_HELP)
    from ..estimators import list_estimators

    p.add_argument("--estimators", nargs="+", default=None, choices=list_estimators(),
                   metavar="NAME", help=f"estimators: {', '.join(list_estimators())} (default: "
                   "all that need no reference model; `transferability estimators` describes "
                   "each)")
    p.add_argument("--validate", choices=["linear-probe"], default=None,
                   help="also measure real transfer and correlate every estimator with it")
    p.add_argument("--shots", type=count_arg(100_000), default=None,
                   help="few-shot probe: samples per class (default: full data)")
    p.add_argument("--repeats", type=count_arg(10_000), default=5, help="few-shot draws to average")
    p.add_argument("--source-acc", nargs="+", type=name_accuracy, metavar="NAME=ACC",
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
    old_options(p, "rank")
    out_opt(p, "rank-out")
    cache_opt(p)


def _cmd_robustness(args) -> None:
    from ..attacks import benchmark, robust_accuracy
    from ..data import Count, dataset_from_spec
    from ..model_args import check_fit, load_models
    from ..report import write_json

    # only the images kept are read: the first N, or a seeded class-stratified sample
    n = args.n_examples and Count(args.n_examples, "--n-examples")
    data = dataset_from_spec(args.dataset, "test", seed=args.seed, n_examples=n or None)
    x, y = data.x, data.y
    counts = dict(zip(data.class_names, data.class_counts().tolist(), strict=True))
    print(f"{len(data)} test images of {args.dataset}, per class: "
          + ", ".join(f"{name} {count}" for name, count in counts.items()))
    models = load_models([args.model], args.cache_dir, device=args.device)
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


def add_robustness(sub) -> None:
    """``robustness``."""
    p = command(sub, "robustness", _cmd_robustness,
                "Clean and robust accuracy of one model on a dataset's test images under "
                "AutoAttack (Croce & Hein 2020), as RobustBench's benchmark, with its checks.")
    p.add_argument("--model", required=True, help="one model: " + MODELS_HELP)
    p.add_argument("--dataset", required=True, help="dataset name, .npz/folder path or data "
                   "argument (imagefolder:, npz:, hf:, cifar10:, cifar100:)")
    p.add_argument("--eps", type=radius_arg, required=True,
                   help="radius in the [0,1] pixel scale: 0.031 or 8/255")
    p.add_argument("--norm", choices=["linf", "l2"], default="linf")
    p.add_argument("--attack", choices=["autoattack", "pgd"], default="autoattack",
                   help="autoattack, or the fast worst case of PGD-20 with CE and margin loss")
    p.add_argument("--version", choices=["standard", "plus", "rand"], default="standard",
                   help="AutoAttack's version (rand: for randomised models)")
    p.add_argument("--n-examples", type=count_arg(10**7), default=None,
                   help="N test images, a seeded class-stratified sample (the first N where "
                        "the data have their own order: cifar10:, cifar100:); default: all")
    p.add_argument("--batch-size", type=count_arg(100_000), default=500)
    device_opts(p)
    seed_opt(p)
    out_opt(p, "robustness-out")
    cache_opt(p, store=False)


def _cmd_attack(args) -> None:
    from ..data import Count, dataset_from_spec
    from ..model_args import check_fit, resolve_models
    from ..transfer_matrix import transfer_matrix

    spec = attack_spec(args)
    if "eps" not in spec.options:
        raise ValueError("--eps: the attack command needs a perturbation budget ([0,1] scale)")
    n = args.n_per_class and Count(args.n_per_class, "--n-per-class")
    data = dataset_from_spec(args.dataset, args.split, seed=args.seed, per_class=n or None)
    # one resolution for both roles: the same model given twice is one model (white-box)
    surrogates, victims = resolve_models(args.surrogates, args.victims,
                                         cache_dir=args.cache_dir, device=args.device,
                                         names=["surrogates", "victims"])
    for option, group in (("--surrogates", surrogates), ("--victims", victims)):
        check_fit(group, data.x, option, data=str(args.dataset), num_classes=data.num_classes)
    matrix = transfer_matrix(surrogates, victims, data.x, data.y, attack=spec,
                             batch_size=args.batch_size)
    matrix = dataclasses.replace(matrix, meta={"dataset": str(args.dataset),
                                               "split": args.split})
    print(matrix)
    out = args.out
    files = [matrix.to_csv(out / "transfer_matrix.csv"),
             matrix.to_json(out / "transfer_matrix.json"),
             matrix.plot(out / "transfer_matrix.png", protocol=args.protocol)]
    print("wrote " + ", ".join(map(str, files)))


def add_attack(sub) -> None:
    """``attack``."""
    p = command(sub, "attack", _cmd_attack,
                "Craft adversarial examples on surrogates and count how often they fool victims.")
    p.add_argument("--surrogates", nargs="+", required=True, help=MODELS_HELP)
    p.add_argument("--victims", nargs="+", required=True, help="as --surrogates")
    p.add_argument("--dataset", required=True, help="dataset name or .npz/folder path")
    p.add_argument("--split", default="test", choices=["train", "test", "all"])
    p.add_argument("--n-per-class", type=count_arg(100_000), default=None,
                   help="attack this many samples per class (default: the whole split)")
    attack_opts(p, use="required", default_steps="the attack's own: 10")
    p.add_argument("--norm", default="linf", choices=["linf", "l2"])
    p.add_argument("--batch-size", type=count_arg(1 << 16), default=128)
    p.add_argument("--protocol", default="both_correct", choices=["both_correct", "all"],
                   help="denominator of the heatmap")
    device_opts(p, precision=True)
    seed_opt(p)
    out_opt(p, "attack-out")
    cache_opt(p, store=False)


def _cmd_demo(args) -> None:
    from ..demo import run_demo

    with open_store(args) as store:
        _, report = run_demo(args.out, quick=args.quick, target=args.target,
                             cache_dir=args.cache_dir, store=store, device=args.device)
    print(report)


def add_demo(sub) -> None:
    """``demo``."""
    from ..demo import demo_targets

    p = command(sub, "demo", _cmd_demo, "Run the study on bundled data and write a report.")
    out_opt(p, "demo-out")
    p.add_argument("--quick", action="store_true", help="a smaller zoo for a fast check")
    p.add_argument("--target", default=demo_targets()[0], choices=demo_targets(),
                   help="the target task: mnist (default), or a colour task, whose sources "
                        "are colour digit/animal mixtures and whose studies use their colour "
                        "settings")
    device_opts(p, precision=True)
    cache_opt(p)


def _cmd_report(args) -> None:
    from ..html_report import write_report

    with open_store(args) as store:
        path = write_report(store, args.out_file)
    print(f"wrote {path}")


def add_report(sub) -> None:
    """``report``."""
    p = command(sub, "report", _cmd_report, "Write one self-contained HTML report of every study "
                "in the results store (nothing is recomputed).")
    p.add_argument("--out", dest="out_file", type=Path, default=Path("report.html"),
                   help="HTML file")
    cache_opt(p)
