"""The command line's shared pieces: argument types, the option groups commands share, the
options generated from a study's settings, and the checks every command runs first."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .._deprecated import old_spellings, warn_old
from .._validation import count_arg, radius_arg, seed_arg

MODELS_HELP = ("checkpoints, zoo specs ('demo', YAML), SPEC:NAME items, "
               "py:MODULE:FUNCTION entry points returning an nn.Module, or hub models "
               "timm:NAME, torchvision:NAME, hf-hub:ORG/NAME (?weights=none|FILE)")


# ---- argument types: bad values are refused by argparse (exit 2) before any work ----------
def name_accuracy(text: str) -> tuple[str, float]:
    """``NAME=ACC`` with ACC in [0, 1] (a source's accuracy on its own task)."""
    from .._validation import check_unit_interval

    name, sep, value = text.rpartition("=")
    try:
        if not sep or not name:
            raise ValueError
        return name, check_unit_interval(float(value), "value")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=ACCURACY with an accuracy in [0, 1], "
                                         f"got {text!r}") from None


# ---- option groups ------------------------------------------------------------------------


def command(parent, name, func, help_text, **kw):
    """A subcommand ``name`` of ``parent`` run by ``func(args)``."""
    p = parent.add_parser(name, help=help_text, description=help_text, **kw)
    p.set_defaults(func=func)
    return p


def seed_opt(p):
    p.add_argument("--seed", type=seed_arg, default=0, help="an integer in [0, 2**32-1]")


def cache_opt(p, store: bool = True):
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="model, feature and data cache (default $TRANSFERABILITY_CACHE or "
                        "~/.cache/transferability)")
    if store:
        p.add_argument("--store", type=Path, default=None, metavar="PATH",
                       help="results store, an SQLite file (default: results.sqlite in "
                            "the cache folder)")


