// The event catalog (`GET /v1/event-types`), public: each entry's JSON Schema compiles under Ajv
// 2020 in strict mode and its example validates; its type patterns are valid destination
// filters; and what the gateway really delivers for each source kind's signed sample (sent as
// the console's "send a sample" sends it) validates against the entry that describes it, while a
// tampered body does not (so the validator is known to run).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { startGateway, planted } from "../harness.mjs";
import { startDestination } from "../mocks/destination.mjs";
import { KINDS, sourceSecrets, sourceDoc } from "../samples.mjs";

const T = "cataloged-events";
const secret = "whsec_" + randomBytes(32).toString("base64");
const S = sourceSecrets();
for (const s of [secret, ...Object.values(S)]) planted.add(s);
let gw, dest, catalog;
const ajv = addFormats(new Ajv2020({ strict: true, allErrors: true }));

before(async () => {
  gw = await startGateway({ seed: false });
  dest = await startDestination(secret);
  await gw.tenant(T, { destination: { url: dest.url, secret } });
  for (const kind of KINDS) {
    const r = await gw.admin("PUT", `${T}/sources/${kind}`, sourceDoc(T, kind, S[kind]));
    assert.equal(r.status, 201, r.text);
  }
});
after(async () => {
  await gw?.stop();
  await dest?.close();
});

/** `*` as any run of characters, as a destination's `filter.types` reads it. */
const matches = (pattern, type) => new RegExp("^" + pattern.split("*").map((p) => p.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")).join(".*") + "$").test(type);
/** The entry that describes an event: the first whose type matches and whose kinds hold its source's. */
const entryOf = (event) => catalog.find((e) => e.source_kinds.includes(event.source_kind) && matches(e.type, event.type));
const validator = (entry) => ajv.getSchema(entry.type) ?? (ajv.addSchema(entry.schema, entry.type), ajv.getSchema(entry.type));

test("the catalog is public and cacheable; every schema compiles strictly and validates its example; every type is a valid filter", async () => {
  const r = await gw.request("GET", "/v1/event-types");
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get("content-type"), "application/json");
  assert.match(r.headers.get("cache-control"), /^public, max-age=\d+/);
  catalog = r.body.data;
  const types = catalog.map((e) => e.type);
  for (const t of ["message.received", "message.status", "stripe.*", "github.*", "shopify.*", "whatsapp.*", "*"]) assert.ok(types.includes(t), t);
  for (const entry of catalog) {
    assert.equal(entry.schema.$schema, "https://json-schema.org/draft/2020-12/schema");
    const validate = validator(entry);
    assert.ok(validate(entry.example), `${entry.type}: ${ajv.errorsText(validate.errors)}`);
    assert.equal(entryOf(entry.example), entry, `${entry.type} describes its own example`);
    assert.ok("ordering_key" in entry.schema.properties, "the envelope's ordering key is described");
  }
  const put = await gw.admin("PUT", `${T}/destinations/picky`, { url: dest.url, secret, filter: { types } });
  assert.equal(put.status, 201, `every catalog type is a destination filter type: ${put.text}`);
  assert.equal((await gw.admin("DELETE", `${T}/destinations/picky`)).status, 204);
  // A POST or a key changes nothing: it is one document for everyone.
  assert.equal((await gw.request("POST", "/v1/event-types")).status, 405);
});

test("each source kind's signed sample is delivered as its catalog entry says; a tampered body is refused by the same validator", async () => {
  assert.ok(catalog, "the catalog was read");
  for (const kind of KINDS) {
    const r = await gw.admin("POST", `${T}/sources/${kind}/sample`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.answer.status, 200, `${kind}: ${JSON.stringify(r.body.answer)}`);
  }
  const kinds = () => new Set([...dest.delivered.values()].flat().map((e) => e.source_kind));
  await dest.until(() => kinds().size === KINDS.length, 30_000, "a delivery of every kind's sample");
  const delivered = [...dest.delivered.values()].flat();
  assert.ok(dest.attempts.every((a) => a.verified), "every delivery was signed");
  for (const event of delivered) {
    const entry = entryOf(event);
    assert.ok(entry, `${event.source_kind} ${event.type} is in the catalog`);
    const validate = validator(entry);
    assert.ok(validate(event), `${event.source_kind} ${event.type} against ${entry.type}: ${ajv.errorsText(validate.errors)}`);
    // Tampered copies fail: a missing field, a wrong type, a type the entry does not describe.
    const { tenant: _, ...untenanted } = event;
    for (const bad of [untenanted, { ...event, received_at: "yesterday" }, { ...event, source_kind: "carrier-pigeon" }]) {
      assert.equal(validate(bad), false, `${entry.type} refuses ${JSON.stringify(bad).slice(0, 80)}`);
    }
  }
  // A channel message's own shape is checked too, not only the envelope's.
  const message = delivered.find((e) => e.type === "message.received");
  const validate = validator(entryOf(message));
  assert.equal(validate({ ...message, data: { ...message.data, direction: "sideways" } }), false);
  assert.equal(validate({ ...message, data: { ...message.data, conversation_id: 42 } }), false);
  assert.deepEqual([...kinds()].sort(), [...KINDS].sort());
});
