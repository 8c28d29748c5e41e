"""``make bench``: run every ``benchmarks/bench_*.py`` module's ``main()`` in turn.

Each benchmark times the library against a baseline run side by side in the same process
and prints ratios. Pass module names to run a subset: ``python -m benchmarks estimators``.
"""

import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    wanted = [f"bench_{a.removeprefix('bench_')}" for a in argv]
    for name in wanted or names:
        if name not in names:
            raise SystemExit(f"unknown benchmark {name!r}; available: {', '.join(names)}")
        print(f"\n=== {name} ===", flush=True)
        importlib.import_module(f"benchmarks.{name}").main()


if __name__ == "__main__":
    main(sys.argv[1:])
