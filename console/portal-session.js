// The tenant portal's session. The page at /portal?link=... takes the link out of the address bar
// (so it is not kept in the history, a bookmark or a shared screen), spends it once at
// POST /v1/portal/session, and holds the session token in this module's memory only: not in
// localStorage, not in sessionStorage, so nothing outlives the tab's page and no other page of
// this origin (the operator's console among them) can read it. A reload ends the session; the
// link, spent, does not open another: whoever gave it gives a new one.

/** Whether this page is the portal: the console's files, served at /portal. */
// Portal mode is where the page's modules come from: the gateway serves the portal's page
// with them under /portal/ (whatever the address's exact path), the console's under /console/.
export const inPortal = () => new URL(import.meta.url).pathname.startsWith("/portal/");

let held = null;

export const portalSession = {
  token: () => held?.session ?? null,
  tenant: () => held?.tenant ?? null,
  capabilities: () => held?.capabilities ?? [],
  expiresAt: () => held?.expires_at ?? 0,
  end: () => (held = null),
};

/** A portal that cannot open or has ended: `message` says why and what to do. */
export class PortalClosed extends Error {}

const ASK_AGAIN = "Ask whoever gave you the link for a new one.";

/** Takes the link from the address bar, and spends it for a session; rejects with PortalClosed. */
export async function openSession() {
  const url = new URL(location.href);
  const link = url.searchParams.get("link");
  url.searchParams.delete("link");
  history.replaceState(history.state, "", url.pathname + url.search + url.hash);
  if (!link) throw new PortalClosed(`This portal page has no link to open: a link works once, and a reload ends its session. ${ASK_AGAIN}`);
  let res;
  try {
    res = await fetch("/v1/portal/session", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ link }),
      cache: "no-store",
    });
  } catch {
    throw new PortalClosed("The gateway could not be reached. Check the connection, then open the link again.");
  }
  const data = await res.json().catch(() => null);
  if (res.status === 401) throw new PortalClosed(`This portal link cannot be opened: it has expired, was used already, or is not valid. ${ASK_AGAIN}`);
  if (!res.ok || typeof data?.session !== "string") throw new PortalClosed(`The portal could not open: ${data?.error?.message ?? res.status}.`);
  held = data;
  return held;
}
