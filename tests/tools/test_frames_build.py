"""Frames that do not point at repo source: installed packages, compiled JavaScript, Go modules.

The traces are real runtime output, captured on this machine and pasted as fixtures
(each says which runtime printed it); only the deploy prefixes were left as printed.
"""

from __future__ import annotations

import json

from tools.code import MapStackFramesTool, SuspectCommitsTool
from tools.code._sourcemap import lookup, parse_map

DATE = "2024-05-01T10:00:00+00:00"
ONSET = "2024-05-12T12:00:00Z"


def _map(code_tool, repo, trace: str) -> dict:
    return json.loads(code_tool(MapStackFramesTool).run(repo=str(repo.path), trace=trace))


# --- Python: the service installed into a virtualenv's site-packages ----------------

# Python 3.11.7: `python3 main.py` with the package installed under venv/lib/python3.11/site-packages.
PY_INSTALLED_TRACE = """Traceback (most recent call last):
  File "/tmp/rt/main.py", line 4, in <module>
    checkout({})
  File "/tmp/rt/venv/lib/python3.11/site-packages/checkout/pricing.py", line 7, in checkout
    return compute_total(order)
           ^^^^^^^^^^^^^^^^^^^^
  File "/tmp/rt/venv/lib/python3.11/site-packages/checkout/pricing.py", line 2, in compute_total
    currency = order["currency"]
               ~~~~~^^^^^^^^^^^^
KeyError: 'currency'
"""
PRICING = (
    'def compute_total(order):\n    currency = order["currency"]\n    return currency\n\n\n'
    "def checkout(order):\n    return compute_total(order)\n"
)


def _installed_repo(code_git_repo):
    repo = code_git_repo()
    repo.commit(
        {"src/checkout/__init__.py": "", "src/checkout/pricing.py": PRICING, "pyproject.toml": "[project]\n"},
        "init",
        DATE,
    )
    return repo


def test_the_services_own_installed_package_maps_into_the_repo(code_git_repo, code_tool):
    repo = _installed_repo(code_git_repo)
    result = _map(code_tool, repo, PY_INSTALLED_TRACE)
    first = result["data"]["frames"][0]
    assert first["repo_path"] == "src/checkout/pricing.py"
    assert first["line"] == 2
    assert first["source"] == 'currency = order["currency"]'
    assert "installed package 'checkout'" in first["mapped_by"]
    assert result["facts"] == {"file": "src/checkout/pricing.py", "line": 2}
    assert result["data"]["outside_repo"]["likely"] is False


def test_third_party_installed_packages_stay_library_frames(code_git_repo, code_tool):
    repo = _installed_repo(code_git_repo)
    trace = PY_INSTALLED_TRACE.replace("site-packages/checkout/", "site-packages/flask/")
    result = _map(code_tool, repo, trace)
    assert [f["repo_path"] for f in result["data"]["frames"]] == [None, None, None]
    assert result["data"]["frames"][0]["note"] == "installed package (site-packages)"


def test_suspects_follow_the_installed_package_into_the_repo(code_git_repo, code_tool):
    repo = code_git_repo()
    lenient = PRICING.replace('order["currency"]', 'order.get("currency", "USD")')
    repo.commit({"src/checkout/__init__.py": "", "src/checkout/pricing.py": lenient}, "init", DATE)
    culprit = repo.commit(
        {"src/checkout/pricing.py": PRICING}, "pricing: currency is required", "2024-05-11T10:00:00+00:00"
    )
    result = json.loads(code_tool(SuspectCommitsTool).run(repo=str(repo.path), trace=PY_INSTALLED_TRACE, onset=ONSET))
    assert result["facts"]["commit"] == culprit
    assert result["facts"]["file"] == "src/checkout/pricing.py"
    assert result["data"]["frames"][0]["block"]["name"] == "compute_total"


# --- JavaScript compiled from TypeScript ---------------------------------------------

PAY_TS = """export class PaymentService {
  charge(order: { total?: number }): number {
    if (order.total === undefined) {
      throw new Error("order has no total");
    }
    return order.total;
  }
}
"""
PAY_JS = """"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.PaymentService = void 0;
class PaymentService {
    charge(order) {
        if (order.total === undefined) {
            throw new Error("order has no total");
        }
        return order.total;
    }
}
exports.PaymentService = PaymentService;
//# sourceMappingURL=pay.js.map
"""
# A source map in the shape tsc writes (sources relative to the map). Node 20 with
# --enable-source-maps resolves pay.js:7:19 through it to src/services/pay.ts:4:13.
PAY_MAP = '{"version": 3, "file": "pay.js", "sourceRoot": "", "sources": ["../../src/services/pay.ts"], "names": [], "mappings": ";;;AAAA;IACE;QACE;YACE,MAAM;QACR;QACA;IACF;AACF;;"}'

