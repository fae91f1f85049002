// Stand-ins for the SaaS APIs the marketplace templates call, answering in each provider's own
// shapes: its auth scheme, field names, list envelopes, error bodies and rate-limit headers.
// One server; a template's host is the first path segment after the provider's name
// (`/{template}/{host}/...`, see `standIn` in e2e/templates.test.mjs), so a setting that fills a
// host name (`{{settings.shop}}.myshopify.com`) is checked too.
import http from "node:http";
import { createHash } from "node:crypto";

/** `line_items[0][price]=p` -> {line_items: [{price: "p"}]}, as Stripe and Rack read forms. */
export function nestedForm(form) {
  const root = {};
  for (const [name, value] of new URLSearchParams(form)) {
    const keys = name.replace(/\]/g, "").split("[");
    let at = root;
    keys.forEach((k, i) => {
      const last = i === keys.length - 1;
      const nextIsIndex = !last && /^\d+$/.test(keys[i + 1]);
      if (last) at[k] = value;
      else at = at[k] ??= nextIsIndex ? [] : {};
    });
  }
  return root;
}

const basicOf = (req) => {
  const m = /^Basic (.+)$/.exec(req.headers.authorization ?? "");
  return m ? Buffer.from(m[1], "base64").toString() : null;
};
const bearerOf = (req) => /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1] ?? null;
const reply = (status, body, headers = {}) => ({ status, body, headers });

/**
 * Each provider: `(req, api) => reply`, where `req` is {method, host, path, query, headers, raw,
 * json} with `path` after the host, and `api` the stand-in's state and credentials.
 */
