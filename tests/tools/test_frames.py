"""map_stack_frames: parsing per language and mapping deployed paths onto the repo."""

from __future__ import annotations

import json

import pytest

from tools._base import ToolError
from tools.code import MapStackFramesTool

DATE = "2024-05-01T10:00:00+00:00"


def _map(code_tool, repo, trace: str) -> dict:
    return json.loads(code_tool(MapStackFramesTool).run(repo=str(repo), trace=trace))


def _by_function(result: dict) -> dict:
    return {frame["function"]: frame for frame in result["data"]["frames"]}


def test_python_frames_map_past_a_different_deploy_prefix(code_git_repo, code_tool):
    repo = code_git_repo()
    repo.commit(
        {
            "src/app/pay.py": "def charge(cart):\n    total = 0\n    return 100 / total\n",
            "src/app/web.py": "from app.pay import charge\n\ndef handle(cart):\n    return charge(cart)\n",
        },
        "init",
        DATE,
    )
    trace = (
        "Traceback (most recent call last):\n"
        '  File "/usr/lib/python3.11/site-packages/flask/app.py", line 880, in dispatch\n'
        "    return view(**req.view_args)\n"
        '  File "/srv/releases/42/app/web.py", line 4, in handle\n'
        "    return charge(cart)\n"
        '  File "/srv/releases/42/app/pay.py", line 3, in charge\n'
        "    return 100 / total\n"
        "ZeroDivisionError: division by zero\n"
    )
    result = _map(code_tool, repo.path, trace)
    frames = result["data"]["frames"]
    # Python prints the innermost frame last; the tool lists it first and flags it.
    assert [f["function"] for f in frames] == ["charge", "handle", "dispatch"]
    assert frames[0]["innermost"] is True
    assert not any(f["innermost"] for f in frames[1:])
    assert frames[0]["repo_path"] == "src/app/pay.py"
    assert frames[0]["source"] == "return 100 / total"
    assert frames[1]["repo_path"] == "src/app/web.py"
    assert frames[1]["source"] == "return charge(cart)"
    assert frames[2]["repo_path"] is None  # site-packages is not the team's code
    assert result["facts"] == {"file": "src/app/pay.py", "line": 3}
    assert "ZeroDivisionError: division by zero" in result["data"]["errors"]


def test_java_caused_by_chain_maps_package_path_and_roots_at_the_cause(code_git_repo, code_tool):
    repo = code_git_repo()
    service = "package com.acme.pay;\n\nclass Service {\n  int charge() {\n    return 1 / 0;\n  }\n}\n"
    repo.commit(
        {
            "src/main/java/com/acme/pay/Service.java": service,
            "src/main/java/com/acme/legacy/Service.java": "package com.acme.legacy;\n",
            "src/main/java/com/acme/web/Controller.java": "\n".join(f"// {n}" for n in range(1, 30)),
        },
        "init",
        DATE,
    )
    trace = (
        'Exception in thread "main" java.lang.RuntimeException: charge failed\n'
        "\tat com.acme.web.Controller.handle(Controller.java:20)\n"
        "\tat java.base/java.lang.Thread.run(Thread.java:833)\n"
        "Caused by: java.lang.ArithmeticException: / by zero\n"
        "\tat app//com.acme.pay.Service.charge(Service.java:5) ~[app.jar:?]\n"
        "\tat com.acme.web.Controller.handle(Controller.java:18)\n"
        "\t... 1 more\n"
    )
    result = _map(code_tool, repo.path, trace)
    frames = result["data"]["frames"]
    innermost = frames[0]
    # The root cause (last "Caused by:") is where the error was raised.
    assert innermost["function"] == "com.acme.pay.Service.charge"
    assert innermost["innermost"] is True
    # Package + file name picks the right one of two Service.java files.
    assert innermost["repo_path"] == "src/main/java/com/acme/pay/Service.java"
    assert innermost["source"] == "return 1 / 0;"
    assert result["facts"] == {"file": "src/main/java/com/acme/pay/Service.java", "line": 5}
    thread = next(f for f in frames if f["function"] == "java.lang.Thread.run")
    assert thread["repo_path"] is None
    controller_lines = [f["line"] for f in frames if f["function"].endswith("Controller.handle")]
    assert controller_lines == [18, 20]


