// Small DOM helpers: element building without innerHTML (no markup is ever built from data),
// messages, and formatting shared by the views.

const SVG_NS = "http://www.w3.org/2000/svg";

/** Build an element. `tag` "svg:path" makes an SVG element. Attributes: `class`, `text`,
 *  `dataset`, `on<event>` listeners, booleans (true = present, false/null = absent). */
export function h(tag, attrs = {}, ...children) {
  const svg = tag.startsWith("svg:");
  const el = svg ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") el.textContent = String(value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

/** Show `text` (and an optional list of problems) in a message box; kind: error|ok|info. */
export function showMessage(el, kind, text, problems = []) {
  el.replaceChildren();
  el.className = `message ${kind}`;
  el.append(h("p", {}, text));
  const extra = problems.filter((p) => p && p !== text);
  if (extra.length) el.append(h("ul", { class: "problems" }, extra.map((p) => h("li", {}, p))));
  el.hidden = false;
}

export function hideMessage(el) {
  el.hidden = true;
  el.replaceChildren();
}

/** Today as YYYY-MM-DD in the browser's calendar. */
export function today() {
  return isoDate(new Date());
}

export function isoDate(d) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** "2026-11-25T08:45:03+00:00" → "2026-11-25 08:45" in the browser's time zone. */
export function shortDateTime(value) {
  if (!value) return "";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return value;
  const pad = (n) => String(n).padStart(2, "0");
  return `${isoDate(d)} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

const numbers = new Intl.NumberFormat("en-GB");
export const formatNumber = (n) => (typeof n === "number" ? numbers.format(n) : String(n ?? ""));

/** Collapse sorted ISO dates into runs: ["2026-11-07", "2026-11-08", "2026-11-11"] →
 *  ["2026-11-07 – 2026-11-08", "2026-11-11"]. */
export function dateRuns(dates) {
  const day = (s) => Date.UTC(+s.slice(0, 4), +s.slice(5, 7) - 1, +s.slice(8, 10));
  const runs = [];
  for (const value of dates) {
    const last = runs.at(-1);
    if (last && day(value) - day(last.end) === 86_400_000) last.end = value;
    else runs.push({ start: value, end: value });
  }
  return runs.map((r) => (r.start === r.end ? r.start : `${r.start} – ${r.end}`));
}
