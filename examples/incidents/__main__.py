"""Generate the incident suite: python -m examples.incidents --out DIR [--seed N] [--only CASE]."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import CASES, DEFAULT_SEED, generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the scored incident cases (repo, logs, runbooks, expected).")
    parser.add_argument("--out", type=Path, required=True, help="directory to create; one sub-directory per case")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"log noise seed (default {DEFAULT_SEED})")
    parser.add_argument("--only", action="append", default=[], help="generate only this case (repeatable)")
    args = parser.parse_args(argv)
    names = args.only or list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print(f"error: unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}", file=sys.stderr)
        return 2
    if args.out.exists():
        print(f"error: {args.out} already exists", file=sys.stderr)
        return 1
    for name in names:
        started = time.monotonic()
        expected = generate(name, args.out / name, args.seed)
        suspect = expected["suspect"]["sha"][:7] if expected["suspect"] else "not in repo"
        print(f"{name:<16} {expected['total_lines']:>7,} lines  {suspect:<11}  {time.monotonic() - started:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
