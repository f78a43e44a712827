// Building the page from data. Every string a caller, a log, a repository or a model
// produced goes in as a text node (textContent), never as markup: this file has no
// innerHTML. Markdown is the one exception and goes through markdown.js.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function setText(el, text) {
  const value = text === null || text === undefined ? "" : String(text);
  if (el.textContent !== value) el.textContent = value;
}

const NUMBER = new Intl.NumberFormat("en-US");

export function tokens(n) {
  return n ? NUMBER.format(n) : "–";
}

export function cost(usd) {
  if (usd === null || usd === undefined) return "–";
  return usd < 0.01 && usd > 0 ? `$${usd.toFixed(4)}` : `$${usd.toFixed(2)}`;
}

export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${Math.round(s % 60)}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

export function age(iso, now = Date.now()) {
  if (!iso) return "–";
  const s = Math.max(0, (now - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.floor(s)}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function clock(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toISOString().slice(11, 23);
}

// A collapsed block: ``summary`` always shown, ``body`` on demand.
export function details(summary, body) {
  return h("details", {}, h("summary", {}, summary), body);
}

export function shortId(id) {
  return String(id || "").slice(0, 8);
}

// One line of a value for a table cell: long text cut with a marker, whitespace folded.
export function oneLine(value, limit = 160) {
  const text = (typeof value === "string" ? value : JSON.stringify(value ?? "")).replace(/\s+/g, " ").trim();
  return text.length > limit ? `${text.slice(0, limit - 1)}…` : text;
}

// Calls fn once per animation frame with the items queued since, in slices of ``slice``
// items while the frame's budget lasts; what is left waits for the next frame. A replay of
// thousands of events then never holds the page for longer than about one budget.
export function frameBatcher(fn, { slice = 64, budgetMs = 10 } = {}) {
  let queue = [];
  let scheduled = false;
  const flush = () => {
    const started = performance.now();
    while (queue.length && performance.now() - started < budgetMs) fn(queue.splice(0, slice));
    scheduled = queue.length > 0;
    if (scheduled) requestAnimationFrame(flush);
  };
  return (item) => {
    queue.push(item);
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(flush);
  };
}
