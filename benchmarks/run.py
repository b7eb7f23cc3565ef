"""Run every ``benchmarks/bench_*.py`` in name order (``make bench``).

Each benchmark's ``main()`` prints its raw figures and one ``BENCH <name> ratio=... PASS|MISS``
line per scenario. A benchmark that raises is reported and the others still run; the exit
status is non-zero if any raised. A MISS is a measurement, not an error: it does not fail the
run (the machine may be busy); read the figures above it.
"""

import importlib
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "sandbox"), str(HERE.parent)]


def main(names=None):
    names = names or [path.stem for path in sorted(HERE.glob("bench_*.py"))]
    failed = []
    for name in names:
        print(f"== {name}", flush=True)
        began = time.perf_counter()
        try:
            importlib.import_module(f"benchmarks.{name}").main()
        except Exception:
            traceback.print_exc()
            failed.append(name)
            print(f"== {name} FAILED", flush=True)
        else:
            print(f"== {name} done in {time.perf_counter() - began:.0f} s", flush=True)
    if failed:
        print("benchmarks that raised: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
