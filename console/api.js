// The admin API as the console calls it: the token from this tab's sessionStorage as a bearer
// header (never in a URL), JSON both ways, and the gateway's own error message on a refusal.

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
  const headers = { authorization: `Bearer ${session.token() ?? ""}` };
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

/** A path under a tenant in the admin API. */
export const tenantPath = (tenant, ...rest) => `/v1/admin/tenants/${seg(tenant)}${rest.map((r) => "/" + seg(r)).join("")}`;

/** A query string from the given values, leaving out empty ones. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}
