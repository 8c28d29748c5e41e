"""The page: one section per study in a results store, the generic section, provenance.

The page knows no study: a result type's section comes from
:func:`~transferability.html_report.sections.register_section` (a study's from its module
here, ``html_report/<study>.py``), and any other result gets the generic section (its
scalars, rows and text as stored). A stored dict is read back once, with its type's ``from_dict``,
and the renderer is given the :class:`~transferability._results.Result` object.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from .._files import write_bytes
from ..jobs.graph import get_job_kind, list_job_kinds
from ..jobs.store import Record, ResultStore
from ..studies import list_studies
from .assets import CSS, JS
from .sections import Section, list_sections
from .tables import details, kv, label, table
from .text import escape, secs, short, to_json, when

__all__ = ["write_report", "render_report", "section_id"]


def _sections() -> list[Section]:
    """Every drawn result type: the studies' first (registration order: the main study
    first), then the others'; a study with no registered section gets its title and the
    generic section."""
    registered = {s.result.__name__: s for s in list_sections()}
    studies = [registered.pop(s.result.__name__, Section(s.result, s.title))
               for s in list_studies()]
    return [*studies, *registered.values()]


def _section_of(type_name: str) -> Section | None:
    return next((s for s in _sections() if s.result.__name__ == type_name), None)


def _generic(sid: str, v: dict) -> str:
    """Any other result: its scalars, lists of rows as tables, lists of text as lists."""
    scalars, parts = {}, []
    for name, value in v.items():
        if name in ("type", "schema"):
            continue
        if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
            parts += [f"<h3>{escape(label(name))}</h3>",
                      table(value, id=f"{sid}-{re.sub(r'[^A-Za-z0-9_-]', '-', name)}")]
        elif isinstance(value, list) and value and all(isinstance(r, str) for r in value):
            parts += [f"<h3>{escape(label(name))}</h3><ul>",
                      *(f"<li>{escape(r)}</li>" for r in value), "</ul>"]
        elif isinstance(value, dict) and value:
            parts += [f"<h3>{escape(label(name))}</h3>", kv(value)]
        else:
            scalars[name] = value
    return (kv(scalars) if scalars else "") + "".join(parts)


# ---- the store ----------------------------------------------------------------------------

def section_id(record: Record) -> str:
    """The HTML id of a study record's section."""
    return f"study-{record.key[:12]}"


def _is_result(record: Record) -> bool:
    return isinstance(record.value, dict) and isinstance(record.value.get("type"), str)


def _studies(records: Sequence[Record]) -> list[Record]:
    """The latest final record per (kind, label, config): a result dict of a study type, or
    of any type when no other record takes it as input. By type (the main study first),
    newest first."""
    used = {k for r in records for k in r.inputs.values()}
    study_types = [s.result.__name__ for s in list_studies()]
    latest: dict[tuple[str, str, str], Record] = {}
    for r in records:  # oldest first: later ones replace
        if _is_result(r) and (r.value["type"] in study_types or r.key not in used):
            latest[(r.kind, r.label, to_json(r.config))] = r
    order = [s.result.__name__ for s in _sections()]
    return sorted(latest.values(), key=lambda r: (
        order.index(r.value["type"]) if r.value["type"] in order else len(order),
        r.value["type"], -r.finished, r.key))


def _closure(record: Record, by_key: dict[str, Record]) -> list[Record]:
    """The record and every record it needs, through inputs."""
    seen, todo = {}, [record.key]
    while todo:
        key = todo.pop()
        if key in seen or key not in by_key:
            continue
        seen[key] = by_key[key]
        todo += list(by_key[key].inputs.values())
    return sorted(seen.values(), key=lambda r: (r.finished, r.key))


def _seeds(config, out: list) -> list:
    if isinstance(config, dict):
        for k, v in config.items():
            if k in ("seed", "seeds"):
                out += v if isinstance(v, list) else [v]
            else:
                _seeds(v, out)
    elif isinstance(config, list):
        for v in config:
            _seeds(v, out)
    return out


def _versions(kinds: Iterable[str]) -> dict[str, str]:
    """Each known job kind's current code version."""
    known = set(list_job_kinds())
    return {k: get_job_kind(k).version for k in kinds if k in known}


def _jobs_table(records: Sequence[Record], current: dict[str, str], id: str) -> str:
    by_kind: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_kind[r.kind].append(r)

    def code(rs):
        versions = sorted({r.code_version for r in rs})
        state = ("current" if current.get(rs[0].kind) in versions and len(versions) == 1
                 else "kind unknown here" if rs[0].kind not in current else "code changed since")
        return f"{', '.join(versions)} ({state})"
    rows = [{"kind": k, "jobs": len(rs), "compute": sum(r.duration for r in rs),
             "code": code(rs)} for k, rs in by_kind.items()]
    rows.append({"kind": "all", "jobs": len(records),
                 "compute": sum(r.duration for r in records), "code": ""})
    return table(rows, ["kind", ("jobs", lambda r: (str(r["jobs"]), str(r["jobs"]))),
                        ("compute time (sum of durations)",
                         lambda r: (secs(r["compute"]), repr(r["compute"]))),
                        ("code version", lambda r: (r["code"], None))], id=id)


