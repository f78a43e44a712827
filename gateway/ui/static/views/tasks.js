// Tasks: the waiting ones first, a start form, and a live list kept by the firehose.
//
// The list is a page of GET /v1/tasks merged with every task event of the firehose
// (WS /v1/events). Both carry the task's seq, so each row keeps the newest state it has
// seen whichever arrives first: a page fetched after an event never rolls a row back.

import { api } from "../api.js";
import { age, clear, duration, frameBatcher, h, setText, shortId, tokens } from "../dom.js";
import { hasEnded, isTerminal, ResumableStream, statusAfter } from "../stream.js";
import { startForm } from "./start.js";

const STATUSES = ["queued", "running", "waiting", "completed", "failed", "cancelled"];
const LIST_TYPES = [
  "task.queued", "task.started", "task.restarted", "task.completed", "task.failed", "task.cancelled",
  "input.required", "input.received", "llm.completed",
];
const MAX_ROWS = 300;

function serviceOf(inputs) {
  return (inputs && (inputs.service || inputs.topic || inputs.name)) || "";
}

class Row {
  constructor(id) {
    this.id = id;
    this.seq = -1;
    this.task = { id, status: "queued", crew: "", inputs: {}, created_at: null, started_at: null, finished_at: null, usage: null };
    this.tokens = 0;
    this.partial = false;
    this.prompt = null;
    this.cells = {
      status: h("span", { class: "status" }),
      id: h("a", { href: `#/tasks/${encodeURIComponent(id)}`, class: "mono" }, shortId(id)),
      crew: h("td"),
      service: h("td"),
      age: h("td", { class: "num" }),
      duration: h("td", { class: "num" }),
      tokens: h("td", { class: "num" }),
    };
    const c = this.cells;
    this.el = h("tr", { "data-task-id": id }, h("td", {}, c.status), h("td", {}, c.id), c.crew, c.service, c.age, c.duration, c.tokens);
  }

  merge(record) {
    if (record.events < this.seq) return false;
    this.seq = record.events;
    this.task = record;
    this.tokens = (record.usage && record.usage.total_tokens) || 0;
    // a run's usage is stored when it ends: until then only the calls seen from here on count
    this.partial = !record.usage && record.events > 2 && !hasEnded(record.status);
    return true;
  }

  apply(event) {
    if (event.seq <= this.seq) return false;
    this.seq = event.seq;
    const t = this.task;
    t.status = statusAfter(event.type, t.status);
    if (event.type === "task.queued") {
      t.crew = event.data.crew || t.crew;
      t.inputs = event.data.inputs || t.inputs;
      t.created_at = t.created_at || event.ts;
    } else if (event.type === "task.started") {
      t.started_at = t.started_at || event.ts;
    } else if (event.type === "llm.completed") {
      this.tokens += (event.data.usage && event.data.usage.total_tokens) || 0;
    } else if (isTerminal(event.type)) {
      t.finished_at = event.ts;
      if (event.data.usage && event.data.usage.total_tokens) {
        this.tokens = event.data.usage.total_tokens;
        this.partial = false;
      }
    }
    if (event.type === "input.required") this.prompt = event.data.prompt;
    if (event.type === "input.received") this.prompt = null;
    return true;
  }

  paint(now) {
    const t = this.task;
    const c = this.cells;
    setText(c.status, t.status);
    const look = `status s-${t.status}`;
    if (c.status.className !== look) c.status.className = look;
    setText(c.crew, t.crew);
    setText(c.service, serviceOf(t.inputs));
    this.paintClock(now);
    setText(c.tokens, this.partial && this.tokens ? `≥ ${tokens(this.tokens)}` : tokens(this.tokens));
    c.tokens.title = this.partial ? "counted since this page opened; the total comes when the task ends" : "";
  }

