// The admin API as the console calls it: the token from this tab's sessionStorage as a bearer
// header (never in a URL), JSON both ways, and the gateway's own error message on a refusal.
// In the tenant portal, the same calls go to /v1/portal/... with the portal's session instead
// (its tenant is the session's: a tenant in the path would not be read).
import { inPortal, portalSession } from "./portal-session.js";

const TOKEN = "edge-gateway.admin-token";

export const session = {
  token: () => sessionStorage.getItem(TOKEN),
  signIn: (t) => sessionStorage.setItem(TOKEN, t),
  signOut: () => sessionStorage.removeItem(TOKEN),
};

export class ApiError extends Error {
  constructor(status, type, message) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

/** One call; resolves to the parsed answer (null for none), rejects with an ApiError. */
export async function api(method, path, body) {
  const token = inPortal() ? portalSession.token() : session.token();
  const headers = { authorization: `Bearer ${token ?? ""}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
  } catch {
    throw new ApiError(0, "network", "the gateway could not be reached");
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const message = data?.error?.message ?? `${res.status} ${res.statusText || "error"}`;
    const err = new ApiError(res.status, data?.error?.type ?? "error", message);
    if (res.status === 401) dispatchEvent(new CustomEvent("signed-out", { detail: message }));
    throw err;
  }
  return data;
}

const seg = encodeURIComponent;

/** A path under a tenant in the admin API; in the portal, the same path under /v1/portal. */
export const tenantPath = (tenant, ...rest) => {
  const under = rest.map((r) => "/" + seg(r)).join("");
  return inPortal() ? `/v1/portal${under}` : `/v1/admin/tenants/${seg(tenant)}${under}`;
};

/** The marketplace's listing: the admin API's (with each template's secret settings), or the portal's. */
export const marketplacePath = () => (inPortal() ? "/v1/portal/marketplace" : "/v1/admin/marketplace");

/** A query string from the given values, leaving out empty ones. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}