const providers = {
  stripe(req, api) {
    if (bearerOf(req) !== api.creds.stripe) return reply(401, { error: { message: "Invalid API Key provided: sk_test_****", type: "invalid_request_error" } });
    const customer = { id: "cus_NffrFeUfNV2Hib", object: "customer", address: null, balance: -2550, created: 1680893993, currency: "usd", email: "jennyrosen@example.com", livemode: false, metadata: {}, name: "Jenny Rosen" };
    let m;
    if (req.method === "GET" && (m = /^\/v1\/customers\/([^/]+)$/.exec(req.path))) {
      if (m[1] !== customer.id) return reply(404, { error: { code: "resource_missing", doc_url: "https://stripe.com/docs/error-codes/resource-missing", message: `No such customer: '${m[1]}'`, param: "id", type: "invalid_request_error" } });
      return reply(200, customer);
    }
    if (req.method === "GET" && req.path === "/v1/customers") {
      const email = req.query.get("email");
      const all = [customer, { ...customer, id: "cus_NffrFeUfNV2Hic", email: "ada@example.com", name: "Ada Lovelace" }, { ...customer, id: "cus_NffrFeUfNV2Hid", email: "grace@example.com", name: "Grace Hopper" }];
      const matching = email ? all.filter((c) => c.email === email) : all;
      const after = req.query.get("starting_after");
      const from = after ? matching.findIndex((c) => c.id === after) + 1 : 0;
      const limit = Number(req.query.get("limit") ?? 10);
      const data = matching.slice(from, from + limit);
      return reply(200, { object: "list", url: "/v1/customers", has_more: from + limit < matching.length, data });
    }
    if (req.method === "GET" && (m = /^\/v1\/payment_intents\/([^/]+)$/.exec(req.path)))
      return reply(200, { id: m[1], object: "payment_intent", amount: 2000, amount_received: 2000, currency: "usd", status: "succeeded", created: 1680800504, livemode: false });
    if (req.method === "POST" && req.path === "/v1/refunds") {
      if (!req.headers["content-type"]?.startsWith("application/x-www-form-urlencoded"))
        return reply(400, { error: { type: "invalid_request_error", message: "Invalid request (check that your POST content type is application/x-www-form-urlencoded)." } });
      const p = nestedForm(req.raw);
      if (!p.payment_intent && !p.charge) return reply(400, { error: { type: "invalid_request_error", code: "parameter_missing", message: "One of the following params should be provided for this request: payment_intent or charge." } });
      if (p.payment_intent === "pi_3MtwBwLkdIwHu7ixRefunded")
        return reply(400, { error: { type: "invalid_request_error", code: "charge_already_refunded", message: "Charge ch_3MtwBwLkdIwHu7ix0snN0B15 has already been refunded." } });
      return reply(200, { id: "re_1Nispe2eZvKYlo2Cd31jOCgZ", object: "refund", amount: Number(p.amount ?? 2000), charge: "ch_1NirD82eZvKYlo2CIvbtLWuY", currency: "usd", payment_intent: p.payment_intent, reason: p.reason ?? null, status: "succeeded", metadata: p.metadata ?? {} });
    }
  },

  salesforce(req, api) {
    const sf = api.salesforce;
    if (req.path === "/services/oauth2/token") {
      const f = new URLSearchParams(req.raw);
      if (f.get("client_id") !== api.creds.salesforce.clientId || f.get("client_secret") !== api.creds.salesforce.clientSecret)
        return reply(400, { error: "invalid_client", error_description: "invalid client credentials" });
      const rt = f.get("refresh_token");
      sf.refreshes.push(rt);
      if (f.get("grant_type") !== "refresh_token" || !sf.refreshTokens.has(rt)) return reply(400, { error: "invalid_grant", error_description: "expired access/refresh token" });
      const token = `00Dxx0000001gPL!AR8AQ${++sf.n}`;
      sf.accessTokens.add(token);
      // Refresh token rotation: the one just used is retired and a new one issued.
      sf.refreshTokens.delete(rt);
      const next = `5Aep861${sf.n}rotated`;
      sf.refreshTokens.add(next);
      sf.issuedRefresh.push(next);
      return reply(200, { access_token: token, refresh_token: next, signature: "d8Yt", scope: "api refresh_token", instance_url: `https://${req.host}`, id: `https://${req.host}/id/00Dxx0000001gPLEAY/005xx000001X8UzAAK`, token_type: "Bearer", issued_at: "1700000000000" });
    }
    if (!sf.accessTokens.has(bearerOf(req))) return reply(401, [{ message: "Session expired or invalid", errorCode: "INVALID_SESSION_ID" }]);
    const base = "/services/data/v60.0";
    if (req.method === "GET" && req.path === `${base}/query`) {
      const q = req.query.get("q") ?? "";
      if (!/^select\s/i.test(q) || !/\sfrom\s/i.test(q)) return reply(400, [{ message: `unexpected token: '${q.split(" ").pop()}'`, errorCode: "MALFORMED_QUERY" }]);
      return reply(200, { totalSize: 1, done: true, records: [{ attributes: { type: "Case", url: `${base}/sobjects/Case/5003000000D8cuIQAR` }, Id: "5003000000D8cuIQAR" }] });
    }
    if (req.method === "POST" && req.path === `${base}/sobjects/Case`) {
      const b = req.json();
      if (!b?.Subject) return reply(400, [{ message: "Required fields are missing: [Subject]", errorCode: "REQUIRED_FIELD_MISSING", fields: ["Subject"] }]);
      sf.cases.push(b);
      return reply(201, { id: "5003000000D8cuIQAR", success: true, errors: [] });
    }
    if (req.method === "POST" && req.path === `${base}/sobjects/CaseComment`) return reply(201, { id: "00a3000000B1XkzAAF", success: true, errors: [] });
  },

  hubspot(req, api) {
    if (bearerOf(req) !== api.creds.hubspot)
      return reply(401, { status: "error", message: "Authentication credentials not found. This API supports OAuth 2.0 authentication.", correlationId: "a43683b0-5717-4ceb-80b4-104d02915d8c", category: "INVALID_AUTHENTICATION" });
    const contact = { id: "512", properties: { createdate: "2024-11-29T10:00:00.000Z", email: "bh@hubspot.com", firstname: "Brian", hs_object_id: "512", lastmodifieddate: "2024-11-29T10:00:00.000Z", lastname: "Halligan", phone: "(617) 555-0100" }, createdAt: "2024-11-29T10:00:00.000Z", updatedAt: "2024-11-29T10:00:00.000Z", archived: false };
    let m;
    if (req.method === "GET" && req.path === "/crm/v3/objects/contacts") {
      const all = [contact, { ...contact, id: "513", properties: { ...contact.properties, email: "ada@example.com", hs_object_id: "513" } }, { ...contact, id: "514", properties: { ...contact.properties, email: "grace@example.com", hs_object_id: "514" } }];
      const from = Number(req.query.get("after") ?? 0);
      const limit = Number(req.query.get("limit") ?? 10);
      const next = from + limit < all.length ? { next: { after: String(from + limit), link: `https://api.hubapi.com/crm/v3/objects/contacts?after=${from + limit}` } } : undefined;
      return reply(200, { results: all.slice(from, from + limit), ...(next ? { paging: next } : {}) });
    }
    if (req.method === "POST" && req.path === "/crm/v3/objects/contacts/search") {
      const email = req.json()?.filterGroups?.[0]?.filters?.[0]?.value;
      return reply(200, { total: email === contact.properties.email ? 1 : 0, results: email === contact.properties.email ? [contact] : [] });
    }
    if (req.method === "GET" && (m = /^\/crm\/v3\/objects\/contacts\/(\d+)$/.exec(req.path))) {
      if (m[1] !== contact.id) return reply(404, { status: "error", message: "resource not found", correlationId: "3b1f6b9c", category: "OBJECT_NOT_FOUND" });
      return reply(200, contact);
    }
    if (req.method === "POST" && req.path === "/crm/v3/objects/contacts") {
      const p = req.json()?.properties ?? {};
      if (p.email === contact.properties.email) return reply(409, { status: "error", message: "Contact already exists. Existing ID: 512", correlationId: "e0a2c1f4", category: "CONFLICT" });
      return reply(201, { id: "1001", properties: { ...p, hs_object_id: "1001" }, createdAt: "2024-11-30T10:00:00.000Z", updatedAt: "2024-11-30T10:00:00.000Z", archived: false });
    }
  },

  jira(req, api) {
    if (basicOf(req) !== `${api.creds.jira.email}:${api.creds.jira.token}`) return reply(401, { errorMessages: ["You are not authenticated. Authentication required to perform this operation."], errors: {} });
    const base = "/rest/api/3";
    const issue = { id: "10002", key: "SUP-7", self: `https://${req.host}${base}/issue/10002`, fields: { summary: "Refund not received", status: { name: "In Progress" }, assignee: null } };
    let m;
    if (req.method === "GET" && req.path === `${base}/myself`) return reply(200, { accountId: "5b10a2844c20165700ede21g", emailAddress: api.creds.jira.email, displayName: "Mia Krystof", active: true, timeZone: "Europe/Berlin" });
    if (req.method === "POST" && req.path === `${base}/issue`) {
      const f = req.json()?.fields ?? {};
      if (!f.summary) return reply(400, { errorMessages: [], errors: { summary: "You must specify a summary of the issue." } });
      if (f.project?.key !== "SUP") return reply(400, { errorMessages: [], errors: { project: "valid project is required" } });
      return reply(201, { id: "10003", key: "SUP-8", self: `https://${req.host}${base}/issue/10003` });
    }
    if (req.method === "GET" && (m = /^\/rest\/api\/3\/issue\/([^/]+)$/.exec(req.path))) {
      if (m[1] !== issue.key) return reply(404, { errorMessages: ["Issue does not exist or you do not have permission to see it."], errors: {} });
      return reply(200, issue);
    }
    // The enhanced search (the old /search was removed in 2025): ids only unless fields are asked for.
    if (req.method === "GET" && req.path === `${base}/search/jql`) {
      if (!req.query.get("jql")) return reply(400, { errorMessages: ["The JQL query is required."], errors: {} });
      const fields = (req.query.get("fields") ?? "").split(",");
      const shown = { id: issue.id, key: issue.key, fields: Object.fromEntries(Object.entries(issue.fields).filter(([k]) => fields.includes(k))) };
      return reply(200, { issues: [shown].slice(0, Number(req.query.get("maxResults") ?? 50)), isLast: true });
    }
  },

  shopify(req, api) {
    if (req.headers["x-shopify-access-token"] !== api.creds.shopify) return reply(401, { errors: "[API] Invalid API key or access token (unrecognized login or wrong password)" });
    const base = "/admin/api/2024-10";
    const order = { id: 450789469, name: "#1001", email: "bob.norman@mail.example.com", financial_status: "paid", fulfillment_status: null, total_price: "598.94", currency: "USD", note: null, fulfillments: [] };
    let m;
    if (req.method === "GET" && req.path === `${base}/orders.json`) return reply(200, { orders: req.query.get("name") === order.name && req.query.get("status") === "any" ? [order] : [] });
    if (req.method === "GET" && req.path === `${base}/products.json`) {
      // Cursor pages in the Link header (page_info); a page_info request takes only limit.
      const all = ["IPod Nano - 8GB", "IPod Touch 8GB", "IPod Shuffle"].map((title, i) => ({ id: 632910392 + i, title, status: "active", vendor: "Apple" }));
      const info = req.query.get("page_info");
      if (info && [...req.query.keys()].some((k) => !["page_info", "limit"].includes(k))) return reply(400, { errors: "page_info cannot be combined with other filters" });
      const from = info ? Number(Buffer.from(info, "base64url").toString()) : 0;
      const limit = Number(req.query.get("limit") ?? 50);
      const page = (req.query.get("title") ? all.filter((p) => p.title === req.query.get("title")) : all).slice(from, from + limit);
      const here = `http://${req.headers.host}/shopify/${req.host}${req.path}`;
      const links = [];
      if (from > 0) links.push(`<${here}?limit=${limit}&page_info=${Buffer.from(String(Math.max(0, from - limit))).toString("base64url")}>; rel="previous"`);
      if (from + limit < all.length && !req.query.get("title")) links.push(`<${here}?limit=${limit}&page_info=${Buffer.from(String(from + limit)).toString("base64url")}>; rel="next"`);
      return reply(200, { products: page }, links.length ? { link: links.join(", ") } : {});
    }
    if (req.method === "PUT" && (m = /^\/admin\/api\/2024-10\/orders\/(\d+)\.json$/.exec(req.path))) {
      if (Number(m[1]) !== order.id) return reply(404, { errors: "Not Found" });
      const o = req.json()?.order;
      if (!o || o.id !== order.id) return reply(400, { errors: { order: "Required parameter missing or invalid" } });
      return reply(200, { order: { ...order, note: o.note } });
    }
  },

  zendesk(req, api) {
    if (basicOf(req) !== `${api.creds.zendesk.email}/token:${api.creds.zendesk.token}`) return reply(401, { error: "Couldn't authenticate you" });
    const base = "/api/v2";
    const ticket = { id: 35436, url: `https://${req.host}${base}/tickets/35436.json`, subject: "Help, my printer is on fire!", status: "open", requester_id: 20978392, tags: ["chatbot"], updated_at: "2024-11-29T09:12:00Z" };
    let m;
    if (req.method === "POST" && req.path === `${base}/tickets.json`) {
      const t = req.json()?.ticket ?? {};
      if (!t.comment?.body) return reply(422, { error: "RecordInvalid", description: "Record validation errors", details: { base: [{ description: "Description: cannot be blank", error: "BlankValue" }] } });
      return reply(201, { ticket: { ...ticket, id: 35437, url: `https://${req.host}${base}/tickets/35437.json`, subject: t.subject, status: "new", tags: t.tags } });
    }
    if (req.method === "GET" && (m = /^\/api\/v2\/tickets\/(\d+)\.json$/.exec(req.path))) {
      if (Number(m[1]) !== ticket.id) return reply(404, { error: "RecordNotFound", description: "Not found" });
      return reply(200, { ticket });
    }
    if (req.method === "GET" && req.path === `${base}/tickets.json`) {
      // Cursor pagination: page[size] and page[after], meta.has_more and meta.after_cursor.
      const all = [ticket, { ...ticket, id: 35438, subject: "Where is my order?" }, { ...ticket, id: 35439, subject: "Change my address" }];
      const after = req.query.get("page[after]");
      const from = after ? Number(Buffer.from(after, "base64url").toString()) : 0;
      const size = Number(req.query.get("page[size]") ?? 100);
      const more = from + size < all.length;
      const cursor = Buffer.from(String(from + size)).toString("base64url");
      return reply(200, { tickets: all.slice(from, from + size), meta: { has_more: more, after_cursor: more ? cursor : null, before_cursor: null }, links: { next: more ? `https://${req.host}${base}/tickets.json?page%5Bafter%5D=${cursor}&page%5Bsize%5D=${size}` : null, prev: null } });
    }
  },

  // Shopify's GraphQL Admin API, and an Apollo server with automatic persisted queries.
  graphql(req, api) {
    if (req.host.endsWith(".myshopify.com")) return shopifyGraphql(req, api);
    if (bearerOf(req) !== api.creds.apollo) return reply(401, { errors: [{ message: "Unauthorized", extensions: { code: "UNAUTHENTICATED" } }] });
    const b = req.json() ?? {};
    const hash = b.extensions?.persistedQuery?.sha256Hash;
    let query = b.query;
    if (hash) {
      if (query) {
        if (createHash("sha256").update(query).digest("hex") !== hash) return reply(400, { errors: [{ message: "provided sha does not match query", extensions: { code: "BAD_USER_INPUT" } }] });
        api.persisted.set(hash, query);
      } else if (!(query = api.persisted.get(hash))) {
        return reply(200, { errors: [{ message: "PersistedQueryNotFound", extensions: { code: "PERSISTED_QUERY_NOT_FOUND" } }] });
      }
    }
    if (/__typename/.test(query)) return reply(200, { data: { __typename: "Query" } });
    return reply(200, { data: { faq: { question: "Do you ship abroad?", answer: `Yes, to ${b.variables?.country ?? "everywhere"}.` } } });
  },

  rest(req, api) {
    if (bearerOf(req) !== api.creds.rest) return reply(401, { error: "unauthorized" });
    let m;
    if (req.method === "GET" && req.path === "/health") return reply(200, { status: "ok" });
    if (req.method === "POST" && (m = /^\/([a-z]+)$/.exec(req.path))) {
      const id = String(api.rest.length + 1);
      api.rest.push({ resource: m[1], id, ...req.json() });
      return reply(201, { id, ...req.json() });
    }
    if (req.method === "GET" && (m = /^\/([a-z]+)\/([^/]+)$/.exec(req.path))) {
      const found = api.rest.find((r) => r.resource === m[1] && r.id === m[2]);
      return found ? reply(200, found) : reply(404, { error: "not found" });
    }
    if (req.method === "GET" && (m = /^\/([a-z]+)$/.exec(req.path))) return reply(200, api.rest.filter((r) => r.resource === m[1]));
  },
};

