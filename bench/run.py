"""Run every benchmark section, print the table, and write bench/RESULTS.md.

python -m bench.run [--quick] [--only submit,fanout,overhead,memory,ws_memory,startup,scaleout]
"""

from __future__ import annotations

import argparse
import importlib
import time
from datetime import UTC, datetime
from pathlib import Path

from bench._common import Row, machine, render_table

SECTIONS = ["submit", "fanout", "overhead", "memory", "ws_memory", "startup", "scaleout"]
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and smaller sizes")
    parser.add_argument("--only", default=",".join(SECTIONS))
    args = parser.parse_args()
    chosen = [s for s in args.only.split(",") if s]
    rows: list[Row] = []
    timings: list[str] = []
    for name in chosen:
        module = importlib.import_module(f"bench.{name}")
        started = time.perf_counter()
        print(f"running {name} …", flush=True)
        section_rows = module.run(quick=args.quick)
        rows += section_rows
        timings.append(f"{name} {time.perf_counter() - started:.0f} s")
        print(render_table(section_rows), flush=True)
    table = render_table(rows)
    header = (
        f"# crewgate benchmarks\n\n"
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {machine()}\n\n"
        f"`python -m bench.run{' --quick' if args.quick else ''}` · sections took: {', '.join(timings)}\n\n"
        "Each cell is the median over repetitions [min–max]; *ratio* = crewgate ÷ baseline "
        "(for rates, below 1 means crewgate delivers less). Baselines run in the same invocation "
        "on the same machine.\n\n"
    )
    print("\n" + table)
    if set(chosen) == set(SECTIONS):
        RESULTS.write_text(header + table + "\n")
        print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