# Node v20.20.2: `node dist/index.js` (no --enable-source-maps), from /tmp/rtjs.
NODE_TRACE = """/tmp/rtjs/dist/services/pay.js:7
            throw new Error("order has no total");
            ^

Error: order has no total
    at PaymentService.charge (/tmp/rtjs/dist/services/pay.js:7:19)
    at Object.<anonymous> (/tmp/rtjs/dist/index.js:3:22)
    at Module._compile (node:internal/modules/cjs/loader:1521:14)
    at Module._extensions..js (node:internal/modules/cjs/loader:1623:10)
    at Module.load (node:internal/modules/cjs/loader:1266:32)
    at Module._load (node:internal/modules/cjs/loader:1091:12)
    at Function.executeUserEntryPoint [as runMain] (node:internal/modules/run_main:164:12)
"""
INDEX_JS = '"use strict";\nconst { PaymentService } = require("./services/pay");\nnew PaymentService().charge({});\n'


def test_the_decoder_agrees_with_node_on_the_original_position():
    original = lookup(parse_map(PAY_MAP) or {}, 7, 19)
    assert original is not None
    assert (original.source, original.line, original.column) == ("../../src/services/pay.ts", 4, 13)


def test_a_committed_source_map_maps_compiled_javascript_back_to_typescript(code_git_repo, code_tool):
    repo = code_git_repo()
    repo.commit(
        {
            "src/services/pay.ts": PAY_TS,
            "dist/services/pay.js": PAY_JS,
            "dist/services/pay.js.map": PAY_MAP,
            "dist/index.js": INDEX_JS,
        },
        "init",
        DATE,
    )
    frame = _map(code_tool, repo, NODE_TRACE)["data"]["frames"][0]
    assert frame["repo_path"] == "src/services/pay.ts"
    assert frame["line"] == 4
    assert frame["generated_line"] == 7
    assert frame["source"] == 'throw new Error("order has no total");'
    assert frame["mapped_by"] == "source map dist/services/pay.js.map"


TSCONFIG = """{
  // compiled output is not committed
  "compilerOptions": {
    "target": "es2022",
    "outDir": "dist",
    "rootDir": "src", /* sources */
  },
}
"""


def test_without_a_map_tsconfig_outdir_leads_to_the_typescript_file(code_git_repo, code_tool):
    repo = code_git_repo()
    repo.commit({"tsconfig.json": TSCONFIG, "src/services/pay.ts": PAY_TS, "src/index.ts": "x\n"}, "init", DATE)
    frame = _map(code_tool, repo, NODE_TRACE)["data"]["frames"][0]
    assert frame["repo_path"] == "src/services/pay.ts"
    assert frame["line_exact"] is False
    assert "TypeScript line may differ" in frame["note"]
    assert frame["mapped_by"] == "tsconfig outDir dist -> src"


def test_suspects_find_the_typescript_function_by_name_when_the_line_is_compiled(code_git_repo, code_tool):
    repo = code_git_repo()
    repo.commit({"tsconfig.json": TSCONFIG, "src/services/pay.ts": PAY_TS}, "init", "2024-01-01T10:00:00+00:00")
    changed = repo.commit(
        {"src/services/pay.ts": PAY_TS.replace("if (order.total === undefined)", "if (!order.total)")},
        "pay: treat a zero total as missing",
        "2024-05-12T06:00:00+00:00",
    )
    result = json.loads(code_tool(SuspectCommitsTool).run(repo=str(repo.path), trace=NODE_TRACE, onset=ONSET))
    frame = result["data"]["frames"][0]
    assert frame["file"] == "src/services/pay.ts" and frame["line_exact"] is False
    assert frame["block"] == {"name": "charge", "start": 2, "end": 7}
    top = result["data"]["candidates"][0]
    assert top["sha"] == changed
    assert any("changed the function charge" in reason for reason in top["reasons"])


# --- Go: module paths from go.mod -------------------------------------------------------

