"""``transferability results``: look at the finished jobs of the results store."""

from __future__ import annotations

from pathlib import Path

from .options import cache_opt, command, open_store


def _cmd_results_list(args) -> None:
    import time

    from ..report import format_table

    with open_store(args) as store:
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

    with open_store(args) as store:
        record = _one_record(store, args.key)
    print(json.dumps({**record.as_dict(), "current": record.current}, indent=2,
                     sort_keys=True))


def _cmd_results_export(args) -> None:
    from ..jobs.export import export_records

    with open_store(args) as store:
        path = export_records(store.records(kind=args.kind, study=args.study),
                              args.format, args.out_file or Path(f"results.{args.format}"))
    print(f"wrote {path}")


def _cmd_results_gc(args) -> None:
    with open_store(args) as store:
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


def add_results(sub) -> None:
    """``results list|show|export|gc``."""
    results = sub.add_parser("results", help="Look at the finished jobs of the results store.",
                             description="Look at the finished jobs of the results store.")
    results_sub = results.add_subparsers(dest="results_command", metavar="ACTION",
                                         required=True)

    def filters(p):
        p.add_argument("--kind", default=None, help="only jobs of this kind (e.g. train)")
        p.add_argument("--study", default=None, help="only jobs run by this study")

    p = command(results_sub, "list", _cmd_results_list, "List finished jobs.")
    filters(p)
    cache_opt(p)
    p = command(results_sub, "show", _cmd_results_show,
                "Show one job: config, result, provenance.")
    p.add_argument("key", metavar="KEY", help="a job key, or its first characters")
    cache_opt(p)
    p = command(results_sub, "export", _cmd_results_export,
                "Export jobs as CSV, JSON or Parquet.")
    p.add_argument("--format", choices=["csv", "json", "parquet"], default="csv")
    p.add_argument("--out", dest="out_file", type=Path, default=None,
                   help="file (default results.FORMAT)")
    filters(p)
    cache_opt(p)
    p = command(results_sub, "gc", _cmd_results_gc, "Drop jobs (and artifacts) computed by "
                "code that has changed since; asks first.")
    p.add_argument("--yes", action="store_true", help="do not ask")
    cache_opt(p)
