// The tenant portal's shell: the console's page at /portal, opened by a link the operator minted
// for one tenant. It spends the link for a session (portal-session.js), names the tenant, lists
// only the sections the session's capabilities cover, and routes `#/t/{tenant}/{section}` like
// the console (so the views' own links work); the tenant is always the session's. There is no
// admin token, no tenant picker and no sign-in form here: a portal that cannot open, or whose
// session ends, says so and how to get back in.
import { api } from "./api.js";
import { h, errorBox, when } from "./ui.js";
import { granted } from "./sections.js";
import { openSession, portalSession, PortalClosed } from "./portal-session.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
let me = null;
let routed = 0;

const sectionHash = (section, ...rest) => `#/t/${[me.tenant, section, ...rest].map(encodeURIComponent).join("/")}`;

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

/** The section and what follows it in the hash; a tenant written there is not read. */
function place() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "t" && parts[2]) return { section: parts[2], rest: parts.slice(3) };
  return { section: null, rest: [] };
}

/** The portal cannot go on: only the reason shows, and nothing of the tenant's stays on screen. */
function closed(message) {
  portalSession.end();
  me = null;
  nav.hidden = true;
  nav.replaceChildren();
  document.getElementById("portal-who")?.remove();
  document.title = "Portal closed · edge-gateway";
  main.replaceChildren(h("section", { class: "panel", "aria-labelledby": "closed-title" },
    h("h1", { id: "closed-title" }, "This portal is closed"),
    errorBox({ message })));
}

function fillNav(sections, current) {
  const link = (s) => h("li", {}, h("a", { href: sectionHash(s.id), "aria-current": s.id === current ? "page" : false }, s.name));
  nav.replaceChildren(h("h2", {}, me.name ?? me.tenant), h("ul", {}, sections.map(link)));
}

async function route() {
  if (!me) return;
  const sections = granted(me.capabilities);
  const where = place();
  if (!where.section) return go(sectionHash(sections[0].id));
  fillNav(sections, where.section);
  const section = sections.find((s) => s.id === where.section);
  document.title = `${section?.name ?? "Not available"} · ${me.name ?? me.tenant} · portal`;
  main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  try {
    if (!section) {
      main.replaceChildren(h("h1", {}, "Not available"),
        errorBox({ message: "This portal link does not give access to that section." }),
        h("p", {}, h("a", { href: sectionHash(sections[0].id) }, `Go to ${sections[0].name}`)));
    } else {
      await section.render(main, { tenant: me.tenant, rest: where.rest, go, tenantsChanged: async () => {}, portal: true });
    }
  } catch (e) {
    if (me && e.status !== 401) main.replaceChildren(h("h1", {}, section?.name ?? "Portal"), errorBox(e));
  }
  if (routed++) main.focus({ preventScroll: true });
}

/** Opens the portal: the link spent for a session, the tenant's name, the sections granted. */
export async function startPortal() {
  // Nothing of the operator's console: its sign-in, picker and "Sign out" are not on this page.
  document.getElementById("session")?.remove();
  nav.hidden = true;
  main.replaceChildren(h("p", { class: "muted" }, "Opening the portal…"));
  addEventListener("signed-out", () => closed("Your portal session has ended (it expired or was refused). Ask whoever gave you the link for a new one."));
  try {
    await openSession();
    me = await api("GET", "/v1/portal/me");
  } catch (e) {
    // A refused session (401) was closed already, by the "signed-out" the call sent.
    if (e.status !== 401) closed(e instanceof PortalClosed ? e.message : `The portal could not open: ${e.message}`);
    return;
  }
  if (!granted(me.capabilities ?? []).length) return closed("This portal link gives access to nothing this page can show.");
  document.querySelector(".top").append(h("p", { id: "portal-who", class: "who" },
    h("strong", {}, me.name ?? me.tenant), h("span", { class: "muted-top" }, ` · portal until ${when(me.expires_at)}`)));
  nav.hidden = false;
  // The session ends at its time even if the page makes no call then.
  const left = me.expires_at * 1000 - Date.now();
  if (left > 0 && left < 2 ** 31) setTimeout(() => me && closed("Your portal session has expired. Ask whoever gave you the link for a new one."), left);
  addEventListener("hashchange", route);
  await route();
}
