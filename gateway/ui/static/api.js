// The v1 API with the signed-in token. The token lives in sessionStorage: it is gone when
// the tab closes, and no other site can read it.

const TOKEN_KEY = "crewgate.token";
const SCOPES_KEY = "crewgate.scopes";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }

  // {"inputs.service": "message", ...} from a 422's details
  fieldMessages() {
    const out = {};
    for (const d of Array.isArray(this.details) ? this.details : []) {
      if (d && typeof d.field === "string") out[d.field] = out[d.field] ? `${out[d.field]}; ${d.message}` : String(d.message);
    }
    return out;
  }
}

export const session = {
  token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  save(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(SCOPES_KEY);
  },
};

let onUnauthorized = () => {};
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

// a stream closed 4401: the token stopped working, as a 401 says on a request
export function unauthorized(message) {
  onUnauthorized(new ApiError(401, "unauthorized", message));
}

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: a proxy's page, say
  }
  const e = body && body.error ? body.error : {};
  return new ApiError(response.status, e.code || `http_${response.status}`, e.message || response.statusText, e.details);
}

export async function request(method, path, body, { auth = true, form = false } = {}) {
  const headers = { Accept: "application/json" };
  const token = session.token();
  if (auth && token) headers.Authorization = `Bearer ${token}`;
  let payload;
  if (form) {
    headers["Content-Type"] = "application/x-www-form-urlencoded";
    payload = new URLSearchParams(body).toString();
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload, credentials: "omit", cache: "no-store" });
  } catch (err) {
    throw new ApiError(0, "network", `the gateway did not answer (${err.message})`);
  }
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401 && auth) onUnauthorized(error);
    throw error;
  }
  return response.status === 204 ? null : response.json();
}

export const api = {
  me: () => request("GET", "/v1/auth/me"),
  token: (key) =>
    request("POST", "/v1/auth/token", { grant_type: "client_credentials", client_id: keyId(key), client_secret: key }, { auth: false, form: true }),
  tasks: (params) => request("GET", `/v1/tasks?${new URLSearchParams(params)}`),
  task: (id) => request("GET", `/v1/tasks/${encodeURIComponent(id)}`),
  submit: (crew, inputs) => request("POST", "/v1/tasks", { crew, inputs }),
  cancel: (id) => request("POST", `/v1/tasks/${encodeURIComponent(id)}/cancel`),
  retry: (id) => request("POST", `/v1/tasks/${encodeURIComponent(id)}/retry`),
  input: (id) => request("GET", `/v1/tasks/${encodeURIComponent(id)}/input`),
  answer: (id, answer) => request("POST", `/v1/tasks/${encodeURIComponent(id)}/input`, answer),
  crews: () => request("GET", "/v1/crews"),
  crew: (name) => request("GET", `/v1/crews/${encodeURIComponent(name)}`),
  agents: () => request("GET", "/v1/agents"),
  configStatus: () => request("GET", "/v1/configs/status"),
};

// cgk_<id>_<secret>: the id part is the OAuth client_id
function keyId(key) {
  const m = /^cgk_([A-Za-z0-9]+)_/.exec(key);
  return m ? m[1] : key;
}

// ws://this-host/path?…&token=…: browsers cannot set headers on a WebSocket
export function socketUrl(path, params) {
  const url = new URL(path, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") url.searchParams.set(k, v);
  const token = session.token();
  if (token) url.searchParams.set("token", token);
  return url.toString();
}
