"""Experiments as graphs of small pure jobs, kept in a SQLite results store.

See :mod:`.graph` (jobs, keys, code versions), :mod:`.store` (the store) and :mod:`.run`
(running a graph, resuming where it stopped).
"""

from .graph import (
    Given,
    Job,
    JobKind,
    Output,
    code_version,
    given,
    job_kind,
    list_job_kinds,
)
from .run import JobsFailed, Run, run_jobs
from .store import STORE_FILE, Record, ResultStore, StoreError, open_store

__all__ = ["Job", "Given", "Output", "JobKind", "job_kind", "list_job_kinds", "code_version",
           "given", "run_jobs", "Run", "JobsFailed", "ResultStore", "Record",
           "StoreError", "STORE_FILE", "open_store"]
