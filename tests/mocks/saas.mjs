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

  woocommerce(req, api) {
    const { key, secret } = api.creds.woocommerce;
    if (basicOf(req) !== `${key}:${secret}`) return reply(401, { code: "woocommerce_rest_cannot_view", message: "Sorry, you cannot list resources.", data: { status: 401 } });
    const base = "/wp-json/wc/v3";
    const order = (id, email) => ({ id, parent_id: 0, number: String(id), status: "processing", currency: "USD", total: "29.35", billing: { first_name: "John", last_name: "Doe", email }, line_items: [{ id: 315, name: "Woo Single #1", product_id: 93, quantity: 2, total: "6.00" }] });
    const orders = [order(727, "john.doe@example.com"), order(728, "john.doe@example.com"), order(729, "ada@example.com")];
    let m;
    if (req.method === "GET" && (m = /^\/wp-json\/wc\/v3\/orders\/(\d+)$/.exec(req.path))) {
      const o = orders.find((o) => o.id === Number(m[1]));
      return o ? reply(200, o) : reply(404, { code: "woocommerce_rest_shop_order_invalid_id", message: "Invalid ID.", data: { status: 404 } });
    }
    if (req.method === "GET" && req.path === `${base}/orders`) {
      // WordPress REST paging: page and per_page, the total in headers and a Link rel="next".
      const search = req.query.get("search");
      const all = orders.filter((o) => !search || o.billing.email === search);
      const perPage = Number(req.query.get("per_page") ?? 10);
      const page = Number(req.query.get("page") ?? 1);
      const pages = Math.max(1, Math.ceil(all.length / perPage));
      const here = `http://${req.headers.host}/woocommerce/${req.host}${req.path}`;
      const q = (p) => new URLSearchParams({ ...Object.fromEntries(req.query), page: String(p) }).toString();
      const links = page < pages ? { link: `<${here}?${q(page + 1)}>; rel="next"` } : {};
      return reply(200, all.slice((page - 1) * perPage, page * perPage), { "x-wp-total": String(all.length), "x-wp-totalpages": String(pages), ...links });
    }
    if (req.method === "POST" && (m = /^\/wp-json\/wc\/v3\/orders\/(\d+)\/notes$/.exec(req.path))) {
      if (!orders.some((o) => o.id === Number(m[1]))) return reply(404, { code: "woocommerce_rest_shop_order_invalid_id", message: "Invalid order ID.", data: { status: 404 } });
      const b = req.json() ?? {};
      if (!b.note) return reply(400, { code: "rest_missing_callback_param", message: "Missing parameter(s): note", data: { status: 400, params: ["note"] } });
      return reply(201, { id: 281, author: "system", date_created: "2026-11-30T10:00:00", note: b.note, customer_note: b.customer_note === true });
    }
  },

  intercom(req, api) {
    if (bearerOf(req) !== api.creds.intercom) return reply(401, { type: "error.list", request_id: "000on04g3kmp2pc3lsfg", errors: [{ code: "unauthorized", message: "Access Token Invalid" }] });
    if (req.headers["intercom-version"] !== "2.11") return reply(400, { type: "error.list", errors: [{ code: "intercom_version_invalid", message: "Requested version is not valid" }] });
    const contact = { type: "contact", id: "6657adc46abd0167d9419d1a", workspace_id: "this_is_an_id_for_a_workspace", role: "user", email: "joe@example.com", name: "Joe Bloggs" };
    let m;
    if (req.method === "POST" && req.path === "/contacts/search") {
      const q = req.json()?.query ?? {};
      const data = q.field === "email" && q.operator === "=" && q.value === contact.email ? [contact] : [];
      return reply(200, { type: "list", data, total_count: data.length, pages: { type: "pages", page: 1, per_page: 50, total_pages: 1 } });
    }
    if (req.method === "POST" && req.path === "/conversations") {
      const b = req.json() ?? {};
      if (b.from?.id !== contact.id) return reply(404, { type: "error.list", request_id: "req", errors: [{ code: "not_found", message: "User Not Found" }] });
      return reply(200, { type: "user_message", id: "403918396", created_at: 1719492939, body: b.body, message_type: "inapp", conversation_id: "363" });
    }
    if (req.method === "POST" && (m = /^\/conversations\/(\d+)\/reply$/.exec(req.path))) {
      const b = req.json() ?? {};
      if (b.admin_id !== "991267") return reply(400, { type: "error.list", errors: [{ code: "parameter_invalid", message: "Admin not found" }] });
      return reply(200, { type: "conversation", id: m[1], state: "open", open: true, conversation_parts: { type: "conversation_part.list", conversation_parts: [{ type: "conversation_part", part_type: "comment", body: `<p>${b.body}</p>` }] } });
    }
  },

  paypal(req, api) {
    const pp = api.paypal;
    if (req.path === "/v1/oauth2/token") {
      const basic = basicOf(req);
      const f = new URLSearchParams(req.raw);
      if (basic !== `${api.creds.paypal.clientId}:${api.creds.paypal.clientSecret}` || f.get("client_id")) return reply(401, { error: "invalid_client", error_description: "Client Authentication failed" });
      if (f.get("grant_type") !== "client_credentials") return reply(400, { error: "unsupported_grant_type", error_description: "Grant Type is NULL" });
      const token = `A21AAF${++pp.n}`;
      pp.tokens.add(token);
      return reply(200, { scope: "https://uri.paypal.com/services/payments/refund https://uri.paypal.com/services/disputes/read-seller", access_token: token, token_type: "Bearer", app_id: "APP-80W284485P519543T", expires_in: 32400, nonce: "2026-11-30T10:00:00Z" });
    }
    if (!pp.tokens.has(bearerOf(req))) return reply(401, { error: "invalid_token", error_description: "Token signature verification failed" });
    let m;
    if (req.method === "GET" && (m = /^\/v2\/checkout\/orders\/([A-Z0-9]+)$/.exec(req.path))) {
      if (m[1] !== "5O190127TN364715T") return reply(404, { name: "RESOURCE_NOT_FOUND", details: [{ issue: "INVALID_RESOURCE_ID", description: "Specified resource ID does not exist. Please check the resource ID and try again." }], message: "The specified resource does not exist.", debug_id: "b1d1f06c7246c" });
      return reply(200, { id: m[1], status: "COMPLETED", intent: "CAPTURE", payer: { email_address: "customer@example.com", payer_id: "QYR5Z8XDVJNXQ" }, purchase_units: [{ reference_id: "default", amount: { currency_code: "USD", value: "100.00" }, payments: { captures: [{ id: "3C679366HH908993F", status: "COMPLETED", amount: { currency_code: "USD", value: "100.00" } }] } }] });
    }
    if (req.method === "POST" && (m = /^\/v2\/payments\/captures\/([A-Z0-9]+)\/refund$/.exec(req.path))) {
      const b = req.json() ?? {};
      // PayPal refuses nulls where it accepts an absent field.
      if (JSON.stringify(b).includes("null")) return reply(400, { name: "INVALID_REQUEST", message: "Request is not well-formed, syntactically incorrect, or violates schema.", details: [{ issue: "INVALID_PARAMETER_SYNTAX", description: "The value of a field does not conform to the expected format." }] });
      const id = req.headers["paypal-request-id"];
      if (id && pp.refunds.has(id)) return reply(201, pp.refunds.get(id));
      const refund = { id: `1JU08902781691${pp.refunds.size + 411}`, status: "COMPLETED", amount: b.amount ?? { value: "100.00", currency_code: "USD" }, note_to_payer: b.note_to_payer };
      pp.refunds.set(id ?? refund.id, refund);
      return reply(201, refund);
    }
    if (req.method === "GET" && req.path === "/v1/customer/disputes")
      return reply(200, { items: [{ dispute_id: "PP-D-27803", reason: "MERCHANDISE_OR_SERVICE_NOT_RECEIVED", status: "WAITING_FOR_SELLER_RESPONSE", dispute_amount: { currency_code: "USD", value: "50.00" } }].slice(0, Number(req.query.get("page_size") ?? 10)), links: [] });
  },

  twilio(req, api) {
    const { sid, keySid, keySecret } = api.creds.twilio;
    if (basicOf(req) !== `${keySid}:${keySecret}`) return reply(401, { code: 20003, message: "Authenticate", more_info: "https://www.twilio.com/docs/errors/20003", status: 401 });
    const base = `/2010-04-01/Accounts/${sid}`;
    const message = (p) => ({ account_sid: sid, api_version: "2010-04-01", body: p.Body, date_created: "Mon, 30 Nov 2026 10:00:00 +0000", date_sent: null, direction: "outbound-api", error_code: null, error_message: null, from: p.From, num_segments: "1", price: null, sid: "SM" + "a".repeat(32), status: "queued", to: p.To, uri: `${base}/Messages/SM${"a".repeat(32)}.json` });
    let m;
    if (req.method === "POST" && req.path === `${base}/Messages.json`) {
      if (!req.headers["content-type"]?.startsWith("application/x-www-form-urlencoded")) return reply(400, { code: 20001, message: "Unsupported content type", status: 400 });
      const p = Object.fromEntries(new URLSearchParams(req.raw));
      if (p.To === "+15005550001") return reply(400, { code: 21211, message: `The 'To' number ${p.To} is not a valid phone number.`, more_info: "https://www.twilio.com/docs/errors/21211", status: 400 });
      api.twilioSent.push(p);
      return reply(201, message(p));
    }
    if (req.method === "GET" && (m = /^\/2010-04-01\/Accounts\/AC\w+\/Messages\/(SM\w+)\.json$/.exec(req.path))) {
      if (m[1] !== "SM" + "a".repeat(32)) return reply(404, { code: 20404, message: `The requested resource ${req.path} was not found`, more_info: "https://www.twilio.com/docs/errors/20404", status: 404 });
      return reply(200, { ...message({ To: "+14155552671", From: "+15005550006", Body: "hi" }), status: "delivered", date_sent: "Mon, 30 Nov 2026 10:00:02 +0000" });
    }
    if (req.method === "GET" && req.path === `${base}/Messages.json`)
      return reply(200, { messages: api.twilioSent.map(message).slice(0, Number(req.query.get("PageSize") ?? 50)), end: 0, first_page_uri: `${base}/Messages.json?PageSize=50&Page=0`, next_page_uri: null, page: 0, page_size: 50, previous_page_uri: null, start: 0, uri: `${base}/Messages.json?PageSize=50&Page=0` });
  },

  freshdesk(req, api) {
    if (basicOf(req) !== `${api.creds.freshdesk}:X`) return reply(401, { code: "invalid_credentials", message: "You have to be logged in to perform this action." });
    const ticket = { id: 1, subject: "Support needed..", description_text: "Details about the issue...", status: 2, priority: 1, source: 7, requester_id: 129, tags: ["chatbot"], created_at: "2026-11-29T10:00:00Z", updated_at: "2026-11-29T10:00:00Z" };
    let m;
    if (req.method === "POST" && req.path === "/api/v2/tickets" && req.headers["content-type"]?.startsWith("multipart/form-data")) {
      // Parsed as a server would: the standard FormData reader over the bytes received.
      return new Response(req.bytes, { headers: { "content-type": req.headers["content-type"] } }).formData().then(async (form) => {
        const files = form.getAll("attachments[]");
        const attachments = await Promise.all(files.map(async (f, i) => {
          const bytes = Buffer.from(await f.arrayBuffer());
          return { id: 5000 + i, name: f.name, content_type: f.type, size: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex"), attachment_url: `https://s3.amazonaws.com/cdn.freshdesk.com/data/helpdesk/attachments/${5000 + i}/${f.name}` };
        }));
        if (!/^[^@\s]+@[^@\s]+$/.test(form.get("email") ?? "")) return reply(400, { description: "Validation failed", errors: [{ field: "email", message: "It should be a valid email address", code: "invalid_value" }] });
        return reply(201, { ...ticket, id: 4, subject: form.get("subject"), priority: Number(form.get("priority")), tags: form.getAll("tags[]"), attachments });
      }, () => reply(400, { description: "Validation failed", errors: [{ field: "attachments", message: "Invalid multipart body", code: "invalid_value" }] }));
    }
    if (req.method === "POST" && req.path === "/api/v2/tickets") {
      const b = req.json() ?? {};
      if (!/^[^@\s]+@[^@\s]+$/.test(b.email ?? "")) return reply(400, { description: "Validation failed", errors: [{ field: "email", message: "It should be a valid email address", code: "invalid_value" }] });
      return reply(201, { ...ticket, id: 2, subject: b.subject, priority: b.priority, status: b.status, source: b.source });
    }
    if (req.method === "GET" && (m = /^\/api\/v2\/tickets\/(\d+)$/.exec(req.path))) return Number(m[1]) === 1 ? reply(200, ticket) : reply(404, { code: "access_denied", message: "You are not authorized to perform this action." });
    if (req.method === "GET" && req.path === "/api/v2/tickets") {
      const all = [ticket, { ...ticket, id: 3, subject: "Another one" }];
      const perPage = Number(req.query.get("per_page") ?? 30);
      const page = Number(req.query.get("page") ?? 1);
      const here = `http://${req.headers.host}/freshdesk/${req.host}${req.path}`;
      const more = page * perPage < all.length;
      return reply(200, all.slice((page - 1) * perPage, page * perPage), more ? { link: `<${here}?per_page=${perPage}&page=${page + 1}>; rel="next"` } : {});
    }
  },

  "zoho-crm"(req, api) {
    const z = api.zoho;
    if (req.path === "/oauth/v2/token") {
      const f = new URLSearchParams(req.raw);
      if (f.get("client_id") !== api.creds.zoho.clientId || f.get("client_secret") !== api.creds.zoho.clientSecret) return reply(200, { error: "invalid_client" });
      if (f.get("grant_type") !== "refresh_token" || f.get("refresh_token") !== api.creds.zoho.refreshToken) return reply(200, { error: "invalid_code" });
      const token = `1000.${++z.n}b9e3f`;
      z.tokens.add(token);
      return reply(200, { access_token: token, scope: "ZohoCRM.modules.contacts.READ ZohoCRM.modules.leads.CREATE ZohoCRM.users.READ", api_domain: "https://www.zohoapis.eu", token_type: "Bearer", expires_in: 3600 });
    }
    const token = /^Zoho-oauthtoken (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    if (!z.tokens.has(token)) return reply(401, { code: "INVALID_TOKEN", details: {}, message: "invalid oauth token", status: "error" });
    if (req.method === "GET" && req.path === "/crm/v7/Contacts/search") {
      if (req.query.get("email") !== "patricia@example.com") return { status: 204, body: "" };
      return reply(200, { data: [{ id: "4876876000000624001", First_Name: "Patricia", Last_Name: "Boyle", Email: "patricia@example.com", Phone: "555-555-5555", Account_Name: { name: "Zylker", id: "4876876000000624002" } }], info: { per_page: 200, count: 1, page: 1, more_records: false } });
    }
    if (req.method === "POST" && req.path === "/crm/v7/Leads") {
      const lead = req.json()?.data?.[0] ?? {};
      if (Object.values(lead).includes(null)) return reply(400, { data: [{ code: "INVALID_DATA", details: { expected_data_type: "text" }, message: "invalid data", status: "error" }] });
      if (!lead.Last_Name) return reply(400, { data: [{ code: "MANDATORY_NOT_FOUND", details: { api_name: "Last_Name" }, message: "required field not found", status: "error" }] });
      return reply(201, { data: [{ code: "SUCCESS", details: { Modified_Time: "2026-11-30T10:00:00+01:00", id: "4876876000000625001", Created_Time: "2026-11-30T10:00:00+01:00" }, message: "record added", status: "success" }] });
    }
    if (req.method === "GET" && req.path === "/crm/v7/users" && req.query.get("type") === "CurrentUser") return reply(200, { users: [{ id: "4876876000000225013", full_name: "Patricia Boyle", email: "admin@zylker.example" }] });
  },

  pipedrive(req, api) {
    if (req.headers["x-api-token"] !== api.creds.pipedrive) return reply(401, { success: false, error: "unauthorized access", errorCode: 401, error_info: "Please check developers.pipedrive.com for more information about Pipedrive API." });
    let m;
    if (req.method === "GET" && req.path === "/v1/persons/search") {
      const found = req.query.get("term") === "ada@example.com";
      return reply(200, { success: true, data: { items: found ? [{ result_score: 1.0, item: { id: 1, type: "person", name: "Ada Lovelace", emails: ["ada@example.com"], organization: { id: 1, name: "Analytical Engines" } } }] : [] }, additional_data: { pagination: { start: 0, limit: 100, more_items_in_collection: false } } });
    }
    if (req.method === "GET" && req.path === "/v1/deals") {
      const all = [1, 2, 3].map((id) => ({ id, title: `Deal ${id}`, value: 1000 * id, currency: "EUR", status: "open" }));
      const start = Number(req.query.get("start") ?? 0);
      const limit = Number(req.query.get("limit") ?? 100);
      const more = start + limit < all.length;
      return reply(200, { success: true, data: all.slice(start, start + limit), additional_data: { pagination: { start, limit, more_items_in_collection: more, ...(more ? { next_start: start + limit } : {}) } } });
    }
    if (req.method === "POST" && req.path === "/v1/deals") {
      const b = req.json() ?? {};
      if (!b.title) return reply(400, { success: false, error: "Title must be given.", error_info: "Please check developers.pipedrive.com for more information about Pipedrive API.", data: null, additional_data: null });
      if (b.person_id === 999) return reply(404, { success: false, error: "Person not found", error_info: "Please check developers.pipedrive.com for more information about Pipedrive API.", data: null, additional_data: null });
      return reply(201, { success: true, data: { id: 4, title: b.title, value: b.value ?? 0, currency: b.currency ?? "EUR", status: "open", person_id: b.person_id ?? null } });
    }
  },

  calendly(req, api) {
    if (bearerOf(req) !== api.creds.calendly) return reply(401, { title: "Unauthenticated", message: "The access token is invalid" });
    const user = "https://api.calendly.com/users/AAAAAAAAAAAAAAAA";
    let m;
    if (req.method === "GET" && req.path === "/users/me") return reply(200, { resource: { uri: user, name: "John Doe", scheduling_url: "https://calendly.com/acmesales", timezone: "America/New_York", current_organization: "https://api.calendly.com/organizations/AAAAAAAAAAAAAAAA" } });
    if (req.method === "GET" && req.path === "/scheduled_events") {
      if (req.query.get("user") !== user) return reply(400, { title: "Invalid Argument", message: "The supplied parameters are invalid.", details: [{ parameter: "user", message: "must be a valid URI" }] });
      const all = ["GBGBDCAADAEDCRZ2", "GBGBDCAADAEDCRZ3", "GBGBDCAADAEDCRZ4"].map((id, i) => ({ uri: `https://api.calendly.com/scheduled_events/${id}`, name: "15 Minute Meeting", status: "active", start_time: `2026-12-0${i + 1}T15:00:00.000000Z`, end_time: `2026-12-0${i + 1}T15:15:00.000000Z`, location: { type: "zoom", join_url: `https://zoom.us/j/${i}` } }));
      const count = Number(req.query.get("count") ?? 20);
      const from = Number(req.query.get("page_token") ? Buffer.from(req.query.get("page_token"), "base64url").toString() : 0);
      const more = from + count < all.length;
      const token = more ? Buffer.from(String(from + count)).toString("base64url") : null;
      return reply(200, { collection: all.slice(from, from + count), pagination: { count, next_page: token ? `https://api.calendly.com/scheduled_events?count=${count}&page_token=${token}` : null, next_page_token: token, previous_page: null, previous_page_token: null } });
    }
    if (req.method === "POST" && req.path === "/scheduling_links") {
      const b = req.json() ?? {};
      if (b.owner_type !== "EventType" || !b.owner?.startsWith("https://api.calendly.com/event_types/")) return reply(400, { title: "Invalid Argument", message: "The supplied parameters are invalid." });
      return reply(201, { resource: { booking_url: "https://calendly.com/d/abcd-brv8/15-minute-meeting", owner: b.owner, owner_type: "EventType" } });
    }
    if (req.method === "POST" && (m = /^\/scheduled_events\/([A-Za-z0-9-]+)\/cancellation$/.exec(req.path))) {
      if (m[1] !== "GBGBDCAADAEDCRZ2") return reply(404, { title: "Resource Not Found", message: "The server could not find the requested resource." });
      return reply(201, { resource: { canceled_by: "John Doe", reason: req.json()?.reason ?? null, canceler_type: "host", created_at: "2026-11-30T10:00:00.000000Z" } });
    }
  },

  pinecone(req, api) {
    if (req.headers["api-key"] !== api.creds.pinecone) return reply(401, { error: { code: "UNAUTHENTICATED", message: "Invalid API Key" }, status: 401 });
    if (!req.headers["x-pinecone-api-version"]) return reply(400, { code: 3, message: "missing X-Pinecone-API-Version", details: [] });
    const b = req.json() ?? {};
    if (req.method === "POST" && req.path === "/describe_index_stats") return reply(200, { namespaces: { support: { vectorCount: api.pinecone.length } }, dimension: 3, indexFullness: 0, totalVectorCount: api.pinecone.length });
    if (req.method === "POST" && req.path === "/vectors/upsert") {
      const bad = (b.vectors ?? []).find((v) => v.values?.length !== 3);
      if (bad) return reply(400, { code: 3, message: `Vector dimension ${bad.values?.length ?? 0} does not match the dimension of the index 3`, details: [] });
      for (const v of b.vectors) api.pinecone.push({ ...v, namespace: b.namespace ?? "" });
      return reply(200, { upsertedCount: b.vectors.length });
    }
    if (req.method === "POST" && req.path === "/query") {
      if (b.vector?.length !== 3) return reply(400, { code: 3, message: `Query vector dimension ${b.vector?.length ?? 0} does not match the dimension of the index 3`, details: [] });
      const dot = (v) => v.values.reduce((s, x, i) => s + x * b.vector[i], 0);
      const matches = api.pinecone.filter((v) => v.namespace === (b.namespace ?? "")).map((v) => ({ id: v.id, score: dot(v), values: [], metadata: v.metadata })).sort((x, y) => y.score - x.score).slice(0, b.topK);
      return reply(200, { results: [], matches, namespace: b.namespace ?? "", usage: { readUnits: 6 } });
    }
  },

  weaviate(req, api) {
    if (bearerOf(req) !== api.creds.weaviate) return reply(401, { code: 401, message: "anonymous access not enabled, please provide an auth scheme such as OIDC" });
    if (req.method === "GET" && req.path === "/v1/meta") return reply(200, { hostname: "http://[::]:8080", modules: { "text2vec-openai": {} }, version: "1.27.0" });
    if (req.method === "POST" && req.path === "/v1/objects") {
      const b = req.json() ?? {};
      if (b.class !== "Article") return reply(422, { error: [{ message: `class '${b.class}' not found in schema` }] });
      const obj = { class: b.class, id: b.id ?? "36ddd591-2dee-4e7e-a3cc-eb86d30a4303", properties: b.properties, creationTimeUnix: 1764496800000, lastUpdateTimeUnix: 1764496800000, vector: b.vector };
      api.weaviate.push(obj);
      return reply(200, obj);
    }
    if (req.method === "POST" && req.path === "/v1/graphql") {
      const { query = "", variables = {} } = req.json() ?? {};
      const m = /Get \{ (\w+)\((nearText|nearVector): \{(concepts|vector): \$\w+\}, limit: \$limit\) \{ ([\w ]+) _additional/.exec(query);
      if (!m) return reply(200, { data: null, errors: [{ locations: [{ column: 1, line: 1 }], message: "Syntax Error GraphQL request (1:1) Unexpected Name" }] });
      const [, cls, op, , props] = m;
      if (cls !== "Article") return reply(200, { data: { Get: null }, errors: [{ message: `Cannot query field "${cls}" on type "GetObjectsObj".`, path: ["Get"] }] });
      const words = op === "nearText" ? variables.concepts : null;
      const hits = api.weaviate
        .filter((o) => !words || words.some((w) => JSON.stringify(o.properties).toLowerCase().includes(w.toLowerCase())))
        .slice(0, variables.limit ?? 10)
        .map((o, i) => ({ ...Object.fromEntries(props.split(" ").map((p) => [p, o.properties[p] ?? null])), _additional: { id: o.id, distance: 0.1 * (i + 1) } }));
      return reply(200, { data: { Get: { [cls]: hits } } });
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
    paypal: { n: 0, tokens: new Set(), refunds: new Map() },
    zoho: { n: 0, tokens: new Set() },
    twilioSent: [],
    pinecone: [],
    weaviate: [],
    salesforce: { n: 0, refreshTokens: new Set([creds.salesforce.refreshToken]), accessTokens: new Set(), refreshes: [], issuedRefresh: [], cases: [] },
  };
  api.limit = (template, answer, times = 1) => (api.limits[template] = { ...answer, times });
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url, "http://x");
      const [, template, host, ...rest] = url.pathname.split("/");
      const bytes = Buffer.concat(chunks);
      const raw = bytes.toString();
      const r = {
        method: req.method, template, host, path: "/" + rest.join("/"), query: url.searchParams, headers: req.headers, raw, bytes,
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
      // A provider answers at once, or with a promise (one that reads a multipart body).
      Promise.resolve(providers[template]?.(r, api)).then((out) => send(out ?? reply(404, { error: `no route ${req.method} ${r.path}` })));
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  api.url = `http://127.0.0.1:${server.address().port}`;
  api.close = () => new Promise((r) => server.close(r));
  return api;
}
