"""The scored incident suite: one generator per case, each writing repo/, logs/,
runbooks/ and expected.json (the ground truth, for scoring only).

    python -m examples.incidents --out DIR [--seed N] [--only CASE]

``CASES`` maps a case name to its ``generate(out, seed) -> expected`` function.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import (
    config_yaml,
    dep_bump,
    go_journald,
    go_zap,
    java_kafka,
    java_spring,
    java_tls_outage,
    mixed_k8s,
    node_pino,
    py_celery,
    py_gunicorn,
    two_services,
    upstream_outage,
)

Generator = Callable[[Path, int], dict[str, Any]]

CASES: dict[str, Generator] = {
    module.CASE: module.generate
    for module in (
        py_gunicorn,
        py_celery,
        java_spring,
        java_kafka,
        go_zap,
        go_journald,
        node_pino,
        config_yaml,
        dep_bump,
        two_services,
        mixed_k8s,
        upstream_outage,
        java_tls_outage,
    )
}
DEFAULT_SEED = 2611


def generate(name: str, out: Path, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Write case ``name`` into ``out`` (created; must not exist) and return its expected.json."""
    if name not in CASES:
        raise KeyError(f"unknown case {name!r} (known: {', '.join(sorted(CASES))})")
    out.mkdir(parents=True)
    return CASES[name](out, seed)
