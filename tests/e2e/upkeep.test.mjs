// The scheduled upkeep (the cron trigger, fired here through Miniflare): dead letters past their
// retention are forgotten, younger ones kept, and the run logs what it did.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { startGateway, planted } from "../harness.mjs";
import { startDestination } from "../mocks/destination.mjs";
import { sourceSecrets, sourceDoc } from "../samples.mjs";
import { sign } from "../signers.mjs";

const SECRET = "whsec_" + randomBytes(32).toString("base64");
const S = sourceSecrets();
planted.add(SECRET);
planted.add(S.standard);
let gw, dest;

before(async () => {
  gw = await startGateway({ seed: false, extraBindings: { DELIVERY_RETRY_BASE_SECONDS: "1", DEAD_LETTER_RETENTION_SECONDS: "3" } });
  dest = await startDestination(SECRET);
  dest.behaviour = () => ({ status: 500 });
  await gw.tenant("keeper", { destination: { url: dest.url, secret: SECRET }, limits: { max_delivery_attempts: 1 } });
  assert.equal((await gw.admin("PUT", "keeper/sources/shop", sourceDoc("keeper", "standard", S.standard))).status, 201);
});
after(async () => {
  await gw?.stop();
  await dest?.close();
});

const letters = async () => (await gw.admin("GET", "keeper/dead-letters")).body.data;

test("the cron run forgets dead letters past their retention and keeps younger ones", async () => {
  const body = JSON.stringify({ type: "invoice.paid", data: { n: 1 } });
  const headers = sign.standard(S.standard, body, { id: "msg_" + randomBytes(6).toString("hex") });
  const r = await gw.request("POST", "/v1/webhooks/keeper/shop", { body, headers: { "content-type": "application/json", ...headers } });
  assert.ok(r.status < 300, r.text);
  for (let i = 0; i < 200 && (await letters()).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal((await letters()).length, 1, "the event was dead-lettered");
  const worker = await gw.mf.getWorker();
  await worker.scheduled({ cron: "*/5 * * * *" });
  assert.equal((await letters()).length, 1, "a young letter is kept");
  await new Promise((r) => setTimeout(r, 3200));
  await worker.scheduled({ cron: "*/5 * * * *" });
  assert.equal((await letters()).length, 0, "an old letter is forgotten");
  const runs = gw.logs.filter((l) => l.message.includes('"upkeep":"dead_letters_expired"')).map((l) => JSON.parse(l.message));
  assert.equal(runs.length, 2);
  assert.deepEqual(runs.map((r) => [r.report.expired, r.report.complete]), [[0, true], [1, true]]);
});
