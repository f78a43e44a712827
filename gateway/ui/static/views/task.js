// One task, live: header, open questions for a person, findings, per-agent usage, the
// report, and the timeline of every event. Follows WS /v1/tasks/{id}/events and, after a
// dropped connection, resumes from the last seq it showed.

import { api } from "../api.js";
import { clear, cost, details, duration, frameBatcher, h, setText, shortId, tokens } from "../dom.js";
import { renderMarkdown } from "../markdown.js";
import { hasEnded, isTerminal, ResumableStream, statusAfter } from "../stream.js";
import { InputPanel } from "./input.js";
import { Timeline } from "./timeline.js";

const FINDINGS = [
  ["suspect", "suspect commit", (v) => (v && (v.sha || v.subject) ? `${String(v.sha || "").slice(0, 12)} ${v.subject ? `'${v.subject}'` : ""}` : null)],
  ["file", "failing line", (v, o) => (v ? `${v}${o.line ? `:${o.line}` : ""}` : null)],
  ["signature", "signature", (v) => v],
  ["onset", "onset", (v) => v],
  ["count", "occurrences", (v) => (v === null || v === undefined ? null : String(v))],
  ["deploy", "deploy", (v) => (v && (v.version || v.sha) ? `${v.version || ""} ${v.sha ? `(${v.sha})` : ""} ${v.time ? `at ${v.time}` : ""}` : null)],
  ["confidence", "confidence", (v) => v],
];

function findingsCard(output) {
  const card = h("section", { class: "card findings", "data-testid": "findings" }, h("h2", {}, output.title || "Findings"));
  const list = h("dl");
  let known = 0;
  for (const [key, label, show] of FINDINGS) {
    const text = key in output ? show(output[key], output) : null;
    if (!text) continue;
    known += 1;
    list.append(h("dt", {}, label), h("dd", { "data-finding": key }, text));
  }
  if (!known) {
    // another crew's output schema: its scalar fields, as text
    for (const [key, value] of Object.entries(output)) {
      if (value === null || typeof value === "object") continue;
      list.append(h("dt", {}, key), h("dd", { "data-finding": key }, String(value)));
    }
  }
  card.append(list);
  if (Array.isArray(output.candidates) && output.candidates.length) {
    card.append(details("ranked candidates", h("ol", {}, output.candidates.slice(0, 10).map((c) =>
      h("li", {}, h("code", {}, String(c.sha || "").slice(0, 12)), ` ${c.subject || ""} (score ${c.score ?? "?"})`)))));
  }
  if (Array.isArray(output.ruled_out) && output.ruled_out.length) {
    card.append(details("ruled out", h("ul", {}, output.ruled_out.slice(0, 20).map((r) => h("li", {}, String(r))))));
  }
  return card;
}

class AgentUsage {
  constructor() {
    this.by = new Map();
    this.body = h("tbody");
    this.total = h("tr", { class: "total" });
    this.element = h("section", { class: "card usage", "data-testid": "agent-usage" }, h("h2", {}, "Tokens and cost by agent"),
      h("table", {}, h("thead", {}, h("tr", {}, ["agent", "model calls", "prompt", "completion", "total", "cost"].map((n) => h("th", {}, n)))), this.body, h("tfoot", {}, this.total)));
  }

  add(event) {
    const agent = event.agent || "(crew)";
    const row = this.by.get(agent) || { calls: 0, prompt: 0, completion: 0, total: 0, cost: 0 };
    const usage = event.data.usage || {};
    row.calls += 1;
    row.prompt += usage.prompt_tokens || 0;
    row.completion += usage.completion_tokens || 0;
    row.total += usage.total_tokens || 0;
    row.cost += Number(event.data.cost_usd || 0);
    this.by.set(agent, row);
  }

  paint() {
    const line = (name, r) => h("tr", { "data-agent": name }, h("td", {}, name), [r.calls, r.prompt, r.completion, r.total].map((n) => h("td", { class: "num" }, tokens(n))), h("td", { class: "num" }, cost(r.cost)));
    this.body.replaceChildren(...[...this.by.entries()].map(([name, r]) => line(name, r)));
    const sum = { calls: 0, prompt: 0, completion: 0, total: 0, cost: 0 };
    for (const r of this.by.values()) for (const k of Object.keys(sum)) sum[k] += r[k];
    this.total.replaceChildren(...line("all agents", sum).children);
  }
}

