"""search_runbooks: find the runbook section that matches an incident.

Markdown files under the runbooks directory are split into sections at ATX
headings (``#`` … ``######``, ignoring headings inside fenced code blocks). A
section scores, per distinct query term (lower-cased, stop-words dropped, light
suffix stemming): 3 when the term is in the section heading, 1.5 when it is in
the file name, plus 1 per occurrence in the body (at most 3). Sections matching
more of the query's terms get a coverage bonus, and the whole query appearing as
a phrase adds 2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, Field

from tools._base import SandboxedTool, ToolError
from tools._result import ToolResult, clip
from tools._sandbox import Sandbox, SandboxError

__all__ = ["RUNBOOK_TOOLS", "SearchRunbooksArgs", "SearchRunbooksTool"]

MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdx")
MAX_RUNBOOK_BYTES = 1024 * 1024
SNIPPET_CHARS = 400
TITLE_WEIGHT = 3.0
FILENAME_WEIGHT = 1.5
BODY_WEIGHT = 1.0
BODY_CAP = 3

STOP_WORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "should",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "too",
        "up",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "please",
        "help",
        "need",
        "get",
        "got",
    }
)

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_WORD = re.compile(r"[a-z0-9]+")


class SearchRunbooksArgs(BaseModel):
    query: str = Field(..., description="What is going wrong, e.g. 'card payments declined 502'.")
    runbooks: str = Field(
        default="runbooks",
        description="Directory of markdown runbooks (under the allowed roots).",
    )
    limit: int = Field(default=5, ge=1, le=50, description="Most sections to return (1-50).")


def _stem(word: str) -> str:
    """A light stemmer: 'spikes', 'spiking' and 'spike' all become 'spik'."""
    for suffix in ("ing", "ies", "es", "ed", "s"):
        if suffix == "s" and word.endswith("ss"):
            break
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            word = word[: -len(suffix)] + ("y" if suffix == "ies" else "")
            break
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word


def terms(text: str) -> list[str]:
    """Stemmed, lower-cased words of ``text`` without stop-words."""
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]


@dataclass
class Section:
    path: str
    heading: str
    body: str


def split_sections(path: str, text: str) -> list[Section]:
    """Sections of a markdown document; text before the first heading is titled by the file."""
    sections: list[Section] = []
    heading = PurePosixPath(path).stem
    body: list[str] = []
    started = False
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        match = None if fenced else _HEADING.match(line)
        if match:
            if started or "\n".join(body).strip():
                sections.append(Section(path, heading, "\n".join(body).strip()))
            heading, body, started = match.group(2).strip(), [], True
        else:
            body.append(line)
    if started or "\n".join(body).strip():
        sections.append(Section(path, heading, "\n".join(body).strip()))
    return sections


def score_section(section: Section, query_terms: list[str], phrase: str) -> float:
    heading_terms = set(terms(section.heading))
    file_terms = set(terms(PurePosixPath(section.path).stem.replace("-", " ").replace("_", " ")))
    body_terms = terms(section.body)
    score = 0.0
    matched = 0
    for term in dict.fromkeys(query_terms):
        hit = 0.0
        if term in heading_terms:
            hit += TITLE_WEIGHT
        if term in file_terms:
            hit += FILENAME_WEIGHT
        hit += BODY_WEIGHT * min(body_terms.count(term), BODY_CAP)
        if hit:
            matched += 1
            score += hit
    distinct = len(set(query_terms))
    if matched and distinct > 1:
        score *= 1 + matched / distinct
    if phrase and len(query_terms) > 1 and phrase in f"{section.heading}\n{section.body}".lower():
        score += 2.0
    return round(score, 2)


def snippet(body: str, query_terms: list[str]) -> str:
    """About SNIPPET_CHARS characters of ``body`` around the first query term."""
    flat = re.sub(r"\s+", " ", body).strip()
    lowered = flat.lower()
    first = len(flat)
    for word in _WORD.finditer(lowered):
        if _stem(word.group()) in query_terms:
            first = word.start()
            break
    start = 0 if first >= len(flat) else max(0, first - SNIPPET_CHARS // 4)
    text = flat[start:]
    return clip(("…" if start else "") + text, SNIPPET_CHARS)


class SearchRunbooksTool(SandboxedTool):
    name: str = "search_runbooks"
    description: str = (
        "Search the team's markdown runbooks for the sections that match a symptom or error. "
        "Returns path, heading, score and a snippet per section, best first; read the full "
        "section with read_code. facts: runbook ('path#heading' of the best match)."
    )
    args_schema: type[BaseModel] = SearchRunbooksArgs

    def execute(self, **arguments: Any) -> ToolResult:
        args = SearchRunbooksArgs(**arguments)
        query_terms = terms(args.query)
        if not query_terms:
            raise ToolError(f"the query {args.query!r} has no searchable words")
        try:
            base = self.sandbox.resolve(args.runbooks, want="dir")
        except SandboxError as e:
            raise ToolError(f"runbooks: {e}") from e
        given = args.runbooks.strip().rstrip("/") or "."
        shown_base = PurePosixPath(self.sandbox.relative(base) if given.startswith("/") else given)
        phrase = " ".join(_WORD.findall(args.query.lower()))
        results: list[dict[str, Any]] = []
        files = 0
        for path in self.sandbox.walk_files(base):
            if not path.is_relative_to(base) or path.suffix.lower() not in MARKDOWN_SUFFIXES:
                continue
            text = _read(path, self.sandbox)
            if text is None:
                continue
            files += 1
            rel = (shown_base / path.relative_to(base).as_posix()).as_posix()
            for section in split_sections(rel, text):
                score = score_section(section, query_terms, phrase)
                if score > 0:
                    results.append(
                        {
                            "path": rel,
                            "heading": section.heading,
                            "score": score,
                            "snippet": snippet(section.body, query_terms),
                        }
                    )
        results.sort(key=lambda r: (-r["score"], r["path"], r["heading"]))
        total = len(results)
        results = results[: args.limit]
        facts: dict[str, Any] = {}
        if results:
            best = results[0]
            facts["runbook"] = f"{best['path']}#{best['heading']}"
            summary = f"best match {facts['runbook']} (score {best['score']})"
        else:
            summary = f"no runbook section matches {args.query!r} ({files} file(s) searched)"
        return ToolResult(
            tool=self.name,
            summary=summary,
            data={"results": results, "total_matches": total, "files_searched": files},
            facts=facts,
            truncated=total > len(results),
        )


def _read(path: Path, sandbox: Sandbox) -> str | None:
    """The runbook's text, read through the sandbox; None when over 1 MiB or unreadable."""
    try:
        return sandbox.read_bytes(path, MAX_RUNBOOK_BYTES).decode("utf-8", "replace")
    except (OSError, SandboxError):
        return None


RUNBOOK_TOOLS = (SearchRunbooksTool,)
