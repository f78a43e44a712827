"""Is the dashboard responsive while 20 tasks stream at once? Frames and long tasks in the browser.

    python -m bench.dashboard [--tasks 20] [--chars 1600] [--steps 3]

Starts ``crewgate serve`` on 127.0.0.1 (fresh SQLite, 20 tasks at once) and a scripted
OpenAI-compatible model on loopback that streams every answer in 8-character chunks, so
each task appends hundreds of ``llm.chunk`` events. Debian's Chromium (headless, driven by
Playwright) shows one page while a batch of tasks runs from submit to their last event:

- ``list``: the task list (``/ui/#/tasks``), following the firehose;
- ``task``: one of the streaming tasks (``/ui/#/tasks/{id}``), every chunk of it rendered;
- ``blank``: the baseline, an empty page under the same load (same browser, same gateway,
  same 20 tasks), so the machine's own contention (2 cores shared by the gateway, the
  crews and the browser) is in the baseline too.

In the page: a requestAnimationFrame loop records every frame's time, and a
PerformanceObserver records long tasks (main-thread work over 50 ms), and Chromium's own
TaskDuration (read over CDP) gives the renderer's main-thread busy time. Measured after the
first 1.5 s (the page loading): frames per second, the 95th percentile and the longest frame
interval, and busy milliseconds per second, each against the blank page (a ratio); the long
tasks while streaming, and the longest one while loading, are in the note. Needs /usr/bin/chromium (apt-get
install chromium) and ``pip install playwright``; never downloads a browser.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from bench._common import Row, percentile, render_table  # noqa: E402
from tests.support.gateway import Gateway, write_streaming_configs  # noqa: E402
from tests.support.llm_server import ScriptedModel, ScriptedServer, text  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]

# in the page before any of its scripts: every frame's time, and every long task
PROBE = """
window.__bench = { frames: [], longtasks: [] };
(function () {
  const loop = (t) => { window.__bench.frames.push(t); requestAnimationFrame(loop); };
  requestAnimationFrame(loop);
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__bench.longtasks.push([e.startTime, e.duration]);
    }).observe({ type: "longtask", buffered: true });
  } catch (e) {}
})();
"""


def submit_batch(client: httpx.Client, tasks: int, label: str) -> list[str]:
    ids = []
    for i in range(tasks):
        r = client.post("/v1/tasks", json={"crew": "streaming", "inputs": {"topic": f"{label} {i}"}})
        r.raise_for_status()
        ids.append(r.json()["id"])
    return ids


def wait_done(client: httpx.Client, ids: list[str], timeout: float = 600) -> int:
    """Waits for every task to end; returns the events they appended."""
    deadline = time.monotonic() + timeout
    events = {}
    while time.monotonic() < deadline:
        records = [client.get(f"/v1/tasks/{i}").json() for i in ids]
        if all(r["status"] in ("completed", "failed", "cancelled") for r in records):
            bad = [r for r in records if r["status"] != "completed"]
            if bad:
                raise RuntimeError(f"{len(bad)} task(s) did not complete: {bad[0]['error']}")
            events = {r["id"]: r["events"] for r in records}
            return sum(events.values())
        time.sleep(0.3)
    raise RuntimeError("tasks did not finish in time")


LOAD_MS = 1500  # the first part of each measurement is the page loading, kept apart


def busy_s(cdp: Any) -> float:
    """Main-thread busy time of the page's renderer so far (Chromium's TaskDuration), in seconds."""
    metrics = cdp.send("Performance.getMetrics")["metrics"]
    return float(next(m["value"] for m in metrics if m["name"] == "TaskDuration"))


def measure(page: Any, url: Any, client: httpx.Client, tasks: int, label: str) -> dict[str, float]:
    """Opens ``url`` (a string, or a callable of the batch's ids), runs a batch to its end, and
    reads the page's frames and long tasks (after the first LOAD_MS: loading is not streaming)."""
    page.goto("about:blank")
    ids = submit_batch(client, tasks, label)
    page.goto(url(ids) if callable(url) else url)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    page.wait_for_timeout(LOAD_MS)
    busy_before, started = busy_s(cdp), time.monotonic()
    events = wait_done(client, ids)
    page.wait_for_timeout(500)  # the last events reach the page
    busy, elapsed = busy_s(cdp) - busy_before, time.monotonic() - started
    data = page.evaluate("window.__bench")
    load_end = data["frames"][0] + LOAD_MS
    frames = [t for t in data["frames"] if t >= load_end]
    gaps = [b - a for a, b in zip(frames, frames[1:], strict=False)]
    streaming = [d for start, d in data["longtasks"] if start >= load_end]
    loading = [d for start, d in data["longtasks"] if start < load_end]
    seconds = (frames[-1] - frames[0]) / 1000
    return {
        "seconds": seconds,
        "events": float(events),
        "fps": len(gaps) / seconds,
        "p95_frame_ms": percentile(gaps, 95),
        "max_frame_ms": max(gaps),
        "busy_ms_per_s": busy * 1000 / elapsed,
        "longtasks": float(len(streaming)),
        "longest_task_ms": max(streaming, default=0.0),
        "load_longest_task_ms": max(loading, default=0.0),
    }


def rows_for(results: dict[str, list[dict[str, float]]], tasks: int) -> list[Row]:
    base = results["blank"]
    rows = []
    for page in ("list", "task"):
        ours = results[page]
        note = (
            f"{tasks} tasks streaming; {statistics.median(r['events'] for r in ours):.0f} events a batch; "
            f"long tasks while streaming: {max(r['longtasks'] for r in ours):.0f} "
            f"(longest {max(r['longest_task_ms'] for r in ours):.0f} ms); "
            f"longest while loading {max(r['load_longest_task_ms'] for r in ours):.0f} ms"
        )
        for metric, unit, better in (
            ("fps", "frames/s", True),
            ("p95_frame_ms", "ms", False),
            ("max_frame_ms", "ms", False),
            ("busy_ms_per_s", "ms/s", False),
        ):
            rows.append(
                Row(
                    "dashboard",
                    f"{page} view: {metric}",
                    unit,
                    [r[metric] for r in ours],
                    [r[metric] for r in base],
                    "blank page, same load",
                    note=note,
                    higher_is_better=better,
                )
            )
    return rows


def run(quick: bool = False, tasks: int = 20, chars: int = 1600, steps: int = 3) -> list[Row]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install chromium")
    repeats = 1 if quick else 2
    model = ScriptedModel(default=text("Streaming answer. " * (chars // 18)), delay_s=0.05)
    with tempfile.TemporaryDirectory() as tmp, ScriptedServer(model) as llm:
        root = Path(tmp)
        configs = write_streaming_configs(root / "configs", llm.base_url, steps)
        gateway = Gateway(root / "gw", config_dir=configs, roots=root, max_concurrency=tasks).start()
        results: dict[str, list[dict[str, float]]] = {"blank": [], "list": [], "task": []}
        client = gateway.client()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.add_init_script(PROBE)
                page = context.new_page()
                pages: dict[str, Any] = {
                    "blank": f"{gateway.url}/ui/vendor/marked.LICENSE.txt",
                    "list": f"{gateway.url}/ui/#/tasks",
                    "task": lambda ids: f"{gateway.url}/ui/#/tasks/{ids[len(ids) // 2]}",
                }
                for n in range(repeats):
                    for name, url in pages.items():
                        results[name].append(measure(page, url, client, tasks, f"{name}{n}"))
                        print(f"  {name} #{n + 1}: {results[name][-1]}", flush=True)
                browser.close()
        finally:
            client.close()
            gateway.stop()
    return rows_for(results, tasks)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--chars", type=int, default=1600, help="length of each streamed answer")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(render_table(run(args.quick, args.tasks, args.chars, args.steps)))


if __name__ == "__main__":
    main()