def test_go_panic_frames_skip_goroot_and_map_gopath_build_paths(code_git_repo, code_tool):
    repo = code_git_repo()
    repo.commit(
        {
            "pay/charge.go": "package pay\n\nfunc Charge(items []int) int {\n\treturn items[3]\n}\n",
            "main.go": "package main\n\nfunc main() {\n\tpay.Charge(nil)\n}\n",
            "runtime/panic.go": "package runtime // decoy with a stdlib file name\n",
        },
        "init",
        DATE,
    )
    trace = (
        "panic: runtime error: index out of range [3] with length 0\n\n"
        "goroutine 1 [running]:\n"
        "panic({0x4a2b60, 0xc000012345})\n"
        "\t/usr/local/go/src/runtime/panic.go:914 +0x21f\n"
        "github.com/acme/svc/pay.Charge({0x0, 0x0, 0x0})\n"
        "\t/home/build/src/github.com/acme/svc/pay/charge.go:4 +0x1d\n"
        "main.main()\n"
        "\t/home/build/src/github.com/acme/svc/main.go:4 +0x25\n"
        "exit status 2\n"
    )
    result = _map(code_tool, repo.path, trace)
    frames = result["data"]["frames"]
    assert [f["language"] for f in frames] == ["go", "go", "go"]
    assert frames[0]["function"] == "panic" and frames[0]["innermost"] is True
    assert frames[0]["repo_path"] is None  # GOROOT, even though the repo has runtime/panic.go
    charge = _by_function(result)["github.com/acme/svc/pay.Charge"]
    assert charge["repo_path"] == "pay/charge.go"
    assert charge["source"] == "return items[3]"
    assert _by_function(result)["main.main"]["repo_path"] == "main.go"
    assert result["facts"] == {"file": "pay/charge.go", "line": 4}
    assert result["data"]["errors"][0].startswith("panic: runtime error")


def test_node_frames_map_dist_paths_and_skip_node_internals(code_git_repo, code_tool):
    repo = code_git_repo()
    repo.commit(
        {
            "server/pay/charge.js": "export function charge(c) {\n  const t = c.total;\n  return t.amount;\n}\n",
            "server/index.js": "import { charge } from './pay/charge.js';\ncharge({});\n",
            "server/jobs/sync.mjs": "export class Foo {\n  async bar() {\n    await x();\n  }\n}\n",
        },
        "init",
        DATE,
    )
    trace = (
        "TypeError: Cannot read properties of undefined (reading 'amount')\n"
        "    at charge (/app/dist/pay/charge.js:3:12)\n"
        "    at /app/dist/index.js:2:1\n"
        "    at async Foo.bar (file:///app/dist/jobs/sync.mjs:3:5)\n"
        "    at Layer.handle (/app/node_modules/express/lib/router/layer.js:95:5)\n"
        "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)\n"
    )
    result = _map(code_tool, repo.path, trace)
    frames = result["data"]["frames"]
    assert frames[0]["function"] == "charge" and frames[0]["innermost"] is True
    assert frames[0]["repo_path"] == "server/pay/charge.js"
    assert frames[0]["source"] == "return t.amount;"
    assert frames[0]["column"] == 12
    assert frames[1]["function"] is None and frames[1]["repo_path"] == "server/index.js"
    assert frames[2]["function"] == "async Foo.bar"
    assert frames[2]["repo_path"] == "server/jobs/sync.mjs"
    assert frames[3]["repo_path"] is None and "node_modules" in frames[3]["note"]
    assert frames[4]["repo_path"] is None
    assert result["facts"] == {"file": "server/pay/charge.js", "line": 3}


