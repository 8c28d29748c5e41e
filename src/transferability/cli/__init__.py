"""The ``transferability`` command line. Every command has ``--help``.

Errors from bad input (``ValueError``) are printed as one line and exit with status 2,
never as a traceback. The package parses and prints only: :mod:`.options` holds the
argument types, the option groups commands share and the checks every command runs first;
:mod:`.commands` the commands that take models and data; :mod:`.study` one command per
registered study, its options generated from its settings; :mod:`.results` the results
store's commands.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from . import commands, pick, results, study
from .options import prepare

__all__ = ["main", "build_parser"]

log = logging.getLogger("transferability")


def build_parser() -> argparse.ArgumentParser:
    """Every command, with its options (the studies' from their settings)."""
    parser = argparse.ArgumentParser(
        prog="transferability",
        description="Measure, predict and control knowledge and adversarial transferability.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (commands.add_listings, commands.add_zoo, commands.add_probe, commands.add_rank,
                commands.add_robustness, study.add_studies, commands.add_attack,
                pick.add_pick, commands.add_demo, results.add_results, commands.add_report):
        add(sub)
    return parser


class _Handler(logging.StreamHandler):
    """Progress messages of the library, to the stderr of the moment."""

    def emit(self, record):
        self.stream = sys.stderr
        super().emit(record)


def main(argv: list[str] | None = None) -> int:
    from ..jobs import JobsFailed

    args = build_parser().parse_args(argv)
    handler = _Handler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    saved_cache = os.environ.get("TRANSFERABILITY_CACHE")  # --cache-dir sets it for this call
    try:
        prepare(args)
        from ..devices import use_precision  # the device is passed, resolved once

        with use_precision(getattr(args, "precision", None), getattr(args, "device", None)):
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
