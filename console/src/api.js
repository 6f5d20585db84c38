// The console's calls to its server: JSON in, JSON out, the session in an HttpOnly cookie
// (the page never sees it) and the CSRF token in a header.

let csrf = "";

export class ApiError extends Error {
  constructor(status, type, message) {
    super(message || type || `HTTP ${status}`);
    this.status = status;
    this.type = type;
  }
}

async function request(method, path, body) {
  const headers = { "X-Purser-Csrf": csrf };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let doc = null;
  try {
    doc = text ? JSON.parse(text) : {};
  } catch {
    doc = { message: text };
  }
  if (!r.ok) {
    throw new ApiError(r.status, doc && doc.__type, doc && doc.message);
  }
  return doc;
}

/** The signed-in session, or null. */
export async function currentSession() {
  try {
    const s = await request("GET", "/console/api/session");
    csrf = s.csrfToken;
    return s;
  } catch (e) {
    if (e.status === 401) return null;
    throw e;
  }
}

export async function login(accessKeyId, secretAccessKey) {
  const s = await request("POST", "/console/api/login", { accessKeyId, secretAccessKey });
  csrf = s.csrfToken;
  return s;
}

export async function logout() {
  await request("POST", "/console/api/logout");
  csrf = "";
}

/** Run an AgentCore operation with its input as one flat object (the API's member names). */
export function call(operation, input = {}) {
  const members = Object.fromEntries(
    Object.entries(input).filter(([, v]) => v !== undefined && v !== null && v !== ""),
  );
  return request("POST", `/console/api/call/${operation}`, members);
}

/** An extension endpoint (payment history, spend, policies) relative to /console/api/ext/. */
export function ext(method, path, body) {
  return request(method, `/console/api/ext/${path}`, body);
}

/** Download an extension endpoint's body (an export) as a file named `filename`. The
 * request carries the CSRF header like every call, so it is fetched, not linked. */
export async function download(path, filename) {
  const r = await fetch(`/console/api/ext/${path}`, {
    headers: { "X-Purser-Csrf": csrf },
    credentials: "same-origin",
  });
  if (!r.ok) {
    let doc = {};
    try {
      doc = await r.json();
    } catch {}
    throw new ApiError(r.status, doc.__type, doc.message);
  }
  const url = URL.createObjectURL(await r.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}
