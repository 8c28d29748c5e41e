"""The ``transferability`` command line. Every command has ``--help``.

Errors from bad input (``ValueError``) are printed as one line and exit with status 2,
never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]


def _cmd_datasets(args) -> None:
    from .data import list_datasets
    from .report import format_table

    rows = [{"name": d.name, "size": d.size, "classes": d.classes, "source": d.source}
            for d in list_datasets()]
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
    from .report import format_table
    from .zoo import build_zoo

    zoo = build_zoo(args.spec, args.cache_dir)
    rows = [{"name": n, "arch": zoo.entries[n].arch,
             "test_acc": zoo[n].meta["metrics"]["test_acc"],
             "status": "trained" if n in zoo.trained else "cached", "path": str(zoo.path(n))}
            for n in zoo]
    print(format_table(rows))
    print(f"{len(zoo.trained)} trained, {len(zoo.cached)} loaded from cache")


def _cmd_probe(args) -> None:
    from .data import dataset_from_spec
    from .report import format_table
    from .transfer import linear_probe
    from .zoo import load_models

    train = dataset_from_spec(args.target, "train", seed=args.seed)
    test = dataset_from_spec(args.target, "test", seed=args.seed)
    models = load_models(args.sources, args.cache_dir)
    rows = []
    for name, model in models.items():
        r = linear_probe(model, train, test, shots=args.shots, repeats=args.repeats, seed=args.seed)
        rows.append({"source": name, "accuracy": r.accuracy, "std": r.accuracy_std, "loss": r.loss})
    print(format_table(rows))


def _cmd_rank(args) -> None:
    from .data import dataset_from_spec
    from .ranking import rank_sources
    from .report import write_csv, write_json
    from .zoo import load_models

    train = dataset_from_spec(args.target, "train", seed=args.seed)
    test = dataset_from_spec(args.target, "test", seed=args.seed) if args.validate else None
    models = load_models(args.sources, args.cache_dir)
    reference = None
    if args.reference:
        from .study import load_reference

        reference = load_reference(args.reference, args.target, args.cache_dir, seed=args.seed)
    result = rank_sources(models, train, estimators=args.estimators, test=test,
                          shots=args.shots, repeats=args.repeats, seed=args.seed,
                          reference=reference, n_per_class=args.n_per_class,
                          alpha_options={"eps": args.eps, "steps": args.steps})
    print(result.format())
    files = [write_csv(result.rows, args.out / "rank.csv"),
             write_json({"target": str(args.target), "rows": result.rows,
                         "truth": result.truth, "correlations": result.correlations},
                        args.out / "rank.json")]
    print("wrote " + ", ".join(map(str, files)))


def _cmd_study_adv_knowledge(args) -> None:
    from .data import dataset_from_spec
    from .plots import plot_scatter_grid
    from .report import write_csv, write_json
    from .study import adv_knowledge_study, load_reference
    from .zoo import load_models

    train = dataset_from_spec(args.target, "train", seed=args.seed)
    test = dataset_from_spec(args.target, "test", seed=args.seed)
    sources = load_models(args.sources, args.cache_dir)
    reference = load_reference(args.reference, args.target, args.cache_dir, seed=args.seed)
    study = adv_knowledge_study(sources, reference, train, test, n_per_class=args.n_per_class,
                                eps=args.eps, steps=args.steps, shots=args.shots,
                                repeats=args.repeats, seed=args.seed)
    print(study.format())
    out = args.out
    files = [write_json(study.to_dict(), out / "study.json"),
             write_csv(study.rows, out / "study.csv"),
             plot_scatter_grid(study.rows, study.predictors, study.truth, out / "scores.png"),
             study.matrix.plot(out / "transfer_matrix.png")]
    print("wrote " + ", ".join(map(str, files)))


def _cmd_study_theory(args) -> None:
    from .adversarial import theory_check
    from .report import format_table, write_csv

    rows = [vars(r) for r in theory_check(tuple(args.scales), n=args.n, seed=args.seed)]
    print("synthetic check (Liang et al.): sources = target MLP with weights perturbed at "
          "each scale;\nα^(T→S) with exact Jacobians should fall and the affine-fit loss rise")
    print(format_table(rows))
    print("wrote", write_csv(rows, args.out / "theory.csv"))


def _cmd_attack(args) -> None:
    from .attacks import list_attacks
    from .data import dataset_from_spec, per_class
    from .transfer_matrix import transfer_matrix
    from .zoo import load_models

    if args.attack not in list_attacks():
        raise ValueError(f"attack: unknown attack {args.attack!r}; "
                         f"available: {', '.join(list_attacks())}")
    data = dataset_from_spec(args.dataset, args.split, seed=args.seed)
    if args.n_per_class:
        data = per_class(data, args.n_per_class, seed=args.seed)
    surrogates = load_models(args.surrogates, args.cache_dir)
    # names identify models: a victim named like a surrogate is that same model
    victims = load_models(args.victims, args.cache_dir)
    victims = {n: surrogates.get(n, m) for n, m in victims.items()}
    kw = {"eps": args.eps, "norm": args.norm, "seed": args.seed}
    if args.attack != "fgsm":
        kw["steps"] = args.steps
        if args.step_size is not None:
            kw["alpha"] = args.step_size
    matrix = transfer_matrix(surrogates, victims, data.x, data.y, attack=args.attack,
                             batch_size=args.batch_size, **kw)
    matrix.meta.update({"dataset": str(args.dataset), "split": args.split})
    print(matrix)
    out = args.out
    files = [matrix.to_csv(out / "transfer_matrix.csv"),
             matrix.to_json(out / "transfer_matrix.json"),
             matrix.plot(out / "transfer_matrix.png", protocol=args.protocol)]
    print("wrote " + ", ".join(map(str, files)))


def _cmd_demo(args) -> None:
    from .demo import run_demo

    run_demo(args.out, quick=args.quick, cache_dir=args.cache_dir, recompute=args.recompute)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="transferability",
        description="Measure, predict and control knowledge and adversarial transferability.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name, func, help_text, **kw):
        p = sub.add_parser(name, help=help_text, description=help_text, **kw)
        p.set_defaults(func=func)
        return p

    def adversarial_opts(p, required: bool):
        p.add_argument("--reference", default="train" if required else None,
                       help="model trained on the target task, for the adversarial scores: "
                            "'train' (a cached cnn), a checkpoint or SPEC:NAME"
                            + ("" if required else "; without it they are skipped"))
        p.add_argument("--eps", type=float, default=0.1, help="α attack budget (L∞, [0,1] scale)")
        p.add_argument("--steps", type=int, default=20, help="α attack PGD steps")
        p.add_argument("--n-per-class", type=int, default=20,
                       help="target images per class for the adversarial scores")

    def cache_opt(p):
        p.add_argument("--cache-dir", type=Path, default=None,
                       help="model/feature cache (default $TRANSFERABILITY_CACHE or "
                            "~/.cache/transferability)")

    command("datasets", _cmd_datasets, "List the bundled datasets with size and source.")
    command("models", _cmd_models, "List the model architectures.")

    zoo = sub.add_parser("zoo", help="Build zoos of source models.",
                         description="Build zoos of source models.")
    zoo_sub = zoo.add_subparsers(dest="zoo_command", metavar="ACTION", required=True)
    p = zoo_sub.add_parser("build", help="Train (or load cached) models from a YAML spec.",
                           description="Train the models of a YAML zoo spec; cached models "
                                       "are not retrained. SPEC may be 'demo'.")
    p.add_argument("spec", help="zoo spec YAML path, or 'demo'")
    cache_opt(p)
    p.set_defaults(func=_cmd_zoo_build)

    p = command("probe", _cmd_probe, "Linear-probe source models on a target dataset.")
    p.add_argument("--target", required=True, help="target dataset name or .npz/folder path")
    p.add_argument("--sources", nargs="+", required=True,
                   help="zoo spec YAMLs, 'demo', and/or checkpoint files")
    p.add_argument("--shots", type=int, default=None, help="samples per class (few-shot)")
    p.add_argument("--repeats", type=int, default=1, help="few-shot draws to average")
    p.add_argument("--seed", type=int, default=0)
    cache_opt(p)

    p = command("rank", _cmd_rank,
                "Score source models on a target task with transferability estimators.")
    p.add_argument("--target", required=True, help="target dataset name or .npz/folder path")
    p.add_argument("--sources", nargs="+", required=True,
                   help="checkpoints, zoo specs ('demo', YAML) or SPEC:NAME items")
    p.add_argument("--estimators", nargs="+", default=None,
                   help="estimator names (default: all that need no reference model)")
    p.add_argument("--validate", choices=["linear-probe"], default=None,
                   help="also measure real transfer and correlate every estimator with it")
    p.add_argument("--shots", type=int, default=None,
                   help="few-shot probe: samples per class (default: full data)")
    p.add_argument("--repeats", type=int, default=5, help="few-shot draws to average")
    adversarial_opts(p, required=False)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("rank-out"), help="output folder")
    cache_opt(p)

    study = sub.add_parser("study", help="Run the studies that connect the two transferabilities.",
                           description="Run the studies that connect the two transferabilities.")
    study_sub = study.add_subparsers(dest="study_command", metavar="STUDY", required=True)
    p = study_sub.add_parser(
        "adv-knowledge", help="Adversarial vs knowledge transferability over a zoo.",
        description="For every source: estimators, α^(target→source), gradient alignment, "
                    "attribution affinity, linear probes and the affine fit; every score's "
                    "agreement with the few-shot probe; a transfer matrix and the reverse "
                    "direction (Liang et al. 2021).")
    p.add_argument("--target", default="mnist", help="target dataset (default mnist)")
    p.add_argument("--sources", nargs="+", default=["demo"],
                   help="checkpoints, zoo specs ('demo', YAML) or SPEC:NAME items")
    adversarial_opts(p, required=True)
    p.add_argument("--shots", type=int, default=10, help="few-shot probe: samples per class")
    p.add_argument("--repeats", type=int, default=5, help="few-shot draws to average")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("study-out"), help="output folder")
    cache_opt(p)
    p.set_defaults(func=_cmd_study_adv_knowledge)
    p = study_sub.add_parser(
        "theory", help="The synthetic check with exact Jacobians.",
        description="A small MLP target on a synthetic regression task; sources are its "
                    "weights perturbed at increasing scale; α1, α2 and the affine-fit loss "
                    "per scale (Liang et al. 2021).")
    p.add_argument("--scales", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.4, 0.8, 1.6])
    p.add_argument("--n", type=int, default=1000, help="samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("study-out"), help="output folder")
    p.set_defaults(func=_cmd_study_theory)

    p = command("attack", _cmd_attack,
                "Craft adversarial examples on surrogates and count how often they fool victims.")
    p.add_argument("--surrogates", nargs="+", required=True,
                   help="checkpoints, zoo specs ('demo', YAML) or SPEC:NAME items")
    p.add_argument("--victims", nargs="+", required=True, help="as --surrogates")
    p.add_argument("--dataset", required=True, help="dataset name or .npz/folder path")
    p.add_argument("--split", default="test", choices=["train", "test", "all"])
    p.add_argument("--n-per-class", type=int, default=None,
                   help="attack this many samples per class (default: the whole split)")
    p.add_argument("--attack", default="pgd", help="fgsm, bim, pgd, mifgsm, di, mi-di")
    p.add_argument("--eps", type=float, required=True, help="perturbation budget ([0,1] scale)")
    p.add_argument("--norm", default="linf", choices=["linf", "l2"])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--step-size", type=float, default=None, help="default: the attack's own")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--protocol", default="both_correct", choices=["both_correct", "all"],
                   help="denominator of the heatmap")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("attack-out"), help="output folder")
    cache_opt(p)

    p = command("demo", _cmd_demo, "Run the study on bundled data and write a report.")
    p.add_argument("--out", type=Path, default=Path("demo-out"), help="output folder")
    p.add_argument("--quick", action="store_true", help="a smaller zoo for a fast check")
    p.add_argument("--recompute", action="store_true",
                   help="measure the study again even if a cached result exists")
    cache_opt(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ValueError as exc:
        print(f"transferability {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished work is cached and a rerun resumes from it", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
