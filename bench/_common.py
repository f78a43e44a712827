"""Shared pieces of the benchmarks: result rows, statistics, the table, the machine.

Every figure is measured against a baseline in the same run and reported as a
ratio (ours / baseline, so > 1 means ours costs more or takes longer, and for
rates < 1 means ours delivers less), as the median over repetitions with min and
max.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Row", "machine", "percentile", "render_table", "summarize", "touch_tree"]

PROJECT = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    section: str
    metric: str
    unit: str
    ours: list[float]  # one value per repetition
    baseline: list[float]
    baseline_name: str
    note: str = ""
    higher_is_better: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        base = statistics.median(self.baseline)
        return statistics.median(self.ours) / base if base else float("inf")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile, q in [0, 100]."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summarize(values: list[float]) -> str:
    """median [min–max] with sensible precision."""
    if not values:
        return "n/a"
    med, lo, hi = statistics.median(values), min(values), max(values)
    return f"{_fmt(med)} [{_fmt(lo)}–{_fmt(hi)}]" if len(values) > 1 else _fmt(med)


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def render_table(rows: list[Row]) -> str:
    lines = [
        "| section | metric | crewgate | baseline | ratio | n | note |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        ratio = f"{row.ratio:.2f}×"
        lines.append(
            f"| {row.section} | {row.metric} ({row.unit}) | {summarize(row.ours)} | "
            f"{summarize(row.baseline)} ({row.baseline_name}) | {ratio} | {len(row.ours)} | {row.note} |"
        )
    return "\n".join(lines)


def machine() -> str:
    cores = os.cpu_count() or 0
    memory = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cores} cores ({cpu}), {memory} memory, Python {platform.python_version()}, {platform.system()}"


def touch_tree(directory: str | Path) -> None:
    """Give every file under ``directory`` a new mtime, so remembered parses of them
    (the log tools' parse cache) are not reused: each run looks at the logs afresh."""
    now = time.time_ns()
    for path in Path(directory).rglob("*"):
        if path.is_file():
            now += 1_000
            os.utime(path, ns=(now, now))
