// The report builder and its result: the table (the API's `columns`, over-limit rows marked),
// the step chart of one series at a time, the missing-dates notice and the CSV download (the
// same query with format=csv, so the file is the API's CSV byte for byte).

import { ApiError, download, getJson } from "./api.js";
import { stepChart } from "./chart.js";
import { $, $$, dateRuns, formatNumber, h, hideMessage, isoDate, showMessage } from "./dom.js";

const PAGE = 500;
const MAX_DETAILED_DAYS = 7;
const PATHS = {
  tenant: "/api/v1/reports/tenant",
  system: "/api/v1/reports/system",
  "agent-group": "/api/v1/reports/agent-group",
  "place-group": "/api/v1/reports/place-group",
};
const KIND_TITLES = { tenant: "Tenant report", system: "System report",
                      "agent-group": "Agent group report", "place-group": "Place group report" };
const GRANULARITY_WORDS = { detailed: "per minute", day: "daily", week: "weekly",
                            month: "monthly" };
const COLUMN_TITLES = {
  tenant_id: "Tenant ID", tenant_name: "Tenant", group_id: "Group ID", group_name: "Group",
  item_id: "Item ID", item_name: "Item", period_start: "Period", weekday: "Weekday",
  peak_time: "Peak time", peak_value: "Peak", limit: "Limit",
  limit_effective_date: "Limit since", over_limit: "Over limit",
};
const NUMERIC = new Set(["tenant_id", "group_id", "item_id", "peak_value", "limit"]);
const ITEM_GROUPS = [["concurrent_seat", "Seats"], ["enabled_seat", "Agents"],
                     ["port_peak", "Ports"], ["bundle", "Bundles"]];

let resizeObserver = null;
let lastApp = null; // what the signed-in token may see (set by setUp)

// ------------------------------------------------------------------------------ builder

function checkbox(name, value, text, checked = false) {
  const id = `${name}-${value}`;
  return h("div", { class: "check" },
    h("input", { type: "checkbox", id, name, value, checked }),
    h("label", { for: id }, text));
}

function fillTenants(app) {
  const box = $("#r-tenants");
  const ticked = new Set($$("input:checked", box).map((i) => i.value));
  box.replaceChildren(...app.tenants.map((t) =>
    checkbox("tenant", t.id, [t.name, h("span", { class: "id" }, ` ${t.id}`)],
             ticked.has(String(t.id)))));
  if (!app.tenants.length) box.append(h("p", { class: "empty-line" }, "No tenants visible."));
}

function fillGroups(app) {
  const kind = $("#r-kind").value;
  const select = $("#r-group");
  const key = kind === "place-group" ? "place_groups" : "agent_groups";
  const previous = select.value;
  select.replaceChildren();
  for (const tenant of app.tenants) {
    const groups = tenant[key] ?? [];
    if (!groups.length) continue;
    select.append(h("optgroup", { label: tenant.name },
      groups.map((g) => h("option", { value: g.id, selected: String(g.id) === previous },
                          `${g.name} (${g.id})`))));
  }
  if (!select.options.length) {
    select.append(h("option", { value: "", disabled: true, selected: true },
                    kind === "place-group" ? "No place groups visible" : "No agent groups visible"));
  }
}

export function refreshItems(app) {
  const box = $("#r-items");
  const ticked = new Set($$("input:checked", box).map((i) => i.value));
  box.replaceChildren();
  for (const [kind, title] of ITEM_GROUPS) {
    const items = app.items.filter((i) => i.kind === kind);
    if (!items.length) continue;
    box.append(h("p", { class: "check-group" }, title),
      ...items.map((i) => checkbox("item", i.id, [i.name, h("span", { class: "id" }, ` ${i.id}`)],
                                   ticked.has(String(i.id)))));
  }
}

function syncKind() {
  const kind = $("#r-kind").value;
  // A token that sees one tenant has nothing to choose: its reports are that tenant's.
  $("#r-tenants-field").hidden = kind !== "tenant" || (lastApp?.tenants.length ?? 0) <= 1;
  $("#r-group-field").hidden = !kind.endsWith("-group");
}

function syncGranularity() {
  const weekly = $("#r-granularity").value === "week";
  $("#r-week-start").disabled = !weekly;
}