/** Enough of Shopify's GraphQL Admin API (2025-01) to answer the documents the tests install. */
function shopifyGraphql(req, api) {
  if (req.headers["x-shopify-access-token"] !== api.creds.shopify) return reply(401, { errors: "[API] Invalid API key or access token (unrecognized login or wrong password)" });
  if (req.path !== "/admin/api/2025-01/graphql.json") return reply(404, { errors: "Not Found" });
  const { query = "", variables = {} } = req.json() ?? {};
  const cost = (requested) => ({ cost: { requestedQueryCost: requested, actualQueryCost: requested, throttleStatus: { maximumAvailable: 2000.0, currentlyAvailable: 2000 - requested, restoreRate: 100.0 } } });
  if (/__typename/.test(query)) return reply(200, { data: { __typename: "QueryRoot" }, extensions: cost(1) });
  const unknown = /\b(ordr)\b/.exec(query);
  if (unknown)
    return reply(200, { errors: [{ message: `Field '${unknown[1]}' doesn't exist on type 'QueryRoot'`, locations: [{ line: 1, column: 20 }], path: ["query", unknown[1]], extensions: { code: "undefinedField", typeName: "QueryRoot", fieldName: unknown[1] } }] });
  if (/\border\(id: \$id\)/.test(query)) {
    if (variables.id !== "gid://shopify/Order/450789469") return reply(200, { data: { order: null }, extensions: cost(3) });
    const order = { id: variables.id, name: "#1001", displayFinancialStatus: "PAID", displayFulfillmentStatus: "UNFULFILLED" };
    // The app lacks read_customers: that field is null and its error says why.
    if (/\bcustomer\s*\{/.test(query))
      return reply(200, {
        data: { order: { ...order, customer: null } },
        errors: [{ message: "Access denied for customer field. Required access: `read_customers` access scope.", locations: [{ line: 1, column: 80 }], path: ["order", "customer"], extensions: { code: "ACCESS_DENIED", documentation: "https://shopify.dev/api/usage/access-scopes", requiredAccess: "`read_customers` access scope." } }],
        extensions: cost(4),
      });
    return reply(200, { data: { order }, extensions: cost(3) });
  }
  if (/\btagsAdd\(/.test(query)) {
    if (!Array.isArray(variables.tags) || !variables.tags.length) return reply(200, { data: { tagsAdd: { node: null, userErrors: [{ field: ["tags"], message: "Tags can't be blank" }] } }, extensions: cost(10) });
    api.shopifyTags.push(...variables.tags);
    return reply(200, { data: { tagsAdd: { node: { id: variables.id }, userErrors: [] } }, extensions: cost(10) });
  }
  return reply(200, { errors: [{ message: "Parse error on \"}\" (RCURLY)", locations: [{ line: 1, column: 1 }] }] });
}

/**
 * Starts the stand-in. `creds`: each provider's credentials as the tests install them.
 * `api.limit(template, {status, headers, body}, times)` makes its next calls answer that (a rate
 * limit); `api.seen` lists every request with the time it arrived.
 */
export async function startSaas(creds) {
  const api = {
    creds,
    seen: [],
    limits: {},
    rest: [],
    persisted: new Map(),
    shopifyTags: [],
    salesforce: { n: 0, refreshTokens: new Set([creds.salesforce.refreshToken]), accessTokens: new Set(), refreshes: [], issuedRefresh: [], cases: [] },
  };
  api.limit = (template, answer, times = 1) => (api.limits[template] = { ...answer, times });
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url, "http://x");
      const [, template, host, ...rest] = url.pathname.split("/");
      const raw = Buffer.concat(chunks).toString();
      const r = {
        method: req.method, template, host, path: "/" + rest.join("/"), query: url.searchParams, headers: req.headers, raw,
        json: () => { try { return JSON.parse(raw); } catch { return undefined; } },
      };
      api.seen.push({ ...r, at: Date.now() });
      const send = ({ status, body, headers = {} }) => {
        res.writeHead(status, { "content-type": "application/json", ...headers });
        res.end(typeof body === "string" ? body : JSON.stringify(body));
      };
      const limit = api.limits[template];
      if (limit?.times > 0 && !r.path.includes("token")) {
        limit.times--;
        return send(limit);
      }
      const out = providers[template]?.(r, api);
      send(out ?? reply(404, { error: `no route ${req.method} ${r.path}` }));
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  api.url = `http://127.0.0.1:${server.address().port}`;
  api.close = () => new Promise((r) => server.close(r));
  return api;
}
