// A task's events as a timeline: steps, and in each its model calls and tool calls.
//
// Each event is shown by exactly one element carrying its seq (data-seq): a row, or the
// end of the row it closes (a tool's result, a model call's tokens), or a piece of
// streamed text. A watcher can count them: no seq twice, none missing.

import { clock, details, duration, h, oneLine, setText, tokens } from "../dom.js";
import { renderMarkdown } from "../markdown.js";

function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return String(text ?? "");
  }
}

function argsLine(args) {
  try {
    const parsed = JSON.parse(args);
    if (parsed && typeof parsed === "object") {
      return Object.entries(parsed).map(([k, v]) => `${k}=${oneLine(v, 60)}`).join("  ");
    }
  } catch {
    // not JSON: shown as it is
  }
  return oneLine(args, 200);
}

function usageText(usage) {
  if (!usage) return "";
  return `${tokens(usage.prompt_tokens)} in · ${tokens(usage.completion_tokens)} out`;
}

export class Timeline {
  constructor() {
    this.element = h("ol", { class: "timeline", "data-testid": "timeline" });
    this.sections = new Map(); // step → its latest section
    this.openModel = new Map(); // agent|step → {row, stream, started}
    this.openTools = new Map(); // agent|step|tool → [{row, started}]
    this.attempt = 1;
  }

  add(event) {
    const handler = HANDLERS[event.type] || Timeline.prototype.plain;
    handler.call(this, event);
  }

  key(event) {
    return `${event.agent || ""}|${event.step || ""}`;
  }

  // one event's row: its time, then ``content``
  item(event, kind, ...content) {
    return h("li", { class: `ev ${kind}`, "data-seq": event.seq, "data-type": event.type },
      h("time", { datetime: event.ts }, clock(event.ts)), ...content);
  }

  top(event, kind, ...content) {
    const row = this.item(event, kind, ...content);
    this.element.append(row);
    return row;
  }

  section(event) {
    let section = this.sections.get(event.step);
    if (!section) section = this.openSection(event, null);
    return section;
  }

  openSection(event, seq) {
    const status = h("span", { class: "status s-running" }, "running");
    const took = h("span", { class: "muted" });
    const head = h("div", { class: "step-head" }, h("strong", {}, event.step || "(no step)"), " ",
      h("span", { class: "agent" }, event.agent || ""), " ", status, " ", took);
    if (seq !== null) head.dataset.seq = seq;
    const list = h("ol", { class: "step-events" });
    const el = h("li", { class: "step", "data-step": event.step || "" }, head, list);
    this.element.append(el);
    const section = { el, list, status, took, started: Date.parse(event.ts) };
    this.sections.set(event.step, section);
    return section;
  }

  row(event, kind, ...content) {
    const row = this.item(event, kind, ...content);
    this.section(event).list.append(row);
    return row;
  }

  plain(event) {
    this.top(event, "plain", h("span", { class: "type" }, event.type), " ", oneLine(event.data, 300));
  }

  task(event) {
    const d = event.data || {};
    const text = {
      "task.queued": `queued · ${d.crew || ""} · config ${d.config_version || ""}`,
      "task.started": `started${d.attempt > 1 ? ` · attempt ${d.attempt}` : ""}`,
      "task.restarted": `restarted: attempt ${d.attempt ?? "?"}${d.reason ? ` · ${d.reason}` : ""}`,
      "task.completed": `completed · ${duration(d.duration_ms)} · ${tokens(d.usage && d.usage.total_tokens)} tokens`,
      "task.failed": `failed · ${d.code ? `${d.code}: ` : ""}${(d.error && (d.error.message || d.error)) || d.reason || ""}`,
      "task.cancelled": `cancelled${d.reason ? ` · ${d.reason}` : ""}`,
    }[event.type];
    if (event.type === "task.restarted") {
      this.sections.clear();
      this.openModel.clear();
      this.openTools.clear();
    }
    this.top(event, `task ${event.type.replace(".", "-")}`, h("span", { class: "type" }, event.type), " ", typeof text === "string" ? oneLine(text, 400) : "");
  }

  stepStarted(event) {
    const section = this.openSection(event, event.seq);
    section.el.classList.add("open");
  }

  stepCompleted(event) {
    const section = this.section(event);
    setText(section.status, "done");
    section.status.className = "status s-completed";
    setText(section.took, duration(Date.parse(event.ts) - section.started));
    const out = h("div", { class: "markdown" });
    out.append(renderMarkdown(event.data.output || ""));
    section.list.append(this.item(event, "step-output", details("answer of the step", out)));
  }

  llmStarted(event) {
    const d = event.data || {};
    const stream = h("pre", { class: "stream", "data-testid": "stream-text", hidden: true });
    const row = this.row(event, "llm", h("span", { class: "type" }, "model"), " ", h("code", {}, d.model || ""),
      ` · ${d.messages ?? "?"} messages`, d.tools && d.tools.length ? ` · tools: ${d.tools.join(", ")}` : "", stream);
    this.openModel.set(this.key(event), { row, stream, started: Date.parse(event.ts) });
  }