function preset(name) {
  const now = new Date();
  let from;
  let to;
  if (name === "this-month") {
    from = new Date(now.getFullYear(), now.getMonth(), 1);
    to = now;
  } else if (name === "last-7") {
    to = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
    from = new Date(to.getFullYear(), to.getMonth(), to.getDate() - 6);
  } else {
    from = new Date(now.getFullYear(), now.getMonth() - 1, 1);
    to = new Date(now.getFullYear(), now.getMonth(), 0);
  }
  $("#r-from").value = isoDate(from);
  $("#r-to").value = isoDate(to);
}

export function init() {
  $("#r-kind").addEventListener("change", () => {
    syncKind();
    fillGroups(lastApp);
  });
  $("#r-granularity").addEventListener("change", syncGranularity);
  for (const button of $$("[data-preset]")) {
    button.addEventListener("click", () => preset(button.dataset.preset));
  }
  $("#report-form").addEventListener("submit", (event) => {
    event.preventDefault();
    run();
  });
  preset("last-month");
  syncGranularity();
}

export function setUp(app) {
  lastApp = app;
  if (!app.provider && $("#r-kind").value === "system") $("#r-kind").value = "tenant";
  fillTenants(app);
  fillGroups(app);
  refreshItems(app);
  syncKind();
}

export function reset() {
  resizeObserver?.disconnect();
  $("#report-output").replaceChildren();
  $("#report-output").hidden = true;
  $("#report-empty").hidden = false;
  hideMessage($("#report-form-error"));
  for (const input of $$("#report-form input[type=checkbox]")) input.checked = false;
  $("#r-kind").value = "tenant";
  $("#r-granularity").value = "day";
  $("#r-week-start").value = "monday";
  preset("last-month");
  syncGranularity();
}

function query() {
  const kind = $("#r-kind").value;
  const from = $("#r-from").value;
  const to = $("#r-to").value;
  const granularity = $("#r-granularity").value;
  const problems = [];
  if (!from) problems.push("From: choose the first date.");
  if (!to) problems.push("To: choose the last date.");
  if (from && to && from > to) problems.push("From must be on or before To.");
  if (from && to && granularity === "detailed") {
    const days = (Date.parse(to) - Date.parse(from)) / 86_400_000 + 1;
    if (days > MAX_DETAILED_DAYS) {
      problems.push(`Per-minute reports cover at most ${MAX_DETAILED_DAYS} days `
                    + `(this range has ${days}); choose Day for longer ranges.`);
    }
  }
  const params = { from, to, granularity, week_start: $("#r-week-start").value };
  if (kind === "tenant") {
    params.tenant = $$("#r-tenants input:checked").map((i) => i.value);
  } else if (kind !== "system") {
    params.group = $("#r-group").value;
    if (!params.group) problems.push("Group: there is no group to choose.");
  }
  params.item = $$("#r-items input:checked").map((i) => i.value);
  return { kind, path: PATHS[kind], params, problems };
}

async function run() {
  const q = query();
  const errorBox = $("#report-form-error");
  if (q.problems.length) {
    showMessage(errorBox, "error", q.problems.length === 1 ? q.problems[0]
      : "The report cannot be made yet:", q.problems.length === 1 ? [] : q.problems);
    return;
  }
  hideMessage(errorBox);
  const button = $("#report-submit");
  const result = $("#report-result");
  button.disabled = true;
  button.textContent = "Loading…";
  result.setAttribute("aria-busy", "true");
  try {
    const doc = await getJson(q.path, { params: q.params });
    render(doc, q);
  } catch (error) {
    if (error instanceof ApiError && error.status !== 401) {
      showMessage(errorBox, "error", error.message, error.problems);
    } else if (!(error instanceof ApiError)) {
      showMessage(errorBox, "error", "The report could not be shown.", [String(error)]);
    }
  } finally {
    button.disabled = false;
    button.textContent = "Show report";
    result.setAttribute("aria-busy", "false");
  }
}

// ------------------------------------------------------------------------------ result

function subjectOf(row, kind) {
  if (kind === "system") return { key: "system", name: "System" };
  if (kind === "tenant") return { key: `t${row.tenant_id}`, name: row.tenant_name };
  return { key: `g${row.group_id}`, name: row.group_name };
}

function seriesOf(doc) {
  const series = new Map();
  for (const row of doc.rows) {
    const subject = subjectOf(row, doc.report);
    const key = `${subject.key}/${row.item_id}`;
    if (!series.has(key)) {
      series.set(key, { key, subject: subject.name, item: row.item_name, points: [] });
    }
    series.get(key).points.push({
      start: String(row.period_start), peak: row.peak_value, limit: row.limit,
      over: Boolean(row.over_limit), peakTime: row.peak_time,
    });
  }
  const subjects = new Set([...series.values()].map((s) => s.subject));
  for (const s of series.values()) {
    s.label = subjects.size > 1 ? `${s.item} · ${s.subject}` : s.item;
    s.points.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  }
  return [...series.values()];
}