export function taskView(id, caller) {
  const title = h("h1", {}, "Task ", h("span", { class: "mono" }, shortId(id)));
  const status = h("span", { class: "status", "data-testid": "task-status" }, "…");
  const conn = h("span", { class: "conn", "data-testid": "connection" }, "connecting");
  const meta = h("p", { class: "muted small meta" });
  const actions = h("span", { class: "actions" });
  const questions = new InputPanel(id, caller, () => refreshInput());
  const inputError = h("p", { class: "error", hidden: true });
  const inputBox = h("div", { "data-testid": "input-box" }, questions.element, inputError);
  const summary = h("div", { class: "cards" });
  const usage = new AgentUsage();
  const report = h("section", { class: "card report", "data-testid": "report", hidden: true });
  const failure = h("p", { class: "error", role: "alert", hidden: true, "data-testid": "task-error" });
  const timeline = new Timeline();
  const element = h("div", { class: "view task-view", "data-testid": "task-view", "data-task-id": id },
    h("div", { class: "bar" }, title, status, conn, h("span", { class: "spacer" }), actions),
    meta, failure, inputBox, summary, report,
    h("section", { class: "card" }, h("h2", {}, "Timeline"), timeline.element));
  summary.append(usage.element);
  let task = null;
  let stopped = false;
  const shown = { result: null, output: null }; // rendered once each, not on every event

  function paintTask() {
    setText(status, task.status);
    status.className = `status s-${task.status}`;
    const started = task.started_at ? Date.parse(task.started_at) : null;
    const ended = task.finished_at ? Date.parse(task.finished_at) : null;
    setText(meta, [
      `crew ${task.crew}`,
      `config ${task.config_version}`,
      `created ${task.created_at}`,
      started && ended ? `took ${duration(ended - started)}` : null,
      task.attempt > 1 ? `attempt ${task.attempt}` : null,
      task.usage ? `${tokens(task.usage.total_tokens)} tokens` : null,
      task.retry_of ? `retry of ${shortId(task.retry_of)}` : null,
    ].filter(Boolean).join(" · "));
    title.title = task.id;
    if (task.error) {
      setText(failure, `${task.error.code}: ${task.error.message}`);
      failure.hidden = false;
    }
    paintActions();
    if (task.result && task.result !== shown.result) {
      clear(report).append(h("h2", {}, "Report"), h("div", { class: "markdown" }, renderMarkdown(task.result)));
      report.hidden = false;
      shown.result = task.result;
    }
    const output = task.output && typeof task.output === "object" ? JSON.stringify(task.output) : null;
    if (output !== shown.output) {
      summary.querySelector("[data-testid=findings]")?.remove();
      if (output) summary.prepend(findingsCard(task.output));
      shown.output = output;
    }
  }

  function paintActions() {
    clear(actions);
    if (!caller.can("tasks:write") || !task) return;
    const terminal = hasEnded(task.status);
    if (!terminal) actions.append(h("button", { type: "button", onclick: () => act(api.cancel, "cancel") }, "Cancel"));
    if (terminal && task.status !== "completed") actions.append(h("button", { type: "button", onclick: () => act(api.retry, "retry") }, "Retry"));
  }

  async function act(call, what) {
    try {
      const answer = await call(id);
      if (what === "retry" && answer && answer.id) window.location.hash = `#/tasks/${encodeURIComponent(answer.id)}`;
    } catch (err) {
      setText(failure, `${what}: ${err.message}`);
      failure.hidden = false;
    }
  }

  async function refresh() {
    try {
      task = await api.task(id);
      if (!stopped) paintTask();
    } catch (err) {
      setText(failure, err.status === 404 ? `No task with id ${id}.` : err.message);
      failure.hidden = false;
    }
  }

  let inputAsked = 0;
  async function refreshInput() {
    if (stopped) return;
    const mine = ++inputAsked; // answers may come back out of order: only the latest is shown
    try {
      const requests = await api.input(id);
      if (mine !== inputAsked || stopped) return;
      setText(inputError, "");
      inputError.hidden = true;
      questions.show(requests.data.filter((r) => r.status === "open"));
    } catch (err) {
      if (mine !== inputAsked) return;
      setText(inputError, `questions not loaded: ${err.message}`);
      inputError.hidden = false;
    }
  }

  const show = frameBatcher((batches) => {
    let statusChanged = false;
    let inputChanged = false;
    let terminal = false;
    let usageChanged = false;
    for (const events of batches) {
      for (const event of events) {
        timeline.add(event);
        if (event.type === "llm.completed") {
          usage.add(event);
          usageChanged = true;
        }
        if (event.type.startsWith("input.")) inputChanged = true;
        if (event.type.startsWith("task.") || event.type.startsWith("input.")) statusChanged = true;
        if (isTerminal(event.type)) terminal = true;
        if (task && event.seq > task.events) {
          task.events = event.seq;
          task.status = statusAfter(event.type, task.status);
        }
      }
    }
    if (usageChanged) usage.paint();
    if (task && statusChanged) paintTask();
    if (inputChanged) refreshInput();
    // the result, output and usage the terminal event committed with (already here when the
    // task had ended before the page opened)
    if (terminal && !endedBeforeOpen) refresh();
  });

  const stream = new ResumableStream({
    path: `/v1/tasks/${encodeURIComponent(id)}/events`,
    cursor: "seq",
    after: 0,
    contiguous: true,
    endsOnTerminal: true,
    onEvents: show,
    onState: (state, detail) => {
      const text = { live: "live", connecting: "connecting", reconnecting: `reconnecting… (from seq ${detail.after})`, ended: "ended", refused: `refused: ${detail.reason || detail.code}` }[state];
      setText(conn, text);
      conn.className = `conn c-${state}`;
      conn.dataset.reconnects = String(stream.reconnects);
    },
  });

  let endedBeforeOpen = false;
  (async () => {
    await refresh();
    if (stopped) return;
    endedBeforeOpen = Boolean(task && hasEnded(task.status));
    if (task && task.status === "waiting") refreshInput();
    stream.start();
  })();

  return {
    element,
    stop() {
      stopped = true;
      stream.stop();
    },
  };
}