def old_options(p, where: str) -> None:
    """The old spellings of ``p``'s options that the deprecation table
    (:mod:`transferability._deprecated`) lists for command ``where``: still read (with a
    warning naming today's spelling), not in the help."""
    for old, spelling in old_spellings(where).items():
        action = p._option_string_actions[spelling.new]

        class Old(argparse.Action):
            def __call__(self, parser, namespace, values, option_string=None,
                         spelling=spelling):
                warn_old(spelling)
                setattr(namespace, self.dest, values)

        p.add_argument(old, dest=action.dest, type=action.type, nargs=action.nargs,
                       action=Old, default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def out_opt(p, default):
    p.add_argument("--out", type=Path, default=Path(default), help="output folder")


def attack_opts(p, *, use: str, default_steps: str, name: str = "pgd"):
    from ..attacks import list_attacks

    p.add_argument("--attack", default=name, choices=list_attacks(), metavar="NAME",
                   help=f"a registered attack: {', '.join(list_attacks())} (`transferability "
                        f"attacks` describes each; default {name})")
    p.add_argument("--eps", type=radius_arg, default=None,
                   help=f"perturbation budget, [0,1] pixel scale: 0.031 or 8/255 ({use})")
    p.add_argument("--steps", type=count_arg(100_000), default=None,
                   help=f"attack iterations (default {default_steps})")
    p.add_argument("--step-size", type=radius_arg, default=None,
                   help="step per iteration, 0.004 or 1/255 (default: the attack's own rule)")
    p.add_argument("--loss", choices=["ce", "margin"], default=None,
                   help="attack objective; margin resists saturated softmax (default ce)")


def backend_opts(p):
    p.add_argument("--backend", choices=["local", "dask"], default="local",
                   help="where jobs run: this process, or a Dask cluster")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="join this Dask scheduler (dask-jobqueue, Kubernetes, `dask "
                        "scheduler`); default: start a local cluster on 127.0.0.1")
    p.add_argument("--workers", type=count_arg(256), default=None,
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
    p.add_argument("--reference-epochs", type=count_arg(10_000), default=None,
                   help="epochs of --reference train (default: by data size, 5 to 50; "
                        "early stopping on a fifth of the train images picks the best)")
    attack_opts(p, use="α; default 0.1", default_steps="50, the authors' α attack")
    p.add_argument("--alpha-per-class", type=count_arg(10_000), default=20,
                   help="target images per class for the adversarial scores (α)")


# ---- values every command reads, checked before any work ---------------------------------


def attack_spec(args):
    """The :class:`~transferability.attacks.AttackSpec` of ``--attack --eps --steps
    --step-size --loss [--norm] [--seed]``: the one place where the command line meets the attacks'
    spelling (``alpha`` = step size), checked as every spec is (one rule for ``eps``).
    Options left out keep the defaults of the use (α: the authors' attack; transfer matrix:
    the attack's own; a study: its settings' spec)."""
    from ..attacks import AttackSpec

    given = {"eps": args.eps, "steps": args.steps, "alpha": args.step_size, "loss": args.loss,
             "norm": getattr(args, "norm", None)}
    try:
        return AttackSpec(args.attack, {k: v for k, v in given.items() if v is not None},
                          getattr(args, "seed", None))
    except ValueError as exc:  # the spec names its options; say them as typed
        names, sep, rest = str(exc).partition(": ")
        spelled = [_OPTIONS.get(n, n) for n in names.split(", ")]
        raise ValueError(", ".join(spelled) + sep + rest) from None


#: The attack options as the command line spells them.
_OPTIONS = {"eps": "--eps", "steps": "--steps", "alpha": "--step-size", "loss": "--loss",
            "norm": "--norm", "attack": "--attack"}


def shown(value) -> str:
    """A setting's value as its option is written (``0 1 2``, ``0.1``)."""
    if isinstance(value, tuple | list):
        return " ".join(shown(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def setting_options(p, study, attack_opts) -> None:
    """One option per declared field of ``study``'s settings (:func:`~transferability.
    studies.setting`): its rule parses and checks the value (a bad one exits with status 2,
    naming the option, before any work); its help gives the defaults, full and quick. A
    field that holds an attack is the ``--attack --eps --steps --step-size --loss`` group."""
    from .._validation import Flag
    from ..attacks import AttackRule

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
        default = "" if value is None else f"default {shown(value)}"
        if quick is not None and fast != value:
            default += f"; --quick {shown(fast)}"
        help_text = f.metadata["help"] + (f" ({default})" if default else "")
        if isinstance(rule, Flag):
            p.add_argument(option, action=argparse.BooleanOptionalAction, default=None,
                           help=help_text)
        else:
            shape = rule.describe()  # {a,b} for a choice, else the field's name
            p.add_argument(option, type=rule.arg_type(option), nargs=rule.nargs, default=None,
                           metavar=shape if shape.startswith("{") else f.name.upper(),
                           help=help_text)


def per_class(value, option: str, *datasets) -> None:
    """An images-per-class option (``--n-per-class``, ``--alpha-per-class``, ``--shots``)
    against the smallest class of ``datasets``: the one rule
    (:func:`~transferability.data.check_per_class`), checked before any work."""
    from ..data import check_per_class

    if value is not None:
        check_per_class(value, option, *datasets)


def layer(args) -> dict:
    return {"layer": args.feature_layer, "layer_input": args.feature_layer_input}


def prepare(args) -> None:
    """Check the cache and output folders before any computation; ``--cache-dir`` also
    governs the data cache (it becomes ``$TRANSFERABILITY_CACHE`` for this process)."""
    from .._files import check_writable_dir
    from ..utils import cache_dir

    if hasattr(args, "device"):  # a device this machine has, and a precision it runs
        from ..devices import check_precision, resolve_device
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
        from ..jobs import ResultStore
        ResultStore(args.store).close()
    if getattr(args, "backend", "local") == "local" and (
            getattr(args, "scheduler", None) or getattr(args, "workers", None)):
        raise ValueError("--scheduler, --workers: need --backend dask")
    if getattr(args, "out_file", None) is not None:  # a file, not a folder
        if args.out_file.is_dir():
            raise ValueError(f"--out: {args.out_file} is a folder; expected a file name")
        check_writable_dir(args.out_file.parent, "--out")


def open_store(args):
    """The results store of a command: ``--store``, or ``results.sqlite`` in the cache."""
    from ..jobs import ResultStore

    if getattr(args, "store", None) is not None:
        return ResultStore(args.store)
    return ResultStore.in_cache(getattr(args, "cache_dir", None))


def backend(args) -> dict:
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
