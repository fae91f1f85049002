// Malformed and hostile requests across the routes that exist: each gets a 4xx in the one error
// model (never a 500, never a hang), and changes nothing. Issue 8 grows this table.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, ADMIN_TOKEN } from "../harness.mjs";

let gw, key;
before(async () => {
  gw = await startGateway();
  ({ key } = await gw.tenant("hostile"));
  await gw.admin("PUT", "hostile/sources/st", { kind: "stripe", secrets: ["whsec_hostile"] });
  await gw.admin("PUT", "hostile/sources/tw", { kind: "twilio", secrets: ["tok"] });
  await gw.admin("PUT", "hostile/channels/tg", { kind: "telegram", base_url: "http://127.0.0.1:9", credentials: { bot_token: "1:x" } });
});
after(async () => gw?.stop());

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const json = { "content-type": "application/json" };
const deep = (n) => "[".repeat(n) + "]".repeat(n);
const auth = () => ({ authorization: `Bearer ${key}` });

// [name, method, path, headers, body, allowed statuses]
const cases = () => [
  ["truncated JSON", "PUT", "/v1/admin/tenants/x1", { ...admin, ...json }, '{"name": "a', [400]],
  ["trailing garbage", "PUT", "/v1/admin/tenants/x1", { ...admin, ...json }, '{"name": "a"} xyz', [400]],
  ["deep nesting", "PUT", "/v1/admin/tenants/x1", { ...admin, ...json }, deep(5000), [400]],
  ["huge number", "PUT", "/v1/admin/tenants/x1", { ...admin, ...json }, '{"name": "a", "limits": {"rpm": 1e400}}', [400, 422]],
  ["integer overflow", "PUT", "/v1/admin/tenants/x1", { ...admin, ...json }, '{"name": "a", "limits": {"rpm": 99999999999999999999}}', [400, 422]],
  ["negative limit", "PUT", "/v1/admin/tenants/x1", { ...admin, ...json }, '{"name": "a", "limits": {"rpm": -1}}', [422]],
  ["invalid UTF-8", "PUT", "/v1/admin/tenants/x1", { ...admin, ...json }, Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), [400]],
  ["array instead of object", "PUT", "/v1/admin/tenants/x1", { ...admin, ...json }, "[1,2]", [422]],
  ["null body", "PUT", "/v1/admin/tenants/x1", { ...admin, ...json }, "null", [422]],
  ["empty body", "PUT", "/v1/admin/tenants/x1", { ...admin, ...json }, "", [400]],
  ["name is an object", "PUT", "/v1/admin/tenants/x1", { ...admin, ...json }, '{"name": {"$gt": ""}}', [422]],
  ["xml content type", "PUT", "/v1/admin/tenants/x1", { ...admin, "content-type": "application/xml" }, "<name/>", [415]],
  ["traversal in tenant id", "GET", "/v1/admin/tenants/..%2F..%2Fetc%2Fpasswd", admin, undefined, [400, 404]],
  ["encoded colon in id", "GET", "/v1/admin/tenants/a%3Ab", admin, undefined, [400]],
  ["null byte in id", "GET", "/v1/admin/tenants/a%00b", admin, undefined, [400]],
  ["overlong id", "GET", `/v1/admin/tenants/${"a".repeat(300)}`, admin, undefined, [400]],
  ["unicode id", "GET", "/v1/admin/tenants/%E2%80%AEevil", admin, undefined, [400]],
  ["unknown admin sub-resource", "GET", "/v1/admin/tenants/hostile/secrets", admin, undefined, [404]],
  ["sealed blob planted by a client", "PUT", "/v1/admin/tenants/hostile/sources/p", { ...admin, ...json }, '{"kind":"slack","secrets":[{"$sealed":"v1.AAAA"}]}', [422]],
  ["keep marker with nothing to keep", "PUT", "/v1/admin/tenants/hostile/sources/q", { ...admin, ...json }, '{"kind":"slack","secrets":[{"set":true}]}', [422]],
  ["bogus method", "PATCH", "/v1/admin/tenants/hostile", admin, undefined, [405]],
  ["bearer with spaces only", "GET", "/v1/me", { authorization: "Bearer    " }, undefined, [401]],
  ["key with odd characters", "GET", "/v1/me", { authorization: "Bearer sk_<script>alert(1)</script>" }, undefined, [401]],
  ["very long key", "GET", "/v1/me", { authorization: "Bearer sk_" + "a".repeat(5000) }, undefined, [401]],
  ["webhook without body", "POST", "/v1/webhooks/hostile/st", {}, undefined, [401]],
  ["stripe header garbage", "POST", "/v1/webhooks/hostile/st", { "stripe-signature": "t=abc,v1=zz", ...json }, "{}", [401]],
  ["stripe header empty values", "POST", "/v1/webhooks/hostile/st", { "stripe-signature": ",,,=,", ...json }, "{}", [401]],
  ["replayed old stripe timestamp", "POST", "/v1/webhooks/hostile/st", { "stripe-signature": "t=1,v1=" + "0".repeat(64), ...json }, "{}", [401]],
  ["twilio without signature", "POST", "/v1/webhooks/hostile/tw", { "content-type": "application/x-www-form-urlencoded" }, "Body=hi", [401]],
  ["twilio JSON without bodySHA256", "POST", "/v1/webhooks/hostile/tw", { "x-twilio-signature": "AAAA", ...json }, "{}", [401]],
  ["webhook for unknown source", "POST", "/v1/webhooks/hostile/none", json, "{}", [404]],
  ["webhook handshake on a non-Meta source", "GET", "/v1/webhooks/hostile/st?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1", {}, undefined, [400, 403]],
  ["send: unknown type", "POST", "/v1/channels/tg/messages", { ...auth(), ...json }, '{"conversation_id":"1","type":"carrier_pigeon","text":"x"}', [422]],
  ["send: number as recipient", "POST", "/v1/channels/tg/messages", { ...auth(), ...json }, '{"conversation_id":1,"type":"text","text":"x"}', [422]],
  ["send: quick replies not a list", "POST", "/v1/channels/tg/messages", { ...auth(), ...json }, '{"conversation_id":"1","type":"quick_reply","text":"x","quick_replies":"yes"}', [422]],
  ["send: location out of range", "POST", "/v1/channels/tg/messages", { ...auth(), ...json }, '{"conversation_id":"1","type":"location","location":{"latitude":1e9,"longitude":0}}', [422]],
  ["send: idempotency key too long", "POST", "/v1/channels/tg/messages", { ...auth(), ...json, "idempotency-key": "k".repeat(300) }, '{"conversation_id":"1","type":"text","text":"x"}', [400]],
  ["send: text 10 MB", "POST", "/v1/channels/tg/messages", { ...auth(), ...json }, JSON.stringify({ conversation_id: "1", type: "text", text: "x".repeat(300 * 1024) }), [413]],
  ["delivery id of another shape", "GET", "/v1/deliveries/dlv_", auth(), undefined, [404]],
  ["delivery id traversal", "GET", "/v1/deliveries/..%2F..%2Fx", auth(), undefined, [400, 404]],
];

test("every hostile request gets a 4xx JSON error, never a 500 or a hang", async () => {
  const failures = [];
  for (const [name, method, path, headers, body, allowed] of cases()) {
    const controller = AbortController ? new AbortController() : undefined;
    const timer = setTimeout(() => controller.abort(), 10000);
    let res, text;
    try {
      res = await fetch(new URL(path, gw.url), { method, headers, body, signal: controller.signal });
      text = await res.text();
    } catch (e) {
      failures.push(`${name}: no answer (${e.message})`);
      continue;
    } finally {
      clearTimeout(timer);
    }
    let parsed;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!allowed.includes(res.status)) failures.push(`${name}: ${res.status} ${text.slice(0, 200)}`);
    else if (!parsed?.error?.type || !parsed.error.message || parsed.error.request_id !== res.headers.get("x-request-id"))
      failures.push(`${name}: not the error model: ${text.slice(0, 200)}`);
  }
  assert.deepEqual(failures, []);
  // Nothing was created by any of them.
  assert.equal((await gw.admin("GET", "x1")).status, 404);
  assert.equal((await gw.admin("GET", "hostile/sources/p")).status, 404);
});
