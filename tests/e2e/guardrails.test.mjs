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
import { SHAPES_EMAIL, MORE_REASONING, SECRET_PAUSE_MS } from "../mocks/llm_shapes.mjs";

const OPENAI_KEY = "sk-upstream-openai-" + randomBytes(8).toString("hex");
const ANTHROPIC_KEY = "sk-upstream-anthropic-" + randomBytes(8).toString("hex");
planted.add(OPENAI_KEY);
planted.add(ANTHROPIC_KEY);
let gw, llm, openai, anthropic, tenantKey;

const EMAIL = "jane.doe@example.com";
const PHONE = "(415) 555-2671";
const CARD = "4111 1111 1111 1111";

before(async () => {
  gw = await startGateway({ extraBindings: { MOCK_STREAM_DELAY_MS: "1" } });
  llm = await startLlm({ openaiKey: OPENAI_KEY, anthropicKey: ANTHROPIC_KEY });
  const { key } = await gw.tenant("guarded");
  tenantKey = key;
  const r = await gw.admin("PUT", "guarded/llm", {
    providers: {
      oai: { kind: "openai", base_url: `${llm.url}/v1`, api_key: OPENAI_KEY },
      ant: { kind: "anthropic", base_url: llm.url, api_key: ANTHROPIC_KEY },
      gem: { kind: "gemini", base_url: llm.url, api_key: OPENAI_KEY },
      echo: { kind: "mock" },
    },
    routes: {
      gpt: [{ provider: "oai", model: "gpt-ok" }],
      claude: [{ provider: "ant", model: "claude-ok" }],
      "shapes-oai": [{ provider: "oai", model: "shapes" }],
      "shapes-ant": [{ provider: "ant", model: "shapes" }],
      "shapes-gem": [{ provider: "gem", model: "shapes" }],
      "shapes-skip": { targets: [{ provider: "oai", model: "shapes" }], guardrails: [{ detector: "email", response: "redact", skip: ["tool_arguments", "reasoning"] }] },
      "shapes-secret": { targets: [{ provider: "oai", model: "shapes" }], guardrails: [{ detector: "secret", response: "redact" }] },
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

// Raw calls, to see every byte the client gets.
async function call(path, body) {
  const r = await fetch(`${gw.url.origin}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${tenantKey}`, "content-type": "application/json", "anthropic-version": "2023-06-01" },
    body: JSON.stringify(body),
  });
  return { status: r.status, text: await r.text() };
}
const sseEvents = (text) =>
  text.split("\n\n").filter((b) => b.includes("data: ")).map((b) => b.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n"))
    .map((d) => (d === "[DONE]" ? d : JSON.parse(d)));

const CLIENTS = {
  chat: {
    path: "/v1/chat/completions",
    body: (model, stream) => ({ model, stream, max_tokens: 64, reasoning_effort: "low", messages: [{ role: "user", content: "hi" }], ...(stream && { stream_options: { include_usage: true } }) }),
    // The tool call's arguments, and whether the stream ended normally.
    args: (answer) => answer.choices[0].message.tool_calls[0].function.arguments,
    streamed: (evs) => {
      const args = evs.flatMap((e) => e.choices ?? []).filter((c) => c.index === 0).flatMap((c) => c.delta.tool_calls ?? []).map((t) => t.function?.arguments ?? "").join("");
      return { args, ended: evs.at(-1) === "[DONE]" };
    },
  },
  messages: {
    path: "/v1/messages",
    body: (model, stream) => ({ model, stream, max_tokens: 2048, thinking: { type: "enabled", budget_tokens: 1024 }, messages: [{ role: "user", content: "hi" }] }),
    args: (answer) => JSON.stringify(answer.content.find((b) => b.type === "tool_use").input),
    streamed: (evs) => ({
      args: evs.filter((e) => e.delta?.type === "input_json_delta").map((e) => e.delta.partial_json).join(""),
      ended: evs.at(-1).type === "message_stop",
    }),
  },
  responses: {
    path: "/v1/responses",
    body: (model, stream) => ({ model, stream, reasoning: { effort: "low" }, input: "hi" }),
    args: (answer) => answer.output.find((i) => i.type === "function_call").arguments,
    streamed: (evs) => {
      const args = evs.filter((e) => e.type === "response.function_call_arguments.delta").map((e) => e.delta).join("");
      const done = evs.at(-1);
      assert.equal(done.response.output.find((i) => i.type === "function_call").arguments, args, "the completed response repeats the arguments sent");
      return { args, ended: done.type === "response.completed" };
    },
  },
};

test("every text a model writes is redacted, from each provider to each client, whole and streamed: text, refusals, thinking, tool-call arguments", async () => {
  const cases = [
    ["chat", "shapes-oai"], // OpenAI chunks as they come: several choices, text beside refusal and reasoning, finishing chunks with text
    ["chat", "shapes-gem"], // Gemini thoughts as reasoning_content
    ["messages", "shapes-ant"], // thinking_delta, input_json_delta
    ["messages", "shapes-gem"],
    ["responses", "shapes-oai"], // reasoning summary, output text and function-call argument deltas
    ["responses", "shapes-ant"],
  ];
  const leaked = [];
  for (const [client, model] of cases) {
    const c = CLIENTS[client];
    for (const stream of [false, true]) {
      const what = `${client} from ${model}${stream ? ", streamed" : ""}`;
      const r = await call(c.path, c.body(model, stream));
      assert.equal(r.status, 200, `${what}: ${r.text.slice(0, 300)}`);
      if (r.text.includes("example.com")) {
        leaked.push(what);
        continue;
      }
      assert.match(r.text, /\[EMAIL_1\]/, what);
      const args = stream ? c.streamed(sseEvents(r.text)) : { args: c.args(JSON.parse(r.text)), ended: true };
      assert.ok(args.ended, `${what}: ended normally`);
      assert.deepEqual(JSON.parse(args.args), { to: "[EMAIL_1]", n: 1 }, `${what}: the arguments stay JSON`);
    }
  }
  assert.deepEqual(leaked, [], "the address reached these clients");
  // Thinking reached the clients (redacted), so it was scanned, not dropped.
  const chat = sseEvents((await call("/v1/chat/completions", CLIENTS.chat.body("shapes-oai", true))).text);
  const said = (key, i = 0) => chat.flatMap((e) => e.choices ?? []).filter((c) => c.index === i).map((c) => c.delta[key] ?? "").join("");
  assert.equal(said("reasoning_content"), "They are [EMAIL_1].");
  assert.equal(said("content"), "Mail [EMAIL_1] now or [EMAIL_1]");
  assert.equal(said("refusal", 1), "Not writing to [EMAIL_1].");
  const whole = JSON.parse((await call("/v1/chat/completions", CLIENTS.chat.body("shapes-oai", false))).text);
  assert.equal(whole.choices[0].logprobs, null, "token log-probabilities repeat the text: dropped when a rule redacts answers");
});

test("every text a client writes is redacted before the provider sees it, in each dialect", async () => {
  const E = SHAPES_EMAIL;
  const args = JSON.stringify({ to: E, n: 1 });
  const sent = async (path, body) => {
    const r = await call(path, body);
    assert.equal(r.status, 200, r.text.slice(0, 300));
    const seen = llm.last().body;
    assert.ok(!JSON.stringify(seen).includes("example.com"), `${path}: the provider saw the address: ${JSON.stringify(seen)}`);
    return seen;
  };
  const chat = await sent("/v1/chat/completions", { model: "gpt", max_tokens: 16, messages: [
    { role: "developer", content: `for ${E}` },
    { role: "user", content: [{ type: "text", text: `I am ${E}` }] },
    { role: "assistant", content: null, reasoning_content: `they are ${E}`, tool_calls: [{ id: "t", type: "function", function: { name: "send_mail", arguments: args } }] },
    { role: "tool", tool_call_id: "t", content: `sent to ${E}` },
  ] });
  assert.deepEqual(JSON.parse(chat.messages[2].tool_calls[0].function.arguments), { to: "[EMAIL_1]", n: 1 });
  const messages = await sent("/v1/messages", { model: "claude", max_tokens: 16, system: `for ${E}`, messages: [
    { role: "user", content: [
      { type: "document", source: { type: "text", media_type: "text/plain", data: `Contact: ${E}` }, title: `${E}'s card` },
      { type: "text", text: "mail them" },
    ] },
    { role: "assistant", content: [
      { type: "thinking", thinking: `mail ${E}`, signature: "sig" },
      { type: "tool_use", id: "t", name: "send_mail", input: { to: E, n: 1 } },
    ] },
    { role: "user", content: [{ type: "tool_result", tool_use_id: "t", content: [{ type: "text", text: `sent to ${E}` }] }] },
  ] });
  assert.deepEqual(messages.messages[1].content[1].input, { to: "[EMAIL_1]", n: 1 });
  const responses = await sent("/v1/responses", { model: "gpt", instructions: `for ${E}`, input: [
    { role: "user", content: [{ type: "input_text", text: `I am ${E}` }] },
    { type: "function_call", call_id: "c", name: "send_mail", arguments: args },
    { type: "function_call_output", call_id: "c", output: `sent to ${E}` },
  ] });
  assert.deepEqual(JSON.parse(responses.input.find((i) => i.type === "function_call").arguments), { to: "[EMAIL_1]", n: 1 });
});

test("a rule may skip kinds of text, and an unknown kind is refused when saved", async () => {
  const evs = sseEvents((await call("/v1/chat/completions", CLIENTS.chat.body("shapes-skip", true))).text);
  const said = (key) => evs.flatMap((e) => e.choices ?? []).filter((c) => c.index === 0).map((c) => c.delta[key] ?? "").join("");
  assert.equal(said("content"), "Mail [EMAIL_1] now or [EMAIL_1]");
  assert.equal(said("reasoning_content"), `They are ${SHAPES_EMAIL}.`, "reasoning skipped");
  assert.deepEqual(JSON.parse(CLIENTS.chat.streamed(evs).args), { to: SHAPES_EMAIL, n: 1 }, "tool arguments skipped");
  const r = await gw.admin("PUT", "guarded/llm", {
    providers: { echo: { kind: "mock" } },
    guardrails: [{ detector: "email", request: "redact", skip: ["tools"] }],
  });
  assert.equal(r.status, 422);
  assert.match(r.text, /`guardrails\[0\]\.skip\[0\]`: unknown variant `tools`, expected one of `text`, `reasoning`, `tool_arguments`, `tool_results`, `documents`/);
});

test("the rarer places a model writes are redacted too, whole and streamed: audio transcripts, legacy and custom calls, arguments that are not JSON or key the address, content parts, hosted and server tools", async () => {
  const asked = {
    "chat, streamed": ["/v1/chat/completions", { model: "shapes-oai", stream: true, messages: [{ role: "user", content: "MORE" }] }],
    chat: ["/v1/chat/completions", { model: "shapes-oai", messages: [{ role: "user", content: "MORE" }] }],
    "responses, streamed": ["/v1/responses", { model: "shapes-oai", stream: true, input: "MORE" }],
    responses: ["/v1/responses", { model: "shapes-oai", input: "MORE" }],
    "messages, streamed": ["/v1/messages", { model: "shapes-ant", stream: true, max_tokens: 64, messages: [{ role: "user", content: "MORE" }] }],
    messages: ["/v1/messages", { model: "shapes-ant", max_tokens: 64, messages: [{ role: "user", content: "MORE" }] }],
  };
  const got = {};
  const leaked = [];
  for (const [what, [path, body]] of Object.entries(asked)) {
    const r = await call(path, body);
    assert.equal(r.status, 200, `${what}: ${r.text.slice(0, 300)}`);
    got[what] = r.text;
    if (r.text.includes("example.com")) leaked.push(what);
    // Audio cannot be redacted: it is dropped.
    if (/UklGR|AABXQVZF/.test(r.text)) leaked.push(`${what} (audio)`);
  }
  assert.deepEqual(leaked, [], "the address reached these clients");
  // Chat, streamed: each choice one of the places.
  const said = (evs, i, get) => evs.flatMap((e) => e.choices ?? []).filter((c) => c.index === i).map((c) => get(c.delta) ?? "").join("");
  const evs = sseEvents(got["chat, streamed"]);
  assert.equal(evs.at(-1), "[DONE]");
  assert.equal(said(evs, 0, (d) => d.reasoning_content), MORE_REASONING.replace(SHAPES_EMAIL, "[EMAIL_1]"));
  assert.equal(said(evs, 0, (d) => d.audio?.transcript), "I will mail [EMAIL_1].");
  assert.equal(said(evs, 1, (d) => d.function_call?.arguments), "{to: [EMAIL_1], n: 1}", "arguments that are not JSON are read as text");
  assert.equal(said(evs, 2, (d) => d.tool_calls?.find((t) => t.index === 0)?.custom?.input), "mail [EMAIL_1]");
  assert.deepEqual(JSON.parse(said(evs, 2, (d) => d.tool_calls?.find((t) => t.index === 1)?.function?.arguments)), { "[EMAIL_1]": { n: 1 } });
  assert.equal(said(evs, 3, (d) => (Array.isArray(d.content) ? d.content.map((p) => p.text).join("") : d.content)), "Parts: [EMAIL_1].");
  // The reasoning's held tail went out before the answer started.
  const kinds = evs.flatMap((e) => e.choices ?? []).filter((c) => c.index === 0).flatMap((c) => ["reasoning_content", "content"].filter((k) => c.delta[k]));
  assert.equal(kinds.lastIndexOf("reasoning_content"), kinds.indexOf("content") - 1, `reasoning after the answer started: ${kinds}`);
  // Chat, whole.
  const [c0, c1, c2] = JSON.parse(got.chat).choices;
  assert.equal(c0.message.audio.data, "");
  assert.equal(c0.message.audio.transcript, "I will mail [EMAIL_1].");
  assert.equal(c1.message.function_call.arguments, "{to: [EMAIL_1], n: 1}");
  assert.equal(c2.message.tool_calls[0].custom.input, "mail [EMAIL_1]");
  assert.deepEqual(JSON.parse(c2.message.tool_calls[1].function.arguments), { "[EMAIL_1]": { n: 1 } });
  // Responses (passed through from OpenAI): hosted tools' text, in deltas renumbered.
  const revs = sseEvents(got["responses, streamed"]);
  assert.deepEqual(revs.map((e) => e.sequence_number), revs.map((_, i) => i), "renumbered");
  const deltas = (type) => revs.filter((e) => e.type === type).map((e) => e.delta).join("");
  assert.deepEqual(JSON.parse(deltas("response.mcp_call_arguments.delta")), { to: "[EMAIL_1]" });
  assert.equal(deltas("response.code_interpreter_call_code.delta"), 'send_mail("[EMAIL_1]")');
  assert.equal(deltas("response.audio.transcript.delta"), "I will mail [EMAIL_1].");
  assert.equal(revs.at(-1).type, "response.completed");
  // Anthropic: a tool's input keyed by the address, streamed and whole.
  const streamedInput = sseEvents(got["messages, streamed"]).filter((e) => e.delta?.type === "input_json_delta").map((e) => e.delta.partial_json).join("");
  assert.deepEqual(JSON.parse(streamedInput), { "[EMAIL_1]": { n: 1 } });
  assert.deepEqual(JSON.parse(got.messages).content.find((b) => b.type === "tool_use").input, { "[EMAIL_1]": { n: 1 } });
});

test("a secret that does not end does not stall the stream: its placeholder goes out while the model still writes it, none of it ever", async () => {
  const r = await fetch(`${gw.url.origin}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${tenantKey}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "shapes-secret", stream: true, messages: [{ role: "user", content: "SECRET" }] }),
  });
  assert.equal(r.status, 200);
  const decoder = new TextDecoder();
  let text = "";
  let placeholderAt;
  let restAt;
  for await (const bytes of r.body) {
    text += decoder.decode(bytes, { stream: true });
    if (placeholderAt === undefined && text.includes("[SECRET_1]")) placeholderAt = Date.now();
    if (restAt === undefined && text.includes("to call it")) restAt = Date.now();
  }
  assert.ok(placeholderAt && restAt, text.slice(-300));
  assert.ok(restAt - placeholderAt > SECRET_PAUSE_MS / 2, `the placeholder came ${restAt - placeholderAt} ms before the rest: it waited for the token's end`);
  assert.ok(!text.includes("x9Z-"), "no byte of the token reached the client");
  const content = sseEvents(text).flatMap((e) => e.choices ?? []).map((c) => c.delta.content ?? "").join("");
  assert.equal(content, "Use [SECRET_1] to call it, then tell the user it worked.");
});
