// A CRM-like provider: an OAuth2 token endpoint (client_credentials, and refresh_token with
// rotation: each refresh token works once, and the answer carries its successor) whose tokens can be revoked,
// a contacts API that requires a valid bearer token, an endpoint that fails transiently, one that
// is down, and one that is slow.
import http from "node:http";

export async function startCrm({ clientId, clientSecret, refreshToken }) {
  const crm = { tokenRequests: 0, calls: {}, received: [], valid: new Set(["static-crm-token"]), flakyFailures: 2, n: 0, expiresIn: 3600 };
  // Refresh tokens: the ones that still work, every one received, and every one issued.
  Object.assign(crm, { refreshTokens: new Set(refreshToken ? [refreshToken] : []), refreshes: [], issuedRefresh: [] });
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url, "http://x");
      const send = (status, body, headers = {}) => {
        res.writeHead(status, { "content-type": "application/json", ...headers });
        res.end(JSON.stringify(body));
      };
      crm.calls[url.pathname] = (crm.calls[url.pathname] ?? 0) + 1;
      crm.received.push({ method: req.method, path: url.pathname, body: Buffer.concat(chunks).toString() });
      if (url.pathname === "/oauth/token") {
        crm.tokenRequests++;
        const form = new URLSearchParams(Buffer.concat(chunks).toString());
        let [id, secret] = [form.get("client_id"), form.get("client_secret")];
        // client_secret_basic (RFC 6749 2.3.1): both form-encoded, then base64 in the header.
        const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? "");
        if (basic) {
          if (id !== null || secret !== null) return send(400, { error: "invalid_request", error_description: "client credentials sent twice" });
          [id, secret] = Buffer.from(basic[1], "base64").toString().split(":").map((p) => decodeURIComponent(p.replace(/\+/g, " ")));
          crm.basicLogins = (crm.basicLogins ?? 0) + 1;
        }
        if (id !== clientId || secret !== clientSecret) return send(401, { error: "invalid_client" });
        if (form.get("grant_type") === "refresh_token") {
          const rt = form.get("refresh_token");
          crm.refreshes.push(rt);
          // A retired token presented again: reuse detection, as providers that rotate do it.
          if (!crm.refreshTokens.delete(rt)) return send(400, { error: "invalid_grant" });
          const next = `rt-${crm.n + 1}-` + Math.random().toString(36).slice(2);
          crm.refreshTokens.add(next);
          crm.issuedRefresh.push(next);
          const token = `tok-${++crm.n}`;
          crm.valid.add(token);
          return send(200, { access_token: token, token_type: "Bearer", expires_in: crm.expiresIn, refresh_token: next });
        }
        if (form.get("grant_type") !== "client_credentials") return send(400, { error: "unsupported_grant_type" });
        const token = `tok-${++crm.n}`;
        crm.valid.add(token);
        return send(200, { access_token: token, token_type: "Bearer", expires_in: crm.expiresIn, scope: form.get("scope") });
      }
      const token = (req.headers.authorization ?? "").replace(/^Bearer /, "");
      if (!crm.valid.has(token)) return send(401, { ok: false, error: { message: "invalid token" } });
      if (req.method === "POST" && url.pathname === "/api/contacts") return send(201, { ok: true, created: JSON.parse(Buffer.concat(chunks).toString() || "null") });
      const contact = /^\/api\/contacts\/([^/]+)$/.exec(url.pathname);
      if (contact) {
        const id = decodeURIComponent(contact[1]);
        if (id === "c404") return send(404, { ok: false, error: { message: "contact not found" } });
        return send(200, { ok: true, contact: { id, name: "  Ada Lovelace ", email: "ADA@Example.COM", phone: "(415) 555-2671" } });
      }
      if (url.pathname === "/api/flaky") {
        if (crm.flakyFailures-- > 0) return send(503, { ok: false }, { "retry-after": "0" });
        return send(200, { ok: true, contact: { name: "steady" } });
      }
      if (url.pathname === "/api/health") return send(200, { ok: true, status: "healthy" });
      if (url.pathname === "/api/down") return send(500, { ok: false, error: { message: "database unavailable" } });
      if (url.pathname === "/api/slow") return setTimeout(() => send(200, { ok: true }), 2000);
      send(404, { error: "no route" });
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  crm.url = `http://127.0.0.1:${server.address().port}`;
  // Revokes every OAuth token; the static API token stays valid.
  crm.revokeAll = () => {
    crm.valid.clear();
    crm.valid.add("static-crm-token");
  };
  crm.close = () => new Promise((r) => server.close(r));
  return crm;
}
