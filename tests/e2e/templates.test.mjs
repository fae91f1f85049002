// Every marketplace template, installed through `POST /v1/integrations` with a tenant's settings
// and called, a read and a write each, against stand-ins that answer in the provider's own shapes
// (tests/mocks/saas.mjs): the auth each API reads, its field names, its error bodies in the
// envelope, its rate-limit headers honoured, and Salesforce's refresh token rotated. And every
// endpoint tried with `options.mock`, answering from its `mock_response` without a provider.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { startGateway, planted, ROOT } from "../harness.mjs";
import { startSaas, nestedForm } from "../mocks/saas.mjs";

const secret = (prefix) => {
  const s = prefix + randomBytes(12).toString("hex");
  planted.add(s);
  return s;
};
const creds = {
  stripe: secret("sk_test_"),
  salesforce: { clientId: "3MVG9sf-connected-app", clientSecret: secret("sf-secret-"), refreshToken: secret("5Aep861-configured-") },
  hubspot: secret("pat-na1-"),
  jira: { email: "mia@acme.example", token: secret("ATATT3x-") },
  shopify: secret("shpat_"),
  zendesk: { email: "agent@acme.example", token: secret("zd-") },
  rest: secret("rest-"),
  apollo: secret("apollo-"),
  woocommerce: { key: secret("ck_"), secret: secret("cs_") },
  intercom: secret("dG9rOm"),
  paypal: { clientId: "AeA1QIZXiflr1_-r0U2UbWTziOWX1GRQer5jkUq4ZfWT5qwb6qQRPq7jDtv57TL4POEEezGLdutcxnkJ", clientSecret: secret("ECYYrrSHdKfk_") },
  twilio: { sid: "AC" + "1".repeat(32), keySid: "SK" + "2".repeat(32), keySecret: secret("twilio-") },
  freshdesk: secret("fd-"),
  zoho: { clientId: "1000.GMB0YULZHJK411248S8I5GZ4CHUEX0", clientSecret: secret("zoho-"), refreshToken: secret("1000.rt-") },
  pipedrive: randomBytes(20).toString("hex"),
  calendly: secret("eyJraWQiOiIx"),
  pinecone: secret("pcsk_"),
  weaviate: secret("wv-"),
};
planted.add(creds.pipedrive);
/** A small PNG with every byte value a text encoding would mangle. */
const PNG = Buffer.concat([Buffer.from("89504e470d0a1a0a", "hex"), Buffer.from([...Array(256).keys()])]);
const ORDER_QUERY = "query Order($id: ID!) { order(id: $id) { id name displayFinancialStatus displayFulfillmentStatus } }";
/** The generic GraphQL template against Shopify's GraphQL Admin API, with another document. */
const shopifyGraphql = (query, extra = {}) => ({
  url: `${saas.url}/graphql/acme-store.myshopify.com`, path: "/admin/api/2025-01/graphql.json",
  token_header: "X-Shopify-Access-Token", token: creds.shopify, query, ...extra,
});
let gw, saas, key;

/**
 * The shipped template, sending to the stand-in: the https origin of its `base_url` and token
 * URL becomes `{stand-in}/{template}/{host}` (a host filled from settings stays visible to the
 * stand-in), and settings that must be https URLs may be the stand-in's http ones. Endpoints,
 * auth, bodies and mappings are exactly as shipped.
 */
function standIn(template, url) {
  const t = structuredClone(template);
  const origin = (u) => u.replace(/^https:\/\/([^/]+)/, `${url}/${t.id}/$1`);
  t.integration.base_url = origin(t.integration.base_url);
  if (t.integration.auth?.token_url) t.integration.auth.token_url = origin(t.integration.auth.token_url);
  // A host the pattern pins may be the stand-in's `{stand-in}/{template}/{host}` too.
  const here = `${url}/${t.id}/`.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  for (const rule of Object.values(t.settings)) if (rule.pattern?.startsWith("^https://")) rule.pattern = `^(?:https?://|${here})${rule.pattern.slice("^https://".length)}`;
  return t;
}

const templates = Object.fromEntries(
  readdirSync(path.join(ROOT, "kv-seed", "templates")).map((f) => {
    const t = JSON.parse(readFileSync(path.join(ROOT, "kv-seed", "templates", f), "utf8"));
    return [t.id, t];
  }),
);

