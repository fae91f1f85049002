// The `shapes` model of the LLM stand-in: an answer that puts an email address in every place a
// model can write text, in each provider's wire format, JSON and streamed. Streams cut the
// address between events (the guardrails must hold text back to find it). Used by
// tests/e2e/guardrails.test.mjs.
export const SHAPES_EMAIL = "ana.lopez@example.com";
const [A, B] = ["ana.lo", "pez@example.com"]; // the address, cut in two
const E = SHAPES_EMAIL;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function stream(res, events) {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  for (const [name, data] of events) {
    res.write(`${name ? `event: ${name}\n` : ""}data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`);
    await sleep(2);
  }
  res.end();
}

// OpenAI Chat Completions: text beside `refusal: null` and reasoning, a second choice refusing,
// a tool call's arguments in fragments, finishing chunks that carry text.
function openai(res, send, model, body) {
  const args = JSON.stringify({ to: E, n: 1 });
  if (!body.stream) {
    return send(200, { id: "chatcmpl-S1", object: "chat.completion", created: 1757000000, model,
      choices: [
        { index: 0, finish_reason: "tool_calls", message: { role: "assistant", content: `Mail ${E} now`, refusal: null, reasoning_content: `They are ${E}.`,
            tool_calls: [{ id: "call_s1", type: "function", function: { name: "send_mail", arguments: args } }] },
          logprobs: { content: [{ token: A, logprob: -0.1, bytes: [...Buffer.from(A)], top_logprobs: [] }, { token: B, logprob: -0.1, bytes: [...Buffer.from(B)], top_logprobs: [] }] } },
        { index: 1, finish_reason: "stop", message: { role: "assistant", content: null, refusal: `Not writing to ${E}.` }, logprobs: null },
      ],
      usage: { prompt_tokens: 25, completion_tokens: 15, total_tokens: 40 } });
  }
  const chunk = (choices, extra = {}) => [null, { id: "chatcmpl-S1", object: "chat.completion.chunk", created: 1, model, system_fingerprint: "fp_s", choices, ...extra }];
  const c = (index, delta, finish_reason = null) => ({ index, delta, logprobs: null, finish_reason });
  const call = (fn) => c(0, { tool_calls: [{ index: 0, ...fn }] });
  return stream(res, [
    chunk([c(0, { role: "assistant", content: "", refusal: null })]),
    chunk([c(0, { reasoning_content: `They are ${A}` })]),
    chunk([c(0, { reasoning_content: `${B}.`, content: `Mail ${A}`, refusal: null })]),
    chunk([c(0, { content: `${B} now`, refusal: null }), c(1, { role: "assistant", refusal: `Not writing to ${A}` })]),
    chunk([call({ id: "call_s1", type: "function", function: { name: "send_mail", arguments: "" } })]),
    chunk([call({ function: { arguments: args.slice(0, args.indexOf(B)) } })]),
    chunk([call({ function: { arguments: args.slice(args.indexOf(B)) } })]),
    chunk([c(1, { refusal: `${B}.` }, "stop")]),
    chunk([c(0, { content: ` or ${E}` }, "tool_calls")]),
    chunk([], { usage: { prompt_tokens: 25, completion_tokens: 15, total_tokens: 40 } }),
    [null, "[DONE]"],
  ]);
}

// Anthropic Messages: a thinking block, a text block, a tool_use block whose input streams.
function anthropic(res, send, model, body) {
  if (!body.stream) {
    return send(200, { id: "msg_S1", type: "message", role: "assistant", model, stop_reason: "tool_use", stop_sequence: null,
      content: [{ type: "thinking", thinking: `They are ${E}.`, signature: "sig" }, { type: "text", text: `Mail ${E} now` },
        { type: "tool_use", id: "toolu_s1", name: "send_mail", input: { to: E, n: 1 } }],
      usage: { input_tokens: 25, output_tokens: 15 } });
  }
  const ev = (type, data) => [type, { type, ...data }];
  const delta = (index, d) => ev("content_block_delta", { index, delta: d });
  const args = JSON.stringify({ to: E, n: 1 });
  return stream(res, [
    ev("message_start", { message: { id: "msg_S1", type: "message", role: "assistant", model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 25, output_tokens: 1 } } }),
    ev("content_block_start", { index: 0, content_block: { type: "thinking", thinking: "" } }),
    delta(0, { type: "thinking_delta", thinking: `They are ${A}` }),
    ev("ping", {}),
    delta(0, { type: "thinking_delta", thinking: `${B}.` }),
    delta(0, { type: "signature_delta", signature: "sig" }),
    ev("content_block_stop", { index: 0 }),
    ev("content_block_start", { index: 1, content_block: { type: "text", text: "" } }),
    delta(1, { type: "text_delta", text: `Mail ${A}` }),
    delta(1, { type: "text_delta", text: `${B} now` }),
    ev("content_block_stop", { index: 1 }),
    ev("content_block_start", { index: 2, content_block: { type: "tool_use", id: "toolu_s1", name: "send_mail", input: {} } }),
    delta(2, { type: "input_json_delta", partial_json: args.slice(0, args.indexOf(B)) }),
    delta(2, { type: "input_json_delta", partial_json: args.slice(args.indexOf(B)) }),
    ev("content_block_stop", { index: 2 }),
    ev("message_delta", { delta: { stop_reason: "tool_use", stop_sequence: null }, usage: { output_tokens: 15 } }),
    ev("message_stop", {}),
  ]);
}

