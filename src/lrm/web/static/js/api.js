// The report API client: every request of the page goes through `request`, with the
// signed-in token. A 401 signs the user out, a 503 says the database is down; both are
// reported to the handlers `main.js` installs, so the views only deal with their own errors.

const TOKEN_KEY = "lrm.token";

export const UNAVAILABLE = "The database is not available. lrm keeps trying: try again in a moment.";
export const UNREACHABLE = "The lrm server cannot be reached. Check the connection and try again.";

export class ApiError extends Error {
  constructor(status, message, problems = []) {
    super(message);
    this.status = status;
    this.problems = problems;
  }
}

/** The token lives in sessionStorage: this tab only, gone when it closes or on sign-out. */
export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set token(value) {
    sessionStorage.setItem(TOKEN_KEY, value);
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

const handlers = { unauthorized: () => {}, unavailable: () => {} };

export function onTrouble({ unauthorized, unavailable }) {
  handlers.unauthorized = unauthorized;
  handlers.unavailable = unavailable;
}

/** URL of an API path ("/api/v1/…") with query parameters (arrays become repeated
 *  parameters). It is resolved against the page's own URL, so lrm also works behind a reverse
 *  proxy that serves it under a path prefix. */
export function apiUrl(path, params = {}) {
  const url = new URL(path.replace(/^\//, ""), document.baseURI);
  for (const [name, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === "") continue;
    for (const v of Array.isArray(value) ? value : [value]) url.searchParams.append(name, v);
  }
  return url;
}

/**
 * One API call. Options: method, params, json (a body sent as JSON), body + contentType (raw),
 * token (default: the session's), global (default true: 401/503 go to the page handlers).
 * Resolves to the Response when it is 2xx; otherwise throws an ApiError carrying the API's
 * `{error, status, problems}` body.
 */
export async function request(path, options = {}) {
  const { method = "GET", params, json, body, contentType, token = session.token } = options;
  const global = options.global ?? true;
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  let payload = body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(json);
  } else if (contentType) headers["Content-Type"] = contentType;

  let response;
  try {
    response = await fetch(apiUrl(path, params), { method, headers, body: payload,
                                                   cache: "no-store" });
  } catch {
    throw new ApiError(0, UNREACHABLE);
  }
  if (response.ok) return response;

  let message = `${response.status} ${response.statusText}`.trim();
  let problems = [];
  try {
    const data = await response.json();
    if (data && typeof data.error === "string") message = data.error;
    if (data && Array.isArray(data.problems)) problems = data.problems.map(String);
  } catch {
    // Not a JSON error body: keep the status line.
  }
  if (response.status === 503) message = UNAVAILABLE;
  const error = new ApiError(response.status, message, problems);
  if (global && response.status === 401) handlers.unauthorized(error);
  if (global && response.status === 503) handlers.unavailable(error);
  throw error;
}

export async function getJson(path, options = {}) {
  const response = await request(path, options);
  return response.json();
}

/** Fetch `path` (with the Authorization header) and hand the body to the browser as a file. */
export async function download(path, params, fallbackName) {
  const response = await request(path, { params });
  const blob = await response.blob();
  const disposition = response.headers.get("Content-Disposition") ?? "";
  const name = /filename="([^"]+)"/.exec(disposition)?.[1] ?? fallbackName;
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return name;
}
