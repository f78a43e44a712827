// Sign in with an API key (crewgate keys create): traded for a short-lived token when the
// gateway issues them, else kept as it is, in this tab's session storage only.

import { api, session } from "../api.js";
import { h } from "../dom.js";

export function signinView({ onSignedIn, message }) {
  const key = h("input", { name: "key", type: "password", autocomplete: "off", required: true, placeholder: "cgk_…", "aria-label": "API key" });
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "card signin", "data-testid": "signin" },
    h("h1", {}, "Sign in"),
    message ? h("p", { class: "muted" }, message) : null,
    h("label", {}, "API key", key),
    h("p", { class: "muted small" }, "Create one with `crewgate keys create`. It stays in this tab: closing the tab signs you out."),
    button,
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    error.hidden = true;
    try {
      await signIn(key.value.trim());
      key.value = "";
      await onSignedIn();
    } catch (err) {
      error.textContent = err.status === 401 ? "That key is not valid (unknown, revoked or expired)." : err.message;
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
  return { element: form, stop() {} };
}

async function signIn(key) {
  try {
    const issued = await api.token(key);
    session.save(issued.access_token);
  } catch (err) {
    // no tokens issued here (tokens_disabled), or a key from CREWGATE_API_KEYS: use the key itself
    if (!(err.status === 400 || err.status === 401)) throw err;
    session.save(key);
  }
  try {
    await api.me();
  } catch (err) {
    session.clear();
    throw err;
  }
}
