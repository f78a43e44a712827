"""One pass over the records: time window, signature grouping, baseline and onset.

The analyzed span runs from the first to the last record timestamp inside the window
(any level). Its first quarter is the baseline: a signature first seen there is
``pre-existing``; one first seen later is ``new``. The onset is the first sighting of
the new signature with the most records.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tools.logs._deploys import Deploys
from tools.logs._parse import Record, record_deploy
from tools.logs._signatures import Signature, SignatureIndex

__all__ = ["BASELINE_FRACTION", "Analysis", "analyze", "iso", "rate", "timeline"]

BASELINE_FRACTION = 0.25


def iso(ts: datetime | None) -> str | None:
    """ISO-8601 in UTC with a ``Z``; milliseconds only when present."""
    if ts is None:
        return None
    spec = "milliseconds" if ts.microsecond else "seconds"
    return ts.isoformat(timespec=spec).replace("+00:00", "Z")


@dataclass
class Analysis:
    """What one pass over the records found."""

    index: SignatureIndex
    in_window: int = 0  # records inside since/until (all of them when no window is given)
    matched: int = 0  # in-window records at or above the minimum level
    undated: int = 0  # matched records without a timestamp
    start: datetime | None = None  # first timestamp in the window, any level
    end: datetime | None = None  # last timestamp in the window, any level
    times: array[float] = field(default_factory=lambda: array("d"))  # matched epochs, sorted at end
    deploys: Deploys = field(default_factory=Deploys)  # start-up and deploy lines, in or out of the window

    @property
    def baseline_end(self) -> datetime | None:
        if self.start is None or self.end is None:
            return None
        return self.start + (self.end - self.start) * BASELINE_FRACTION

    def status(self, sig: Signature) -> str:
        """``new``, ``pre-existing`` or ``undated`` (never seen with a timestamp)."""
        cut = self.baseline_end
        if sig.first_seen is None or cut is None:
            return "undated"
        return "pre-existing" if sig.first_seen < cut else "new"

    def ranked(self) -> list[Signature]:
        return self.index.ranked()

    def top_new(self) -> Signature | None:
        """The new signature with the most records (ties: the earliest)."""
        return next((s for s in self.ranked() if self.status(s) == "new"), None)

    def count_between(self, lo: datetime | None, hi: datetime | None) -> int:
        """Matched records with lo <= ts < hi (open bounds when None)."""
        left = 0 if lo is None else bisect_left(self.times, lo.timestamp())
        right = len(self.times) if hi is None else bisect_left(self.times, hi.timestamp())
        return max(0, right - left)


def analyze(
    records: Iterable[Record],
    *,
    min_rank: int,
    since: datetime | None = None,
    until: datetime | None = None,
    bucket_seconds: int | None = None,
) -> Analysis:
    """Group the records at or above ``min_rank`` inside [since, until] by signature.

    Records without a timestamp count only when no window is given.
    """
    result = Analysis(SignatureIndex(bucket_seconds=bucket_seconds))
    index, times = result.index, result.times
    windowed = since is not None or until is not None
    start = end = None
    in_window = 0
    for record in records:
        ts = record.ts
        deploy = record_deploy(record)
        if deploy is not None:
            result.deploys.add(ts, *deploy)
        if ts is None:
            if windowed:
                continue
            in_window += 1
            if record.rank >= min_rank:
                index.add(record)
                result.undated += 1
            continue
        if (since is not None and ts < since) or (until is not None and ts > until):
            continue
        in_window += 1
        if start is None or ts < start:
            start = ts
        if end is None or ts > end:
            end = ts
        if record.rank >= min_rank:
            epoch = ts.timestamp()
            times.append(epoch)
            index.add(record, epoch)
    result.in_window = in_window
    result.start, result.end = start, end
    result.matched = len(times) + result.undated
    result.times = array("d", sorted(times))
    return result


def timeline(result: Analysis, bucket_seconds: int, max_buckets: int = 120) -> dict[str, Any]:
    """Matched records per bucket over the span, at most ``max_buckets`` around the onset."""
    top = result.top_new()
    out: dict[str, Any] = {"bucket_minutes": bucket_seconds // 60, "buckets": []}
    if result.start is None or result.end is None:
        return out
    counts: dict[int, int] = {}
    for epoch in result.times:
        bucket = int(epoch // bucket_seconds)
        counts[bucket] = counts.get(bucket, 0) + 1
    first = int(result.start.timestamp() // bucket_seconds)
    last = int(result.end.timestamp() // bucket_seconds)
    if top is not None and top.first_seen is not None:
        center = int(top.first_seen.timestamp() // bucket_seconds)
    else:
        center = max(counts, key=lambda b: (counts[b], -b)) if counts else first
    lo, hi = first, last
    if last - first + 1 > max_buckets:
        lo = max(first, center - max_buckets // 4)
        hi = min(last, lo + max_buckets - 1)
        lo = max(first, hi - max_buckets + 1)
    out["omitted_before"] = sum(c for b, c in counts.items() if b < lo)
    out["omitted_after"] = sum(c for b, c in counts.items() if b > hi)
    out["total_buckets"] = last - first + 1
    start_of = datetime.fromtimestamp(0, result.start.tzinfo)
    for bucket in range(lo, hi + 1):
        entry = {
            "start": iso(start_of + timedelta(seconds=bucket * bucket_seconds)),
            "errors": counts.get(bucket, 0),
        }
        if top is not None and top.buckets.get(bucket):
            entry["top_new"] = top.buckets[bucket]
        out["buckets"].append(entry)
    return out


def rate(result: Analysis, lo: datetime, hi: datetime, min_seconds: float) -> dict[str, Any]:
    """Matched records in [lo, hi) (hi inclusive when it is the span end) per minute."""
    end_inclusive = result.end is not None and hi >= result.end
    count = result.count_between(lo, None if end_inclusive else hi)
    seconds = max((hi - lo).total_seconds(), min_seconds)
    return {
        "from": iso(lo),
        "to": iso(hi),
        "errors": count,
        "per_minute": round(count * 60.0 / seconds, 3),
    }
