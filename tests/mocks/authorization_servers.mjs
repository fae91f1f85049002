// Stand-ins for the OAuth 2.0 authorization servers behind "Connect" (issue #39), each in its
// provider's own wire format and refusing what the real service refuses: an unregistered
// redirect_uri, a reused or expired code, a code taken to another client, a missing or wrong PKCE
// verifier (RFC 7636 S256), a rotated-away refresh token, a bad client secret. One HTTP server with
// the `/{template}/{host}/...` convention of saas.mjs, so a template's `https://host` origins map
// to `{stand-in}/{template}/host` (see `standIn` in e2e/templates.test.mjs).
//
// Each provider also serves one protected API endpoint its template calls, answering only a live
// access token this server issued. `consent(url)` plays the user at the consent page.
//
// Providers' public docs the quirks follow (checked 2026-12):
//   salesforce  https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_web_server_flow.htm
//               https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_revoke_token.htm
//               (refresh token rotation: remoteaccess_oauth_refresh_token_flow.htm)
//   shopify     https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant
//   zoho-crm    https://www.zoho.com/accounts/protocol/oauth/multi-dc/client-authorization.html
//               https://www.zoho.com/crm/developer/docs/api/v8/multi-dc.html
//   jira        https://developer.atlassian.com/cloud/jira/platform/oauth-2-3lo-apps/
//               https://developer.atlassian.com/cloud/oauth/getting-started/making-calls-to-api/
//               https://developer.atlassian.com/cloud/oauth/getting-started/refresh-tokens/
//   hubspot     https://developers.hubspot.com/docs/api-reference/legacy/authentication/oauth-tokens/v1/guide
//   zendesk     https://developer.zendesk.com/documentation/api-basics/authentication/oauth-pkce
//   calendly    https://developer.calendly.com/how-to-access-calendly-data-on-behalf-of-authenticated-users
//               https://developer.calendly.com/refresh-token-rotation-guide
import http from "node:http";
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** How long a code may wait for its exchange (most providers: 10 minutes; the brief's 60 s). */
export const CODE_TTL_MS = 60_000;

const rand = (n = 16) => randomBytes(n).toString("hex");
const b64url = (buf) => Buffer.from(buf).toString("base64url");
/** RFC 7636 4.2: BASE64URL(SHA256(ASCII(code_verifier))). */
export const s256 = (verifier) => b64url(createHash("sha256").update(verifier, "ascii").digest());
const same = (a, b) => typeof a === "string" && typeof b === "string" && a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

const json = (status, body, headers = {}) => ({ status, body: JSON.stringify(body), headers: { "content-type": "application/json", ...headers } });
const html = (status, body) => ({ status, body, headers: { "content-type": "text/html; charset=utf-8" } });
const redirect = (location) => ({ status: 302, body: "", headers: { location } });
const empty = (status) => ({ status, body: "", headers: {} });

/** The `hmac` Shopify puts on its redirects: hex HMAC-SHA256 (the app's secret) over the other parameters sorted, `k=v&...`. */
export function shopifyHmac(params, secret) {
  const message = [...new URLSearchParams(params)]
    .filter(([k]) => k !== "hmac" && k !== "signature")
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  return createHmac("sha256", secret).update(message).digest("hex");
}

/**
 * Each provider's profile. `authorize`/`token`/`revoke` match `host` (a string or a test) and
 * `path`; `body` is what its token endpoint reads (form, json, or either); `pkce` whether it keeps
 * a challenge (a provider without PKCE ignores the parameters, as the real one does); `rotate`
 * whether a refresh retires the refresh token used; `error` shapes a token endpoint refusal;
 * `issue` shapes a token answer; `api` answers its protected endpoint.
 */
const PROFILES = {
  salesforce: {
    authorize: { host: "login.salesforce.com", path: "/services/oauth2/authorize" },
    token: { host: "login.salesforce.com", path: "/services/oauth2/token", body: "form", auth: ["post", "basic"] },
    // Salesforce's revocation takes the token alone; client credentials are checked when sent.
    revoke: { host: /^(login\.salesforce\.com|acme\.my\.salesforce\.com)$/, path: "/services/oauth2/revoke", method: "POST", clientAuth: "optional" },
    pkce: true,
    rotate: true,
    // A refresh token only when the scopes ask for one (refresh_token or offline_access).
    refreshWhen: (scope) => /\b(refresh_token|offline_access)\b/.test(scope),
    // Its docs: a wrong verifier fails as invalid_request, a missing one as invalid_grant.
    pkceErrors: { wrong: "invalid_request", missing: "invalid_grant" },
    describe: { code: "authentication failure", refresh: "expired access/refresh token", client: "invalid client credentials" },
    issue(t, s) {
      const id = `${s.url}/salesforce/login.salesforce.com/id/00D5g000004XyZAEAY/0055g00000AbCdEAAV`;
      const issuedAt = String(s.now());
      // Its signature: base64 HMAC-SHA256 (the client secret) over id + issued_at.
      const signature = createHmac("sha256", t.client.client_secret).update(id + issuedAt).digest("base64");
      return {
        access_token: t.access, ...(t.refresh ? { refresh_token: t.refresh } : {}), signature, scope: t.scope,
        instance_url: `${s.url}/salesforce/acme.my.salesforce.com`, id, token_type: "Bearer", issued_at: issuedAt,
      };
    },
    accessToken: () => `00D5g000004XyZ!AR8AQ${rand(24)}`,
    refreshToken: () => `5Aep861${rand(30)}`,
    api(req, s) {
      if (req.host !== "acme.my.salesforce.com") return;
      if (req.method === "GET" && req.path === "/services/data/v60.0/query") {
        if (!s.live(bearer(req), "salesforce")) return json(401, [{ message: "Session expired or invalid", errorCode: "INVALID_SESSION_ID" }]);
        return json(200, { totalSize: 1, done: true, records: [{ attributes: { type: "Case", url: "/services/data/v60.0/sobjects/Case/5003000000D8cuIQAR" }, Id: "5003000000D8cuIQAR" }] });
      }
    },
  },

  shopify: {
    authorize: { host: /^[a-z0-9][a-z0-9-]*\.myshopify\.com$/, path: "/admin/oauth/authorize", responseType: "optional" },
    // Client credentials in the body only; no grant_type (a code is all it exchanges); JSON or form.
    token: { host: /^[a-z0-9][a-z0-9-]*\.myshopify\.com$/, path: "/admin/oauth/access_token", body: "either", auth: ["post"], grant: "authorization_code" },
    // No RFC 7009 endpoint: an app gives its access up by deleting its permissions with the token.
    revoke: { host: /^[a-z0-9][a-z0-9-]*\.myshopify\.com$/, path: "/admin/api_permissions/current.json", method: "DELETE", by: "x-shopify-access-token" },
    pkce: false,
    refreshWhen: () => false,
    describe: { code: "The authorization code was not found or was already used", client: "Client credentials are invalid" },
    // The redirect carries hmac, host, shop and timestamp beside code and state.
    callback(params, a, s) {
      params.set("host", b64url(`${a.host}/admin`));
      params.set("shop", a.host);
      params.set("timestamp", String(Math.floor(s.now() / 1000)));
      params.set("hmac", shopifyHmac(params, a.client.client_secret));
    },
    issue: (t) => ({ access_token: t.access, scope: t.scope.split(/[ ,]+/).join(",") }),
    accessToken: () => `shpat_${rand(16)}`,
    api(req, s) {
      if (req.method === "GET" && req.path === "/admin/api/2024-10/orders.json") {
        const t = s.live(req.headers["x-shopify-access-token"], "shopify");
        if (!t || t.host !== req.host) return json(401, { errors: "[API] Invalid API key or access token (unrecognized login or wrong password)" });
        const order = { id: 450789469, name: "#1001", email: "bob.norman@mail.example.com", financial_status: "paid", fulfillment_status: null, total_price: "598.94", currency: "USD", fulfillments: [] };
        return json(200, { orders: req.query.get("name") === order.name ? [order] : [] });
      }
    },
  },

  "zoho-crm": {
    authorize: { host: "accounts.zoho.com", path: "/oauth/v2/auth" },
    // The code is exchanged at the accounts server of the user's data centre, and nowhere else;
    // parameters in the query or a form body.
    token: { host: /^accounts\.zoho\.(com|eu|in|com\.au|jp|sa)$|^accounts\.zohocloud\.ca$/, path: "/oauth/v2/token", body: "query-or-form", auth: ["post"] },
    // Its docs put the token in the query; a form body is read too, as its token endpoint does.
    revoke: { host: /^accounts\.zoho\./, path: "/oauth/v2/token/revoke", method: "POST", from: "query-or-form", clientAuth: "none" },
    pkce: true,
    // A refresh token only with access_type=offline; a refresh never rotates it.
    refreshWhen: (_scope, a) => a.query.get("access_type") === "offline",
    // The user's account lives in the EU data centre.
    dc: { location: "eu", accounts: "accounts.zoho.eu", api: "www.zohoapis.eu" },
    callback(params, _a, s, p) {
      params.set("location", p.dc.location);
      params.set("accounts-server", `${s.url}/zoho-crm/${p.dc.accounts}`);
    },
    // Zoho's token endpoint answers its refusals with 200 and one code for every bad grant.
    error: (status, error) => json(200, { error: error === "invalid_client" ? "invalid_client" : error === "unsupported_grant_type" ? "unsupported_grant_type" : "invalid_code" }),
    issue: (t, s, p) => ({
      access_token: t.access, ...(t.refresh ? { refresh_token: t.refresh } : {}), scope: t.scope,
      api_domain: `${s.url}/zoho-crm/${p.dc.api}`, token_type: "Bearer", expires_in: 3600,
    }),
    expiresIn: 3600,
    accessToken: () => `1000.${rand(16)}.${rand(16)}`,
    refreshToken: () => `1000.${rand(16)}.${rand(16)}`,
    api(req, s, p) {
      if (req.host !== p.dc.api) return;
      if (req.method === "GET" && req.path === "/crm/v7/Contacts/search") {
        const m = /^Zoho-oauthtoken (.+)$/.exec(req.headers.authorization ?? "");
        if (!s.live(m?.[1], "zoho-crm")) return json(401, { code: "INVALID_TOKEN", details: {}, message: "invalid oauth token", status: "error" });
        const hit = req.query.get("email") === "ada@example.com";
        if (!hit) return empty(204);
        return json(200, { data: [{ id: "5725767000000524157", First_Name: "Ada", Last_Name: "Lovelace", Email: "ada@example.com", Phone: "+44 20 7946 0000", Account_Name: { name: "Analytical Engines", id: "5725767000000524001" } }], info: { per_page: 200, count: 1, page: 1, more_records: false } });
      }
    },
  },

  jira: {
    // Atlassian asks for audience=api.atlassian.com and prompt=consent.
    authorize: { host: "auth.atlassian.com", path: "/authorize", required: { audience: "api.atlassian.com", prompt: "consent" } },
    // Its docs send every token request as JSON, the code's and a refresh's alike.
    token: { host: "auth.atlassian.com", path: "/oauth/token", body: "json", auth: ["post"] },
    pkce: true,
    rotate: true,
    refreshWhen: (scope) => /\boffline_access\b/.test(scope),
    // An unknown or rotated-away refresh token is refused with 403 (invalid_grant in the body).
    refreshRefusalStatus: 403,
    describe: { refresh: "Unknown or invalid refresh token." },
    issue: (t) => ({ access_token: t.access, expires_in: 3600, token_type: "Bearer", ...(t.refresh ? { refresh_token: t.refresh } : {}), scope: t.scope }),
    expiresIn: 3600,
    accessToken: () => `eyJraWQiOiJhdXRoLmF0bGFzc2lhbi5jb20${rand(24)}`,
    refreshToken: () => `eyJraWQiOiI1MWE2YjE2MjRlMTQ5ZDFiYTdhM2VmZjciLCJhbGciOiJSUzI1NiJ9${rand(16)}`,
    cloudId: "11223344-a1b2-3b33-c444-def123456789",
    api(req, s, p) {
      if (req.host !== "api.atlassian.com") return;
      const unauthorized = json(401, { code: 401, message: "Unauthorized" });
      const t = s.live(bearer(req), "jira");
      if (req.method === "GET" && req.path === "/oauth/token/accessible-resources") {
        if (!t) return unauthorized;
        return json(200, [{ id: p.cloudId, url: "https://acme.atlassian.net", name: "acme", scopes: t.scope.split(" ").filter((x) => x !== "offline_access"), avatarUrl: "https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/rocket.png" }]);
      }
      let m;
      if (req.method === "GET" && (m = /^\/ex\/jira\/([^/]+)\/rest\/api\/3\/issue\/([^/]+)$/.exec(req.path))) {
        if (!t) return unauthorized;
        if (m[1] !== p.cloudId) return json(404, { errorMessages: ["Site not found"], errors: {} });
        if (m[2] !== "SUP-7") return json(404, { errorMessages: ["Issue does not exist or you do not have permission to see it."], errors: {} });
        return json(200, { id: "10002", key: "SUP-7", self: `https://api.atlassian.com/ex/jira/${p.cloudId}/rest/api/3/issue/10002`, fields: { summary: "Refund not received", status: { name: "In Progress" }, assignee: null } });
      }
    },
  },

  hubspot: {
    authorize: { host: "app.hubspot.com", path: "/oauth/authorize", responseType: "optional" },
    token: { host: "api.hubapi.com", path: "/oauth/v1/token", body: "form", auth: ["post"] },
    revoke: { host: "api.hubapi.com", path: /^\/oauth\/v1\/refresh-tokens\/(.+)$/, method: "DELETE", clientAuth: "none" },
    pkce: true,
    refreshWhen: () => true,
    // HubSpot's own error body: a status code of its own, a message and a correlation id.
    error(status, error, description, ctx) {
      const code = { invalid_client: "BAD_CLIENT_ID", unsupported_grant_type: "BAD_GRANT_TYPE", redirect: "BAD_REDIRECT_URI" }[ctx?.why ?? error] ?? (ctx?.grant === "refresh_token" ? "BAD_REFRESH_TOKEN" : "BAD_AUTH_CODE");
      return json(400, { status: code, message: description ?? "missing or invalid grant", correlationId: crypto.randomUUID() });
    },
    issue: (t) => ({ token_type: "bearer", refresh_token: t.refresh, access_token: t.access, expires_in: 1800 }),
    expiresIn: 1800,
    accessToken: () => `CJSP5qf1KhICAQEYs-gDIIGOBii1hQIyGQAf${rand(20)}`,
    refreshToken: () => `na1-${rand(4)}-${rand(2)}-${rand(2)}-${rand(2)}-${rand(6)}`,
    api(req, s) {
      if (req.host !== "api.hubapi.com") return;
      if (req.method === "GET" && /^\/crm\/v3\/objects\/contacts\/\d+$/.test(req.path)) {
        if (!s.live(bearer(req), "hubspot")) return json(401, { status: "error", message: "Authentication credentials not found. This API supports OAuth 2.0 authentication.", correlationId: crypto.randomUUID(), category: "INVALID_AUTHENTICATION" });
        return json(200, { id: "512", properties: { email: "bh@hubspot.com", firstname: "Brian", lastname: "Halligan" }, archived: false });
      }
    },
  },

  zendesk: {
    authorize: { host: /^[a-z0-9-]+\.zendesk\.com$/, path: "/oauth/authorizations/new" },
    token: { host: /^[a-z0-9-]+\.zendesk\.com$/, path: "/oauth/tokens", body: "either", auth: ["post"] },
    revoke: { host: /^[a-z0-9-]+\.zendesk\.com$/, path: "/api/v2/oauth/tokens/current.json", method: "DELETE", by: "bearer" },
    pkce: true,
    refreshWhen: () => true,
    issue: (t) => ({ access_token: t.access, token_type: "bearer", scope: t.scope, refresh_token: t.refresh, expires_in: 172800, refresh_token_expires_in: 7776000 }),
    expiresIn: 172800,
    accessToken: () => rand(32),
    refreshToken: () => rand(32),
    api(req, s) {
      if (req.method === "GET" && req.path === "/api/v2/tickets/35436.json") {
        const t = s.live(bearer(req), "zendesk");
        if (!t || t.host !== req.host) return json(401, { error: "invalid_token", error_description: "The access token provided is expired, revoked, malformed or invalid for other reasons." });
        return json(200, { ticket: { id: 35436, subject: "Help, my printer is on fire!", status: "open", updated_at: "2024-11-29T09:12:00Z" } });
      }
    },
  },

  calendly: {
    authorize: { host: "auth.calendly.com", path: "/oauth/authorize" },
    token: { host: "auth.calendly.com", path: "/oauth/token", body: "form", auth: ["basic", "post"] },
    revoke: { host: "auth.calendly.com", path: "/oauth/revoke", method: "POST", clientAuth: "required" },
    pkce: true,
    rotate: true,
    refreshWhen: () => true,
    issue: (t, s) => ({
      token_type: "Bearer", access_token: t.access, refresh_token: t.refresh, scope: t.scope || "default", created_at: Math.floor(s.now() / 1000), expires_in: 7200,
      owner: "https://api.calendly.com/users/AAAAAAAAAAAAAAAA", organization: "https://api.calendly.com/organizations/BBBBBBBBBBBBBBBB",
    }),
    expiresIn: 7200,
    accessToken: () => `eyJraWQiOiIxY2UxZTEzNjE3ZGNmNzY2YjNjZWJjY2Y4ZGM1YmFmYThhNjVlNjg0MDIzZjdjMzJiZTgzNDliMjM4MDEzNWI0${rand(16)}`,
    refreshToken: () => rand(32),
    api(req, s) {
      if (req.host !== "api.calendly.com") return;
      if (req.method === "GET" && req.path === "/users/me") {
        if (!s.live(bearer(req), "calendly")) return json(401, { title: "Unauthenticated", message: "The access token is invalid" });
        return json(200, { resource: { uri: "https://api.calendly.com/users/AAAAAAAAAAAAAAAA", name: "John Doe", current_organization: "https://api.calendly.com/organizations/BBBBBBBBBBBBBBBB" } });
      }
    },
  },
};

const bearer = (req) => /^Bearer (.+)$/i.exec(req.headers.authorization ?? "")?.[1];
const matches = (want, got) => (typeof want === "string" ? want === got : want.test(got));

/**
 * Starts the stand-in. `plant(secret)` is called with every secret it issues (codes, tokens) so a
 * test can look for them in the gateway's answers (`planted` in tests/harness.mjs).
 *
 * Test controls: `register(provider, {client_id, client_secret, redirect_uris})`;
 * `revokeAll(provider)` (every token dead, as a user who removed the app);
 * `expireRefresh(provider)` (the next refresh gets invalid_grant); `expireAccess(provider)` (the API
 * answers 401 until a refresh); `advance(ms)` moves this server's clock (codes expire);
 * `log` (every token, revocation and API request: provider, endpoint, grant, refresh_token sent,
 * code_verifier sent, client auth used, status, error) and `tokenRequests(provider)`.
 */
export async function startAuthorizationServers({ plant = () => {} } = {}) {
  let skew = 0;
  const s = {
    now: () => Date.now() + skew,
    advance: (ms) => (skew += ms),
    clients: new Map(), // `${provider}:${client_id}` -> client
    pending: new Map(), // consent ticket -> authorization request
    codes: new Map(), // code -> grant
    refresh: new Map(), // refresh token -> {provider, client_id, scope, family, state: live|retired|dead}
    access: new Map(), // access token -> {provider, client_id, scope, family, host, expires_at, dead}
    log: [],
  };
  const mint = (f) => {
    const v = f();
    plant(v);
    return v;
  };
  /** The live access token record, if `token` is one of `provider`'s. */
  s.live = (token, provider) => {
    const t = token && s.access.get(token);
    if (!t || t.provider !== provider || t.dead || (t.expires_at && t.expires_at <= s.now())) return undefined;
    return t;
  };
  s.register = (provider, client) => {
    if (!PROFILES[provider]) throw new Error(`no stand-in for ${provider}`);
    plant(client.client_secret);
    s.clients.set(`${provider}:${client.client_id}`, { ...client, provider });
  };
  const killFamily = (family) => {
    for (const r of s.refresh.values()) if (r.family === family) r.state = "dead";
    for (const a of s.access.values()) if (a.family === family) a.dead = true;
  };
  s.revokeAll = (provider) => {
    for (const r of s.refresh.values()) if (r.provider === provider) r.state = "dead";
    for (const a of s.access.values()) if (a.provider === provider) a.dead = true;
  };
  s.expireRefresh = (provider) => {
    for (const r of s.refresh.values()) if (r.provider === provider) r.state = "dead";
  };
  s.expireAccess = (provider) => {
    for (const a of s.access.values()) if (a.provider === provider) a.dead = true;
  };
  s.tokenRequests = (provider) => s.log.filter((l) => l.provider === provider && l.endpoint === "token");
  /** Every live refresh token of `provider` (a test checks none is left after a disconnect). */
  s.liveRefreshTokens = (provider) => [...s.refresh].filter(([, r]) => r.provider === provider && r.state === "live").map(([t]) => t);
  s.liveAccessTokens = (provider) => [...s.access.keys()].filter((t) => s.live(t, provider));

  /** Issues an access token (and a refresh token when due) in one family. */
  const issue = (p, provider, { client, scope, host, family = rand(8), withRefresh }) => {
    const access = mint(p.accessToken);
    s.access.set(access, { provider, client_id: client.client_id, scope, family, host, expires_at: p.expiresIn ? s.now() + p.expiresIn * 1000 : 0 });
    let refresh;
    if (withRefresh && p.refreshToken) {
      refresh = mint(p.refreshToken);
      s.refresh.set(refresh, { provider, client_id: client.client_id, scope, family, host, state: "live" });
    }
    return { access, refresh, scope, client, family };
  };

  // ---------------------------------------------------------------- authorization endpoint
  function authorizeGet(req, p, provider) {
    const q = req.query;
    const client = s.clients.get(`${provider}:${q.get("client_id")}`);
    // RFC 6749 4.1.2.1: an unknown client or an unregistered redirect_uri is told to the user, never redirected.
    if (!client) return html(400, `<!doctype html><title>Error</title><h1>invalid_client</h1><p>Unknown client_id.</p>`);
    const redirectUri = q.get("redirect_uri");
    if (!redirectUri || !client.redirect_uris.includes(redirectUri)) return html(400, `<!doctype html><title>Error</title><h1>redirect_uri_mismatch</h1><p>The redirect_uri is not registered for this app.</p>`);
    const back = (error, description) => {
      const u = new URL(redirectUri);
      u.searchParams.set("error", error);
      if (description) u.searchParams.set("error_description", description);
      if (q.has("state")) u.searchParams.set("state", q.get("state"));
      return redirect(u.href);
    };
    if (p.authorize.responseType !== "optional" && q.get("response_type") !== "code") return back("unsupported_response_type");
    for (const [k, v] of Object.entries(p.authorize.required ?? {})) if (q.get(k) !== v) return back("invalid_request", `${k} must be ${v}`);
    let challenge;
    if (p.pkce && (q.has("code_challenge") || q.has("code_challenge_method"))) {
      // S256 only (a missing method would mean plain, RFC 7636 4.3); 43-128 unreserved characters.
      if (q.get("code_challenge_method") !== "S256") return back("invalid_request", "code_challenge_method must be S256");
      challenge = q.get("code_challenge") ?? "";
      if (!/^[A-Za-z0-9._~-]{43,128}$/.test(challenge)) return back("invalid_request", "invalid code_challenge");
    }
    const ticket = rand();
    const scope = q.get("scope") ?? "";
    s.pending.set(ticket, { provider, client, redirectUri, state: q.get("state"), scope, challenge, host: req.host, query: q });
    const scopes = scope.split(/[ ,+]+/).filter(Boolean);
    return html(200, `<!doctype html>
<html><head><meta charset="utf-8"><title>${escapeHtml(provider)}: allow access?</title></head>
<body><h1>Allow ${escapeHtml(client.client_id)} to access your ${escapeHtml(provider)} account?</h1>
<ul>${scopes.map((x) => `<li>${escapeHtml(x)}</li>`).join("")}</ul>
<form method="post" action="${escapeHtml(req.fullPath)}">
<input type="hidden" name="ticket" value="${ticket}">
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form></body></html>`);
  }

  function authorizePost(req, p) {
    const f = new URLSearchParams(req.raw);
    const a = s.pending.get(f.get("ticket"));
    if (!a) return html(400, "<!doctype html><title>Error</title><h1>This request has expired. Start again.</h1>");
    s.pending.delete(f.get("ticket"));
    const u = new URL(a.redirectUri);
    if (f.get("decision") !== "allow") {
      u.searchParams.set("error", "access_denied");
      if (a.state != null) u.searchParams.set("state", a.state);
      return redirect(u.href);
    }
    const code = mint(() => (a.provider === "zoho-crm" ? `1000.${rand(16)}.${rand(16)}` : rand(20)));
    s.codes.set(code, { ...a, issued_at: s.now(), used: false });
    const params = new URLSearchParams({ code });
    if (a.state != null) params.set("state", a.state);
    p.callback?.(params, a, s, p);
    for (const [k, v] of params) u.searchParams.set(k, v);
    return redirect(u.href);
  }

  // ---------------------------------------------------------------- token endpoint
  /** The request's parameters as its token endpoint reads them, or a refusal. */
  function params(req, where) {
    const type = req.headers["content-type"] ?? "";
    const isJson = type.startsWith("application/json");
    const isForm = type.startsWith("application/x-www-form-urlencoded");
    if (where === "json") return isJson ? objectParams(req) : { refused: "invalid_request", description: "Content-Type must be application/json" };
    if (where === "form") return isForm ? new URLSearchParams(req.raw) : { refused: "invalid_request", description: "Content-Type must be application/x-www-form-urlencoded" };
    if (where === "either") return isJson ? objectParams(req) : new URLSearchParams(req.raw);
    // query-or-form: Zoho reads both.
    const out = new URLSearchParams(req.query);
    if (isForm) for (const [k, v] of new URLSearchParams(req.raw)) out.set(k, v);
    return out;
  }
  const objectParams = (req) => {
    try {
      const o = JSON.parse(req.raw);
      return new URLSearchParams(Object.entries(o ?? {}).filter(([, v]) => typeof v === "string"));
    } catch {
      return { refused: "invalid_request", description: "malformed JSON" };
    }
  };

  /** The client authenticating at `endpoint` (client_secret_post or client_secret_basic), or a refusal. */
  function authenticate(req, f, provider, allowed) {
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? "")?.[1];
    let id, secret, method;
    if (basic) {
      const decoded = Buffer.from(basic, "base64").toString();
      const i = decoded.indexOf(":");
      // RFC 6749 2.3.1: both parts form-encoded before the Basic encoding.
      id = decodeURIComponent(decoded.slice(0, i).replace(/\+/g, " "));
      secret = decodeURIComponent(decoded.slice(i + 1).replace(/\+/g, " "));
      method = "basic";
      // RFC 6749 2.3: one authentication method per request.
      if (f.has("client_secret")) return { refused: "invalid_request", description: "client authenticated twice", method };
      if (f.has("client_id") && f.get("client_id") !== id) return { refused: "invalid_client", method };
    } else {
      id = f.get("client_id");
      secret = f.get("client_secret");
      method = "post";
    }
    if (!allowed.includes(method)) return { refused: "invalid_client", description: `client_secret_${method} not accepted`, method };
    const client = s.clients.get(`${provider}:${id}`);
    if (!client || !same(secret, client.client_secret)) return { refused: "invalid_client", method };
    return { client, method };
  }

  function token(req, p, provider) {
    const entry = { provider, endpoint: "token", host: req.host, at: s.now() };
    s.log.push(entry);
    const refuse = (error, description, { status = 400, why } = {}) => {
      entry.status = status;
      entry.error = error;
      if (p.error) {
        // The provider's own shape: the log keeps the code it sent (HubSpot's status, Zoho's error).
        const r = p.error(status, error, description, { why, grant: entry.grant });
        const sent = JSON.parse(r.body);
        entry.status = r.status;
        entry.error = sent.error ?? sent.status;
        return r;
      }
      // RFC 6749 5.2: invalid_client is 401 when the client tried the Authorization header.
      const st = error === "invalid_client" && entry.client_auth === "basic" ? 401 : status;
      entry.status = st;
      return json(st, { error, ...(description ? { error_description: description } : {}) }, st === 401 ? { "www-authenticate": 'Basic realm="oauth"' } : {});
    };
    if (req.method !== "POST") return refuse("invalid_request", "POST only");
    const f = params(req, p.token.body);
    if (f.refused) return refuse(f.refused, f.description);
    const grant = p.token.grant ?? f.get("grant_type");
    entry.grant = grant;
    entry.refresh_token = f.get("refresh_token") ?? undefined;
    entry.code_verifier = f.get("code_verifier") ?? undefined;
    entry.code = f.get("code") ?? undefined;
    const auth = authenticate(req, f, provider, p.token.auth);
    entry.client_auth = auth.method;
    if (auth.refused) return refuse(auth.refused, auth.description ?? p.describe?.client ?? "client authentication failed");
    const client = auth.client;
    entry.client_id = client.client_id;

    if (grant === "authorization_code") {
      const c = s.codes.get(f.get("code"));
      const bad = (d = p.describe?.code ?? "invalid authorization code", error = "invalid_grant", why) => refuse(error, d, { why });
      if (!c || c.provider !== provider) return bad();
      if (c.used) {
        // RFC 6749 4.1.2: a code used twice revokes what it was exchanged for.
        if (c.family) killFamily(c.family);
        return bad(p.describe?.code ?? "authorization code already used");
      }
      if (s.now() - c.issued_at > CODE_TTL_MS) return bad(p.describe?.code ?? "authorization code expired");
      if (c.client.client_id !== client.client_id) return bad(p.describe?.code ?? "code issued to another client");
      // The code is exchanged where it was issued: the same shop, or the user's data centre.
      if (p.dc ? req.host !== p.dc.accounts : p.token.host instanceof RegExp && c.host !== req.host) return bad();
      // A provider without a grant_type (Shopify) reads no redirect_uri at the exchange.
      if (!p.token.grant && f.get("redirect_uri") !== c.redirectUri) return bad("redirect_uri does not match the authorization request", "invalid_grant", "redirect");
      if (p.pkce) {
        const verifier = f.get("code_verifier");
        if (c.challenge && !verifier) return bad("code_verifier required", p.pkceErrors?.missing ?? "invalid_grant");
        if (c.challenge && s256(verifier) !== c.challenge) return bad("invalid code verifier", p.pkceErrors?.wrong ?? "invalid_grant");
        if (!c.challenge && verifier) return bad("code_verifier sent for an authorization request without code_challenge");
      }
      c.used = true;
      const t = issue(p, provider, { client, scope: c.scope, host: c.host, withRefresh: p.refreshWhen(c.scope, c) });
      c.family = t.family;
      entry.status = 200;
      return json(200, p.issue(t, s, p), { "cache-control": "no-store" });
    }
    if (grant === "refresh_token" && p.refreshToken) {
      const rt = f.get("refresh_token");
      const r = rt && s.refresh.get(rt);
      const status = p.refreshRefusalStatus ?? 400;
      if (!r || r.provider !== provider || r.state !== "live") {
        entry.reused = r?.state === "retired";
        return refuse("invalid_grant", p.describe?.refresh ?? (r?.state === "retired" ? "refresh token already used" : "invalid refresh token"), { status });
      }
      if (r.client_id !== client.client_id) return refuse("invalid_grant", p.describe?.refresh ?? "refresh token issued to another client", { status });
      if (p.dc && req.host !== p.dc.accounts) return refuse("invalid_grant", "refresh token of another data centre", { status });
      // RFC 6749 6: a narrower scope may be asked for, never a wider one.
      const asked = f.get("scope");
      if (asked && asked.split(/[ ,]+/).some((x) => !r.scope.split(/[ ,]+/).includes(x))) return refuse("invalid_scope", "scope wider than granted");
      let t;
      if (p.rotate) {
        r.state = "retired";
        t = issue(p, provider, { client, scope: r.scope, host: r.host, family: r.family, withRefresh: true });
      } else {
        t = issue(p, provider, { client, scope: r.scope, host: r.host, family: r.family, withRefresh: false });
      }
      entry.status = 200;
      entry.rotated = Boolean(t.refresh);
      const body = p.issue(t, s, p);
      // A refresh without rotation answers no refresh token (HubSpot and Zendesk echo the same one).
      if (!t.refresh && (provider === "hubspot" || provider === "zendesk")) body.refresh_token = rt;
      return json(200, body, { "cache-control": "no-store" });
    }
    return refuse("unsupported_grant_type", `grant_type ${grant ?? "missing"} not supported`);
  }

  // ---------------------------------------------------------------- revocation
  function revoke(req, p, provider, m) {
    const entry = { provider, endpoint: "revoke", host: req.host, at: s.now() };
    s.log.push(entry);
    const done = (r) => ((entry.status = r.status), r);
    const rv = p.revoke;
    if (req.method !== rv.method) return done(json(405, { error: "invalid_request" }));
    let tok;
    if (rv.by === "bearer") tok = bearer(req);
    else if (rv.by) tok = req.headers[rv.by];
    else if (m?.[1]) tok = decodeURIComponent(m[1]);
    else if (rv.from === "query-or-form") tok = req.query.get("token") ?? new URLSearchParams(req.raw).get("token");
    else {
      const f = new URLSearchParams(req.raw);
      entry.token_type_hint = f.get("token_type_hint") ?? undefined;
      tok = f.get("token");
      if (rv.clientAuth !== "none" && (rv.clientAuth === "required" || f.has("client_id") || req.headers.authorization)) {
        const auth = authenticate(req, f, provider, ["post", "basic"]);
        entry.client_auth = auth.method;
        if (auth.refused) return done(json(auth.method === "basic" ? 401 : 400, { error: "invalid_client" }));
        entry.client_id = auth.client.client_id;
      }
    }
    entry.token = tok;
    // Zoho keeps a user's tokens in their data centre: another one does not know them.
    const here = !p.dc || req.host === p.dc.accounts;
    const r = here && tok && s.refresh.get(tok);
    const a = here && tok && s.access.get(tok);
    if ((r && r.provider === provider) || (a && a.provider === provider && !rv.by)) {
      // Revoking a refresh token ends its whole grant (RFC 7009 2.1); an access token, only itself.
      if (r) killFamily(r.family);
      else a.dead = true;
      entry.revoked = r ? "refresh_token" : "access_token";
    } else if (rv.by && a && a.provider === provider && !a.dead) {
      // Shopify and Zendesk: the presented access token gives the grant up.
      killFamily(a.family);
      entry.revoked = "access_token";
    } else if (provider === "salesforce") {
      return done(json(400, { error: "invalid_token" }));
    } else if (provider === "zoho-crm") {
      return done(json(400, { status: "failure", error: "invalid_token" }));
    } else if (rv.by) {
      return done(json(401, provider === "shopify" ? { errors: "[API] Invalid API key or access token (unrecognized login or wrong password)" } : { error: "invalid_token" }));
    }
    // RFC 7009 2.2: an unknown token is answered 200 too.
    if (provider === "zoho-crm") return done(json(200, { status: "success" }));
    if (provider === "hubspot" || provider === "zendesk") return done(empty(204));
    if (provider === "shopify" || provider === "calendly") return done(json(200, {}));
    return done(empty(200));
  }

  // ---------------------------------------------------------------- routing
  function route(req) {
    const provider = req.template;
    const p = PROFILES[provider];
    if (!p) return;
    if (matches(p.authorize.host, req.host) && req.path === p.authorize.path) {
      if (req.method === "GET") {
        s.log.push({ provider, endpoint: "authorize", host: req.host, query: Object.fromEntries(req.query), at: s.now() });
        return authorizeGet(req, p, provider);
      }
      if (req.method === "POST") return authorizePost(req, p);
    }
    if (matches(p.token.host, req.host) && req.path === p.token.path) return token(req, p, provider);
    let m;
    if (p.revoke && matches(p.revoke.host, req.host) && (typeof p.revoke.path === "string" ? req.path === p.revoke.path : (m = p.revoke.path.exec(req.path)))) return revoke(req, p, provider, m);
    const out = p.api(req, s, p);
    if (out) s.log.push({ provider, endpoint: "api", host: req.host, path: req.path, status: out.status, at: s.now() });
    return out;
  }

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url, "http://x");
      const [, template, host, ...rest] = url.pathname.split("/");
      const r = { method: req.method, template, host, path: "/" + rest.join("/"), fullPath: url.pathname, query: url.searchParams, headers: req.headers, raw: Buffer.concat(chunks).toString() };
      let out;
      try {
        out = route(r) ?? json(404, { error: `no route ${req.method} ${r.path}` });
      } catch (e) {
        out = json(500, { error: String(e?.stack ?? e) });
      }
      res.writeHead(out.status, out.headers);
      res.end(out.body);
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  s.url = `http://127.0.0.1:${server.address().port}`;
  s.close = () => new Promise((r) => server.close(r));
  return s;
}

/**
 * Plays the user: fetches the consent page at `authorizationUrl`, submits its form (Allow, or
 * Deny), and returns the `Location` of the 302 (the gateway's callback URL with code and state, or
 * an error), without following it. Throws when the page is not a consent form (an error page).
 */
export async function consent(authorizationUrl, { allow = true } = {}) {
  const page = await fetch(authorizationUrl, { redirect: "manual" });
  const text = await page.text();
  if (page.status === 302) return page.headers.get("location");
  if (page.status !== 200) throw new Error(`consent page: ${page.status} ${text.slice(0, 200)}`);
  const action = /<form method="post" action="([^"]+)">/.exec(text)?.[1];
  const ticket = /name="ticket" value="([^"]+)"/.exec(text)?.[1];
  if (!action || !ticket) throw new Error(`no consent form: ${text.slice(0, 200)}`);
  const res = await fetch(new URL(action.replaceAll("&amp;", "&"), authorizationUrl), {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ ticket, decision: allow ? "allow" : "deny" }).toString(),
  });
  await res.arrayBuffer();
  if (res.status !== 302) throw new Error(`consent answer: ${res.status}`);
  return res.headers.get("location");
}
