"""The log tools: search_logs, error_signatures, error_timeline."""

from __future__ import annotations

import heapq
import json
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel

from tools._base import SandboxedTool, ToolError
from tools._result import ToolResult, clip
from tools.logs._analysis import Analysis, analyze, iso, rate, timeline
from tools.logs._args import (
    ErrorSignaturesArgs,
    ErrorTimelineArgs,
    SearchLogsArgs,
    parse_level,
    parse_time,
)
from tools.logs._deploys import MAX_DEPLOYS, Deploy, Deploys
from tools.logs._parse import LEVELS, MAX_RECORD_BYTES, ParseStats, Record, iter_records
from tools.logs._services import ServiceFilter
from tools.logs._signatures import Signature, top_frame

__all__ = ["ErrorSignaturesTool", "ErrorTimelineTool", "SearchLogsTool"]

MAX_SERVICE_CHARS = 200  # a longer service name is cut, not refused
_EXTRA_SHOWN = 5  # continuation lines shown per record in search results
_TRACE_SHOWN = 15  # continuation lines shown per signature in the list


class _LogTool(SandboxedTool):
    """Shared plumbing: sandboxed reading, time windows, display paths."""

    def _read(self, logs: str, stats: ParseStats) -> Any:
        path = self.sandbox.resolve(logs)
        return iter_records(path, sandbox=self.sandbox, stats=stats)

    def _select(self, args: dict[str, Any], stats: ParseStats) -> tuple[Iterable[Record], dict[str, Any] | None]:
        """The records to analyse: with ``service``, that service's only (unless none names it)."""
        logs = args["logs"]
        service = str(args.get("service") or "").strip()[:MAX_SERVICE_CHARS]
        if not service:
            return self._read(logs, stats), None
        root = self.sandbox.resolve(logs)
        probe = ServiceFilter(service, root)
        for record in self._read(logs, ParseStats()):
            probe.keep(record)
        if probe.kept == 0:
            note = f"no record names service {service!r}: nothing left out"
            return self._read(logs, stats), {"name": service, "filtered": False, "left_out": {}, "note": note}
        chosen = ServiceFilter(service, root, frozenset(probe.named_sources))
        info: dict[str, Any] = {"name": service, "filtered": True}
        return _narrowed(self._read(logs, stats), chosen, info), info

    @staticmethod
    def _window(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
        lo, hi = parse_time("since", since), parse_time("until", until)
        if lo is not None and hi is not None and lo > hi:
            raise ToolError(f"since {since!r} is after until {until!r}")
        return lo, hi

    def _where(self, source: str, line: int | None = None) -> str:
        """``source`` relative to its root (as tools accept it), with ``:line`` if given."""
        path = Path(source)
        shown = source
        for root in self.sandbox.roots:
            if path.is_relative_to(root):
                shown = str(path.relative_to(root))
                break
        return shown if line is None else f"{shown}:{line}"

    def _skipped(self, stats: ParseStats) -> list[str]:
        return [f"{self._where(path)}: {reason}" for path, reason in stats.skipped[:10]]

    @staticmethod
    def _cut(stats: ParseStats) -> dict[str, int]:
        """How many physical lines were longer than MAX_RECORD_BYTES and kept only in part."""
        return {"cut_lines": stats.cut_lines, "cut_bytes": stats.cut_bytes}

    @staticmethod
    def _cut_note(stats: ParseStats) -> str:
        if not stats.cut_lines:
            return ""
        return f"; {stats.cut_lines:,} over-long line(s) cut to {MAX_RECORD_BYTES // 1024:,} KiB"

    def _span(self, result: Analysis, stats: ParseStats, service: dict[str, Any] | None) -> dict[str, Any]:
        span = {
            "files": stats.files,
            "skipped_files": self._skipped(stats),
            **self._cut(stats),
            **_unrecognised(stats),
            "records": stats.records,  # every record read, those of other services too
            "in_window": result.in_window,
            "matched": result.matched,
            "start": iso(result.start),
            "end": iso(result.end),
            "baseline_end": iso(result.baseline_end),
        }
        if service is not None:
            span["service"] = service
        return span

    def _analyze(
        self, args: dict[str, Any], bucket_seconds: int | None = None
    ) -> tuple[Analysis, ParseStats, str, dict[str, Any] | None]:
        since, until = self._window(args.get("since"), args.get("until"))
        min_rank = parse_level("min_level", args.get("min_level") or "ERROR")
        stats = ParseStats()
        records, service = self._select(args, stats)
        result = analyze(records, min_rank=min_rank or 0, since=since, until=until,
                         bucket_seconds=bucket_seconds)  # fmt: skip
        return result, stats, LEVELS[min_rank or 0], service

    def _bounded(self, result: ToolResult, key: str) -> ToolResult:
        """Keep as many of ``result.data[key]`` as fit the output size; say how many were cut."""
        items = result.data[key]
        result.data[key] = []
        base = len(json.dumps(result.model_dump(mode="json"), ensure_ascii=False, default=str))
        kept = _fit(items, self.max_output_chars - base - 800)  # room for params
        result.data[key] = kept
        if len(kept) < len(items):
            result.truncated = True
            result.data[f"{key}_cut_for_size"] = len(items) - len(kept)
        return result

    def _signature_entry(self, result: Analysis, sig: Signature) -> dict[str, Any]:
        return {
            "signature": sig.template,
            "count": sig.count,
            "status": result.status(sig),
            "first_seen": iso(sig.first_seen),
            "last_seen": iso(sig.last_seen),
            "levels": sig.levels,
            "sample": clip(sig.sample, 500),
            "examples": sig.examples,
            "frame": top_frame(sig.trace),
            "at": self._where(sig.sample_source, sig.sample_line),
            "trace": [clip(line, 300) for line in sig.trace[:_TRACE_SHOWN]],
        }


def _narrowed(records: Iterable[Record], chosen: ServiceFilter, info: dict[str, Any]) -> Iterator[Record]:
    """``records`` of the chosen service; fills ``info`` with what was left out once read."""
    yield from (record for record in records if chosen.keep(record))
    info["kept"] = chosen.kept
    info["left_out"] = chosen.left_out()
    info["left_out_records"] = sum(chosen.others.values())
    info["note"] = (f"{info['left_out_records']:,} records of other services left out (they do not name "
                    f"{chosen.service!r} in a service field, identifier, logger or file name)")  # fmt: skip


def _service_note(info: dict[str, Any] | None) -> str:
    if info is None:
        return ""
    if not info["filtered"]:
        return f"; {info['note']}"
    others = ", ".join(f"{name} {count:,}" for name, count in list(info["left_out"].items())[:3])
    left = info.get("left_out_records", 0)
    return f"; service {info['name']}: {left:,} records of others left out" + (f" ({others})" if others else "")


def _unrecognised(stats: ParseStats) -> dict[str, Any]:
    out: dict[str, Any] = {"unrecognised_lines": stats.unrecognised}
    if stats.unrecognised:
        out["unrecognised_samples"] = [clip(line, 200) for line in stats.unrecognised_samples]
    return out


def _unrecognised_note(stats: ParseStats) -> str:
    if not stats.unrecognised:
        return ""
    return f"; {stats.unrecognised:,} line(s) in no known format (kept as records of their own)"


def _deploy_item(deploy: Deploy) -> dict[str, Any]:
    return {"time": iso(deploy.ts), "version": deploy.version, "sha": deploy.sha}


def _deploy_facts(result: Analysis, onset: datetime | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The deploys seen, and the facts of the one running at ``onset`` (the last one without an onset).

    ``bad_rev`` is the running deploy's sha (else version) and ``good_rev`` the one before
    it: the names the code tools take a commit range by.
    """
    deploys = result.deploys.timeline()
    facts = Deploys.facts(deploys, onset)
    if "deployed_at" in facts:
        facts["deployed_at"] = iso(facts["deployed_at"])
    bad = facts.get("deploy_sha") or facts.get("deploy_version")
    good = facts.get("previous_sha") or facts.get("previous_version")
    if bad:
        facts["bad_rev"] = bad
    if good:
        facts["good_rev"] = good
    return [_deploy_item(d) for d in deploys[-MAX_DEPLOYS:]], facts


def _findings(
    result: Analysis,
    stats: ParseStats,
    service: dict[str, Any] | None,
    data: dict[str, Any],
    facts: dict[str, Any],
    top: Signature | None,
) -> str:
    """Deploys into ``data`` and ``facts``; the summary's tail on deploys, services and unknown lines."""
    deploys, deploy_facts = _deploy_facts(result, top.first_seen if top is not None else None)
    data["deploys"] = deploys
    facts.update(deploy_facts)
    tail = ""
    if "deployed_at" in deploy_facts:
        named = deploy_facts.get("deploy_version") or deploy_facts.get("deploy_sha")
        tail = f"; running {named} deployed {deploy_facts['deployed_at']}"
        if "previous_version" in deploy_facts:
            tail += f" (before: {deploy_facts['previous_version']})"
    return tail + _service_note(service) + _unrecognised_note(stats)


def _fit(items: list[Any], budget: int) -> list[Any]:
    """The longest prefix of ``items`` whose JSON fits in ``budget`` characters (at least one)."""
    kept: list[Any] = []
    used = 0
    for item in items:
        used += len(json.dumps(item, ensure_ascii=False, default=str)) + 2
        if kept and used > budget:
            break
        kept.append(item)
    return kept


def _trace_fact(sig: Signature, max_chars: int) -> str:
    """Sample message and trace; when too long, its head and tail (top and bottom frames)."""
    text = sig.trace_text()
    if len(text) <= max_chars:
        return text
    lines = text.splitlines()
    head: list[str] = []
    tail: list[str] = []
    used, from_head = 0, True
    while lines and used < max_chars - 40:
        line = clip(lines.pop(0) if from_head else lines.pop(), 300)
        (head if from_head else tail).append(line)
        used += len(line) + 1
        from_head = not from_head
    return "\n".join([*head, f"…[{len(lines)} lines cut]", *reversed(tail)])


class SearchLogsTool(_LogTool):
    name: str = "search_logs"
    description: str = (
        "Search log files (plain text, JSON lines, .gz; a file or a whole directory) for "
        "records matching a regex, a time window and a minimum level. Returns the earliest "
        "matching records with timestamp, level, file:line, message and the first lines "
        "of any stack trace, plus the total number of matches."
    )
    args_schema: type[BaseModel] = SearchLogsArgs

    def execute(self, **args: Any) -> ToolResult:
        pattern_text = args.get("pattern") or None
        try:
            pattern = re.compile(pattern_text, re.IGNORECASE) if pattern_text else None
        except re.error as e:
            raise ToolError(f"pattern {pattern_text!r} is not a valid regular expression: {e}") from e
        since, until = self._window(args.get("since"), args.get("until"))
        min_rank = parse_level("level", args.get("level"))
        limit = int(args.get("limit") or 50)
        stats = ParseStats()
        heap: list[tuple[tuple[int, float, int], Record]] = []  # the `limit` earliest matches (max-heap)
        matched = 0
        records, service = self._select(args, stats)
        for seq, record in enumerate(records):
            ts = record.ts
            if (since is not None or until is not None) and (
                ts is None or (since is not None and ts < since)
                or (until is not None and ts > until)
            ):  # fmt: skip
                continue
            if min_rank is not None and record.rank < min_rank:
                continue
            if pattern is not None and not (
                pattern.search(record.message) or any(pattern.search(x) for x in record.extra)
            ):
                continue
            matched += 1
            # heapq is a min-heap: negate (undated last, time, order) to evict the latest
            entry = ((-(ts is None), -(ts.timestamp() if ts else 0.0), -seq), record)
            if len(heap) < limit:
                heapq.heappush(heap, entry)
            elif entry[0] > heap[0][0]:
                heapq.heapreplace(heap, entry)
        shown = [record for _, record in sorted(heap, key=lambda e: e[0], reverse=True)]
        data = {
            "matched": matched,
            "records_read": stats.records,
            "files": stats.files,
            "skipped_files": self._skipped(stats),
            **self._cut(stats),
            **_unrecognised(stats),
            "records": [self._record(r) for r in shown],
        }
        if service is not None:
            data["service"] = service
        if matched:
            summary = (f"{matched:,} matching records of {stats.records:,} in {stats.files} "
                       f"file(s); showing the earliest {len(shown)}")  # fmt: skip
        else:
            summary = f"no records match among {stats.records:,} in {stats.files} file(s)"
        summary += self._cut_note(stats) + _service_note(service) + _unrecognised_note(stats)
        return self._bounded(ToolResult(tool=self.name, summary=summary, data=data), "records")

    def _record(self, record: Record) -> dict[str, Any]:
        item: dict[str, Any] = {
            "ts": iso(record.ts),
            "level": record.level,
            "at": self._where(record.source, record.line),
            "message": clip(record.message, 500),
        }
        if record.extra:
            item["extra"] = [clip(line, 300) for line in record.extra[:_EXTRA_SHOWN]]
            item["extra_lines"] = len(record.extra)
        return item


class ErrorSignaturesTool(_LogTool):
    name: str = "error_signatures"
    description: str = (
        "Group error records in logs by signature (the exception line of a stack trace, "
        "else the message, with ids, numbers, addresses and paths masked), most frequent "
        "first. Each signature is marked "
        "'new' (first seen after the first 25% of the analyzed time span) or "
        "'pre-existing'. Facts: the top new signature, its count, stack trace and onset, and the "
        "deploy running then (deploy_version, deploy_sha, deployed_at, previous_version)."
    )
    args_schema: type[BaseModel] = ErrorSignaturesArgs
    ruled_out_max: ClassVar[int] = 10

    def execute(self, **args: Any) -> ToolResult:
        result, stats, min_level, service = self._analyze(args)
        limit = int(args.get("limit") or 10)
        ranked = result.ranked()
        top = result.top_new()
        facts: dict[str, Any] = {}
        if top is not None:
            facts.update(signature=top.template, signature_count=top.count,
                         trace=_trace_fact(top, max(1000, self.max_output_chars // 3)),
                         onset=iso(top.first_seen))  # fmt: skip
        facts["ruled_out"] = [
            f"pre-existing: {clip(s.template, 200)} ({s.count:,} since {iso(s.first_seen)})"
            for s in ranked
            if result.status(s) == "pre-existing"
        ][: self.ruled_out_max]
        data = self._span(result, stats, service)
        data["min_level"] = min_level
        data["signatures"] = [self._signature_entry(result, s) for s in ranked[:limit]]
        data["more_signatures"] = max(0, len(ranked) - limit)
        summary = f"{stats.records:,} records, {len(ranked):,} error signatures"
        if top is not None:
            summary += f", top new: {clip(top.template, 160)} ({top.count:,})"
        elif ranked:
            summary += ", no new signature"
        summary += _findings(result, stats, service, data, facts, top)
        out = ToolResult(tool=self.name, summary=summary, data=data, facts=facts)
        return self._bounded(out, "signatures")


class ErrorTimelineTool(_LogTool):
    name: str = "error_timeline"
    description: str = (
        "Count error records per time bucket across logs and find the onset: when the "
        "most frequent new error signature first appeared. Compares the error rate in "
        "the baseline (first 25% of the span) with the rate after the onset."
    )
    args_schema: type[BaseModel] = ErrorTimelineArgs

    def execute(self, **args: Any) -> ToolResult:
        bucket_seconds = int(args.get("bucket_minutes") or 1) * 60
        result, stats, min_level, service = self._analyze(args, bucket_seconds)
        top = result.top_new()
        data = self._span(result, stats, service)
        data["min_level"] = min_level
        data.update(timeline(result, bucket_seconds))
        facts: dict[str, Any] = {}
        cut = result.baseline_end
        if result.start is not None and cut is not None and cut > result.start:
            data["baseline"] = rate(result, result.start, cut, bucket_seconds)
        if top is not None and top.first_seen is not None and result.end is not None:
            data["after_onset"] = rate(result, top.first_seen, result.end, bucket_seconds)
            data["top_new"] = {
                "signature": top.template,
                "count": top.count,
                "first_seen": iso(top.first_seen),
                "last_seen": iso(top.last_seen),
                "at": self._where(top.sample_source, top.sample_line),
            }
            facts.update(onset=iso(top.first_seen), signature=top.template,
                         signature_count=top.count)  # fmt: skip
        summary = f"{result.matched:,} {min_level}+ records of {stats.records:,}"
        if "buckets" in data and data["buckets"]:
            summary += f" over {data['total_buckets']:,} bucket(s) of {bucket_seconds // 60} min"
        if "baseline" in data:
            summary += f"; baseline {data['baseline']['per_minute']:g}/min"
        if top is not None and "after_onset" in data:
            summary += (f"; onset {facts['onset']} ({clip(top.template, 120)}), "
                        f"{data['after_onset']['per_minute']:g}/min after")  # fmt: skip
        else:
            summary += "; no new error signature"
        summary += _findings(result, stats, service, data, facts, top)
        return self._bounded(ToolResult(tool=self.name, summary=summary, data=data, facts=facts), "buckets")