// Gemini: a thought, text cut between events, a function call with the address in its args.
function gemini(res, send, model, method) {
  const answer = (parts, finishReason) => ({ candidates: [{ content: { parts, role: "model" }, index: 0, ...(finishReason && { finishReason }) }],
    usageMetadata: { promptTokenCount: 25, candidatesTokenCount: 15, totalTokenCount: 40 }, modelVersion: model, responseId: "gS1" });
  const call = { functionCall: { name: "send_mail", args: { to: E, n: 1 } } };
  if (method !== "streamGenerateContent")
    return send(200, answer([{ text: `They are ${E}.`, thought: true }, { text: `Mail ${E} now` }, call], "STOP"));
  return stream(res, [
    [null, answer([{ text: `They are ${A}`, thought: true }])],
    [null, answer([{ text: `${B}.`, thought: true }, { text: `Mail ${A}` }])],
    [null, answer([{ text: `${B} now` }])],
    [null, answer([call], "STOP")],
  ]);
}

// OpenAI Responses: a reasoning item, a message and a function call, each streamed in deltas.
function responses(res, send, model, body) {
  const args = JSON.stringify({ to: E, n: 1 });
  const items = [
    { type: "reasoning", id: "rs_S1", summary: [{ type: "summary_text", text: `They are ${E}.` }] },
    { type: "message", id: "msg_S1", status: "completed", role: "assistant", content: [{ type: "output_text", text: `Mail ${E} now`, annotations: [], logprobs: [] }] },
    { type: "function_call", id: "fc_S1", call_id: "call_s1", name: "send_mail", arguments: args, status: "completed" },
  ];
  const response = (status, output) => ({ id: "resp_S1", object: "response", created_at: 1, status, model, output, error: null, incomplete_details: null,
    usage: status === "completed" ? { input_tokens: 25, input_tokens_details: { cached_tokens: 0 }, output_tokens: 15, output_tokens_details: { reasoning_tokens: 5 }, total_tokens: 40 } : null });
  if (!body.stream) return send(200, response("completed", items));
  let seq = 0;
  const ev = (type, data) => [type, { type, sequence_number: seq++, ...data }];
  const cut = (s) => [s.slice(0, s.indexOf(B)), s.slice(s.indexOf(B))];
  const [r, m, f] = items;
  const open = (i, item) => ev("response.output_item.added", { output_index: i, item });
  return stream(res, [
    ev("response.created", { response: response("in_progress", []) }),
    open(0, { ...r, summary: [] }),
    ev("response.reasoning_summary_part.added", { item_id: r.id, output_index: 0, summary_index: 0, part: { type: "summary_text", text: "" } }),
    ...cut(r.summary[0].text).map((d) => ev("response.reasoning_summary_text.delta", { item_id: r.id, output_index: 0, summary_index: 0, delta: d })),
    ev("response.reasoning_summary_text.done", { item_id: r.id, output_index: 0, summary_index: 0, text: r.summary[0].text }),
    ev("response.reasoning_summary_part.done", { item_id: r.id, output_index: 0, summary_index: 0, part: r.summary[0] }),
    ev("response.output_item.done", { output_index: 0, item: r }),
    open(1, { ...m, status: "in_progress", content: [] }),
    ev("response.content_part.added", { item_id: m.id, output_index: 1, content_index: 0, part: { type: "output_text", text: "", annotations: [], logprobs: [] } }),
    ...cut(m.content[0].text).map((d) => ev("response.output_text.delta", { item_id: m.id, output_index: 1, content_index: 0, delta: d, logprobs: [] })),
    ev("response.output_text.done", { item_id: m.id, output_index: 1, content_index: 0, text: m.content[0].text, logprobs: [] }),
    ev("response.content_part.done", { item_id: m.id, output_index: 1, content_index: 0, part: m.content[0] }),
    ev("response.output_item.done", { output_index: 1, item: m }),
    open(2, { ...f, arguments: "", status: "in_progress" }),
    ...cut(args).map((d) => ev("response.function_call_arguments.delta", { item_id: f.id, output_index: 2, delta: d })),
    ev("response.function_call_arguments.done", { item_id: f.id, output_index: 2, arguments: args }),
    ev("response.output_item.done", { output_index: 2, item: f }),
    ev("response.completed", { response: response("completed", items) }),
  ]);
}

export const SHAPES = { openai, anthropic, gemini, responses };
