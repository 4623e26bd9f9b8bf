// Provisioned counts (provider): the history of limits per tenant and item; add or change one
// with an effective date (PUT), delete one (DELETE, confirmed in place).

import { ApiError, getJson, request } from "./api.js";
import { $, h, hideMessage, shortDateTime, showMessage, today } from "./dom.js";

let app = null;
let loaded = false;

function option(value, text, selected = false) {
  return h("option", { value, selected }, text);
}

export function refreshChoices(current) {
  app = current;
  const tenant = $("#p-tenant");
  const item = $("#p-item");
  const filter = $("#p-filter");
  const [t, i, f] = [tenant.value, item.value, filter.value];
  tenant.replaceChildren(...app.tenants.map((x) => option(x.id, `${x.name} (${x.id})`,
                                                          String(x.id) === t)));
  item.replaceChildren(...app.items.map((x) => option(
    x.id, `${x.name} (${x.id})${x.kind === "bundle" ? " · bundle" : ""}`, String(x.id) === i)));
  filter.replaceChildren(option("", "All tenants"), ...app.tenants.map((x) =>
    option(x.id, x.name, String(x.id) === f)));
}

export function init() {
  $("#prov-form").addEventListener("submit", (event) => {
    event.preventDefault();
    save();
  });
  $("#p-filter").addEventListener("change", load);
}

export function setUp(current) {
  app = current;
  loaded = false;
  if (!app.provider) return;
  refreshChoices(app);
  if (!$("#p-date").value) $("#p-date").value = today();
}

export function reset() {
  loaded = false;
  $("#prov-table tbody").replaceChildren();
  hideMessage($("#prov-form-message"));
  $("#prov-form").reset();
}

export function show() {
  if (!loaded) load();
}

function key(row) {
  return `${row.tenant_id}/${row.item_id}/${row.effective_date}`;
}

async function load(highlight = null) {
  const errorBox = $("#prov-list-error");
  const tenant = $("#p-filter").value;
  try {
    const rows = await getJson("/api/v1/provisioned-counts",
                               { params: tenant ? { tenant } : {} });
    hideMessage(errorBox);
    loaded = true;
    draw(rows, highlight);
  } catch (error) {
    if (error instanceof ApiError && error.status !== 401) {
      showMessage(errorBox, "error", `The provisioned counts could not be loaded: ${error.message}`);
    }
  }
}

function draw(rows, highlight) {
  rows.sort((a, b) => app.tenantName(a.tenant_id).localeCompare(app.tenantName(b.tenant_id))
    || a.item_id - b.item_id || (a.effective_date < b.effective_date ? 1 : -1));
  const tbody = $("#prov-table tbody");
  tbody.replaceChildren(...rows.map((row) => {
    const tr = h("tr", { class: key(row) === highlight ? "fresh" : null,
                         dataset: { key: key(row) } },
      h("td", {}, app.tenantName(row.tenant_id), h("span", { class: "id" }, ` ${row.tenant_id}`)),
      h("td", {}, app.itemName(row.item_id), h("span", { class: "id" }, ` ${row.item_id}`)),
      h("td", {}, row.effective_date),
      h("td", { class: "num" }, String(row.quantity)),
      h("td", { class: "muted nowrap" }, shortDateTime(row.updated_at)),
      actions(row));
    return tr;
  }));
  $("#prov-empty").hidden = rows.length > 0;
  $("#prov-table").hidden = rows.length === 0;
}

function actions(row) {
  const td = h("td", { class: "actions" });
  const what = `${app.tenantName(row.tenant_id)}, ${app.itemName(row.item_id)}, from `
    + row.effective_date;
  const normal = () => {
    td.replaceChildren(
      h("button", { type: "button", class: "button small ghost", "aria-label": `Change ${what}`,
                    onclick: () => edit(row) }, "Change"),
      h("button", { type: "button", class: "button small ghost danger",
                    "aria-label": `Delete ${what}`, onclick: confirm }, "Delete"));
  };
  const confirm = () => {
    const yes = h("button", { type: "button", class: "button small danger-solid",
                              "aria-label": `Confirm: delete ${what}`, onclick: () => remove(row) },
                  "Confirm delete");
    td.replaceChildren(yes, h("button", { type: "button", class: "button small ghost",
                                          onclick: () => { normal(); td.querySelector("button")?.focus(); } },
                              "Cancel"));
    yes.focus();
  };
  normal();
  return td;
}

function edit(row) {
  $("#p-tenant").value = String(row.tenant_id);
  $("#p-item").value = String(row.item_id);
  $("#p-date").value = row.effective_date;
  $("#p-quantity").value = String(row.quantity);
  hideMessage($("#prov-form-message"));
  $("#p-quantity").focus();
  $("#p-quantity").select();
}

async function save() {
  const box = $("#prov-form-message");
  const body = {
    tenant_id: Number($("#p-tenant").value),
    item_id: Number($("#p-item").value),
    effective_date: $("#p-date").value,
    quantity: $("#p-quantity").value === "" ? null : Number($("#p-quantity").value),
  };
  const problems = [];
  if (!body.tenant_id) problems.push("Tenant: choose a tenant.");
  if (!body.item_id) problems.push("Item: choose an item or bundle.");
  if (!body.effective_date) problems.push("Effective from: choose a date.");
  if (body.quantity === null || !Number.isInteger(body.quantity) || body.quantity < 0) {
    problems.push("Quantity: enter a whole number, 0 or more.");
  }
  if (problems.length) {
    showMessage(box, "error", problems.length === 1 ? problems[0] : "Check the form:",
                problems.length === 1 ? [] : problems);
    return;
  }
  const button = $("#prov-save");
  button.disabled = true;
  try {
    const response = await request("/api/v1/provisioned-counts", { method: "PUT", json: body });
    const row = await response.json();
    const verb = response.status === 201 ? "Added" : "Changed";
    showMessage(box, "ok", `${verb}: ${app.tenantName(row.tenant_id)}, `
      + `${app.itemName(row.item_id)}, from ${row.effective_date}: ${row.quantity}.`);
    await load(key(row));
  } catch (error) {
    if (error instanceof ApiError && error.status !== 401) {
      showMessage(box, "error", error.message, error.problems);
    }
  } finally {
    button.disabled = false;
  }
}

async function remove(row) {
  const box = $("#prov-form-message");
  try {
    await request("/api/v1/provisioned-counts", {
      method: "DELETE",
      json: { tenant_id: row.tenant_id, item_id: row.item_id,
              effective_date: row.effective_date },
    });
    showMessage(box, "ok", `Deleted: ${app.tenantName(row.tenant_id)}, `
      + `${app.itemName(row.item_id)}, from ${row.effective_date}.`);
  } catch (error) {
    if (error instanceof ApiError && error.status !== 401) {
      showMessage(box, "error", error.message, error.problems);
    }
  }
  await load();
}
