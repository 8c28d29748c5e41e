"""``transferability pick-surrogate``: which public model's adversarial examples will fool a
victim, ranked from cheap scores (one forward pass per candidate), optionally validated by
crafting on every candidate (:mod:`transferability.pick_surrogate`)."""

from __future__ import annotations

from .options import (
    MODELS_HELP,
    backend,
    backend_opts,
    cache_opt,
    command,
    count_arg,
    device_opts,
    open_store,
    out_opt,
    radius_arg,
    seed_opt,
)


def _victim(args, data):
    """The victim's outputs: from ``--victim`` (one model, run once) or from the file of
    ``--victim-outputs`` (the black-box case), checked against the data."""
    from ..model_args import check_fit, load_models
    from ..pick_surrogate import read_victim_outputs, victim_outputs

    if args.victim_outputs is not None:
        if args.validate:
            raise ValueError("--validate: crafting and measuring transfer needs the victim "
                             "as a model (--victim), not its outputs")
        return None, read_victim_outputs(args.victim_outputs, data)
    models = load_models([args.victim], args.cache_dir, device=args.device)
    if len(models) != 1:
        raise ValueError(f"--victim: expected one model, {args.victim!r} names {len(models)}")
    check_fit(models, data.x, "--victim", data=str(args.data), num_classes=data.num_classes)
    (model,) = models.values()
    outputs = victim_outputs(model, data)
    if outputs.logits.shape[1] != data.num_classes:
        raise ValueError(f"--victim: it has {outputs.logits.shape[1]} outputs but the data "
                         f"{args.data!r} has {data.num_classes} classes")
    return model, outputs


def _cmd_pick(args) -> None:
    from ..attacks import AttackSpec
    from ..data import Count, dataset_from_spec
    from ..html_report import format_result
    from ..model_args import check_fit, load_models
    from ..pick_surrogate import model_family, score_candidates, validate
    from ..report import format_table, write_csv, write_json

    spec = None if args.validate is None else AttackSpec(
        args.validate, {k: v for k, v in (("eps", args.eps), ("steps", args.steps))
                        if v is not None}, args.seed)
    n = args.n_per_class and Count(args.n_per_class, "--n-per-class")
    data = dataset_from_spec(args.data, args.split, seed=args.seed, per_class=n or None)
    victim_model, victim = _victim(args, data)
    candidates = load_models(args.candidates, args.cache_dir, device=args.device)
    check_fit(candidates, data.x, "--candidates", data=str(args.data), features=True)
    family = args.victim_family or (model_family(victim_model) if victim_model else None)
    result = score_candidates(candidates, data, victim, estimators=args.estimators,
                              victim_family=family)
    print(format_result(result))
    rows = [{"candidate": c, "score": s, "value": v}
            for s, row in result.scores.items() for c, v in row.items()]
    files = [write_json(result.to_dict(), args.out / "pick_surrogate.json"),
             write_csv(rows, args.out / "pick_surrogate.csv")]
    if spec is not None:
        with open_store(args) as store:
            checked = validate(result, candidates, victim_model, data.x, data.y, spec,
                               seed=args.seed, store=store, device=args.device,
                               **backend(args))
        both, every = checked["both_correct"], checked["all"]
        table = [{"score": s, "weighted_tau": v["tau_w"], "low": v["ci"][0],
                  "high": v["ci"][1], "top1": v["top1_hit"], "regret": v["regret"],
                  "tau (all images)": every["scores"][s]["tau_w"]}
                 for s, v in both["scores"].items()]
        print(f"\nvalidation: {spec.name} crafted on every candidate, 8-bit images; "
              "transfer to the victim among the images both classify correctly, and among all")
        print(format_table([{"candidate": c, "transfer (both correct)": r,
                             "transfer (all)": every["rates"][c]}
                            for c, r in both["rates"].items()]))
        print(format_table(sorted(table, key=lambda r: -r["weighted_tau"]
                                  if r["weighted_tau"] == r["weighted_tau"] else 2)))
        files.append(write_json(checked, args.out / "pick_surrogate_validation.json"))
    print("wrote " + ", ".join(map(str, files)))


def add_pick(sub) -> None:
    """``pick-surrogate``."""
    from ..attacks import list_attacks
    from ..ranking import output_estimators

    p = command(sub, "pick-surrogate", _cmd_pick,
                "Rank candidate surrogates by how well their adversarial examples should "
                "transfer to a victim, from one forward pass each: estimators with the "
                "victim's labels as the target, the affine fit of its logits, top-1 "
                "agreement, and target-blind baselines (docs/pick_surrogate.md).")
    p.add_argument("--candidates", nargs="+", required=True, help=MODELS_HELP)
    victim = p.add_mutually_exclusive_group(required=True)
    victim.add_argument("--victim", help="the victim, one model argument")
    victim.add_argument("--victim-outputs", metavar="FILE",
                        help="the victim's labels or logits on --data (black box): a CSV "
                             "id,label or id,logit_0,... or an NPZ with ids and labels/logits")
    p.add_argument("--victim-family", metavar="NAME", default=None,
                   help="the victim's architecture family (resnet, vit, ...), for the "
                        "same_family baseline (default: read from a --victim model)")
    p.add_argument("--data", required=True, help="the images: a dataset name or data argument")
    p.add_argument("--split", default="test", choices=["train", "test", "all"])
    p.add_argument("--n-per-class", type=count_arg(100_000), default=None,
                   help="images per class (default: the whole split)")
    p.add_argument("--estimators", nargs="+", default=None, choices=output_estimators(),
                   metavar="NAME", help="estimators to score with (default: every output one)")
    p.add_argument("--validate", choices=list_attacks(), metavar="ATTACK", default=None,
                   help="craft this attack on every candidate and report each score's "
                        "weighted Kendall τ against the measured transfer (needs --victim)")
    p.add_argument("--eps", type=radius_arg, default=None, help="--validate's radius")
    p.add_argument("--steps", type=count_arg(100_000), default=None,
                   help="--validate's iterations")
    backend_opts(p)
    device_opts(p, precision=True)
    seed_opt(p)
    out_opt(p, "pick-surrogate-out")
    cache_opt(p)