  paintClock(now) {
    const t = this.task;
    setText(this.cells.age, age(t.created_at, now));
    const start = t.started_at ? Date.parse(t.started_at) : null;
    const end = t.finished_at ? Date.parse(t.finished_at) : now;
    setText(this.cells.duration, start ? duration(end - start) : "–");
  }
}

export function tasksView(caller) {
  const rows = new Map();
  const filters = { status: "", crew: "", service: "" };
  const body = h("tbody");
  const empty = h("p", { class: "muted", hidden: true }, "No tasks match.");
  const live = h("span", { class: "conn", "data-testid": "connection" }, "connecting");
  const waitingList = h("ul", { class: "waiting-list" });
  const waiting = h("section", { class: "card waiting", "data-testid": "waiting", hidden: true },
    h("h2", {}, "Waiting for a person"), waitingList);
  const statusFilter = h("select", { name: "status", "aria-label": "status" }, h("option", { value: "" }, "any status"), STATUSES.map((s) => h("option", { value: s }, s)));
  const crewFilter = h("select", { name: "crew", "aria-label": "crew filter" }, h("option", { value: "" }, "any crew"));
  const serviceFilter = h("input", { name: "service", type: "search", placeholder: "service", "aria-label": "service filter" });
  const startBox = h("div");
  const table = h("table", { class: "tasks", "data-testid": "task-list" },
    h("thead", {}, h("tr", {}, ["status", "task", "crew", "service", "age", "duration", "tokens"].map((n) => h("th", {}, n)))), body);
  const element = h("div", { class: "view tasks-view" },
    waiting,
    startBox,
    h("section", { class: "card" },
      h("div", { class: "bar" }, h("h2", {}, "Tasks"), live, h("span", { class: "spacer" }), statusFilter, crewFilter, serviceFilter),
      table, empty));

  function visible(row) {
    const t = row.task;
    if (filters.status && t.status !== filters.status) return false;
    if (filters.crew && t.crew !== filters.crew) return false;
    if (filters.service && !serviceOf(t.inputs).toLowerCase().includes(filters.service.toLowerCase())) return false;
    return true;
  }

  // Rows in order, newest first. The DOM is touched only where something changed: a whole
  // table re-laid out on every status change is what made the page stutter with many tasks.
  function order(touched) {
    const sorted = [...rows.values()].sort((a, b) => String(b.task.created_at).localeCompare(String(a.task.created_at)));
    for (const row of sorted.slice(MAX_ROWS)) rows.delete(row.id);
    const kept = sorted.slice(0, MAX_ROWS);
    const now = Date.now();
    let shown = 0;
    for (const row of kept) {
      const hide = !visible(row);
      if (row.el.hidden !== hide) row.el.hidden = hide;
      shown += hide ? 0 : 1;
      if (!touched || touched.has(row)) row.paint(now);
    }
    const current = body.children;
    if (current.length !== kept.length || kept.some((row, i) => current[i] !== row.el)) {
      body.replaceChildren(...kept.map((r) => r.el));
    }
    empty.hidden = shown > 0;
    paintWaiting();
  }

  // what a waiting task asks, for tasks that were waiting before the page opened
  const asked = new Set();
  async function fetchPrompt(row) {
    asked.add(row.id);
    try {
      const open = (await api.input(row.id)).data.filter((r) => r.status === "open");
      if (open.length && !row.prompt) {
        row.prompt = open[0].prompt;
        paintWaiting();
      }
    } catch {
      // the list still links to the task
    }
  }

  function paintWaiting() {
    const open = [...rows.values()].filter((r) => r.task.status === "waiting");
    for (const row of open.slice(0, 20)) if (!row.prompt && !asked.has(row.id)) fetchPrompt(row);
    waiting.hidden = open.length === 0;
    document.title = open.length ? `(${open.length} waiting) crewgate` : "crewgate";
    waitingList.replaceChildren(...open.map((r) =>
      h("li", { "data-task-id": r.id },
        h("a", { href: `#/tasks/${encodeURIComponent(r.id)}` }, `${r.task.crew} · ${serviceOf(r.task.inputs) || shortId(r.id)}`),
        r.prompt ? h("span", { class: "muted" }, ` — ${r.prompt.slice(0, 200)}`) : null,
        caller.can("input:write") ? h("a", { class: "button", href: `#/tasks/${encodeURIComponent(r.id)}` }, "Answer") : null)));
  }

  const fetching = new Set();
  async function fetchMissing(id) {
    if (fetching.has(id)) return;
    fetching.add(id);
    try {
      const record = await api.task(id);
      const row = rows.get(id);
      if (row && row.merge(record)) schedule({ reorder: true });
    } catch {
      // gone or not allowed: the row keeps what the events said
    } finally {
      fetching.delete(id);
    }
  }

  const schedule = frameBatcher((items) => {
    let reorder = false;
    let fullPaint = false;
    const touched = new Set();
    for (const item of items) {
      if (item.reorder) {
        reorder = true;
        fullPaint = true; // a page was merged or a filter changed: every row may differ
      }
      for (const event of item.events || []) {
        let row = rows.get(event.task_id);
        if (!row) {
          row = new Row(event.task_id);
          rows.set(event.task_id, row);
          reorder = true;
          if (event.type !== "task.queued") fetchMissing(event.task_id);
        }
        const before = row.task.status;
        if (row.apply(event)) touched.add(row);
        if (before !== row.task.status) reorder = true;
      }
    }
    if (reorder) {
      order(fullPaint ? null : touched);
      return;
    }
    const now = Date.now();
    for (const row of touched) row.paint(now);
  });

  async function loadPage() {
    const params = { limit: "100" };
    if (filters.status) params.status = filters.status;
    if (filters.crew) params.crew = filters.crew;
    try {
      const page = await api.tasks(params);
      for (const record of page.data) {
        let row = rows.get(record.id);
        if (!row) {
          row = new Row(record.id);
          rows.set(record.id, row);
        }
        row.merge(record);
      }
      schedule({ reorder: true });
    } catch (err) {
      setText(live, `list not loaded: ${err.message}`);
    }
  }

  const stream = new ResumableStream({
    path: "/v1/events",
    cursor: "id",
    after: -1,
    params: { type: LIST_TYPES.join(",") },
    onEvents: (events) => schedule({ events }),
    onState: (state, detail) => {
      setText(live, state === "reconnecting" ? "reconnecting…" : state);
      live.className = `conn c-${state}`;
      if (state === "live" && stream.reconnects > 0) loadPage(); // back after a drop: catch up on what the page says
      if (state === "refused") setText(live, `refused: ${detail.reason || detail.code}`);
    },
  });

  for (const [control, key] of [[statusFilter, "status"], [crewFilter, "crew"]]) {
    control.addEventListener("change", () => {
      filters[key] = control.value;
      loadPage();
      schedule({ reorder: true });
    });
  }
  serviceFilter.addEventListener("input", () => {
    filters.service = serviceFilter.value.trim();
    schedule({ reorder: true });
  });

  (async () => {
    try {
      const crews = await api.crews();
      crewFilter.append(...crews.map((c) => h("option", { value: c.name }, c.name)));
      if (caller.can("tasks:write")) {
        startBox.append(startForm(crews, { onStarted: (accepted) => { window.location.hash = `#/tasks/${encodeURIComponent(accepted.id)}`; } }));
      }
    } catch (err) {
      startBox.append(h("p", { class: "error" }, `crews not loaded: ${err.message}`));
    }
  })();

  stream.start();
  loadPage();
  const ticker = setInterval(() => {
    const now = Date.now();
    for (const row of rows.values()) if (!row.el.hidden) row.paintClock(now);
  }, 1000);

  return {
    element,
    stop() {
      stream.stop();
      clearInterval(ticker);
      document.title = "crewgate";
    },
  };
}
