// Calls to /api/v1/ with the session cookie. A 401 sends the browser to the log-in page.

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

export function toLogin() {
  const here = location.pathname + location.search;
  location.assign(`/login?next=${encodeURIComponent(here)}`);
}

export async function api(path, { method = "GET", body, signal } = {}) {
  const init = { method, signal, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const answer = await fetch(`/api/v1${path}`, init);
  if (answer.status === 401) {
    toLogin();
    throw new ApiError(401, "not logged in");
  }
  if (!answer.ok) {
    let detail = answer.statusText;
    try {
      detail = (await answer.json()).detail ?? detail;
    } catch {
      // a body that is not JSON: keep the status text
    }
    throw new ApiError(answer.status, detail);
  }
  return answer.status === 204 ? null : answer.json();
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    for (const one of [].concat(value)) if (one !== undefined && one !== null) search.append(key, one);
  }
  return search.toString();
}
