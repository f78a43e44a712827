// Configs: the version new tasks run with, the crews and agents in it, and what is wrong
// with the files on disk right now (file:line), as the gateway's reload watcher found it.

import { api } from "../api.js";
import { h } from "../dom.js";

function errorItem(e) {
  const where = [e.file, e.line, e.column].filter((v) => v !== null && v !== undefined && v !== "").join(":");
  return h("li", { class: "config-error" }, h("code", {}, where || "?"), e.path ? ` ${e.path}: ` : " ", e.message);
}

function statusCard(s) {
  const current = s.current || {};
  const card = h("section", { class: "card", "data-testid": "config-status" },
    h("h2", {}, "Active config"),
    h("dl", {},
      h("dt", {}, "version"), h("dd", { "data-testid": "config-version", class: "mono" }, s.active_version || "none"),
      h("dt", {}, "loaded"), h("dd", {}, s.loaded_at || "–"),
      h("dt", {}, "directory"), h("dd", {}, s.directory),
      h("dt", {}, "files"), h("dd", {}, (s.files || []).join(", ")),
      h("dt", {}, "reload watcher"), h("dd", {}, `${s.watcher.state}${s.watcher.last_error ? ` (${s.watcher.last_error})` : ""}`),
      h("dt", {}, "on disk now"), h("dd", { class: `state-${current.state}` }, current.state || "–")));
  if (current.state === "invalid") {
    card.append(h("div", { class: "config-errors", "data-testid": "config-errors" },
      h("h3", {}, `${current.error_count} problem${current.error_count === 1 ? "" : "s"} in the files on disk; new tasks still run ${s.active_version || "nothing"}`),
      h("ul", {}, (current.errors || []).map(errorItem))));
  }
  return card;
}

function crewsCard(crews) {
  return h("section", { class: "card", "data-testid": "config-crews" }, h("h2", {}, "Crews"),
    crews.map((c) => h("details", { "data-crew": c.name }, h("summary", {}, h("strong", {}, c.name), ` — ${c.description}`),
      h("p", { class: "small" }, `process ${c.process}; inputs: ${Object.keys(c.inputs.properties || {}).map((k) => ((c.inputs.required || []).includes(k) ? `${k}*` : k)).join(", ")}`),
      h("ol", {}, c.steps.map((s) => h("li", {}, h("code", {}, s.name), ` by ${s.agent}`, s.context ? ` (after ${s.context.join(", ")})` : ""))))));
}

function agentsCard(agents) {
  return h("section", { class: "card", "data-testid": "config-agents" }, h("h2", {}, "Agents"),
    h("table", {}, h("thead", {}, h("tr", {}, ["agent", "role", "model", "tools"].map((n) => h("th", {}, n)))),
      h("tbody", {}, agents.map((a) => h("tr", {}, h("td", {}, h("code", {}, a.name)), h("td", {}, a.role), h("td", {}, a.model), h("td", {}, a.tools.join(", ")))))));
}

function historyCard(history) {
  return h("section", { class: "card" }, h("h2", {}, "Recent loads"),
    h("ul", { class: "small" }, history.slice(0, 15).map((e) => h("li", {}, `${e.at} · ${e.outcome}${e.version ? ` · ${e.version}` : ""}${e.error_count ? ` · ${e.error_count} problem(s)` : ""}`))));
}

export function configsView(caller) {
  const statusSlot = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const catalogSlot = h("div");
  const element = h("div", { class: "view configs-view" }, statusSlot, catalogSlot);
  async function loadStatus() {
    if (!caller.can("configs:read")) {
      statusSlot.replaceChildren(h("p", { class: "muted" }, "The config status needs a key with the configs:read scope."));
      return;
    }
    try {
      const status = await api.configStatus();
      statusSlot.replaceChildren(statusCard(status), historyCard(status.history || []));
    } catch (err) {
      statusSlot.replaceChildren(h("p", { class: "error", role: "alert" }, err.message));
    }
  }
  async function loadCatalog() {
    try {
      const [crews, agents] = await Promise.all([api.crews(), api.agents()]);
      catalogSlot.replaceChildren(crewsCard(crews), agentsCard(agents));
    } catch (err) {
      catalogSlot.replaceChildren(h("p", { class: "error", role: "alert" }, err.message));
    }
  }
  loadStatus();
  loadCatalog();
  const timer = setInterval(loadStatus, 5000); // edits on disk show up without a reload
  return {
    element,
    stop() {
      clearInterval(timer);
    },
  };
}
