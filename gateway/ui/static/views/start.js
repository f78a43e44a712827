// The form that starts a crew, generated from the crew's input schema (GET /v1/crews/{name}).
// The server checks the inputs; its 422 details are shown on the fields they name.

import { api } from "../api.js";
import { h, setText } from "../dom.js";

function fieldFor(name, schema, required) {
  const id = `input-${name}`;
  const attrs = { id, name: `inputs.${name}`, required: required || null, "aria-describedby": `${id}-help ${id}-error` };
  let control;
  if (Array.isArray(schema.enum)) {
    control = h("select", attrs, required ? null : h("option", { value: "" }, "–"), schema.enum.map((v) => h("option", { value: String(v) }, String(v))));
  } else if (schema.type === "boolean") {
    control = h("input", { ...attrs, type: "checkbox", required: null });
  } else if (schema.type === "integer" || schema.type === "number") {
    control = h("input", { ...attrs, type: "number", step: schema.type === "integer" ? "1" : "any" });
  } else {
    const placeholder = schema.format === "date-time" ? "2026-11-20T13:00:00Z" : schema.format === "path" ? "/path/on/the/gateway" : "";
    control = h("input", { ...attrs, type: "text", placeholder, autocomplete: "off", spellcheck: "false" });
  }
  if (schema.default !== undefined && control.type !== "checkbox") control.value = String(schema.default);
  return h(
    "div",
    { class: "field", "data-field": `inputs.${name}` },
    h("label", { for: id }, name, required ? h("span", { class: "req", title: "required" }, " *") : null),
    control,
    schema.description ? h("p", { class: "help", id: `${id}-help` }, schema.description) : null,
    h("p", { class: "field-error", id: `${id}-error`, role: "alert", hidden: true }),
  );
}

function valuesOf(form, properties) {
  const inputs = {};
  for (const [name, schema] of Object.entries(properties)) {
    const control = form.elements.namedItem(`inputs.${name}`);
    if (!control) continue;
    if (control.type === "checkbox") {
      inputs[name] = control.checked;
    } else if (control.value !== "") {
      inputs[name] = schema.type === "integer" || schema.type === "number" ? Number(control.value) : control.value;
    }
  }
  return inputs;
}

function showErrors(form, general, error) {
  for (const p of form.querySelectorAll(".field-error")) {
    p.hidden = true;
    p.textContent = "";
  }
  for (const c of form.querySelectorAll("[aria-invalid]")) c.removeAttribute("aria-invalid");
  if (!error) {
    general.hidden = true;
    return;
  }
  const left = [];
  for (const [field, message] of Object.entries(error.fieldMessages ? error.fieldMessages() : {})) {
    const box = form.querySelector(`[data-field="${CSS.escape(field)}"]`);
    if (!box) {
      left.push(`${field}: ${message}`);
      continue;
    }
    const p = box.querySelector(".field-error");
    p.textContent = message;
    p.hidden = false;
    box.querySelector("input, select")?.setAttribute("aria-invalid", "true");
  }
  setText(general, left.length ? left.join("; ") : Object.keys(error.fieldMessages?.() || {}).length ? "" : error.message);
  general.hidden = !general.textContent;
}

export function startForm(crews, { onStarted }) {
  const select = h("select", { name: "crew", "aria-label": "crew" }, crews.map((c) => h("option", { value: c.name }, c.name)));
  const fields = h("div", { class: "fields" });
  const about = h("p", { class: "muted small" });
  const general = h("p", { class: "error", role: "alert", hidden: true });
  const button = h("button", { type: "submit" }, "Start");
  const form = h("form", { class: "card start", "data-testid": "start-form", novalidate: true },
    h("h2", {}, "Start a crew"), h("label", {}, "Crew ", select), about, fields, h("div", { class: "actions" }, button), general);
  let properties = {};

  let loading = 0;
  async function load() {
    if (form.dataset.crew === select.value) return; // already showing it
    const mine = ++loading; // a newer choice of crew wins over an answer still on its way
    general.hidden = true;
    button.disabled = true;
    try {
      const crew = await api.crew(select.value);
      if (mine !== loading) return;
      setText(about, crew.description);
      const typed = valuesOf(form, properties); // kept for the fields the next crew has too
      properties = crew.inputs.properties || {};
      const required = new Set(crew.inputs.required || []);
      fields.replaceChildren(...Object.entries(properties).map(([name, schema]) => fieldFor(name, schema, required.has(name))));
      for (const [name, value] of Object.entries(typed)) {
        const control = form.elements.namedItem(`inputs.${name}`);
        if (!control) continue;
        if (control.type === "checkbox") control.checked = Boolean(value);
        else control.value = String(value);
      }
      form.dataset.crew = crew.name;
    } catch (err) {
      if (mine === loading) showErrors(form, general, err);
    } finally {
      if (mine === loading) button.disabled = false;
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    try {
      const accepted = await api.submit(select.value, valuesOf(form, properties));
      showErrors(form, general, null);
      onStarted(accepted);
    } catch (err) {
      showErrors(form, general, err);
    } finally {
      button.disabled = false;
    }
  });
  select.addEventListener("change", load);
  if (crews.length) load();
  return form;
}