const settings = () => ({
  stripe: { secret_key: creds.stripe },
  salesforce: {
    instance_url: `${saas.url}/salesforce/acme.my.salesforce.com`, login_url: `${saas.url}/salesforce/login.salesforce.com`,
    client_id: creds.salesforce.clientId, client_secret: creds.salesforce.clientSecret, refresh_token: creds.salesforce.refreshToken,
  },
  hubspot: { access_token: creds.hubspot },
  jira: { site: "acme", email: creds.jira.email, api_token: creds.jira.token },
  shopify: { shop: "acme-store", access_token: creds.shopify },
  zendesk: { subdomain: "acme", email: creds.zendesk.email, api_token: creds.zendesk.token },
  rest: { base_url: `${saas.url}/rest/api.acme.example`, token: creds.rest },
  graphql: shopifyGraphql(ORDER_QUERY, { operation_name: "Order", data_path: "order" }),
  woocommerce: { store_url: `${saas.url}/woocommerce/shop.example.com`, consumer_key: creds.woocommerce.key, consumer_secret: creds.woocommerce.secret },
  intercom: { access_token: creds.intercom, admin_id: "991267", region: "api.eu.intercom.io" },
  paypal: { api_host: "api-m.sandbox.paypal.com", client_id: creds.paypal.clientId, client_secret: creds.paypal.clientSecret },
  twilio: { account_sid: creds.twilio.sid, api_key_sid: creds.twilio.keySid, api_key_secret: creds.twilio.keySecret, from: "+15005550006" },
  freshdesk: { domain: "acme", api_key: creds.freshdesk },
  "zoho-crm": { data_centre: "eu", client_id: creds.zoho.clientId, client_secret: creds.zoho.clientSecret, refresh_token: creds.zoho.refreshToken },
  pipedrive: { api_token: creds.pipedrive },
  calendly: { access_token: creds.calendly, user_uri: "https://api.calendly.com/users/AAAAAAAAAAAAAAAA", event_type_uri: "https://api.calendly.com/event_types/BBBBBBBBBBBBBBBB" },
  pinecone: { index_host: "support-abc1234.svc.aped-4627-b74a.pinecone.io", api_key: creds.pinecone, namespace: "support" },
  weaviate: { cluster_url: `${saas.url}/weaviate/acme.c0.europe-west3.gcp.weaviate.cloud`, api_key: creds.weaviate, collection: "Article", properties: "title body" },
});

before(async () => {
  gw = await startGateway();
  saas = await startSaas({ ...creds, salesforce: creds.salesforce });
  ({ key } = await gw.tenant("market"));
  const kv = await gw.mf.getKVNamespace("CONFIG");
  for (const t of Object.values(templates)) await kv.put(`template:${t.id}`, JSON.stringify(standIn(t, saas.url)));
  for (const [id, s] of Object.entries(settings())) {
    const r = await gw.request("POST", "/v1/integrations", { key, json: { template: id, id, settings: s } });
    assert.equal(r.status, 201, `${id}: ${r.text}`);
  }
});

after(async () => {
  // A leak fails `stop`; the stand-in closes either way, or the file would hang instead.
  try {
    await gw?.stop();
  } finally {
    await saas?.close();
  }
});

const run = (id, endpoint, body = {}) => gw.request("POST", `/v1/integrations/${id}/${endpoint}`, { key, json: body });
const lastTo = (template) => saas.seen.filter((s) => s.template === template && !s.path.includes("token")).at(-1);