# go1.19.8: `go build -trimpath` of module github.com/acme/checkout, then ./app.
GO_TRIMPATH_TRACE = """panic: runtime error: index out of range [0] with length 0

goroutine 1 [running]:
github.com/acme/checkout/internal/pay.(*Order).First(...)
	github.com/acme/checkout/internal/pay/pay.go:8
github.com/acme/checkout/internal/pay.Charge(...)
	github.com/acme/checkout/internal/pay/pay.go:12
main.main()
	github.com/acme/checkout/main.go:6 +0x19
"""
PAY_GO = """package pay

type Order struct {
	Items []int
}

func (o *Order) First() int {
	return o.Items[0]
}

func Charge(o *Order) int {
	total := o.First()
	return total
}
"""


def test_go_module_paths_pick_the_right_module_of_a_monorepo(code_git_repo, code_tool):
    repo = code_git_repo()
    repo.commit(
        {
            "services/checkout/go.mod": "module github.com/acme/checkout\n\ngo 1.19\n",
            "services/checkout/internal/pay/pay.go": PAY_GO,
            "services/checkout/main.go": "package main\n",
            "services/billing/go.mod": "module github.com/acme/billing\n\ngo 1.19\n",
            "services/billing/internal/pay/pay.go": PAY_GO,
            "services/billing/main.go": "package main\n",
        },
        "init",
        DATE,
    )
    frames = _map(code_tool, repo, GO_TRIMPATH_TRACE)["data"]["frames"]
    assert [(f["repo_path"], f["line"]) for f in frames] == [
        ("services/checkout/internal/pay/pay.go", 8),
        ("services/checkout/internal/pay/pay.go", 12),
        ("services/checkout/main.go", 6),
    ]
    assert frames[0]["mapped_by"] == "go module github.com/acme/checkout"
    assert frames[0]["source"] == "return o.Items[0]"


# --- Java --------------------------------------------------------------------------

PRICE_SERVICE = """package com.acme.pay;

import java.util.Map;

public class PriceService {
    public int total(Map<String, Integer> order) {
        int amount = order.get("amount");
        return amount * 2;
    }

    public static void main(String[] args) {
        new PriceService().total(new java.util.HashMap<>());
    }
}
"""

# OpenJDK 17.0.15: javac + java com.acme.pay.PriceService.
JAVA_TRACE = """Exception in thread "main" java.lang.NullPointerException: Cannot invoke "java.lang.Integer.intValue()" \
because the return value of "java.util.Map.get(Object)" is null
	at com.acme.pay.PriceService.total(PriceService.java:7)
	at com.acme.pay.PriceService.main(PriceService.java:12)
"""


def test_java_frames_map_to_methods_and_the_change_to_the_caller_is_the_suspect(code_git_repo, code_tool):
    repo = code_git_repo()
    path = "src/main/java/com/acme/pay/PriceService.java"
    initial = repo.commit({path: PRICE_SERVICE.replace("new java.util.HashMap<>()", "Map.of(\"amount\", 1)")},
                          "init", "2024-01-01T10:00:00+00:00")  # fmt: skip
    changed = repo.commit({path: PRICE_SERVICE}, "main: start from an empty order", "2024-05-11T10:00:00+00:00")
    result = json.loads(code_tool(SuspectCommitsTool).run(repo=str(repo.path), trace=JAVA_TRACE, onset=ONSET))
    frames = result["data"]["frames"]
    assert [(f["file"], f["line"], f["block"]["name"]) for f in frames] == [(path, 7, "total"), (path, 12, "main")]
    assert frames[0]["block"] == {"name": "total", "start": 6, "end": 9}
    ranked = [c["sha"] for c in result["data"]["candidates"]]
    assert ranked[0] == changed and initial in ranked
    # The caller now passes an empty map: its line is an outer frame's, and the old import is weak.
    assert result["facts"]["commit"] == changed


def test_map_stack_frames_says_when_no_frame_is_in_the_repo(code_git_repo, code_tool):
    repo = _installed_repo(code_git_repo)
    # Node 20 on a refused connection: every frame is the runtime's.
    trace = (
        "Error: connect ECONNREFUSED 127.0.0.1:5432\n"
        "    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)\n"
    )
    result = _map(code_tool, repo, trace)
    assert result["data"]["outside_repo"]["likely"] is True
    assert "Node.js runtime" in result["facts"]["outside_repo"]
    assert "ECONNREFUSED" in result["facts"]["outside_repo"]
