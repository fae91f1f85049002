// The default destination as a destination record: a tenant's `destination` becomes the record
// `default` (its secret sealed under that record), which takes a filter and a transform and
// rotates its secret like any destination; a tenant stored with its own `destination` (as the
// seed writes it straight into KV) delivers until the scheduled upkeep moves it into the record,
// and its dead letter from before still replays, under the same id; and the CLI walk-through of a
// tenant with no destination: its sample is in the event log as `no_destination`, and no dead
// letter is made of it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { execFile } from "node:child_process";
import path from "node:path";
import { startGateway, planted, ROOT, ADMIN_TOKEN } from "../harness.mjs";
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
const upkeep = async () => {
  await (await gw.mf.getWorker()).scheduled({ cron: "*/5 * * * *" });
  const line = await gw.waitForLog((m) => m.includes('"upkeep":"default_destinations_migrated"'));
  const runs = gw.logs.filter((l) => l.message.includes('"upkeep":"default_destinations_migrated"'));
  assert.ok(line);
  return JSON.parse(runs.at(-1).message).report;
};

test("a tenant's destination is the record `default`: a filter, a transform and a rotated secret apply to it", async () => {
  const T = "own";
  await gw.tenant(T, { destination: { url: own.url, secret: OWN } });
  const record = await raw(`destination:${T}:default`);
  assert.match(record.secret.$sealed, /^v2\./, "sealed in the record");
  assert.equal((await raw(`tenant:${T}`)).destination, undefined, "the tenant keeps no copy");
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
  planted.add(rotated.body.secret);
  assert.equal((await sample(T, "stripe")).body.answer.status, 200);
  await own.until(() => own.delivered.size === 2, 20_000, "the sample after the rotation");
  const last = own.attempts.at(-1);
  for (const secret of [OWN, rotated.body.secret]) assert.ok(verifyStandardWebhook(secret, last.headers, last.body), "old and new secrets both verify");
  assert.deepEqual((await gw.admin("GET", `${T}/destinations/default`)).body.secret, { set: true });
});

test("a tenant stored with its own destination delivers, is migrated by the scheduled upkeep, and its old dead letter replays", async () => {
  const T = "demo";
  const before = await raw(`tenant:${T}`);
  assert.match(before.destination.secret.$sealed, /^v2\./, "the seed stores the tenant's own destination");
  assert.equal(await raw(`destination:${T}:default`), null);
  assert.equal((await gw.admin("PUT", `${T}/sources/stripe-old`, sourceDoc(T, "stripe", S.stripe))).status, 201);

  // Refused for good before the migration: a dead letter of `default`.
  seeded.behaviour = () => ({ status: 410 });
  assert.equal((await sample(T, "stripe-old")).body.answer.status, 200);
  let letter;
  await seeded.until(() => seeded.attempts.length > 0, 20_000, "the attempt before the migration");
  for (let i = 0; i < 100 && !letter; i++) {
    letter = (await letters(T)).find((l) => l.queue === "events");
    if (!letter) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(letter, "dead-lettered");
  assert.ok(seeded.attempts[0].verified, "signed with the secret sealed to the tenant");

  // The first run writes the record, the next removes the tenant's copy; then nothing is left.
  const first = await upkeep();
  assert.ok(first.moved >= 1 && first.complete, JSON.stringify(first));
  const record = await raw(`destination:${T}:default`);
  assert.match(record.secret.$sealed, /^v2\./);
  assert.equal(record.url, before.destination.url);
  const second = await upkeep();
  assert.ok(second.stripped >= 1, JSON.stringify(second));
  assert.equal((await raw(`tenant:${T}`)).destination, undefined);
  const third = await upkeep();
  assert.deepEqual([third.moved, third.stripped], [0, 0], "idempotent");
  assert.ok(!gw.logs.some((l) => l.message.includes(SEEDED)), "the secret is never logged");
  assert.deepEqual((await gw.admin("GET", T)).body.destination, { url: before.destination.url, secret: { set: true } });

  // The old letter replays to the record, under the same id, signed with the same secret.
  seeded.behaviour = () => ({ status: 200 });
  const replay = await gw.admin("POST", `${T}/dead-letters/${letter.id}/replay`);
  assert.equal(replay.status, 202, replay.text);
  await seeded.until(() => seeded.delivered.has(seeded.attempts[0].id), 20_000, "the replayed letter");
  const delivered = seeded.attempts.filter((a) => a.status === 200);
  assert.ok(delivered.every((a) => a.verified));
  assert.equal(delivered[0].id, seeded.attempts[0].id, "the same delivery id as before the migration");
  assert.deepEqual(await letters(T), []);
});

/** gatewayctl (built by `cargo build --bin gatewayctl`) against this gateway. */
function ctl(args, input = "") {
  const env = { PATH: process.env.PATH, GATEWAYCTL_CONFIG: path.join(ROOT, "target", "none.json"), GATEWAY_URL: gw.url.origin, GATEWAY_ADMIN_TOKEN: ADMIN_TOKEN };
  return new Promise((resolve) => {
    const child = execFile(path.join(ROOT, "target", "debug", "gatewayctl"), args, { env, timeout: 60_000 }, (error, stdout, stderr) => resolve({ code: error ? (error.code ?? 1) : 0, stdout, stderr }));
    child.stdin.end(input);
  });
}

test("the CLI walk-through without a destination: the sample is logged `no_destination`, and no dead letter is made", async () => {
  const T = "nameonly";
  const put = await gw.admin("PUT", T, { name: "Name Only" });
  assert.equal(put.status, 201, put.text);
  assert.equal(put.body.destination, undefined);
  assert.equal((await gw.admin("PUT", `${T}/sources/stripe`, { kind: "stripe", secrets: [S.stripe] })).status, 201);
  const sent = await ctl(["send-sample", "stripe", "--tenant", T, "--source", "stripe", "--secret", "-"], S.stripe);
  assert.equal(sent.code, 0, sent.stderr);
  assert.match(sent.stdout, /^200 /);
  let rows = [];
  for (let i = 0; i < 100 && !rows.some((r) => r.includes("no_destination")); i++) {
    const listed = await ctl(["events", "list", T, "--output", "table"]);
    assert.equal(listed.code, 0, listed.stderr);
    rows = listed.stdout.trim().split("\n").slice(1);
    if (!rows.length) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(rows.length, 1, rows.join("\n"));
  assert.match(rows[0], /stripe\.payment_intent\.succeeded\s+stripe\s+no_destination/);
  assert.deepEqual(await letters(T), []);
});
