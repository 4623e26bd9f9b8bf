// Peak against limit over a report's range, as an inline SVG step chart: each period is a flat
// step from its start to its end (a gap where the report has no row), the limit is a dashed
// step line, and periods over the limit are drawn in red with a dot. Pointer or arrow keys
// move a cursor that reads one period out.

import { h } from "./dom.js";

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                "Dec"];

/** "YYYY-MM-DD" or "YYYY-MM-DD HH:MM" (report time zone) → ms on a UTC-like axis, so that
 *  every label reads back exactly as the report wrote it. */
export function parseStart(value) {
  const [day, time] = value.split(" ");
  const ms = Date.UTC(+day.slice(0, 4), +day.slice(5, 7) - 1, +day.slice(8, 10));
  return time ? ms + +time.slice(0, 2) * HOUR + +time.slice(3, 5) * MINUTE : ms;
}

function periodEnd(ms, granularity) {
  if (granularity === "detailed") return ms + MINUTE;
  if (granularity === "week") return ms + 7 * DAY;
  if (granularity === "month") {
    const d = new Date(ms);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  }
  return ms + DAY;
}

function yScale(max) {
  const target = Math.max(max, 1);
  const base = 10 ** Math.floor(Math.log10(target / 4));
  let step = base;
  for (const m of [1, 2, 5, 10]) {
    step = base * m;
    if (target / step <= 5) break;
  }
  step = Math.max(1, Math.round(step));
  const top = step * Math.ceil((target * 1.1) / step);
  const ticks = [];
  for (let v = 0; v <= top; v += step) ticks.push(v);
  return { top, ticks };
}

