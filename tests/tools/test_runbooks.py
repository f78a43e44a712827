"""search_runbooks: section splitting, ranking and the sandbox."""

from __future__ import annotations

import json

import pytest

from tools._base import ToolError
from tools.runbooks import RUNBOOK_TOOLS, SearchRunbooksTool

PAYMENTS = """# Payments

Owner: payments team.

## Card declines spike

Check the acquirer status page. If the decline rate is above 5%, fail over to the
backup acquirer with `payctl failover`.

## Checkout latency

Timeouts to the pricing service show up as slow checkout. Scale pricing pods.

```
# not a heading: kubectl scale deploy/pricing --replicas=6
```
"""

DATABASE = """# Database

## Restart the primary database

Only with approval. Drain connections, then restart.

## Replication lag

Declines are unrelated here; lag shows in the replica dashboard.
"""


@pytest.fixture
def code_runbooks(tmp_path):
    base = tmp_path / "runbooks"
    (base / "infra").mkdir(parents=True)
    (base / "payments.md").write_text(PAYMENTS)
    (base / "infra" / "database.md").write_text(DATABASE)
    (base / "notes.txt").write_text("card declines spike card declines spike\n")
    return base


def _search(tmp_path, **kwargs) -> dict:
    tool = SearchRunbooksTool(roots=(tmp_path,))
    return json.loads(tool.run(**kwargs))


def test_best_section_is_the_one_titled_for_the_symptom(tmp_path, code_runbooks):
    result = _search(tmp_path, query="card declines are spiking")
    best = result["data"]["results"][0]
    assert best["path"] == "runbooks/payments.md"
    assert best["heading"] == "Card declines spike"
    assert "fail over to the backup acquirer" in best["snippet"]
    assert result["facts"] == {"runbook": "runbooks/payments.md#Card declines spike"}
    # A body-only mention of "declines" ranks below the titled section.
    headings = [r["heading"] for r in result["data"]["results"]]
    assert headings.index("Replication lag") > 0
    # Only markdown files are searched.
    assert all(r["path"].endswith(".md") for r in result["data"]["results"])


def test_title_match_outranks_body_match(tmp_path, code_runbooks):
    results = _search(tmp_path, query="pricing")["data"]["results"]
    assert [r["heading"] for r in results] == ["Checkout latency"]
    results = _search(tmp_path, query="restart database")["data"]["results"]
    assert results[0]["heading"] == "Restart the primary database"
    assert results[0]["path"] == "runbooks/infra/database.md"


def test_stop_words_do_not_match_everything(tmp_path, code_runbooks):
    result = _search(tmp_path, query="how do I restart the database")
    headings = [r["heading"] for r in result["data"]["results"]]
    assert headings[0] == "Restart the primary database"
    assert "Card declines spike" not in headings  # shares only "the", "I", "do"
    with pytest.raises(ToolError, match="no searchable words"):
        _search(tmp_path, query="how do the")


def test_headings_inside_code_fences_do_not_split_sections(tmp_path, code_runbooks):
    results = _search(tmp_path, query="kubectl replicas")["data"]["results"]
    assert results[0]["heading"] == "Checkout latency"


def test_limit_and_bounded_snippets(tmp_path, code_runbooks):
    (code_runbooks / "long.md").write_text("# Declines\n\n" + "declines happen. " * 500)
    result = _search(tmp_path, query="declines", limit=2)
    assert len(result["data"]["results"]) == 2
    assert result["data"]["total_matches"] > 2
    assert all(len(r["snippet"]) <= 400 for r in result["data"]["results"])


def test_no_match_has_no_runbook_fact(tmp_path, code_runbooks):
    result = _search(tmp_path, query="kafka rebalance storm")
    assert result["data"]["results"] == []
    assert result["facts"] == {}
    assert "no runbook section matches" in result["summary"]


def test_runbooks_outside_the_roots_are_refused(tmp_path, code_runbooks):
    with pytest.raises(ToolError, match="outside the allowed roots"):
        _search(tmp_path, query="declines", runbooks="/etc")
    with pytest.raises(ToolError, match="outside the allowed roots"):
        _search(tmp_path, query="declines", runbooks="../..")


def test_exports(tmp_path):
    assert [cls(roots=(tmp_path,)).name for cls in RUNBOOK_TOOLS] == ["search_runbooks"]
