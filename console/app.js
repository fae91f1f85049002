// The console's shell: sign-in with the admin token, the tenant picker, the section list and a
// hash router (`#/t/{tenant}/{section}`), so that reloads and the back button keep the place.
// At /portal the same page is the tenant portal instead (portal.js): no admin token, no picker.
import { api, session } from "./api.js";
import { h, field, errorBox } from "./ui.js";
import * as tenants from "./tenants.js";
import * as eventTypes from "./event-types.js";
import { SECTIONS } from "./sections.js";
import { inPortal } from "./portal-session.js";
import { startPortal } from "./portal.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const picker = document.getElementById("tenant-pick");
let tenantIds = [];
let routed = 0;

/** The gateway's own sections (no tenant): [id, name, render], the first the default. */
const GATEWAY = [
  ["tenants", "Tenants", (main, ctx) => tenants.render(main, ctx)],
  ["event-types", "Event types", (main, ctx) => eventTypes.render(main, ctx)],
];

/** Where the hash points: {tenant, section, rest}. */
function place() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "t" && parts[1]) return { tenant: parts[1], section: parts[2] || "keys", rest: parts.slice(3) };
  const own = GATEWAY.find(([id]) => id === parts[0] && id !== "tenants");
  if (own) return { tenant: null, section: own[0], rest: [] };
  return { tenant: null, section: "tenants", rest: parts.slice(1) };
}

export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

export const sectionHash = (tenant, section) => `#/t/${encodeURIComponent(tenant)}/${section}`;

function signInForm(message) {
  document.getElementById("session").hidden = true;
  nav.hidden = true;
  const input = h("input", { type: "password", autocomplete: "current-password", required: true });
  const form = h(
    "form",
    { class: "panel", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in"),
    h("p", { class: "muted" }, "The admin token (ADMIN_TOKEN) of this gateway. It is kept in this tab only, until you sign out or close it."),
    message ? errorBox({ message }) : null,
    field("Admin token", input),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Sign in")),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    session.signIn(input.value.trim());
    await start();
  });
  main.replaceChildren(form);
  input.focus();
}

async function loadTenants() {
  const list = await api("GET", "/v1/admin/tenants");
  tenantIds = (list?.data ?? []).map((t) => t.id);
  return tenantIds;
}

/** Called after a tenant is created or deleted. */
export async function tenantsChanged() {
  await loadTenants();
  fillPicker(place().tenant);
}

function fillPicker(current) {
  picker.replaceChildren(h("option", { value: "" }, "All tenants"), ...tenantIds.map((id) => h("option", { value: id, selected: id === current }, id)));
}

function fillNav({ tenant, section }) {
  const link = (href, text, on) => h("li", {}, h("a", { href, "aria-current": on ? "page" : false }, text));
  const items = [h("h2", {}, "Gateway"), h("ul", {}, GATEWAY.map(([id, name]) => link(`#/${id}`, name, !tenant && id === section)))];
  if (tenant) {
    items.push(h("h2", {}, tenant), h("ul", {}, SECTIONS.map((s) => link(sectionHash(tenant, s.id), s.name, s.id === section))));
  }
  nav.replaceChildren(...items);
}

async function route() {
  if (!session.token()) return signInForm();
  const where = place();
  fillPicker(where.tenant);
  fillNav(where);
  const own = GATEWAY.find(([id]) => id === where.section);
  const found = where.tenant ? SECTIONS.find((s) => s.id === where.section) : own && { name: own[1], render: own[2] };
  const name = found ? found.name : "Tenants";
  document.title = `${name}${where.tenant ? ` · ${where.tenant}` : ""} · edge-gateway console`;
  main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  try {
    const ctx = { tenant: where.tenant, rest: where.rest, go, tenantsChanged };
    if (found) await found.render(main, ctx);
    else main.replaceChildren(errorBox({ message: `no section ${where.section}` }));
  } catch (e) {
    if (e.status !== 401) main.replaceChildren(h("h1", {}, name), errorBox(e));
  }
  // A view the operator moved to takes the focus (and is read out); a fresh page starts at the top.
  if (routed++) main.focus({ preventScroll: true });
}

async function start() {
  try {
    await loadTenants();
  } catch (e) {
    session.signOut();
    return signInForm(e.status === 401 || e.status === 403 ? "That token was not accepted." : e.message);
  }
  document.getElementById("session").hidden = false;
  nav.hidden = false;
  await route();
}

function startConsole() {
  addEventListener("hashchange", route);
  addEventListener("signed-out", (e) => {
    session.signOut();
    signInForm(e.detail);
  });
  picker.addEventListener("change", () => go(picker.value ? sectionHash(picker.value, place().section === "tenants" ? "keys" : place().section) : "#/tenants"));
  document.getElementById("sign-out").addEventListener("click", () => {
    session.signOut();
    location.hash = "";
    signInForm();
  });
  if (session.token()) start();
  else signInForm();
}

if (inPortal()) startPortal();
else startConsole();
