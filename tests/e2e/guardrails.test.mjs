// Guardrails end to end, with the official openai and @anthropic-ai/sdk clients: a request whose
// personal data is redacted before any provider sees it, requests blocked in the client's
// dialect without the text echoed, answers redacted whole and streamed (a phone number split
// across stream chunks), a route that sets its own (empty) rules, and log lines that count
// findings but never hold the text.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { startGateway, planted } from "../harness.mjs";
import { startLlm } from "../mocks/llm.mjs";

const OPENAI_KEY = "sk-upstream-openai-" + randomBytes(8).toString("hex");
planted.add(OPENAI_KEY);
let gw, llm, openai, anthropic;

const EMAIL = "jane.doe@example.com";
const PHONE = "(415) 555-2671";
const CARD = "4111 1111 1111 1111";

before(async () => {
  gw = await startGateway({ extraBindings: { MOCK_STREAM_DELAY_MS: "1" } });
  llm = await startLlm({ openaiKey: OPENAI_KEY, anthropicKey: "unused" });
  const { key } = await gw.tenant("guarded");
  const r = await gw.admin("PUT", "guarded/llm", {
    providers: { oai: { kind: "openai", base_url: `${llm.url}/v1`, api_key: OPENAI_KEY }, echo: { kind: "mock" } },
    routes: {
      gpt: [{ provider: "oai", model: "gpt-ok" }],
      echo: [{ provider: "echo", model: "mock-echo" }],
      open: { targets: [{ provider: "echo", model: "mock-echo" }], guardrails: [] },
    },
    guardrails: [
      { detector: "email", request: "redact", response: "redact" },
      { detector: "card", request: "block" },
      { detector: "secret", request: "block" },
      { detector: "phone", response: "redact" },
      { detector: "deny", terms: ["Project Zeus"], request: "block" },
      { detector: "regex", name: "order_id", pattern: "ORD-\\d{8}", request: "log" },
    ],
  });
  assert.equal(r.status, 201, r.text);
  openai = new OpenAI({ apiKey: key, baseURL: `${gw.url.origin}/v1`, maxRetries: 0 });
  anthropic = new Anthropic({ apiKey: key, baseURL: gw.url.origin, maxRetries: 0 });
});
after(async () => {
  await gw?.stop();
  await llm?.close();
});

const say = (model, content, extra = {}) =>
  openai.chat.completions.create({ model, messages: [{ role: "user", content }], max_tokens: 64, ...extra });

test("personal data in a request is redacted before the provider sees it", async () => {
  const r = await say("gpt", `Email me at ${EMAIL}, yes ${EMAIL}, about ORD-12345678`);
  assert.match(r.choices[0].message.content, /Hello/);
  const sent = llm.last().body.messages[0].content;
  assert.equal(sent, "Email me at [EMAIL_1], yes [EMAIL_1], about ORD-12345678", "logged only: the order id passes");
  const line = await gw.waitForLog((m) => m.includes('"route":"/v1/chat/completions"') && m.includes('"guardrails"'));
  assert.ok(line, "the request's log line counts the findings");
  const logged = JSON.parse(line.message);
  assert.deepEqual(logged.guardrails, { email: { redact: 2 }, order_id: { log: 1 } });
});

test("a blocked request is refused in the client's dialect, names the detector, and reaches no provider", async () => {
  const before = llm.requests.length;
  await assert.rejects(say("gpt", `charge ${CARD} please`), (e) => {
    assert.equal(e.status, 400);
    assert.match(e.message, /guardrails: the request contains a payment card number \(`card`\)/);
    assert.ok(!e.message.includes("1111"), "the card number is not echoed");
    return true;
  });
  await assert.rejects(
    anthropic.messages.create({ model: "gpt", max_tokens: 10, messages: [{ role: "user", content: "what is project zeus?" }] }),
    (e) => {
      assert.equal(e.status, 400);
      assert.equal(e.error.type, "error");
      assert.equal(e.error.error.type, "invalid_request_error");
      assert.match(e.error.error.message, /a denied term \(`deny`\)/);
      return true;
    },
  );
  await assert.rejects(say("gpt", "my key is sk-proj-abcdefghijklmnopqrstuvwxyz0123"), /a secret credential \(`secret`\)/);
  assert.equal(llm.requests.length, before, "no provider was called");
});

