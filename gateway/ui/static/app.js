// The dashboard: a hash router over four views, signed in with a scoped key.

import { api, session, whenUnauthorized } from "./api.js";
import { clear, h, setText } from "./dom.js";
import { configsView } from "./views/configs.js";
import { signinView } from "./views/signin.js";
import { taskView } from "./views/task.js";
import { tasksView } from "./views/tasks.js";

const main = document.getElementById("main");
const who = document.getElementById("whoami");
const signout = document.getElementById("signout");

// what the signed-in caller may do; views read it to show or hide controls
export const caller = {
  me: null,
  can(scope) {
    return Boolean(this.me && (this.me.admin || this.me.scopes.includes(scope)));
  },
};

let current = null; // the view on screen: {stop()}

function route() {
  const hash = window.location.hash.replace(/^#/, "") || "/tasks";
  const parts = hash.split("?")[0].split("/").filter(Boolean);
  if (parts[0] === "tasks" && parts[1]) return { view: "task", id: decodeURIComponent(parts[1]) };
  if (parts[0] === "configs") return { view: "configs" };
  if (parts[0] === "signin") return { view: "signin" };
  return { view: "tasks" };
}

function show(view) {
  if (current && current.stop) current.stop();
  current = view;
  clear(main);
  main.append(view.element);
}

async function render() {
  const where = route();
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.classList.toggle("active", link.dataset.nav === (where.view === "task" ? "tasks" : where.view));
  }
  if (where.view === "signin" || !caller.me) {
    const state = caller.me ? "ok" : await identify();
    if (state === "error") return;
    if (state === "signin") {
      show(signinView({ onSignedIn: signedIn }));
      return;
    }
    if (where.view === "signin") {
      window.location.hash = "#/tasks";
      return;
    }
  }
  if (where.view === "task") show(taskView(where.id, caller));
  else if (where.view === "configs") show(configsView(caller));
  else show(tasksView(caller));
}

// who the token (or the open API) is: "ok", "signin" (a key is needed) or "error" (shown)
async function identify() {
  try {
    caller.me = await api.me();
  } catch (err) {
    if (err.status === 401) {
      session.clear();
      return "signin";
    }
    const retry = h("button", { type: "button", onclick: () => render() }, "Try again");
    show({ element: h("div", { class: "card" }, h("p", { class: "error", role: "alert" }, `The gateway did not answer: ${err.message}`), retry) });
    return "error";
  }
  showCaller();
  return "ok";
}

function showCaller() {
  const me = caller.me;
  if (!me) {
    setText(who, "");
    signout.hidden = true;
    return;
  }
  const scopes = me.admin ? "admin" : me.scopes.join(" ");
  setText(who, me.auth === "open" ? "open API (no keys configured)" : `${me.key_id || "key"} · ${scopes}`);
  who.title = me.scopes.join(" ");
  signout.hidden = me.auth === "open";
}

async function signedIn() {
  caller.me = null;
  if ((await identify()) !== "ok") return;
  if (window.location.hash.startsWith("#/signin")) window.location.hash = "#/tasks";
  else render();
}

function signOut(message) {
  session.clear();
  caller.me = null;
  showCaller();
  if (current && current.stop) current.stop();
  current = null;
  show(signinView({ onSignedIn: signedIn, message }));
}

// a token that stopped working (expired, its key revoked), or keys created since the page opened
whenUnauthorized((error) => {
  if (caller.me) signOut(`Signed out: ${error.message}`);
});
signout.addEventListener("click", () => signOut("Signed out."));
window.addEventListener("hashchange", () => render());

// the vendored scripts are deferred: start once they have run
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => render());
else render();