function dayLabel(ms) {
  const d = new Date(ms);
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]}`;
}

function xTicks(x0, x1, width) {
  const span = x1 - x0;
  const most = Math.max(2, Math.floor(width / 72));
  const options = [["hour", 1], ["hour", 3], ["hour", 6], ["hour", 12], ["day", 1], ["day", 2],
                   ["day", 7], ["day", 14], ["month", 1], ["month", 3], ["month", 6],
                   ["month", 12], ["month", 60]];
  const size = { hour: HOUR, day: DAY, month: 30.4 * DAY };
  const [unit, n] = options.find(([u, k]) => span / (size[u] * k) <= most) ?? options.at(-1);
  const ticks = [];
  if (unit === "hour") {
    for (let t = Math.ceil(x0 / (n * HOUR)) * n * HOUR; t < x1; t += n * HOUR) {
      const hh = String(new Date(t).getUTCHours()).padStart(2, "0");
      ticks.push({ t, label: t % DAY === 0 ? dayLabel(t) : `${hh}:00`, strong: t % DAY === 0 });
    }
  } else if (unit === "day") {
    for (let t = Math.ceil(x0 / DAY) * DAY; t < x1; t += n * DAY) {
      ticks.push({ t, label: dayLabel(t), strong: new Date(t).getUTCDate() === 1 });
    }
  } else {
    const first = new Date(x0);
    let y = first.getUTCFullYear();
    let m = first.getUTCMonth() + (first.getUTCDate() === 1 && x0 % DAY === 0 ? 0 : 1);
    for (;;) {
      const t = Date.UTC(y, m, 1);
      if (t >= x1) break;
      const d = new Date(t);
      if (d.getUTCMonth() % n === 0) {
        ticks.push({ t, label: `${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}`,
                     strong: d.getUTCMonth() === 0 });
      }
      m += 1;
    }
  }
  return ticks;
}

function describe(point) {
  const when = point.peakTime && point.peakTime !== point.start
    ? `${point.start} (peak at ${point.peakTime})` : point.start;
  const limit = point.limit === null || point.limit === undefined ? "no limit" : `limit ${point.limit}`;
  return `${when}: peak ${point.peak}, ${limit}${point.over ? " — over the limit" : ""}`;
}

/**
 * Draw the chart into `container` (replacing its content) and return the SVG element.
 * points: [{start, peak, limit, over, peakTime}] in period order; from/to: the report range;
 * label: what the series is ("Concurrent seat · Acme"); readout: element for the read-out line.
 */
export function stepChart(container, { points, from, to, granularity, label, readout }) {
  const width = Math.max(280, Math.floor(container.clientWidth || 640));
  const height = width < 520 ? 220 : 280;
  const m = { left: 44, right: 14, top: 14, bottom: 30 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;

  const data = points.map((p) => {
    const start = parseStart(p.start);
    return { ...p, t0: start, t1: periodEnd(start, granularity) };
  });
  const x0 = Math.min(parseStart(from), ...data.map((p) => p.t0));
  const x1 = Math.max(parseStart(to) + DAY, ...data.map((p) => p.t1));
  const max = Math.max(0, ...data.map((p) => p.peak), ...data.map((p) => p.limit ?? 0));
  const { top, ticks } = yScale(max);
  const X = (t) => m.left + ((t - x0) / (x1 - x0)) * plotW;
  const Y = (v) => m.top + plotH - (v / top) * plotH;
  const r = (n) => Math.round(n * 10) / 10;

  const over = data.filter((p) => p.over);
  const peakMax = data.reduce((best, p) => (best && best.peak >= p.peak ? best : p), null);
  const summary = data.length === 0
    ? `${label}: no values in this range.`
    : `${label}: highest peak ${peakMax.peak} (${peakMax.start})`
      + (over.length ? `; over the limit in ${over.length} of ${data.length} periods.`
                     : "; never over the limit.");

  const svg = h("svg:svg", {
    class: "chart", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `Step chart of peak against limit. ${summary}`, tabindex: data.length ? 0 : null,
  });
  svg.append(h("svg:title", { text: `Peak against limit: ${label}` }));

  // Grid and axes.
  const grid = h("svg:g", { class: "c-grid", "aria-hidden": "true" });
  for (const v of ticks) {
    grid.append(h("svg:line", { x1: m.left, x2: width - m.right, y1: r(Y(v)), y2: r(Y(v)),
                                class: v === 0 ? "c-axis" : null }));
    grid.append(h("svg:text", { x: m.left - 8, y: r(Y(v)) + 4, class: "c-ylabel",
                                "text-anchor": "end", text: String(v) }));
  }
  for (const tick of xTicks(x0, x1, plotW)) {
    const x = r(X(tick.t));
    grid.append(h("svg:line", { x1: x, x2: x, y1: m.top, y2: m.top + plotH + 4,
                                class: tick.strong ? "c-vline strong" : "c-vline" }));
    if (x + 44 < width) {
      grid.append(h("svg:text", { x: x + 3, y: height - 10, class: "c-xlabel",
                                  text: tick.label }));
    }
  }
  svg.append(grid);

  // Peak: filled steps, broken where a period has no row.
  let area = "";
  let line = "";
  let limitLine = "";
  let prev = null;
  for (const p of data) {
    const [xa, xb, y] = [r(X(p.t0)), r(X(p.t1)), r(Y(p.peak))];
    const joined = prev && prev.t1 === p.t0;
    line += joined ? `V${y}H${xb}` : `M${xa} ${y}H${xb}`;
    area += `M${xa} ${r(Y(0))}V${y}H${xb}V${r(Y(0))}Z`;
    if (p.limit !== null && p.limit !== undefined) {
      const yl = r(Y(p.limit));
      const limitJoined = joined && prev.limit !== null && prev.limit !== undefined;
      limitLine += limitJoined ? `V${yl}H${xb}` : `M${xa} ${yl}H${xb}`;
    }
    prev = p;
  }
  const marks = h("svg:g", { "aria-hidden": "true" });
  marks.append(h("svg:path", { d: area || "M0 0", class: "c-area" }));
  if (limitLine) marks.append(h("svg:path", { d: limitLine, class: "c-limit" }));
  marks.append(h("svg:path", { d: line || "M0 0", class: "c-peak" }));
  for (const p of over) {
    const y = r(Y(p.peak));
    marks.append(h("svg:path", { d: `M${r(X(p.t0))} ${y}H${r(X(p.t1))}`, class: "c-over" }));
    if (over.length <= 400) {
      marks.append(h("svg:circle", { cx: r((X(p.t0) + X(p.t1)) / 2), cy: y, r: 4,
                                     class: "c-over-dot" }));
    }
  }
  svg.append(marks);

  // Cursor: pointer and arrow keys read one period out.
  const cursor = h("svg:g", { class: "c-cursor", "aria-hidden": "true", visibility: "hidden" });
  const cursorLine = h("svg:line", { y1: m.top, y2: m.top + plotH });
  const cursorDot = h("svg:circle", { r: 4.5 });
  cursor.append(cursorLine, cursorDot);
  svg.append(cursor);
  const hit = h("svg:rect", { x: m.left, y: m.top, width: plotW, height: plotH,
                              class: "c-hit" });
  svg.append(hit);

  let index = -1;
  const say = (text) => { if (readout) readout.textContent = text; };
  const select = (i) => {
    if (i < 0 || i >= data.length) return;
    index = i;
    const p = data[i];
    const x = r((X(p.t0) + X(p.t1)) / 2);
    cursorLine.setAttribute("x1", x);
    cursorLine.setAttribute("x2", x);
    cursorDot.setAttribute("cx", x);
    cursorDot.setAttribute("cy", r(Y(p.peak)));
    cursor.setAttribute("class", p.over ? "c-cursor over" : "c-cursor");
    cursor.setAttribute("visibility", "visible");
    say(describe(p));
  };
  const clearCursor = () => {
    cursor.setAttribute("visibility", "hidden");
    say(summary);
  };
  const nearest = (t) => {
    let lo = 0;
    let hi = data.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (data[mid].t1 <= t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  if (data.length) {
    hit.addEventListener("pointermove", (event) => {
      const box = svg.getBoundingClientRect();
      const x = ((event.clientX - box.left) / box.width) * width;
      select(nearest(x0 + ((x - m.left) / plotW) * (x1 - x0)));
    });
    hit.addEventListener("pointerleave", clearCursor);
    svg.addEventListener("blur", clearCursor);
    svg.addEventListener("focus", () => select(index < 0 ? 0 : index));
    svg.addEventListener("keydown", (event) => {
      const moves = { ArrowLeft: index - 1, ArrowRight: index + 1, Home: 0,
                      End: data.length - 1, PageUp: index - 10, PageDown: index + 10 };
      if (!(event.key in moves)) return;
      event.preventDefault();
      select(Math.min(data.length - 1, Math.max(0, moves[event.key])));
    });
  }

  container.replaceChildren(svg);
  say(summary);
  return svg;
}