/** Each template's read and write, what the envelope must hold, and what the provider must have received. */
const calls = {
  stripe: [
    ["get_customer", { customer_id: "cus_NffrFeUfNV2Hib" }, (d) => assert.deepEqual(d, { id: "cus_NffrFeUfNV2Hib", email: "jennyrosen@example.com", name: "Jenny Rosen", balance: "-$25.50" })],
    ["find_customer_by_email", { email: "jennyrosen@example.com" }, (d) => assert.equal(d.id, "cus_NffrFeUfNV2Hib")],
    // A list gathered page by page: has_more, then starting_after the last id.
    ["list_customers", { limit: 1 }, (d, seen, body) => {
      assert.deepEqual(d.map((c) => c.id), ["cus_NffrFeUfNV2Hib", "cus_NffrFeUfNV2Hic", "cus_NffrFeUfNV2Hid"]);
      assert.deepEqual(body.pages, { fetched: 3, complete: true });
      assert.equal(seen.query.get("starting_after"), "cus_NffrFeUfNV2Hic");
    }],
    ["create_refund", { payment_intent_id: "pi_3MtwBwLkdIwHu7ix28a3tqPa", amount: 1000, reason: "requested_by_customer" }, (d, seen) => {
      assert.deepEqual(d, { id: "re_1Nispe2eZvKYlo2Cd31jOCgZ", status: "succeeded", amount: 1000, currency: "USD" });
      assert.deepEqual(nestedForm(seen.raw), { amount: "1000", metadata: { conversation_id: "conv_42" }, payment_intent: "pi_3MtwBwLkdIwHu7ix28a3tqPa", reason: "requested_by_customer" });
    }, { conversation_id: "conv_42" }],
  ],
  salesforce: [
    ["soql_query", { soql: "SELECT Id FROM Case WHERE Status = 'New' LIMIT 1" }, (d, seen) => {
      assert.deepEqual(d.map((r) => r.Id), ["5003000000D8cuIQAR"]);
      assert.equal(seen.query.get("q"), "SELECT Id FROM Case WHERE Status = 'New' LIMIT 1");
    }],
    ["create_case", { subject: "Order never arrived", description: "Customer asked in chat", email: "ada@example.com" }, (d, seen) => {
      assert.deepEqual(d, { case_id: "5003000000D8cuIQAR", created: true });
      assert.deepEqual(seen.json(), { Subject: "Order never arrived", Description: "Customer asked in chat", Origin: "Chat", SuppliedEmail: "ada@example.com" });
    }],
    ["add_comment", { case_id: "5003000000D8cuIQAR", comment: "Refund issued" }, (d) => assert.deepEqual(d, { comment_id: "00a3000000B1XkzAAF" })],
  ],
  hubspot: [
    ["get_contact", { contact_id: "512" }, (d, seen) => {
      assert.equal(d.email, "bh@hubspot.com");
      assert.equal(seen.query.get("properties"), "email,firstname,lastname,phone");
    }],
    ["list_contacts", { limit: 2 }, (d, seen, body) => {
      assert.deepEqual(d.map((c) => c.id), ["512", "513", "514"]);
      assert.deepEqual([body.pages, seen.query.get("after")], [{ fetched: 2, complete: true }, "2"]);
    }],
    ["search_contacts", { email: "bh@hubspot.com" }, (d) => assert.deepEqual(d, { email: "bh@hubspot.com", first_name: "Brian", last_name: "Halligan", phone: "+16175550100" })],
    ["create_contact", { email: "ada@example.com", first_name: "Ada", last_name: "Lovelace" }, (d, seen) => {
      assert.deepEqual(d, { contact_id: "1001" });
      assert.deepEqual(seen.json().properties, { email: "ada@example.com", firstname: "Ada", lastname: "Lovelace", phone: null });
    }],
  ],
  jira: [
    ["get_issue", { issue_key: "SUP-7" }, (d, seen) => {
      assert.deepEqual(d, { key: "SUP-7", summary: "Refund not received", status: "In Progress", assignee: "unassigned" });
      assert.equal(seen.host, "acme.atlassian.net", "the site setting fills the host");
    }],
    ["search", { jql: "project = SUP", max_results: 5 }, (d) => assert.deepEqual(d, [{ key: "SUP-7", summary: "Refund not received", status: "In Progress" }])],
    ["create_issue", { project: "SUP", summary: "Chat escalation", issue_type: "Task" }, (d) => assert.deepEqual(d, { id: "10003", key: "SUP-8" })],
  ],
  shopify: [
    ["order_by_number", { order_number: "#1001" }, (d, seen) => {
      assert.deepEqual(d, { id: 450789469, number: "#1001", financial_status: "paid", fulfillment_status: "unfulfilled", total: "598.94", currency: "USD", tracking_url: null });
      assert.equal(seen.host, "acme-store.myshopify.com");
    }],
    // Pages by the Link header's rel="next" (Shopify's page_info cursors).
    ["list_products", { limit: 1 }, (d, seen, body) => {
      assert.deepEqual(d.map((p) => p.title), ["IPod Nano - 8GB", "IPod Touch 8GB", "IPod Shuffle"]);
      assert.deepEqual(body.pages, { fetched: 3, complete: true });
      assert.deepEqual([...seen.query.keys()].sort(), ["limit", "page_info"]);
    }],
    ["add_order_note", { order_id: 450789469, note: "Customer asked for gift wrap" }, (d, seen) => {
      assert.deepEqual(d, { id: 450789469, number: "#1001", note: "Customer asked for gift wrap" });
      assert.equal(seen.method, "PUT");
    }],
  ],
  zendesk: [
    ["get_ticket", { ticket_id: 35436 }, (d) => assert.deepEqual(d, { id: 35436, subject: "Help, my printer is on fire!", status: "OPEN", updated: "2024-11-29T09:12:00Z" })],
    ["list_tickets", { per_page: 1 }, (d, seen, body) => {
      assert.deepEqual(d.map((t) => t.id), [35436, 35438, 35439]);
      assert.deepEqual([body.pages, seen.query.get("page[size]")], [{ fetched: 3, complete: true }, "1"]);
    }],
    ["create_ticket", { subject: "Chat handoff", body: "The customer wants a human", email: "ada@example.com", name: "Ada" }, (d) => {
      assert.deepEqual({ ...d, url: undefined }, { ticket_id: 35437, status: "new", url: undefined });
      assert.match(d.url, /tickets\/35437\.json$/);
    }],
  ],
  graphql: [
    ["query", { variables: { id: "gid://shopify/Order/450789469" } }, (d, seen) => {
      assert.deepEqual(d, { id: "gid://shopify/Order/450789469", name: "#1001", displayFinancialStatus: "PAID", displayFulfillmentStatus: "UNFULFILLED" });
      assert.deepEqual(seen.json(), { query: ORDER_QUERY, variables: { id: "gid://shopify/Order/450789469" }, operationName: "Order" });
    }],
  ],
  woocommerce: [
    ["get_order", { order_id: 727 }, (d) => assert.deepEqual(d, { id: 727, number: "727", status: "processing", total: "29.35", currency: "USD", email: "john.doe@example.com", items: [{ name: "Woo Single #1", quantity: 2 }] })],
    ["find_orders", { email: "john.doe@example.com", per_page: 1 }, (d, seen, body) => {
      assert.deepEqual(d.map((o) => o.id), [727, 728]);
      assert.deepEqual([body.pages, seen.query.get("page")], [{ fetched: 2, complete: true }, "2"]);
    }],
    ["add_order_note", { order_id: 727, note: "Customer asked for gift wrap" }, (d, seen) => {
      assert.deepEqual(d, { note_id: 281, customer_note: false });
      assert.equal(seen.host, "shop.example.com");
    }],
  ],
  intercom: [
    ["find_contact", { email: "joe@example.com" }, (d, seen) => {
      assert.deepEqual(d, { id: "6657adc46abd0167d9419d1a", role: "user", email: "joe@example.com", name: "Joe Bloggs" });
      assert.equal(seen.host, "api.eu.intercom.io", "the region setting picks the host");
    }],
    ["start_conversation", { contact_id: "6657adc46abd0167d9419d1a", body: "Where is my order?" }, (d) => assert.deepEqual(d, { message_id: "403918396", conversation_id: "363" })],
    ["reply", { conversation_id: "363", body: "It ships tomorrow." }, (d, seen) => {
      assert.deepEqual(d, { conversation_id: "363", state: "open" });
      assert.deepEqual(seen.json(), { message_type: "comment", type: "admin", admin_id: "991267", body: "It ships tomorrow." });
    }],
  ],
  paypal: [
    ["get_order", { order_id: "5O190127TN364715T" }, (d) => assert.deepEqual(d, { id: "5O190127TN364715T", status: "COMPLETED", amount: "100.00", currency: "USD", capture_id: "3C679366HH908993F", payer_email: "customer@example.com" })],
    ["refund_capture", { capture_id: "3C679366HH908993F", amount: "10.99", currency: "USD", idempotency_key: "refund-conv-42" }, (d, seen) => {
      assert.deepEqual({ ...d, refund_id: undefined }, { refund_id: undefined, status: "COMPLETED", amount: "10.99", currency: "USD" });
      assert.deepEqual(seen.json(), { amount: { value: "10.99", currency_code: "USD" } }, "an unset note is left out, not sent as null");
      assert.equal(seen.headers["paypal-request-id"], "refund-conv-42");
    }],
  ],
  twilio: [
    ["send_message", { to: "+14155552671", body: "Your order shipped" }, (d, seen) => {
      assert.deepEqual(d, { sid: "SM" + "a".repeat(32), status: "queued", to: "+14155552671", segments: "1" });
      assert.deepEqual(Object.fromEntries(new URLSearchParams(seen.raw)), { Body: "Your order shipped", From: "+15005550006", To: "+14155552671" });
    }],
    ["get_message", { sid: "SM" + "a".repeat(32) }, (d) => assert.deepEqual([d.status, d.error_code], ["delivered", null])],
  ],
  freshdesk: [
    ["create_ticket", { subject: "Chat handoff", description: "The customer wants a human", email: "ada@example.com" }, (d, seen) => {
      assert.deepEqual(d, { ticket_id: 2, status: 2, priority: 1 });
      assert.deepEqual([seen.json().source, seen.host], [7, "acme.freshdesk.com"]);
    }],
    // multipart/form-data with a binary file from the chat, parsed by the standard FormData reader.
    ["create_ticket_with_attachment", { subject: "Broken lamp", description: "See the photo", email: "ada@example.com", file: { filename: "lamp.png", content_type: "image/png", base64: PNG.toString("base64") } }, (d, seen) => {
      assert.deepEqual(d, { ticket_id: 4, attachments: [{ name: "lamp.png", content_type: "image/png", size: PNG.length }] });
      assert.ok(seen.bytes.includes(PNG), "the file's bytes arrived as they were");
      assert.match(seen.headers["content-type"], /^multipart\/form-data; boundary=gateway-[0-9a-f]{24}-0$/);
    }],
    ["get_ticket", { ticket_id: 1 }, (d) => assert.deepEqual(d, { id: 1, subject: "Support needed..", status: 2, updated: "2026-11-29T10:00:00Z" })],
    ["list_tickets", { per_page: 1 }, (d, _, body) => assert.deepEqual([d.length, body.pages.fetched], [2, 2])],
  ],
  "zoho-crm": [
    ["find_contact", { email: "patricia@example.com" }, (d, seen) => {
      assert.deepEqual(d, { id: "4876876000000624001", first_name: "Patricia", last_name: "Boyle", email: "patricia@example.com", phone: "555-555-5555", account: "Zylker" });
      assert.equal(seen.host, "www.zohoapis.eu", "the data centre picks the host");
    }],
    ["find_contact", { email: "nobody@example.com" }, (d) => assert.deepEqual(d, { id: null, first_name: null, last_name: null, email: null, phone: null, account: null }, "Zoho's 204 for no match")],
    ["create_lead", { last_name: "Lovelace", email: "ada@example.com" }, (d, seen) => {
      assert.deepEqual(d, { lead_id: "4876876000000625001", status: "success" });
      assert.deepEqual(seen.json().data, [{ Last_Name: "Lovelace", Email: "ada@example.com", Lead_Source: "Chat" }]);
    }],
  ],
  pipedrive: [
    ["find_person", { email: "ada@example.com" }, (d) => assert.deepEqual(d, { id: 1, name: "Ada Lovelace", emails: ["ada@example.com"], organization: "Analytical Engines" })],
    ["list_deals", { limit: 2 }, (d, seen, body) => {
      assert.deepEqual(d.map((x) => x.id), [1, 2, 3]);
      assert.deepEqual([body.pages, seen.query.get("start")], [{ fetched: 2, complete: true }, "2"]);
    }],
    ["create_deal", { title: "Chat lead", value: 500, currency: "EUR" }, (d, seen) => {
      assert.deepEqual(d, { deal_id: 4, status: "open" });
      assert.deepEqual(seen.json(), { title: "Chat lead", value: 500, currency: "EUR" });
    }],
  ],
  calendly: [
    ["upcoming_meetings", { from: "2026-11-30T00:00:00Z", count: 2 }, (d, seen, body) => {
      assert.deepEqual(d.map((e) => e.start), ["2026-12-01T15:00:00.000000Z", "2026-12-02T15:00:00.000000Z", "2026-12-03T15:00:00.000000Z"]);
      assert.equal(d[0].join_url, "https://zoom.us/j/0");
      assert.deepEqual(body.pages, { fetched: 2, complete: true });
      assert.equal(seen.query.get("user"), "https://api.calendly.com/users/AAAAAAAAAAAAAAAA");
    }],
    ["booking_link", {}, (d) => assert.deepEqual(d, { booking_url: "https://calendly.com/d/abcd-brv8/15-minute-meeting" })],
    ["cancel_meeting", { uuid: "GBGBDCAADAEDCRZ2", reason: "Customer asked in chat" }, (d) => assert.deepEqual(d, { canceled_by: "John Doe", reason: "Customer asked in chat" })],
  ],
  pinecone: [
    ["upsert", { vectors: [{ id: "faq-1", values: [1, 0, 0], metadata: { text: "We ship worldwide" } }, { id: "faq-2", values: [0, 1, 0], metadata: { text: "Returns within 30 days" } }] }, (d, seen) => {
      assert.deepEqual(d, { upserted: 2 });
      assert.equal(seen.json().namespace, "support");
    }],
    ["query", { vector: [0.9, 0.1, 0], top_k: 1 }, (d, seen) => {
      assert.deepEqual(d, [{ id: "faq-1", score: 0.9, metadata: { text: "We ship worldwide" } }]);
      assert.deepEqual([seen.json().topK, seen.json().includeMetadata, "filter" in seen.json()], [1, true, false]);
    }],
  ],
  weaviate: [
    ["add_object", { properties: { title: "Shipping", body: "We ship worldwide" } }, (d) => assert.deepEqual(d, { id: "36ddd591-2dee-4e7e-a3cc-eb86d30a4303", collection: "Article" })],
    ["near_text", { concepts: ["ship"], limit: 2 }, (d, seen) => {
      assert.deepEqual(d, [{ title: "Shipping", body: "We ship worldwide", _additional: { id: "36ddd591-2dee-4e7e-a3cc-eb86d30a4303", distance: 0.1 } }]);
      assert.match(seen.json().query, /Get \{ Article\(nearText: \{concepts: \$concepts\}, limit: \$limit\) \{ title body _additional/);
      assert.deepEqual(seen.json().variables, { concepts: ["ship"], limit: 2 }, "the input only in variables");
    }],
    ["near_vector", { vector: [0.1, 0.2, 0.3] }, (d) => assert.equal(d.length, 1)],
  ],
  rest: [
    ["create", { resource: "notes", body: { text: "hello" } }, (d) => assert.deepEqual(d, { id: "1", text: "hello" })],
    ["get", { resource: "notes", id: "1" }, (d) => assert.equal(d.text, "hello")],
  ],
};

/** Inputs for the endpoints `calls` leaves out (the others are tried with its inputs). */
const moreInputs = { stripe: { get_payment_intent: { payment_intent_id: "pi_demo_1" } }, rest: { list: { resource: "notes" } } };
/** Each endpoint's data from its first real call above: the shape its mock must map to. */
const realData = new Map();

test("every template is covered here: a new one needs its stand-in and calls", () => {
  assert.deepEqual(Object.keys(calls).sort(), Object.keys(templates).sort());
});

for (const [id, list] of Object.entries(calls)) {
  test(`${id}: reads and writes in the provider's shapes, and its test call passes`, async () => {
    for (const [endpoint, input, check, context] of list) {
      const r = await run(id, endpoint, { input, ...(context ? { context } : {}) });
      assert.equal(r.status, 200, `${id}.${endpoint}: ${r.text}`);
      assert.equal(r.body.success, true, r.text);
      check(r.body.data, lastTo(id), r.body);
      if (!realData.has(`${id}.${endpoint}`)) realData.set(`${id}.${endpoint}`, r.body.data);
    }
    const t = await gw.request("POST", `/v1/integrations/${id}/test`, { key });
    assert.equal(t.body.ok, true, `${id} test: ${t.text}`);
  });
}

// `options.mock` is how to try a template with no account: every endpoint of every template
// answers from its `mock_response` through its real mapping, and nothing leaves the gateway.
test("every endpoint of every template answers from its mock_response, mapped as the provider's answer is, and sends nothing", async () => {
  const { key: tryKey } = await gw.tenant("tryout");
  for (const [id, s] of Object.entries(settings())) {
    const r = await gw.request("POST", "/v1/integrations", { key: tryKey, json: { template: id, id, settings: s } });
    assert.equal(r.status, 201, `${id}: ${r.text}`);
  }
  const sentBefore = saas.seen.length;
  const nullFields = (d) => (Array.isArray(d) ? d : [d]).flatMap((x) => (x && typeof x === "object" ? Object.keys(x).filter((k) => x[k] === null) : []));
  const shape = (d) => (Array.isArray(d) ? ["list", Object.keys(d[0] ?? {}).sort()] : [typeof d, Object.keys(d ?? {}).sort()]);
  let tried = 0;
  for (const t of Object.values(templates)) {
    for (const endpoint of Object.keys(t.integration.endpoints)) {
      const at = `${t.id}.${endpoint}`;
      const input = calls[t.id].find(([e]) => e === endpoint)?.[1] ?? moreInputs[t.id]?.[endpoint] ?? {};
      const r = await gw.request("POST", `/v1/integrations/${t.id}/${endpoint}`, { key: tryKey, json: { input, options: { mock: true } } });
      assert.equal(r.status, 200, `${at}: ${r.text}`);
      assert.equal(r.body.success, true, `${at}: ${r.text}`);
      const data = r.body.data;
      assert.ok(data && typeof data === "object" && Object.keys(data).length > 0, `${at}: empty data ${r.text}`);
      // Shaped as the stand-in's answer (the generic REST template's resources are anyone's).
      const real = realData.get(at);
      if (real !== undefined && t.id !== "rest") assert.deepEqual(shape(data), shape(real), `${at}: mapped like the provider's answer`);
      // No mapped field left empty, unless the provider's own answer has it empty too.
      const mayBeNull = new Set(real === undefined ? [] : nullFields(real));
      assert.deepEqual(nullFields(data).filter((k) => !mayBeNull.has(k)), [], `${at}: fields the mock leaves null`);
      tried++;
    }
  }
  assert.equal(saas.seen.length, sentBefore, "nothing was sent to a provider, not even for a token");
  assert.ok(tried >= 60, `${tried} endpoints tried`);
});

test("a provider's refusal reaches the caller as its own message in the envelope", async () => {
  const cases = [
    ["stripe", "get_customer", { customer_id: "cus_missing" }, 404, "No such customer: 'cus_missing'"],
    ["stripe", "create_refund", { payment_intent_id: "pi_3MtwBwLkdIwHu7ixRefunded" }, 400, "Charge ch_3MtwBwLkdIwHu7ix0snN0B15 has already been refunded."],
    ["salesforce", "soql_query", { soql: "SELECT Id" }, 400, "unexpected token: 'Id'"],
    ["hubspot", "create_contact", { email: "bh@hubspot.com" }, 409, "Contact already exists. Existing ID: 512"],
    ["jira", "get_issue", { issue_key: "NOPE-1" }, 404, "Issue does not exist or you do not have permission to see it."],
    ["zendesk", "create_ticket", { subject: "x", body: "", email: "a@b.c" }, 422, "Record validation errors"],
    ["woocommerce", "get_order", { order_id: 1 }, 404, "Invalid ID."],
    ["intercom", "start_conversation", { contact_id: "nobody", body: "hi" }, 404, "User Not Found"],
    ["paypal", "get_order", { order_id: "1AB23456CD789012E" }, 404, "Specified resource ID does not exist. Please check the resource ID and try again."],
    ["twilio", "send_message", { to: "+15005550001", body: "hi" }, 400, "The 'To' number +15005550001 is not a valid phone number."],
    ["freshdesk", "create_ticket", { subject: "x", description: "y", email: "not-an-email" }, 400, "It should be a valid email address"],
    ["pipedrive", "create_deal", { title: "x", person_id: 999 }, 404, "Person not found"],
    ["calendly", "cancel_meeting", { uuid: "NOPE" }, 404, "The server could not find the requested resource."],
    ["pinecone", "upsert", { vectors: [{ id: "x", values: [1, 2] }] }, 400, "Vector dimension 2 does not match the dimension of the index 3"],
  ];
  for (const [id, endpoint, input, status, message] of cases) {
    const r = await run(id, endpoint, { input });
    assert.equal(r.status, 502, `${id}.${endpoint}: ${r.text}`);
    assert.equal(r.body.status_code, status);
    assert.deepEqual([r.body.success, r.body.error.code, r.body.error.message], [false, "upstream_error", message]);
  }
});

test("a rotated refresh token is kept sealed and used on the next refresh; the first is never sent again", async () => {
  const sf = saas.salesforce;
  assert.equal(sf.refreshes[0], creds.salesforce.refreshToken, "the first refresh used the configured token");
  assert.equal(sf.refreshes.length, 1, "one token served every call so far");
  for (const rt of sf.issuedRefresh) planted.add(rt);
  // The provider revokes its access tokens: the next call is refused, refreshed once, sent again.
  sf.accessTokens.clear();
  const r = await run("salesforce", "soql_query", { input: { soql: "SELECT Id FROM Case LIMIT 1" } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.retries, 1);
  assert.deepEqual(sf.refreshes, [creds.salesforce.refreshToken, sf.issuedRefresh[0]], "the rotated token was sent, not the retired one");
  sf.accessTokens.clear();
  assert.equal((await run("salesforce", "add_comment", { input: { case_id: "5003000000D8cuIQAR", comment: "again" } })).status, 200);
  assert.deepEqual(sf.refreshes.slice(1), sf.issuedRefresh.slice(0, 2), "each refresh sends the token the one before issued");
  for (const rt of sf.issuedRefresh) planted.add(rt);
  // The integration as the tenant reads it still shows only that a refresh token is set.
  const got = await gw.request("GET", "/v1/integrations/salesforce", { key });
  assert.equal(got.status, 200);
  for (const rt of [creds.salesforce.refreshToken, ...sf.issuedRefresh]) assert.ok(!got.text.includes(rt));
  // KV holds the access tokens sealed, and no token of any kind in the clear.
  const accessTokens = Array.from({ length: sf.n }, (_, i) => `00Dxx0000001gPL!AR8AQ${i + 1}`);
  const tokensKv = await gw.mf.getKVNamespace("TOKENS");
  const heldTokens = (await tokensKv.list()).keys;
  assert.ok(heldTokens.length > 0, "a token is held in KV");
  for (const { name } of heldTokens) {
    const held = JSON.parse(await tokensKv.get(name));
    assert.deepEqual(Object.keys(held).sort(), ["sealed", "usable_until_s"]);
    for (const t of accessTokens) assert.ok(!held.sealed.includes(t));
  }
  for (const ns of ["CONFIG", "TOKENS"]) {
    const kv = await gw.mf.getKVNamespace(ns);
    for (const { name } of (await kv.list()).keys) {
      const v = (await kv.get(name)) ?? "";
      for (const t of [creds.salesforce.refreshToken, ...sf.issuedRefresh, ...accessTokens]) assert.ok(!v.includes(t), `${ns} ${name}`);
    }
  }
});

test("a provider's rate limit is honoured: its wait before the retry, or told to the caller when longer", async () => {
  const waits = [
    // Shopify REST: decimal seconds in Retry-After.
    ["shopify", "list_products", { limit: 1 }, { status: 429, headers: { "retry-after": "1.0" }, body: { errors: "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service." } }],
    // HubSpot: its window's length.
    ["hubspot", "get_contact", { contact_id: "512" }, { status: 429, headers: { "x-hubspot-ratelimit-interval-milliseconds": "1000", "x-hubspot-ratelimit-max": "190", "x-hubspot-ratelimit-remaining": "0" }, body: { status: "error", message: "You have reached your secondly limit.", errorType: "RATE_LIMIT", policyName: "SECONDLY" } }],
    // Jira: Retry-After alongside an ISO 8601 reset.
    ["jira", "get_issue", { issue_key: "SUP-7" }, { status: 429, headers: { "retry-after": "1", "x-ratelimit-reset": new Date(Date.now() + 1000).toISOString() }, body: { errorMessages: ["Rate limit exceeded."], errors: {} } }],
    // Intercom: the Unix time its window resets.
    ["intercom", "find_contact", { email: "joe@example.com" }, { status: 429, headers: { "x-ratelimit-limit": "1000", "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(Math.floor(Date.now() / 1000) + 2) }, body: { type: "error.list", errors: [{ code: "rate_limit_exceeded", message: "Exceeded rate limit of 1000 in 60_seconds" }] } }],
    // Pipedrive and Calendly: seconds until the window resets.
    ["pipedrive", "find_person", { email: "ada@example.com" }, { status: 429, headers: { "x-ratelimit-limit": "40", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "1" }, body: { success: false, error: "Request over limit", errorCode: 429 } }],
    ["calendly", "booking_link", {}, { status: 429, headers: { "x-ratelimit-limit": "120", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "1" }, body: { title: "Too Many Requests", message: "You have exceeded the rate limit" } }],
    // Freshdesk: Retry-After.
    ["freshdesk", "get_ticket", { ticket_id: 1 }, { status: 429, headers: { "retry-after": "1", "x-ratelimit-total": "100", "x-ratelimit-remaining": "0" }, body: { code: "rate_limit_exceeded", message: "You have exceeded the limit of requests per minute" } }],
  ];
  await Promise.all(
    waits.map(async ([id, endpoint, input, limit]) => {
      saas.limit(id, limit);
      const from = saas.seen.length;
      const r = await run(id, endpoint, { input, options: { skip_cache: true } });
      assert.equal(r.status, 200, `${id}: ${r.text}`);
      assert.equal(r.body.retries, 1);
      const [refused, retried] = saas.seen.slice(from).filter((s) => s.template === id);
      assert.ok(retried.at - refused.at >= 950, `${id} retried after ${retried.at - refused.at} ms`);
    }),
  );
  // Longer than the template's policy waits: no early retry; the caller is told the provider's wait.
  saas.limit("zendesk", { status: 429, headers: { "retry-after": "120" }, body: { error: "APIRateLimitExceeded", description: "Number of allowed API requests per minute exceeded" } });
  const before = saas.seen.length;
  const r = await run("zendesk", "list_tickets", { input: { per_page: 1 } });
  assert.equal(r.status, 429, r.text);
  assert.equal(r.headers.get("retry-after"), "120");
  assert.deepEqual([r.body.error.code, r.body.error.retry_after, r.body.retries], ["provider_rate_limited", 120, 0]);
  assert.equal(r.body.error.message, "Number of allowed API requests per minute exceeded");
  assert.equal(saas.seen.length - before, 1, "one call, no retry before the provider's wait");
});

test("graphql: a mutation, a partial answer, errors, a throttled answer and persisted queries", async () => {
  const install = async (id, s) => {
    const r = await gw.request("POST", "/v1/integrations", { key, json: { template: "graphql", id, settings: s } });
    assert.equal(r.status, 201, `${id}: ${r.text}`);
  };
  // A write: Shopify's tagsAdd mutation, its input only in variables.
  await install("shop-tags", shopifyGraphql("mutation AddTags($id: ID!, $tags: [String!]!) { tagsAdd(id: $id, tags: $tags) { node { id } userErrors { field message } } }", { data_path: "tagsAdd" }));
  const tagged = await run("shop-tags", "query", { input: { variables: { id: "gid://shopify/Order/450789469", tags: ["vip", "chat"] } } });
  assert.equal(tagged.status, 200, tagged.text);
  assert.deepEqual(tagged.body.data, { node: { id: "gid://shopify/Order/450789469" }, userErrors: [] });
  assert.deepEqual(saas.shopifyTags, ["vip", "chat"]);
  // Partial: the app may not read customers; the order comes back with the field's error.
  await install("shop-customer", shopifyGraphql("query Order($id: ID!) { order(id: $id) { name customer { email } } }", { data_path: "order" }));
  const partial = await run("shop-customer", "query", { input: { variables: { id: "gid://shopify/Order/450789469" } } });
  assert.equal(partial.status, 200, partial.text);
  assert.equal(partial.body.success, true);
  assert.deepEqual([partial.body.data.name, partial.body.data.customer], ["#1001", null]);
  assert.equal(partial.body.error.code, "graphql_error");
  assert.equal(partial.body.error.message, "Access denied for customer field. Required access: `read_customers` access scope. (at order.customer)");
  assert.deepEqual(partial.body.error.details, [{ message: "Access denied for customer field. Required access: `read_customers` access scope.", path: ["order", "customer"] }]);
  // Only errors: a failure, with the server's message.
  await install("shop-typo", shopifyGraphql('query { ordr(id: "gid://shopify/Order/1") { name } }'));
  const failed = await run("shop-typo", "query", {});
  assert.equal(failed.status, 502, failed.text);
  assert.deepEqual([failed.body.success, failed.body.error.code, failed.body.error.message], [false, "graphql_error", "Field 'ordr' doesn't exist on type 'QueryRoot' (at query.ordr)"]);
  // Throttled by query cost (HTTP 200): waited for the cost to be restored, then sent again.
  saas.limit("graphql", { status: 200, body: { errors: [{ message: "Throttled", extensions: { code: "THROTTLED", documentation: "https://shopify.dev/api/usage/rate-limits" } }],
    extensions: { cost: { requestedQueryCost: 102, actualQueryCost: null, throttleStatus: { maximumAvailable: 2000.0, currentlyAvailable: 2, restoreRate: 100.0 } } } } });
  const throttled = await run("graphql", "query", { input: { variables: { id: "gid://shopify/Order/450789469" } } });
  assert.equal(throttled.status, 200, throttled.text);
  assert.equal(throttled.body.retries, 1);
  const [refused, retried] = saas.seen.filter((x) => x.template === "graphql").slice(-2);
  assert.ok(retried.at - refused.at >= 950, `retried after ${retried.at - refused.at} ms`);
  // Automatic persisted queries: the hash first; the document once, when the server asks for it.
  const FAQ = "query Faq($country: String) { faq(country: $country) { question answer } }";
  await install("faq", { url: `${saas.url}/graphql/api.apollo.example`, path: "/graphql", token_header: "Authorization", token: `Bearer ${creds.apollo}`, query: FAQ, data_path: "faq", persisted: true });
  const sent = () => saas.seen.filter((x) => x.host === "api.apollo.example").map((x) => x.json());
  for (const country of ["Chile", "Japan"]) {
    const r = await run("faq", "query", { input: { variables: { country } } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.data, { question: "Do you ship abroad?", answer: `Yes, to ${country}.` });
  }
  assert.deepEqual(sent().map((b) => [Boolean(b.query), b.extensions.persistedQuery.version]), [[false, 1], [true, 1], [false, 1]]);
});
