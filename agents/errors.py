"""Errors raised while loading configs and checking a crew's inputs."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["ConfigError", "ConfigIssue", "InputError", "InputIssue", "UnknownCrewError", "suggest"]


def suggest(word: object, candidates: Iterable[str]) -> str:
    """ "did you mean 'x'?" for the closest candidate, or "" when none is close."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


@dataclass(frozen=True, order=True)
class ConfigIssue:
    """One problem in one YAML file, at a 1-based line and column."""

    file: str
    line: int
    column: int
    path: str
    message: str
    hint: str = ""  # e.g. "did you mean 'backstory'?"; also appended to ``full_message``

    @property
    def full_message(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.full_message}" if self.path else f"{where}: {self.full_message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.full_message,
            "hint": self.hint or None,
        }


class ConfigError(Exception):
    """The config directory has one or more problems; all of them are listed."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = sorted(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


@dataclass(frozen=True)
class InputIssue:
    field: str
    message: str

    def __str__(self) -> str:
        return f"inputs.{self.field}: {self.message}"


@dataclass
class InputError(Exception):
    """A crew's inputs are missing, unknown or of the wrong type; nothing ran."""

    crew: str
    issues: list[InputIssue] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(str(i) for i in self.issues)


class UnknownCrewError(LookupError):
    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        listing = ", ".join(known) or "none"
        super().__init__(f"unknown crew '{name}' (known crews: {listing})")