function cell(column, value) {
  const col = `col-${column}`;
  if (column === "over_limit") {
    return value ? h("td", { class: col }, h("span", { class: "badge over" }, "Over"))
                 : h("td", { class: `${col} muted` }, "No");
  }
  if (value === null || value === undefined || value === "") {
    return h("td", { class: `${col} empty${NUMERIC.has(column) ? " num" : ""}` },
             h("span", { "aria-label": "none" }, "—"));
  }
  if (NUMERIC.has(column)) {
    return h("td", { class: `${col} num` },
             column.endsWith("_id") ? String(value) : formatNumber(value));
  }
  return h("td", { class: col }, String(value));
}

function renderRows(tbody, doc, count) {
  const rows = doc.rows.slice(tbody.rows.length, count);
  const fragment = document.createDocumentFragment();
  for (const row of rows) {
    fragment.append(h("tr", { class: row.over_limit ? "over" : null },
                      doc.columns.map((c) => cell(c, row[c]))));
  }
  tbody.append(fragment);
}

function table(doc) {
  const tbody = h("tbody");
  const overCount = doc.rows.filter((r) => r.over_limit).length;
  const el = h("table", { class: "data report-table", id: "report-table" },
    h("caption", { class: "sr-only" },
      `${KIND_TITLES[doc.report]}, ${doc.from} to ${doc.to}: ${doc.rows.length} rows, `
      + `${overCount} over the limit`),
    h("thead", {}, h("tr", {}, doc.columns.map((c) =>
      h("th", { scope: "col", class: NUMERIC.has(c) ? "num" : null, title: c },
        COLUMN_TITLES[c] ?? c)))),
    tbody);
  renderRows(tbody, doc, PAGE);
  const more = h("div", { class: "more" });
  const updateMore = () => {
    more.replaceChildren();
    const left = doc.rows.length - tbody.rows.length;
    if (left <= 0) return;
    more.append(
      h("span", { class: "muted" }, `Showing ${formatNumber(tbody.rows.length)} of `
        + `${formatNumber(doc.rows.length)} rows. `),
      h("button", { type: "button", class: "button small", onclick: () => {
        renderRows(tbody, doc, tbody.rows.length + PAGE);
        updateMore();
      } }, `Show ${formatNumber(Math.min(PAGE, left))} more`),
      h("button", { type: "button", class: "button small ghost", onclick: () => {
        renderRows(tbody, doc, doc.rows.length);
        updateMore();
      } }, "Show all"));
  };
  updateMore();
  return [h("div", { class: "table-wrap" }, el), more];
}

function freshnessNotice(doc) {
  const missing = doc.freshness?.missing_dates ?? [];
  if (!missing.length) return null;
  const runs = dateRuns(missing);
  const last = doc.freshness.last_complete_date;
  return h("div", { class: "notice warn", id: "freshness", role: "status" },
    h("svg:svg", { viewBox: "0 0 20 20", class: "notice-icon", "aria-hidden": "true" },
      h("svg:path", { d: "M10 2 19 18H1Z M10 8v4 M10 14.5v.5" })),
    h("div", {},
      h("strong", {}, `Missing data for ${missing.length} `
        + `${missing.length === 1 ? "date" : "dates"}: `),
      h("span", { class: "missing-dates" }, runs.join(", ")),
      h("p", { class: "small" }, "No nightly run has completed for "
        + `${missing.length === 1 ? "this date" : "these dates"}, so the values shown may be `
        + "missing or low." + (last ? ` Last complete date: ${last}.` : ""))));
}

function chartBlock(doc, series) {
  if (!series.length) return null;
  const overFirst = series.find((s) => s.points.some((p) => p.over)) ?? series[0];
  const select = h("select", { id: "chart-series" },
    series.map((s) => h("option", { value: s.key, selected: s === overFirst }, s.label)));
  const area = h("div", { class: "chart-area", id: "chart" });
  const readout = h("p", { class: "chart-readout", id: "chart-readout", "aria-live": "polite" });
  const draw = () => {
    const s = series.find((x) => x.key === select.value) ?? series[0];
    stepChart(area, { points: s.points, from: doc.from, to: doc.to,
                      granularity: doc.granularity, label: s.label, readout });
  };
  select.addEventListener("change", draw);
  const block = h("figure", { class: "panel chart-card" },
    h("figcaption", { class: "chart-head" },
      h("div", { class: "chart-title" },
        h("label", { for: "chart-series" }, "Peak against limit for"), select),
      h("ul", { class: "legend", "aria-label": "Legend" },
        h("li", {}, h("span", { class: "key peak", "aria-hidden": "true" }), "Peak"),
        h("li", {}, h("span", { class: "key limit", "aria-hidden": "true" }), "Limit"),
        h("li", {}, h("span", { class: "key over", "aria-hidden": "true" }), "Over limit"))),
    area, readout);
  return { block, draw, area };
}

