// Open requests for a person on a task: a review of a step's answer (approve, or send it
// back with feedback) or an agent's question (answer it). Only a key with input:write
// sees the controls.

import { api } from "../api.js";
import { h, setText } from "../dom.js";
import { renderMarkdown } from "../markdown.js";

export function requestCard(taskId, request, caller, done) {
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const card = h("article", { class: "request", "data-request-id": request.request_id, "data-kind": request.kind },
    h("h3", {}, request.kind === "question" ? "An agent asks" : `Review the answer of ${request.step}`),
    h("p", { class: "prompt" }, request.prompt),
    request.expires_at ? h("p", { class: "muted small" }, `Expires ${request.expires_at}; then: ${request.on_timeout}`) : null);
  if (request.output) card.append(h("div", { class: "markdown review-output" }, renderMarkdown(request.output)));
  if (!caller.can("input:write")) {
    card.append(h("p", { class: "muted" }, "Answering needs a key with the input:write scope."));
    return card;
  }
  async function send(answer, button) {
    button.disabled = true;
    error.hidden = true;
    try {
      await api.answer(taskId, { request_id: request.request_id, ...answer });
      card.classList.add("answered");
      setText(error, "");
      done();
    } catch (err) {
      setText(error, err.message);
      error.hidden = false;
      button.disabled = false;
    }
  }
  if (request.kind === "question") {
    const text = h("textarea", { name: "answer", rows: 3, maxlength: 8000, "aria-label": "answer", required: true });
    const button = h("button", { type: "submit" }, "Answer");
    const form = h("form", { class: "answer" }, text, h("div", { class: "actions" }, button));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (text.value.trim()) send({ answer: text.value }, button);
    });
    card.append(form, error);
    return card;
  }
  const approve = h("button", { type: "button", class: "primary", "data-action": "approve" }, "Approve");
  approve.addEventListener("click", () => send({ approve: true }, approve));
  const feedback = h("textarea", { name: "feedback", rows: 3, maxlength: 8000, "aria-label": "feedback", placeholder: "What the agent should change" });
  const back = h("button", { type: "submit", "data-action": "feedback" }, "Send back with feedback");
  const form = h("form", { class: "answer" }, feedback, h("div", { class: "actions" }, approve, back));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (feedback.value.trim()) send({ feedback: feedback.value }, back);
  });
  card.append(form, error);
  return card;
}

// The open requests of a task. A refresh keeps the card of a request that is still open as it
// is, so what a person is typing survives every event that arrives meanwhile.
export class InputPanel {
  constructor(taskId, caller, done) {
    this.taskId = taskId;
    this.caller = caller;
    this.done = done;
    this.cards = new Map();
    this.element = h("section", { class: "card waiting", "data-testid": "input-request", hidden: true }, h("h2", {}, "Waiting for you"));
  }

  show(open) {
    const ids = new Set(open.map((r) => r.request_id));
    for (const [id, card] of this.cards) {
      if (!ids.has(id)) {
        card.remove();
        this.cards.delete(id);
      }
    }
    for (const request of open) {
      if (this.cards.has(request.request_id)) continue;
      const card = requestCard(this.taskId, request, this.caller, this.done);
      this.cards.set(request.request_id, card);
      this.element.append(card);
    }
    this.element.hidden = this.cards.size === 0;
  }
}
