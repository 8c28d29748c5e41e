"""``transferability study NAME``, one command per registered study (and its older names),
its options generated from the declared fields of the study's settings."""

from __future__ import annotations

from pathlib import Path

from .options import (
    attack_opts,
    attack_spec,
    backend,
    backend_opts,
    cache_opt,
    command,
    device_opts,
    old_options,
    open_store,
    out_opt,
    setting_options,
)


def write_result(result, out: Path, stem: str) -> None:
    """A study's tables on stdout; its JSON, CSV (the rows) and figures in ``out``."""
    from ..html_report import format_result, result_files
    from ..report import write_csv, write_json

    print(format_result(result))
    rows = getattr(result, "rows", None)
    files = [write_json(result.to_dict(), out / f"{stem}.json"),
             *([write_csv(rows, out / f"{stem}.csv")] if isinstance(rows, list) else []),
             *result_files(result, out)]
    print("wrote " + ", ".join(map(str, files)))


def study_settings(args, study):
    """The study's settings: ``--quick``'s or the full ones, the colour task's over them,
    then every option given (each already checked by its field's rule)."""
    from ..attacks import AttackRule

    settings = study.quick if getattr(args, "quick", False) else study.full
    if getattr(args, "settings_file", None) is not None:
        settings = study.read(args.settings_file)
    target = getattr(args, "target", None) or getattr(settings, "target", "")
    settings = study.for_target(settings, target)
    changes = {}
    for f in type(settings).declared():
        if isinstance(f.metadata["rule"], AttackRule) and f.metadata["option"]:
            changes[f.name] = attack_spec(args).with_defaults(getattr(settings, f.name))
        elif getattr(args, f.name, None) is not None:
            changes[f.name] = getattr(args, f.name)
    return settings.replace(**changes)


def _cmd_study(args) -> None:
    """``transferability study NAME`` (and its older names) for every registered study."""
    from ..studies import get_study

    study = get_study(args.study_command)
    try:
        settings = study_settings(args, study)
        with open_store(args) as store:
            result = study.run(settings, store=store, cache_dir=args.cache_dir,
                               device=args.device, **backend(args))
    except ValueError as exc:  # a setting's name is its option's: say it as typed
        name, sep, rest = str(exc).partition(": ")
        fields = {f.name for f in type(study.full).declared() if f.metadata["option"]}
        if sep and name in fields:
            raise ValueError(f"--{name.replace('_', '-')}: {rest}") from None
        raise
    write_result(result, args.out, study.name.replace("-", "_"))


def add_studies(sub) -> None:
    """``study NAME`` for every registered study, and its aliases."""
    study = sub.add_parser("study", help="Run the studies that connect the two transferabilities.",
                           description="Run the studies that connect the two transferabilities.")
    study_sub = study.add_subparsers(dest="study_command", metavar="STUDY", required=True)
    from ..studies import list_studies

    for each in list_studies():  # one command per study, its options from its settings
        for name, parent in ((each.name, study_sub), *((a, sub) for a in each.aliases)):
            p = command(parent, name, _cmd_study, each.help)
            p.set_defaults(study_command=each.name)
            setting_options(p, each, attack_opts)
            if each.read is not None:
                p.add_argument(each.read_option, dest="settings_file", type=Path, default=None,
                               metavar="FILE", help="read the settings from this file (YAML)")
            if each.quick is not None:
                p.add_argument("--quick", action="store_true",
                               help="the quick settings (their values are in each option's "
                                    "help)")
            old_options(p, f"study {each.name}")
            backend_opts(p)
            device_opts(p, precision=True)
            out_opt(p, f"{each.name}-out")
            cache_opt(p)
