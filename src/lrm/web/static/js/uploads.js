// Uploads (provider): bundle sets and entitlement files as XML. The server checks the file and
// answers 422 with every problem, shown next to the file; nothing is stored on error.

import { ApiError, getJson, request } from "./api.js";
import { $, $$, h, hideMessage, showMessage } from "./dom.js";

let app = null;
let loaded = false;

export function init() {
  for (const form of $$("form.upload")) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      upload(form);
    });
    form.querySelector("input[type=file]").addEventListener("change", () => {
      hideMessage(form.querySelector(".upload-result .message"));
    });
  }
}

export function setUp(current) {
  app = current;
  loaded = false;
}

export function reset() {
  loaded = false;
  for (const form of $$("form.upload")) {
    form.reset();
    hideMessage(form.querySelector(".upload-result .message"));
  }
}

export function show() {
  if (!loaded) load();
}

function summaryText(kind, result) {
  const s = result.summary ?? {};
  if (kind === "bundle-set") {
    return `Stored bundle set ${result.id} “${s.name}”: ${s.bundles} `
      + `${s.bundles === 1 ? "bundle" : "bundles"}, valid ${s.valid_from} – ${s.valid_to}. `
      + "It applies to dates computed from now on.";
  }
  return `Stored entitlement file ${result.id} for ${s.customer_name}: ${s.lines} `
    + `${s.lines === 1 ? "line" : "lines"}, valid ${s.valid_from} – ${s.valid_to}.`;
}

async function upload(form) {
  const input = form.querySelector("input[type=file]");
  const box = form.querySelector(".upload-result .message");
  const button = form.querySelector("button[type=submit]");
  const file = input.files?.[0];
  if (!file) {
    showMessage(box, "error", "Choose an XML file first.");
    input.focus();
    return;
  }
  button.disabled = true;
  const label = button.textContent;
  button.textContent = "Uploading…";
  try {
    const body = await file.arrayBuffer();
    const response = await request(form.dataset.endpoint, { method: "POST", body,
                                                            contentType: "application/xml" });
    const result = await response.json();
    showMessage(box, "ok", summaryText(result.kind, result));
    input.value = "";
    await load();
    if (result.kind === "bundle-set") await app.reloadItems();
  } catch (error) {
    if (error instanceof ApiError && error.status !== 401) {
      const count = error.problems.length;
      showMessage(box, "error",
        `${file.name} was refused${count > 1 ? ` (${count} problems)` : ""}: nothing was stored.`,
        count ? error.problems : [error.message]);
    }
  } finally {
    button.disabled = false;
    button.textContent = label;
  }
}

async function load() {
  try {
    const [sets, files] = await Promise.all([getJson("/api/v1/bundle-sets"),
                                             getJson("/api/v1/entitlements")]);
    loaded = true;
    drawSets(sets);
    drawEntitlements(files);
  } catch (error) {
    if (error instanceof ApiError && error.status !== 401) {
      showMessage($("#bundle-set-list"), "error", `The uploads could not be loaded: ${error.message}`);
    }
  }
}

function names(ids) {
  return ids.map((i) => app.itemName(i)).join(", ");
}

function entry(title, id, meta, lines) {
  return h("article", { class: "upload-entry" },
    h("h3", {}, title, h("span", { class: "id" }, ` ${id}`)),
    h("p", { class: "muted small" }, meta),
    h("ul", { class: "plain" }, lines));
}

function drawSets(sets) {
  const box = $("#bundle-set-list");
  box.className = "";
  if (!sets.length) {
    box.replaceChildren(h("p", { class: "empty-line" }, "No bundle set uploaded yet."));
    return;
  }
  box.replaceChildren(...sets.map((s) => entry(
    s.name, s.id, `Issued ${s.issue_date} · valid ${s.valid_from} – ${s.valid_to}`,
    s.bundles.map((b) => {
      const rule = `includes ${names(b.include_items)}`
        + (b.exclude_items.length ? `; excludes ${names(b.exclude_items)}` : "");
      return h("li", {}, h("span", { class: "id" }, `${b.id} `), b.name,
               h("span", { class: "muted small" }, ` — ${rule}`));
    }))));
}

function drawEntitlements(files) {
  const box = $("#entitlement-list");
  box.className = "";
  if (!files.length) {
    box.replaceChildren(h("p", { class: "empty-line" }, "No entitlement file uploaded yet."));
    return;
  }
  box.replaceChildren(...files.map((e) => entry(
    e.customer_name, e.id, `Issued ${e.issue_date} · valid ${e.valid_from} – ${e.valid_to}`,
    e.lines.map((line) => {
      const burst = line.burst_limit === null || line.burst_limit === undefined
        ? "" : ` (burst ${line.burst_limit})`;
      const type = line.license_type ? ` · ${line.license_type}` : "";
      return h("li", {}, `${app.itemName(line.item_id)}: ${line.quantity}`,
               h("span", { class: "muted small" }, burst + type));
    }))));
}