function render(doc, q) {
  resizeObserver?.disconnect();
  const series = seriesOf(doc);
  const overCount = doc.rows.filter((r) => r.over_limit).length;
  const output = $("#report-output");
  const csvButton = h("button", { type: "button", class: "button", id: "csv-download" },
    h("svg:svg", { viewBox: "0 0 20 20", class: "icon", "aria-hidden": "true" },
      h("svg:path", { d: "M10 3v10M5.5 8.5 10 13l4.5-4.5M3.5 16.5h13" })),
    "Download CSV");
  const csvStatus = h("span", { class: "small muted", role: "status" });
  csvButton.addEventListener("click", async () => {
    csvButton.disabled = true;
    csvStatus.textContent = "Preparing the CSV…";
    try {
      const name = await download(q.path, { ...q.params, format: "csv" },
                                  `lrm-${doc.report}-${doc.from}-${doc.to}.csv`);
      csvStatus.textContent = `Downloaded ${name}.`;
    } catch (error) {
      csvStatus.textContent = error instanceof ApiError && error.status === 401 ? ""
        : `The CSV could not be downloaded: ${error.message}`;
    } finally {
      csvButton.disabled = false;
    }
  });

  const scope = doc.report === "tenant"
    ? [...new Set(doc.rows.map((r) => r.tenant_name))].join(", ")
    : doc.report === "system" ? "All tenants"
      : [...new Set(doc.rows.map((r) => r.group_name))].join(", ");
  const stats = [
    h("li", {}, h("span", { class: "stat-label" }, "Rows"),
      h("span", { class: "stat-value" }, formatNumber(doc.rows.length))),
    h("li", { class: overCount ? "bad" : null }, h("span", { class: "stat-label" }, "Over limit"),
      h("span", { class: "stat-value", id: "over-count" }, formatNumber(overCount))),
    h("li", {}, h("span", { class: "stat-label" }, "Highest peak"),
      h("span", { class: "stat-value" },
        doc.rows.length ? formatNumber(Math.max(...doc.rows.map((r) => r.peak_value))) : "—")),
  ];
  const head = h("div", { class: "result-head" },
    h("div", {},
      h("h2", { id: "result-heading", tabindex: "-1" }, KIND_TITLES[doc.report]),
      h("p", { class: "muted" },
        `${doc.from} – ${doc.to} · ${GRANULARITY_WORDS[doc.granularity]}`
        + (doc.granularity === "week" ? ` (weeks from ${doc.week_start})` : "")
        + (scope ? ` · ${scope}` : ""))),
    h("div", { class: "result-actions" }, csvButton, csvStatus));

  const parts = [head, h("ul", { class: "stats" }, stats), freshnessNotice(doc)];
  const chart = chartBlock(doc, series);
  if (doc.rows.length === 0) {
    parts.push(h("div", { class: "empty small-empty" },
      h("h3", {}, "No values in this range"),
      h("p", {}, "Nothing was counted for this choice. Try other dates, items or tenants.")));
  } else {
    if (chart) parts.push(chart.block);
    parts.push(...table(doc));
  }
  output.replaceChildren(...parts.filter(Boolean));
  output.hidden = false;
  $("#report-empty").hidden = true;
  if (chart) {
    chart.draw();
    let width = chart.area.clientWidth;
    resizeObserver = new ResizeObserver(() => {
      if (chart.area.clientWidth !== width) {
        width = chart.area.clientWidth;
        chart.draw();
      }
    });
    resizeObserver.observe(chart.area);
  }
  // Stacked layout (narrow screens): bring the result into view under the builder.
  if (window.matchMedia("(max-width: 1000px)").matches) {
    $("#report-output").scrollIntoView({ block: "start" });
  }
  $("#result-heading").focus({ preventScroll: true });
}

export function show() {
  // Nothing to load: the builder's choices come with the sign-in.
}