  llmChunk(event) {
    let open = this.openModel.get(this.key(event));
    if (!open) {
      const stream = h("pre", { class: "stream", "data-testid": "stream-text" });
      const row = this.row(event, "llm", h("span", { class: "type" }, "model"), " (streaming)", stream);
      delete row.dataset.seq; // the chunk below carries this event
      open = { row, stream, started: Date.parse(event.ts) };
      this.openModel.set(this.key(event), open);
    }
    open.stream.hidden = false;
    open.stream.append(h("span", { "data-seq": event.seq }, event.data.chunk || ""));
  }

  llmCompleted(event) {
    const d = event.data || {};
    const open = this.openModel.get(this.key(event));
    this.openModel.delete(this.key(event));
    const took = open ? duration(Date.parse(event.ts) - open.started) : "";
    const parts = [usageText(d.usage), took, d.cost_usd ? `$${Number(d.cost_usd).toFixed(4)}` : ""].filter(Boolean).join(" · ");
    const calls = d.tool_calls && d.tool_calls.length ? ` → ${d.tool_calls.join(", ")}` : "";
    const end = h("div", { class: "end", "data-seq": event.seq, "data-type": event.type }, `${parts}${calls}`);
    const streamed = open && !open.stream.hidden;
    if (d.output && !streamed) end.append(details("answer", h("pre", { class: "text" }, d.output)));
    if (open) open.row.append(end);
    else this.row(event, "llm", h("span", { class: "type" }, "model"), end);
  }

  toolStarted(event) {
    const d = event.data || {};
    const row = this.row(event, "tool", h("span", { class: "type" }, "tool"), " ", h("code", {}, d.tool || "?"), " ",
      h("span", { class: "args" }, argsLine(d.args)), details("arguments", h("pre", { class: "text" }, pretty(d.args))));
    const key = `${this.key(event)}|${d.tool}`;
    if (!this.openTools.has(key)) this.openTools.set(key, []);
    this.openTools.get(key).push({ row, started: Date.parse(event.ts) });
  }

  toolEnded(event) {
    const d = event.data || {};
    const queue = this.openTools.get(`${this.key(event)}|${d.tool}`) || [];
    const open = queue.shift();
    const failed = event.type === "tool.failed";
    const took = d.duration_ms !== undefined ? duration(d.duration_ms) : open ? duration(Date.parse(event.ts) - open.started) : "";
    const line = failed ? `failed: ${oneLine(d.error, 300)}` : oneLine(d.summary || d.output || "", 300);
    const end = h("div", { class: `end${failed ? " failed" : ""}`, "data-seq": event.seq, "data-type": event.type },
      h("span", { class: "summary" }, line), took ? ` · ${took}` : "", d.from_cache ? " · cached" : "");
    if (!failed && d.output) end.append(details("output", h("pre", { class: "text" }, pretty(d.output))));
    if (open) open.row.append(end);
    else this.row(event, "tool", h("span", { class: "type" }, "tool"), " ", h("code", {}, d.tool || "?"), end);
  }

  input(event) {
    const d = event.data || {};
    const text = event.type === "input.required"
      ? `${d.kind === "question" ? "question" : "review"} for a person: ${oneLine(d.prompt, 300)}`
      : `answered: ${oneLine(d.answer ?? d, 300)}`;
    this.row(event, `input ${event.type.replace(".", "-")}`, h("span", { class: "type" }, event.type), " ", text);
  }

  log(event) {
    const d = event.data || {};
    this.row(event, `log l-${d.level || "info"}`, h("span", { class: "type" }, d.level || "log"), " ", h("span", { class: "message" }, d.message ?? oneLine(d, 400)));
  }
}

const HANDLERS = {
  "task.queued": Timeline.prototype.task,
  "task.started": Timeline.prototype.task,
  "task.restarted": Timeline.prototype.task,
  "task.completed": Timeline.prototype.task,
  "task.failed": Timeline.prototype.task,
  "task.cancelled": Timeline.prototype.task,
  "step.started": Timeline.prototype.stepStarted,
  "step.completed": Timeline.prototype.stepCompleted,
  "llm.started": Timeline.prototype.llmStarted,
  "llm.chunk": Timeline.prototype.llmChunk,
  "llm.completed": Timeline.prototype.llmCompleted,
  "tool.started": Timeline.prototype.toolStarted,
  "tool.finished": Timeline.prototype.toolEnded,
  "tool.failed": Timeline.prototype.toolEnded,
  "input.required": Timeline.prototype.input,
  "input.received": Timeline.prototype.input,
  "agent.log": Timeline.prototype.log,
};
