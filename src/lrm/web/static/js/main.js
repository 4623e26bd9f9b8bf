// The page: sign-in, what the token may see, navigation between the views, sign-out.
//
// What a token may see comes from the API itself: /api/v1/tenants lists its tenants, and
// /api/v1/jobs answers 403 to a tenant token, which is how the page knows to hide the provider
// views. The server enforces every rule; hiding is only to keep the page tidy.

import { ApiError, UNAVAILABLE, getJson, onTrouble, request, session } from "./api.js";
import { $, $$, hideMessage, showMessage } from "./dom.js";
import * as jobs from "./jobs.js";
import * as provisioning from "./provisioning.js";
import * as report from "./report.js";
import * as uploads from "./uploads.js";

const VIEWS = { report, provisioning, uploads, jobs };
const PROVIDER_VIEWS = new Set(["provisioning", "uploads", "jobs"]);

/** What the signed-in token may see; shared with the views. */
export const app = {
  provider: false,
  tenants: [],
  items: [],
  tenantName(id) {
    return this.tenants.find((t) => t.id === id)?.name ?? String(id);
  },
  itemName(id) {
    return this.items.find((i) => i.id === id)?.name ?? String(id);
  },
  async reloadItems() {
    this.items = await getJson("/api/v1/sellable-items");
    report.refreshItems(this);
    provisioning.refreshChoices(this);
  },
};

let signedIn = false;

async function identify(token) {
  const opts = { token, global: false };
  const [tenants, items] = await Promise.all([
    getJson("/api/v1/tenants", opts), getJson("/api/v1/sellable-items", opts)]);
  let provider = false;
  try {
    await request("/api/v1/jobs", { ...opts, params: { limit: 1 } });
    provider = true;
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 403) throw error;
  }
  return { tenants, items, provider };
}

function signInMessage(error) {
  if (!(error instanceof ApiError)) return "Signing in failed unexpectedly. Try again.";
  if (error.status === 401) return "This token is unknown or has been revoked. Check it and try again.";
  if (error.status === 503) return UNAVAILABLE;
  return error.message;
}

function showSignIn(message = "", token = "") {
  signedIn = false;
  $("#topbar").hidden = true;
  hideBanner();
  for (const name of Object.keys(VIEWS)) $(`#view-${name}`).hidden = true;
  $("#view-signin").hidden = false;
  const box = $("#signin-message");
  if (message) showMessage(box, "error", message);
  else hideMessage(box);
  document.title = "Sign in · lrm";
  const input = $("#token");
  input.value = token;
  input.focus();
}

function enter(identity) {
  Object.assign(app, identity);
  signedIn = true;
  $("#view-signin").hidden = true;
  $("#topbar").hidden = false;
  for (const el of $$("[data-provider]")) {
    el.hidden = !app.provider;
    if (el.tagName === "OPTION") el.disabled = !app.provider;
  }
  const who = $("#who");
  if (app.provider) {
    who.textContent = "Provider";
    who.title = "Provider token: every tenant, the system report and the provider pages";
  } else {
    const names = app.tenants.map((t) => t.name);
    who.textContent = names.length === 1 ? names[0] : `${names.length} tenants`;
    who.title = `Tenant token: ${names.join(", ") || "no tenants"}`;
  }
  for (const module of Object.values(VIEWS)) module.setUp?.(app);
  route();
}

async function signIn(token) {
  const button = $("#signin-button");
  button.disabled = true;
  button.textContent = "Signing in…";
  try {
    const identity = await identify(token);
    session.token = token;
    enter(identity);
  } catch (error) {
    if (!(error instanceof ApiError)) console.error(error);
    session.clear();
    // Keep a typed token when the server, not the token, is the problem.
    const unknown = error instanceof ApiError && error.status === 401;
    showSignIn(signInMessage(error), unknown ? "" : token);
  } finally {
    button.disabled = false;
    button.textContent = "Sign in";
  }
}

function signOut(message = "") {
  session.clear();
  Object.assign(app, { provider: false, tenants: [], items: [] });
  for (const view of Object.values(VIEWS)) view.reset?.();
  if (window.location.hash) history.replaceState(null, "", window.location.pathname);
  showSignIn(message);
}

function showBanner(text) {
  $("#banner-text").textContent = text;
  $("#banner").hidden = false;
}

function hideBanner() {
  $("#banner").hidden = true;
}

function route() {
  if (!signedIn) return;
  let name = window.location.hash.replace(/^#/, "") || "report";
  if (!(name in VIEWS) || (PROVIDER_VIEWS.has(name) && !app.provider)) name = "report";
  for (const [view, module] of Object.entries(VIEWS)) {
    const section = $(`#view-${view}`);
    const active = view === name;
    section.hidden = !active;
    if (active) module.show?.(app);
  }
  for (const link of $$(".tabs a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const title = $(`#view-${name} h1`).textContent.trim();
  document.title = `${title} · lrm`;
}

function boot() {
  onTrouble({
    unauthorized: () => signOut("Your token is no longer accepted (unknown or revoked). "
                                + "Sign in again."),
    unavailable: () => showBanner(UNAVAILABLE),
  });
  $("#signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("#token").value.trim();
    if (!token) {
      showMessage($("#signin-message"), "error", "Enter your API token.");
      $("#token").focus();
      return;
    }
    signIn(token);
  });
  $("#sign-out").addEventListener("click", () => signOut());
  $("#banner-close").addEventListener("click", hideBanner);
  window.addEventListener("hashchange", () => {
    route();
    $("#main").focus({ preventScroll: true });
  });
  for (const [name, module] of Object.entries(VIEWS)) module.init?.(app, name);

  const token = session.token;
  if (token) {
    $("#view-signin").hidden = true; // no sign-in flash while a kept token is checked
    signIn(token);
  } else showSignIn();
}

boot();