test("an answer is redacted, with the same placeholders as its request", async () => {
  const r = await say("echo", `I am ${EMAIL}, call ${PHONE}`);
  const text = r.choices[0].message.content;
  assert.match(text, /You said: "I am \[EMAIL_1\], call \[PHONE_1\]"/);
  assert.ok(!text.includes("555-2671") && !text.includes(EMAIL));
  const m = await anthropic.messages.create({ model: "echo", max_tokens: 64, messages: [{ role: "user", content: `ring ${PHONE} now` }] });
  assert.match(m.content[0].text, /ring \[PHONE_1\] now/);
});

test("a streamed answer is redacted across chunk boundaries, in both dialects, and ends normally", async () => {
  // The mock streams a word a chunk: the phone number comes in two chunks.
  const stream = await say("echo", `call ${PHONE} or ${PHONE} today`, { stream: true, stream_options: { include_usage: true } });
  let text = "";
  let chunks = 0;
  let usage;
  for await (const c of stream) {
    text += c.choices[0]?.delta?.content ?? "";
    chunks++;
    usage ??= c.usage;
  }
  assert.match(text, /call \[PHONE_1\] or \[PHONE_1\] today/);
  assert.ok(!text.includes("555"), text);
  assert.ok(chunks > 3, "still a stream");
  assert.ok(usage?.completion_tokens > 0, "usage still arrives");

  const s = anthropic.messages.stream({ model: "echo", max_tokens: 64, messages: [{ role: "user", content: `mail ${EMAIL} or ring ${PHONE}` }] });
  const final = await s.finalMessage();
  assert.match(final.content[0].text, /mail \[EMAIL_1\] or ring \[PHONE_1\]/);
  assert.equal(final.stop_reason, "end_turn");
  const line = await gw.waitForLog((m) => m.includes("llm_usage") && m.includes('"phone":{"redact"'));
  assert.ok(line, "the stream's usage line counts the answer's findings");
});

test("a route's own rules replace the tenant's", async () => {
  const r = await say("open", `call ${PHONE}`);
  assert.match(r.choices[0].message.content, /call \(415\) 555-2671/);
});

test("rules are checked when saved, and no log line holds what was found", async () => {
  const r = await gw.admin("PUT", "guarded/llm", {
    providers: { echo: { kind: "mock" } },
    guardrails: [{ detector: "regex", name: "n", pattern: "(open", request: "block" }],
  });
  assert.equal(r.status, 422);
  assert.match(r.text, /`guardrails\[0\]\.pattern` is not a valid regex/);
  for (const l of gw.logs) {
    for (const s of [EMAIL, "555-2671", "1111 1111", "sk-proj-abc"]) assert.ok(!l.message.includes(s), `${s} in ${l.message.slice(0, 200)}`);
  }
});

test("a Responses client: the request redacted, the streamed answer redacted in its deltas and in the text repeated at the end", async () => {
  let text = "";
  let final = null;
  const seqs = [];
  for await (const ev of await openai.responses.create({ model: "echo", input: `Call ${PHONE} or mail ${EMAIL}`, stream: true })) {
    seqs.push(ev.sequence_number);
    if (ev.type === "response.output_text.delta") text += ev.delta;
    if (ev.type === "response.completed") final = ev.response;
  }
  assert.ok(!text.includes(PHONE) && !text.includes(EMAIL), text);
  assert.match(text, /\[PHONE_1\]/);
  assert.match(text, /\[EMAIL_1\]/);
  assert.equal(final.output[0].content[0].text, text, "the completed response says what the deltas said");
  assert.deepEqual(seqs, seqs.map((_, i) => i), "renumbered after the held text was released");
  const whole = await openai.responses.create({ model: "echo", input: `Call ${PHONE}` });
  assert.ok(!whole.output_text.includes(PHONE));
  await assert.rejects(openai.responses.create({ model: "echo", input: `card ${CARD}` }), (e) => e.status === 400 && /payment card/.test(e.message));
});
