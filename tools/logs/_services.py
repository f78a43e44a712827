"""Narrowing the logs to one service among many.

A record is the named service's when what it says about itself (a ``service``/``app``
field, a Kubernetes ``app`` label, a syslog or journald identifier) names it, or, when it
says nothing, when its logger, its file or directory names, or the logger of another
record in its file do (a worker's ``rq.worker`` lines are its service's when
``checkout.payments`` lines share the file): ``payments`` matches
``payments-api.log``, ``pods/shop_payments-worker-7c9d…/0.log`` and ``payments.callbacks``.
Host-level identifiers (systemd, kernel, …) say nothing about the service. A name matches
when its words (split at anything but letters and digits) appear in a row among the
marker's words.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from pathlib import Path

from tools.logs._parse import Record

__all__ = ["ServiceFilter", "words"]

MAX_OTHERS = 20
_HOST_IDENTS = frozenset(("systemd", "kernel", "init", "containerd", "dockerd", "kubelet", "cron", "crond", "sshd",
                          "sudo", "dbus-daemon", "rsyslogd", "systemd-journald"))  # fmt: skip
_SPLIT = re.compile(r"[^a-z0-9]+")
_ROTATED = re.compile(r"(?:\.\d+)?(?:\.gz)?$")


@lru_cache(maxsize=4096)
def words(text: str) -> tuple[str, ...]:
    return tuple(w for w in _SPLIT.split(text.lower()) if w)


def _names(marker: str, want: tuple[str, ...]) -> bool:
    have = words(marker)
    n = len(want)
    return n > 0 and any(have[i : i + n] == want for i in range(len(have) - n + 1))


class ServiceFilter:
    """Decides per record whether it is ``service``'s, counting the others by where they come from."""

    def __init__(self, service: str, root: Path, named_sources: frozenset[str] = frozenset()) -> None:
        self.service = service
        self.named_sources = set(named_sources)  # files where some record's logger names the service
        self.want = words(service)
        self.root = root
        self.kept = 0
        self.others: Counter[str] = Counter()
        self._by_source: dict[str, tuple[bool, str]] = {}
        self._by_marker: dict[tuple[str, str, str], tuple[bool, str]] = {}

    def keep(self, record: Record) -> bool:
        key = (record.service, record.logger, record.source)
        decided = self._by_marker.get(key)
        if decided is None:
            decided = self._by_marker[key] = self._decide(record)
        if decided[0]:
            self.kept += 1
        else:
            self.others[decided[1]] += 1
        return decided[0]

    def _decide(self, record: Record) -> tuple[bool, str]:
        own = record.service
        if own and own.lower() not in _HOST_IDENTS:
            return _names(own, self.want), own
        where = self._where(record.source)
        if record.logger and _names(record.logger, self.want):
            self.named_sources.add(record.source)
            return True, where
        return _names(where, self.want) or record.source in self.named_sources, where

    def _where(self, source: str) -> str:
        path = Path(source)
        try:
            rel = path.relative_to(self.root) if path != self.root else Path(path.name)
        except ValueError:
            rel = Path(path.name)
        return _ROTATED.sub("", str(rel)) or path.name

    def left_out(self) -> dict[str, int]:
        """Records of other services, by service or file, most first."""
        return dict(self.others.most_common(MAX_OTHERS))