def _environment(records: Sequence[Record]) -> dict:
    def values(attr):
        return ", ".join(sorted({str(getattr(r, attr)) for r in records})) or "–"
    start, end = min(r.started for r in records), max(r.finished for r in records)
    return {"hosts": values("host"), "transferability": values("library_version"),
            "torch": values("torch_version"),
            "ran": f"{when(start)} → {when(end)} (wall clock {secs(end - start)})"}


def _provenance(studies: Sequence[Record], records: Sequence[Record], path: Path) -> str:
    current = _versions({r.kind for r in records})
    by_key = {r.key: r for r in records}
    parts = ['<section id="provenance"><h2>Provenance</h2>',
             f'<p class="note">store <code>{escape(path)}</code>: {len(records)} jobs. Compute '
             "time sums the jobs' durations (seconds); code versions hash the code each job "
             "kind runs.</p>"]
    if records:
        parts += [kv(_environment(records)), _jobs_table(records, current, "provenance-jobs")]
    for rec in studies:
        sid = section_id(rec)
        needed = _closure(rec, by_key)
        seeds = list(dict.fromkeys(to_json(s) for s in _seeds(
            [rec.config, (rec.value.get("settings") or {})], [])))
        info = {"record": rec.key, "kind": rec.kind, "label": rec.label or "–",
                "study": rec.study or "–", "seeds": ", ".join(seeds) or "–",
                "finished": when(rec.finished), "duration of the final job": secs(rec.duration),
                **_environment(needed)}
        parts += [f'<div class="prov" id="provenance-{sid[6:]}"><h3><a href="#{sid}">'
                  f"{escape(_title(rec))}</a></h3>", kv(info),
                  details("config", f"<pre>{escape(to_json(rec.config, indent=2))}</pre>"),
                  f'<p class="note">jobs behind it (n = {len(needed)}):</p>',
                  _jobs_table(needed, current, f"provenance-{sid[6:]}-jobs"), "</div>"]
    parts.append("</section>")
    return "".join(parts)


def _title(rec: Record) -> str:
    kind = rec.value.get("type", "")
    section = _section_of(kind)
    return (section.title if section else kind) + (
        f" — {rec.label}" if rec.label else "")


def _differences(studies: Sequence[Record]) -> dict[str, str]:
    """For studies sharing a kind, the config entries that tell them apart."""
    out = {}
    for kind in {r.kind for r in studies}:
        group = [r for r in studies if r.kind == kind]
        if len(group) < 2:
            continue
        keys = sorted({k for r in group for k in r.config})
        differ = [k for k in keys if len({to_json(r.config.get(k)) for r in group}) > 1]
        for r in group:
            out[r.key] = ", ".join(f"{k} = {short(to_json(r.config.get(k)), 40)}"
                                   for k in differ)
    return out


def _section(rec: Record, distinct: str) -> str:
    sid, kind = section_id(rec), rec.value.get("type", "")
    section = _section_of(kind)
    try:
        body = (section.render(sid, section.result.from_dict(rec.value))
                if section and section.render else _generic(sid, rec.value))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, ZeroDivisionError) \
            as exc:
        body = (f'<p class="warn">This {escape(kind)} could not be drawn '
                f"({escape(type(exc).__name__)}: {escape(exc)}); its fields as stored:</p>"
                + _generic(sid, rec.value))
    sub = [f"job kind {rec.kind}", *([distinct] if distinct else []),
           f"finished {when(rec.finished)}"]
    return (f'<section id="{sid}" class="study" data-type="{escape(kind)}">'
            f'<h2>{escape(_title(rec))}</h2><p class="meta">{escape(" · ".join(sub))} · '
            f'<a href="#provenance-{sid[6:]}">provenance</a></p>{body}</section>')


def render_report(store: ResultStore) -> str:
    """The report of ``store`` as an HTML document (see the module docstring)."""
    records = store.records()
    studies = _studies(records)
    distinct = _differences(studies)
    toc = "".join(f'<li><a href="#{section_id(r)}">{escape(_title(r))}</a>'
                  f'{f" <small>({escape(distinct[r.key])})</small>" if distinct.get(r.key) else ""}'
                  "</li>" for r in studies)
    updated = f", last job finished {when(max(r.finished for r in records))}" if records else ""
    if studies:
        body = "".join(_section(r, distinct.get(r.key, "")) for r in studies)
    else:
        body = ('<section id="empty"><h2>No studies yet</h2><p>No studies yet: this store '
                f"holds {len(records)} jobs and no study result. Run a study with this store, "
                "then write the report again.</p></section>")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>transferability report</title><link rel="icon" href="data:,">'
            f"<style>{CSS}</style></head><body><header><h1>Transferability report</h1>"
            f'<p class="meta">{len(studies)} studies from {len(records)} jobs in '
            f"<code>{escape(store.path)}</code>{escape(updated)}</p>"
            + (f'<nav><ol>{toc}<li><a href="#provenance">Provenance</a></li></ol></nav>'
               if studies else "")
            + f"</header><main>{body}{_provenance(studies, records, store.path)}</main>"
            f"<script>{JS}</script></body></html>\n")


def write_report(store: ResultStore | str | Path, path: str | Path) -> Path:
    """Write the HTML report of ``store`` (a :class:`ResultStore` or its file) to ``path``,
    atomically; returns the path."""
    if isinstance(store, ResultStore):
        return write_bytes(path, render_report(store).encode())
    if not Path(store).is_file():
        raise ValueError(f"store: no such results store {store}")
    with ResultStore(store) as opened:
        return write_bytes(path, render_report(opened).encode())

