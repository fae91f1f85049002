// The default destination as a destination record: a tenant's `destination` becomes the record
// `default` (its secret sealed under that record), which takes a filter and a transform and
// rotates its secret like any destination; a tenant stored with the legacy field (as the seed
// writes it straight into KV) delivers through it until an admin's write moves it into the
// record, and its dead letter from before still replays, under the same id.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { startGateway, planted } from "../harness.mjs";
import { startDestination, verifyStandardWebhook } from "../mocks/destination.mjs";
import { sourceSecrets, sourceDoc } from "../samples.mjs";

const SEEDED = "whsec_ZGV2LW9ubHktZGVzdGluYXRpb24tc2VjcmV0"; // kv-seed/tenants/demo.json
const whsec = () => "whsec_" + randomBytes(32).toString("base64");
const S = sourceSecrets();
const OWN = whsec();
for (const s of [OWN, ...Object.values(S)]) planted.add(s);
let gw, seeded, own;

before(async () => {
  // The demo tenant of kv-seed/ keeps its destination in the tenant document, as stored before.
  seeded = await startDestination(SEEDED);
  own = await startDestination(OWN);
  const listen = new URL(seeded.url).port;
  gw = await startGateway({ seedEnv: { LISTEN_PORT: listen }, extraBindings: { DELIVERY_RETRY_BASE_SECONDS: "1" } });
});
after(async () => {
  await gw?.stop();
  await seeded?.close();
  await own?.close();
});

const kv = async () => gw.mf.getKVNamespace("CONFIG");
const raw = async (key) => JSON.parse((await (await kv()).get(key)) ?? "null");
const sample = (t, source) => gw.admin("POST", `${t}/sources/${source}/sample`);
const letters = async (t) => (await gw.admin("GET", `${t}/dead-letters`)).body.data;

test("a tenant's destination is the record `default`: a filter, a transform and a rotated secret apply to it", async () => {
  const T = "own";
  await gw.tenant(T, { destination: { url: own.url, secret: OWN } });
  const record = await raw(`destination:${T}:default`);
  assert.match(record.secret.$sealed, /^v2\./, "sealed in the record");
  const mirror = (await raw(`tenant:${T}`)).destination;
  assert.equal(mirror.url, own.url, "the tenant keeps a mirror, for isolates that do not see the record yet");
  assert.match(mirror.secret.$sealed, /^v2\./, "sealed to the tenant");
  const shown = (await gw.admin("GET", T)).body;
  assert.deepEqual(shown.destination, { url: own.url, secret: { set: true } }, "read back");
  for (const kind of ["stripe", "github"]) assert.equal((await gw.admin("PUT", `${T}/sources/${kind}`, sourceDoc(T, kind, S[kind]))).status, 201);

  const put = await gw.admin("PUT", `${T}/destinations/default`, {
    url: own.url, secret: { set: true }, filter: { types: ["stripe.*"] },
    transform: { field_mappings: { amount: "data.object.amount", currency: "data.object.currency" } },
  });
  assert.equal(put.status, 200, put.text);
  // Saving the tenant document as GET shows it keeps the record's filter and transform.
  assert.equal((await gw.admin("PUT", T, { ...shown, name: "Own Co" })).status, 200);
  assert.deepEqual((await gw.admin("GET", `${T}/destinations/default`)).body.filter, { types: ["stripe.*"] });

  const stripe = await sample(T, "stripe");
  assert.equal(stripe.body.answer.status, 200, stripe.text);
  assert.equal((await sample(T, "github")).body.answer.status, 200);
  await own.until(() => own.delivered.size === 1, 20_000, "the Stripe sample");
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(own.delivered.size, 1, "the filter kept GitHub's event out");
  const [[id, [got]]] = [...own.delivered];
  assert.equal(id, got.id, "`default` delivers under the event's own id");
  assert.equal(got.type, "stripe.payment_intent.succeeded");
  assert.deepEqual(got.data, { amount: 2000, currency: "usd" }, "transformed");

  const rotated = await gw.admin("POST", `${T}/destinations/default/rotate-secret`, { old_expires_in_seconds: 600 });
  assert.equal(rotated.status, 201, rotated.text);
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(planted.has(rotated.body.secret), "the harness watches a shown-once secret from then on");
  assert.equal((await sample(T, "stripe")).body.answer.status, 200);
  await own.until(() => own.delivered.size === 2, 20_000, "the sample after the rotation");
  const last = own.attempts.at(-1);
  for (const secret of [OWN, rotated.body.secret]) assert.ok(verifyStandardWebhook(secret, last.headers, last.body), "old and new secrets both verify");
  assert.deepEqual((await gw.admin("GET", `${T}/destinations/default`)).body.secret, { set: true });

  // The console saves the profile as GET showed it: the rotated record keeps both secrets.
  const profile = (await gw.admin("GET", T)).body;
  const saved = await gw.admin("PUT", T, { ...profile, name: "Own Co." });
  assert.equal(saved.status, 200, saved.text);
  assert.equal((await sample(T, "stripe")).body.answer.status, 200);
  await own.until(() => own.delivered.size === 3, 20_000, "the sample after the profile was saved");
  const next = own.attempts.at(-1);
  for (const secret of [OWN, rotated.body.secret]) assert.equal(new Webhook(secret).verify(next.body, next.headers).type, "stripe.payment_intent.succeeded");

  // The old secret stopped at once, as the console's editor does it: the GET answer with
  // `previous_secrets` emptied (and the schema's default kind spelt out).
  const edited = (await gw.admin("GET", `${T}/destinations/default`)).body;
  const revoked = await gw.admin("PUT", `${T}/destinations/default`, { ...edited, kind: "https", previous_secrets: [] });
  assert.equal(revoked.status, 200, revoked.text);
  own.secret = rotated.body.secret; // the receiver has moved to the new secret
  assert.equal((await sample(T, "stripe")).body.answer.status, 200);
  await own.until(() => own.delivered.size === 4, 20_000, "the sample after the revocation");
  const only = own.attempts.at(-1);
  assert.equal(only.headers["webhook-signature"].split(" ").length, 1, "one signature");
  assert.ok(new Webhook(rotated.body.secret).verify(only.body, only.headers));
  assert.throws(() => new Webhook(OWN).verify(only.body, only.headers), /signature/i);
});

