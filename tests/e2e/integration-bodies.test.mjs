// Integration request bodies in the format each API reads: Stripe's nested form fields for a
// write (a Checkout Session with line items and metadata), Twilio's flat form with basic auth,
// raw text; against a stand-in that parses forms the way Stripe's servers do (`a[b][0][c]`).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { randomBytes } from "node:crypto";
import { startGateway, assertError, planted } from "../harness.mjs";
import { nestedForm as nested } from "../mocks/saas.mjs";

const STRIPE_KEY = "sk_test_" + randomBytes(12).toString("hex");
planted.add(STRIPE_KEY);
let gw, key, api;

function startApi() {
  const api = { received: [] };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString();
      api.received.push({ path: req.url, headers: req.headers, raw });
      const send = (status, body) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      };
      if (req.url === "/v1/checkout/sessions") {
        if (req.headers.authorization !== `Bearer ${STRIPE_KEY}`) return send(401, { error: { type: "invalid_request_error", message: "Invalid API Key provided" } });
        if (!req.headers["content-type"]?.startsWith("application/x-www-form-urlencoded"))
          return send(400, { error: { type: "invalid_request_error", message: "Invalid request (check that your POST content type is application/x-www-form-urlencoded)." } });
        const p = nested(raw);
        if (!p.line_items?.length) return send(400, { error: { type: "invalid_request_error", code: "parameter_missing", param: "line_items", message: "Missing required param: line_items." } });
        return send(200, { id: "cs_test_a1b2", object: "checkout.session", mode: p.mode, url: "https://checkout.stripe.com/c/pay/cs_test_a1b2", metadata: p.metadata ?? {},
          line_items_seen: p.line_items, amount_total: p.line_items.reduce((n, li) => n + Number(li.quantity) * 1500, 0), currency: "usd" });
      }
      const twilio = /^\/2010-04-01\/Accounts\/(AC\w+)\/Messages\.json$/.exec(req.url);
      if (twilio) {
        const p = new URLSearchParams(raw);
        return send(201, { sid: "SM" + "0".repeat(32), account_sid: twilio[1], to: p.get("To"), from: p.get("From"), body: p.get("Body"), status: "queued", auth: req.headers.authorization, type: req.headers["content-type"] });
      }
      if (req.url === "/notes") return send(200, { type: req.headers["content-type"], text: raw });
      send(404, { error: "no route" });
    });
  });
  return new Promise((r) => server.listen(0, "127.0.0.1", () => {
    api.url = `http://127.0.0.1:${server.address().port}`;
    api.close = () => new Promise((d) => server.close(d));
    r(api);
  }));
}

before(async () => {
  gw = await startGateway();
  api = await startApi();
  ({ key } = await gw.tenant("forms"));
  const stripe = {
    name: "Stripe", base_url: `${api.url}/v1`, auth: { type: "bearer", token: STRIPE_KEY },
    endpoints: {
      create_checkout_session: {
        method: "POST", path: "/checkout/sessions", body_format: "form",
        body: { mode: "payment", success_url: "{{input.success_url}}", line_items: "{{input.items}}", metadata: { conversation_id: "{{context.conversation_id}}", note: "{{input.note}}" } },
        input_schema: { items: { type: "array", required: true }, success_url: { type: "string", required: true } },
        response: { error_path: "error.message", field_mappings: { id: "id", url: "url", total: "amount_total", metadata: "metadata", items: "line_items_seen" } },
      },
    },
  };
  assert.equal((await gw.admin("PUT", "forms/integrations/stripe", stripe)).status, 201);
  const twilio = {
    name: "Twilio", base_url: `${api.url}/2010-04-01/Accounts/AC123`, auth: { type: "basic", username: "AC123", password: "twilio-secret" },
    endpoints: { send_sms: { method: "POST", path: "/Messages.json", body_format: "form", body: { To: "{{input.to}}", From: "+15005550006", Body: "{{input.text}}" } } },
  };
  assert.equal((await gw.admin("PUT", "forms/integrations/twilio", twilio)).status, 201);
  const notes = { name: "Notes", base_url: api.url, auth: { type: "none" }, endpoints: { add: { method: "POST", path: "/notes", body_format: "text", body: "Note from {{context.channel}}: {{input.text}}" } } };
  assert.equal((await gw.admin("PUT", "forms/integrations/notes", notes)).status, 201);
});
after(async () => {
  await gw?.stop();
  await api?.close();
});

const run = (id, endpoint, body) => gw.request("POST", `/v1/integrations/${id}/${endpoint}`, { key, json: body });

test("a Stripe write: nested form fields Stripe's parser reads back as the input's structure", async () => {
  const items = [{ price: "price_1Abc", quantity: 2 }, { price: "price_2Def", quantity: 1 }];
  const r = await run("stripe", "create_checkout_session", { input: { items, success_url: "https://shop.example/ok?s={CHECKOUT_SESSION_ID}", note: "gift & wrap" }, context: { conversation_id: "conv_9" } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.data.id, "cs_test_a1b2");
  assert.equal(r.body.data.total, 4500);
  assert.deepEqual(r.body.data.items, [{ price: "price_1Abc", quantity: "2" }, { price: "price_2Def", quantity: "1" }]);
  assert.deepEqual(r.body.data.metadata, { conversation_id: "conv_9", note: "gift & wrap" });
  const sent = api.received.at(-1);
  assert.equal(sent.headers["content-type"], "application/x-www-form-urlencoded");
  assert.match(sent.raw, /line_items%5B0%5D%5Bprice%5D=price_1Abc/);

  // Stripe's refusal comes back in the envelope, with its message.
  const bad = await run("stripe", "create_checkout_session", { input: { items: [], success_url: "https://x" } });
  assert.equal(bad.status, 502, bad.text);
  assert.equal(bad.body.success, false);
  assert.match(bad.body.error.message, /Missing required param: line_items/);
});

test("a Twilio form with basic auth, and a raw text body", async () => {
  const r = await run("twilio", "send_sms", { input: { to: "+14155552671", text: "Your order shipped" } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.data.to, "+14155552671");
  assert.equal(r.body.data.body, "Your order shipped");
  assert.equal(r.body.data.type, "application/x-www-form-urlencoded");
  assert.equal(r.body.data.auth, "Basic " + Buffer.from("AC123:twilio-secret").toString("base64"));

  const n = await run("notes", "add", { input: { text: "call back <tomorrow>" }, context: { channel: "web" } });
  assert.equal(n.status, 200, n.text);
  assert.deepEqual(n.body.data, { type: "text/plain; charset=utf-8", text: "Note from web: call back <tomorrow>" });
});

test("a form body that is not an object of fields is refused when saved", async () => {
  const r = await gw.admin("PUT", "forms/integrations/broken", { name: "B", base_url: api.url, auth: { type: "none" }, endpoints: { x: { method: "POST", path: "/x", body_format: "form", body: "a=1" } } });
  assertError(assert, r, 422, "validation_error");
  assert.match(r.text, /`endpoints.x.body` must be an object of fields/);
});