def test_ambiguous_file_names_are_not_guessed(code_git_repo, code_tool):
    repo = code_git_repo()
    repo.commit({"a/utils.py": "x = 1\n", "b/utils.py": "y = 2\n"}, "init", DATE)
    trace = 'Traceback (most recent call last):\n  File "/srv/utils.py", line 1, in <module>\n'
    frame = _map(code_tool, repo.path, trace)["data"]["frames"][0]
    assert frame["repo_path"] is None
    assert "ambiguous" in frame["note"]
    assert frame["candidates"] == ["a/utils.py", "b/utils.py"]


def test_untracked_directory_is_walked_when_not_a_git_repo(tmp_path, code_tool):
    checkout = tmp_path / "export"
    (checkout / "svc").mkdir(parents=True)
    (checkout / "svc" / "job.py").write_text("def run():\n    raise KeyError('id')\n")
    trace = "Traceback (most recent call last):\n  File \"/opt/deploy/svc/job.py\", line 2, in run\nKeyError: 'id'\n"
    result = _map(code_tool, checkout, trace)
    assert result["facts"] == {"file": "svc/job.py", "line": 2}
    assert result["data"]["frames"][0]["source"] == "raise KeyError('id')"


def test_line_past_end_of_file_is_flagged(code_git_repo, code_tool):
    repo = code_git_repo()
    repo.commit({"app/pay.py": "x = 1\n"}, "init", DATE)
    trace = 'File "/srv/app/pay.py", line 40, in charge\n'
    frame = _map(code_tool, repo.path, trace)["data"]["frames"][0]
    assert frame["repo_path"] == "app/pay.py"
    assert frame["source"] is None
    assert "past the end" in frame["note"]


def test_text_without_frames_is_an_error(code_git_repo, code_tool):
    repo = code_git_repo()
    repo.commit({"a.py": "x = 1\n"}, "init", DATE)
    with pytest.raises(ToolError, match="no stack frames"):
        _map(code_tool, repo.path, "ERROR payment failed for order 17")


def test_chained_python_traceback_roots_at_the_original_error(code_git_repo, code_tool):
    repo = code_git_repo()
    repo.commit(
        {
            "app/db.py": "def load(key):\n    return CACHE[key]\n",
            "app/api.py": "def get(key):\n    try:\n        return load(key)\n"
            "    except KeyError as e:\n        raise LookupError(key) from e\n",
        },
        "init",
        DATE,
    )
    trace = (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/api.py", line 3, in get\n'
        '  File "/srv/app/db.py", line 2, in load\n'
        "KeyError: 'order-17'\n\n"
        "The above exception was the direct cause of the following exception:\n\n"
        "Traceback (most recent call last):\n"
        '  File "/srv/app/main.py", line 9, in handler\n'
        '  File "/srv/app/api.py", line 5, in get\n'
        "LookupError: order-17\n"
    )
    result = _map(code_tool, repo.path, trace)
    frames = result["data"]["frames"]
    assert (frames[0]["function"], frames[0]["innermost"]) == ("load", True)
    assert result["facts"] == {"file": "app/db.py", "line": 2}
    assert [f["line"] for f in frames] == [2, 3, 5, 9]
    assert frames[3]["repo_path"] is None  # main.py is not in the repo


def test_trace_escaped_inside_a_json_log_line_is_parsed(code_git_repo, code_tool):
    repo = code_git_repo()
    repo.commit({"svc/worker.py": "def run(job):\n    return job['id']\n"}, "init", DATE)
    record = {
        "level": "error",
        "exception": 'Traceback (most recent call last):\n  File "/srv/rel/svc/worker.py", '
        "line 2, in run\n    return job['id']\nKeyError: 'id'",
    }
    result = _map(code_tool, repo.path, json.dumps(record))
    assert result["facts"] == {"file": "svc/worker.py", "line": 2}
    assert result["data"]["frames"][0]["source"] == "return job['id']"