test("a legacy field written straight into KV delivers; a PUT of destinations/default copies it (the tenant document untouched), its filter applies, and an old dead letter replays", async () => {
  const T = "demo";
  const before = await raw(`tenant:${T}`);
  assert.match(before.destination.secret.$sealed, /^v2\./, "the seed stores the legacy field in the tenant document");
  assert.equal(await raw(`destination:${T}:default`), null);
  for (const kind of ["stripe", "github"]) assert.equal((await gw.admin("PUT", `${T}/sources/${kind}-old`, sourceDoc(T, kind, S[kind]))).status, 201);

  // Refused for good before the move: a dead letter of `default`.
  seeded.behaviour = () => ({ status: 410 });
  assert.equal((await sample(T, "stripe-old")).body.answer.status, 200);
  let letter;
  await seeded.until(() => seeded.attempts.length > 0, 20_000, "the attempt through the legacy field");
  for (let i = 0; i < 100 && !letter; i++) {
    letter = (await letters(T)).find((l) => l.queue === "events");
    if (!letter) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(letter, "dead-lettered");
  assert.ok(seeded.attempts[0].verified, "signed with the secret sealed to the tenant");
  const shape = (await gw.admin("GET", `${T}/destinations/default`)).body;

  // An admin's write copies it: the record keeps the secret; the tenant document is not rewritten
  // (a stale read of it elsewhere must not be written back), the field inert beside the record.
  seeded.behaviour = () => ({ status: 200 });
  const put = await gw.admin("PUT", `${T}/destinations/default`, { url: before.destination.url, secret: { set: true }, filter: { types: ["stripe.*"] } });
  assert.equal(put.status, 200, put.text);
  const record = await raw(`destination:${T}:default`);
  assert.match(record.secret.$sealed, /^v2\./);
  assert.deepEqual(await raw(`tenant:${T}`), before, "the tenant document untouched");
  const after = (await gw.admin("GET", `${T}/destinations/default`)).body;
  assert.deepEqual(Object.keys(after).filter((k) => k !== "filter").sort(), Object.keys(shape).sort(), "GET shows one shape before and after");
  assert.deepEqual((await gw.admin("GET", T)).body.destination, { url: before.destination.url, secret: { set: true } });

  const seen = seeded.attempts.length;
  assert.equal((await sample(T, "github-old")).body.answer.status, 200);
  assert.equal((await sample(T, "stripe-old")).body.answer.status, 200);
  await seeded.until(() => seeded.attempts.length > seen, 20_000, "the Stripe sample after the move");
  await new Promise((r) => setTimeout(r, 1500));
  const since = seeded.attempts.slice(seen);
  assert.equal(since.length, 1, "the filter kept GitHub's event out");
  assert.ok(since[0].verified, "the moved secret still signs");

  // The old letter replays to the record, under the same id, signed with the same secret.
  const replay = await gw.admin("POST", `${T}/dead-letters/${letter.id}/replay`);
  assert.equal(replay.status, 202, replay.text);
  await seeded.until(() => seeded.delivered.has(seeded.attempts[0].id), 20_000, "the replayed letter");
  const replayed = seeded.attempts.filter((a) => a.id === seeded.attempts[0].id && a.status === 200);
  assert.ok(replayed.length === 1 && replayed[0].verified, "the same delivery id as before the move");
  assert.deepEqual(await letters(T), []);
  assert.ok(!gw.logs.some((l) => l.message.includes(SEEDED)), "the secret is never logged");
});

test("a tenant PUT without `destination` on a legacy field whose secret does not open is a 409 naming the fix, and `null` clears it", async () => {
  // The demo tenant's document under another tenant's name: its secret is sealed to `demo`.
  const T = "moved-by-hand";
  const doc = await raw("tenant:demo");
  await (await kv()).put(`tenant:${T}`, JSON.stringify({ ...doc, name: T }));
  const refused = await gw.admin("PUT", T, { name: T });
  assert.equal(refused.status, 409, refused.text);
  assert.match(refused.body.error.message, /send `destination` again with its secret, or `"destination": null`/);
  assert.deepEqual(await raw(`tenant:${T}`), { ...doc, name: T }, "nothing written");
  assert.equal(await raw(`destination:${T}:default`), null);
  const cleared = await gw.admin("PUT", T, { name: T, destination: null });
  assert.equal(cleared.status, 200, cleared.text);
  assert.equal((await raw(`tenant:${T}`)).destination, undefined);
});
