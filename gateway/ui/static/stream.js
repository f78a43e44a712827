// A WebSocket on an event stream that resumes after any drop from its own cursor.
//
// The event log, not the socket, holds the events: on a drop the socket is opened again
// with after=<the last cursor seen>, so nothing is missed. Events at or below the cursor
// (a replay overlapping what arrived) are dropped here, so nothing is shown twice.

import { socketUrl, unauthorized } from "./api.js";

const TERMINAL = new Set(["task.completed", "task.failed", "task.cancelled"]);
const CLOSE_UNAUTHORIZED = 4401;
const CLOSE_FORBIDDEN = 4403;
const CLOSE_UNKNOWN = 4404;

export function isTerminal(type) {
  return TERMINAL.has(type);
}

const ENDED = new Set(["completed", "failed", "cancelled"]);

// a task status nothing follows
export function hasEnded(status) {
  return ENDED.has(status);
}

const STATUS_AFTER = {
  "task.queued": "queued",
  "task.started": "running",
  "task.restarted": "running",
  "input.required": "waiting",
  "input.received": "running",
  "task.completed": "completed",
  "task.failed": "failed",
  "task.cancelled": "cancelled",
};

// the task's status once an event of ``type`` happened (``current`` for the rest)
export function statusAfter(type, current) {
  return STATUS_AFTER[type] || current;
}

export class ResumableStream {
  // path: /v1/tasks/{id}/events or /v1/events; cursor: "seq" or "id";
  // onEvents(list) gets events in order, each once; onState(state, detail) gets
  // "connecting" | "live" | "reconnecting" | "ended" | "refused"
  // contiguous: every cursor is the last one + 1 (a task's seq): a gap reopens from the cursor
  constructor({ path, cursor, after = 0, params = {}, endsOnTerminal = false, contiguous = false, onEvents, onState }) {
    this.contiguous = contiguous;
    this.path = path;
    this.cursorName = cursor;
    this.after = after;
    this.params = params;
    this.endsOnTerminal = endsOnTerminal;
    this.onEvents = onEvents;
    this.onState = onState || (() => {});
    this.ws = null;
    this.stopped = false;
    this.ended = false;
    this.retries = 0;
    this.timer = null;
    this.reconnects = 0;
  }

  start() {
    this.stopped = false;
    this.open();
    return this;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, "leaving");
    this.ws = null;
  }

  open() {
    clearTimeout(this.timer);
    this.onState(this.retries ? "reconnecting" : "connecting", { after: this.after });
    const ws = new WebSocket(socketUrl(this.path, { ...this.params, after: this.after }));
    this.ws = ws;
    ws.onopen = () => {
      this.onState("live", { after: this.after });
    };
    ws.onmessage = (message) => {
      if (ws === this.ws) this.received(message.data);
    };
    ws.onclose = (close) => this.closed(ws, close);
  }

  received(text) {
    let event;
    try {
      event = JSON.parse(text);
    } catch {
      return; // not ours to show
    }
    const cursor = Number(event[this.cursorName]);
    if (!(cursor > this.after)) return; // already shown
    if (this.contiguous && cursor !== this.after + 1) {
      this.reopen(); // something between was not delivered: read it again from the log
      return;
    }
    this.after = cursor;
    this.retries = 0;
    this.onEvents([event]);
    if (this.endsOnTerminal && isTerminal(event.type)) this.ended = true;
  }

  reopen() {
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000, "resuming");
    this.reconnects += 1;
    this.open();
  }

  closed(ws, close) {
    if (ws !== this.ws || this.stopped) return;
    this.ws = null;
    if (this.ended || (close.code === 1000 && this.endsOnTerminal)) {
      this.ended = true;
      this.onState("ended", { code: close.code });
      return;
    }
    if ([CLOSE_UNAUTHORIZED, CLOSE_FORBIDDEN, CLOSE_UNKNOWN].includes(close.code)) {
      this.onState("refused", { code: close.code, reason: close.reason });
      if (close.code === CLOSE_UNAUTHORIZED) unauthorized(close.reason || "the token is no longer valid");
      return;
    }
    // a drop, a restart, a slow-watcher close (1013), the socket cap (1008): come back from the cursor
    this.retries += 1;
    this.reconnects += 1;
    const delay = Math.min(5000, 250 * 2 ** Math.min(this.retries - 1, 5)) * (0.75 + Math.random() / 2);
    this.onState("reconnecting", { code: close.code, reason: close.reason, after: this.after, in_ms: delay });
    this.timer = setTimeout(() => this.open(), delay);
  }
}
