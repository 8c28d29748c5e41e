"""Job kinds for tests/test_dask.py, importable by the Dask workers (they unpickle the
kinds' functions by module name)."""

import os
import signal
import time
from pathlib import Path

from transferability.jobs import job_kind


@job_kind("test_die_once")
def die_once(config, inputs):
    """SIGKILL its own worker the first time (a marker file remembers), then double x."""
    marker = Path(config["marker"])
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return 2 * config["x"]


@job_kind("test_fail")
def fail(config, inputs):
    raise RuntimeError(f"job {config['x']} fails on purpose")


@job_kind("test_add")
def add(config, inputs):
    time.sleep(config.get("sleep", 0))
    return config["x"] + sum(o.value for o in inputs.values())
