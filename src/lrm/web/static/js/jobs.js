// Job runs (provider): recent nightly runs with their status and what each source did.

import { ApiError, getJson } from "./api.js";
import { $, formatNumber, h, hideMessage, shortDateTime, showMessage } from "./dom.js";

const STATUS_CLASS = { succeeded: "ok", failed: "bad", fenced: "warn", running: "info" };
const SOURCE_CLASS = { ok: "ok", degraded: "warn", failed: "bad" };

export function init() {
  $("#jobs-refresh").addEventListener("click", load);
}

export function reset() {
  $("#jobs-table tbody").replaceChildren();
}

export function show() {
  load();
}

function took(run) {
  if (!run.started_at || !run.finished_at) return run.status === "running" ? "running" : "";
  const seconds = (Date.parse(run.finished_at) - Date.parse(run.started_at)) / 1000;
  if (!Number.isFinite(seconds)) return "";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

function sources(outcome) {
  const chips = [];
  const notes = [];
  for (const [name, value] of Object.entries(outcome ?? {})) {
    if (value && typeof value === "object" && "status" in value) {
      const detail = value.error ?? (value.rows !== undefined ? `${formatNumber(value.rows)} rows`
        : Array.isArray(value.servers) ? value.servers.join(", ") : "");
      const tone = SOURCE_CLASS[value.status] ?? "info";
      chips.push(h("li", { class: `chip-status ${tone}`, title: detail || null },
        h("strong", {}, name), ` ${value.status}`,
        detail ? h("span", { class: "detail" }, ` · ${detail}`) : null));
    } else if (value && typeof value === "object") {
      const parts = Object.entries(value).map(([k, v]) => `${k.replaceAll("_", " ")} ${v}`);
      if (parts.length) notes.push(`${name.replaceAll("_", " ")}: ${parts.join(", ")}`);
    } else if (value !== null && value !== undefined && value !== 0) {
      notes.push(`${name.replaceAll("_", " ")}: ${value}`);
    }
  }
  return [chips.length ? h("ul", { class: "chips" }, chips) : null,
          notes.length ? h("p", { class: "muted small" }, notes.join(" · ")) : null];
}

function sessions(run) {
  const setAside = Object.values(run.sessions_set_aside ?? {}).reduce((a, b) => a + b, 0);
  return h("td", { class: "num sessions" },
    h("div", {}, `${formatNumber(run.sessions_read)} read`),
    run.sessions_deduplicated
      ? h("div", { class: "muted small" }, `${formatNumber(run.sessions_deduplicated)} duplicates`)
      : null,
    setAside ? h("div", { class: "muted small", title: Object.entries(run.sessions_set_aside)
      .map(([k, v]) => `${k}: ${v}`).join(", ") }, `${formatNumber(setAside)} set aside`) : null);
}

async function load() {
  const button = $("#jobs-refresh");
  button.disabled = true;
  try {
    const runs = await getJson("/api/v1/jobs", { params: { limit: 100 } });
    hideMessage($("#jobs-error"));
    $("#jobs-table tbody").replaceChildren(...runs.map((run) => h("tr", {
      class: run.status === "failed" ? "failed" : null },
      h("td", { class: "nowrap" }, run.business_date),
      h("td", {}, h("span", { class: `badge ${STATUS_CLASS[run.status] ?? ""}` }, run.status)),
      h("td", { class: "nowrap" }, run.instance_id,
        h("span", { class: "muted small" }, ` · epoch ${run.epoch} · ${run.trigger}`)),
      h("td", { class: "nowrap" }, shortDateTime(run.started_at)),
      h("td", { class: "nowrap" }, took(run)),
      sessions(run),
      h("td", { class: "sources" }, sources(run.source_outcome),
        run.error ? h("p", { class: "run-error" }, run.error) : null))));
    $("#jobs-empty").hidden = runs.length > 0;
  } catch (error) {
    if (error instanceof ApiError && error.status !== 401) {
      showMessage($("#jobs-error"), "error", `The job runs could not be loaded: ${error.message}`);
    }
  } finally {
    button.disabled = false;
  }
}
