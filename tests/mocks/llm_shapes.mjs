// The `shapes` model of the LLM stand-in: an answer that puts an email address in every place a
// model can write text, in each provider's wire format, JSON and streamed. Streams cut the
// address between events (the guardrails must hold text back to find it). A request that says
// `MORE` gets the rarer places (chat: audio transcripts, legacy function calls, custom tool
// inputs, content parts, arguments that are not JSON or hold the address as a key, reasoning
// longer than what is held back; Responses: hosted tools; Anthropic: server tools' results); one
// that says `SECRET` gets a bearer token that runs on for 20 KB, a pause, then more text. Used
// by tests/e2e/guardrails.test.mjs.
export const SHAPES_EMAIL = "ana.lopez@example.com";
const [A, B] = ["ana.lo", "pez@example.com"]; // the address, cut in two
const E = SHAPES_EMAIL;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// `pause` in the events: wait that long before the next one.
async function stream(res, events) {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  for (const [name, data, pause] of events) {
    if (pause) {
      await sleep(pause);
      continue;
    }
    res.write(`${name ? `event: ${name}\n` : ""}data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`);
    await sleep(2);
  }
  res.end();
}

// What the request asks for (`MORE`, `SECRET`), anywhere in it.
const asks = (body, word) => JSON.stringify(body.messages ?? body.input ?? "").includes(word);

// The bearer token of `SECRET`, and how long the mock pauses after it.
export const SECRET_RUN = "x9Z-".repeat(5000);
export const SECRET_PAUSE_MS = 1500;
const cut = (s, n) => Array.from({ length: Math.ceil(s.length / n) }, (_, i) => s.slice(i * n, (i + 1) * n));

// OpenAI Chat Completions: text beside `refusal: null` and reasoning, a second choice refusing,
// a tool call's arguments in fragments, finishing chunks that carry text.
function openai(res, send, model, body) {
  if (asks(body, "MORE")) return openaiMore(res, send, model, body);
  if (asks(body, "SECRET")) return openaiSecret(res, model);
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

// Chat's rarer places, each choice one of them: reasoning longer than the held text then the
// answer; an audio transcript; a legacy function call whose arguments are not JSON; a custom
// tool's input and a call whose arguments hold the address as a key; content as parts.
export const MORE_REASONING = `Let me think about who to write to, one step at a time. `.repeat(6) + `It is ${E}.`;
function openaiMore(res, send, model, body) {
  const keyed = JSON.stringify({ [E]: { n: 1 } });
  const notJson = `{to: ${E}, n: 1}`;
  if (!body.stream) {
    return send(200, { id: "chatcmpl-M1", object: "chat.completion", created: 1757000000, model,
      choices: [
        { index: 0, finish_reason: "stop", logprobs: null, message: { role: "assistant", content: `Mail ${E}`, refusal: null, reasoning_content: MORE_REASONING,
          audio: { id: "audio_1", expires_at: 1757003600, data: "UklGRiQAAABXQVZF", transcript: `I will mail ${E}.` } } },
        { index: 1, finish_reason: "function_call", logprobs: null, message: { role: "assistant", content: null, function_call: { name: "send_mail", arguments: notJson } } },
        { index: 2, finish_reason: "tool_calls", logprobs: null, message: { role: "assistant", content: null, tool_calls: [
          { id: "ct_1", type: "custom", custom: { name: "mailer", input: `mail ${E}` } },
          { id: "call_2", type: "function", function: { name: "tally", arguments: keyed } }] } },
      ],
      usage: { prompt_tokens: 25, completion_tokens: 15, total_tokens: 40 } });
  }
  const chunk = (choices) => [null, { id: "chatcmpl-M1", object: "chat.completion.chunk", created: 1, model, choices }];
  const c = (index, delta, finish_reason = null) => ({ index, delta, logprobs: null, finish_reason });
  const events = [chunk([c(0, { role: "assistant", content: "" })])];
  for (const piece of cut(MORE_REASONING, 9)) events.push(chunk([c(0, { reasoning_content: piece })]));
  for (const piece of cut(`Mail ${E} now, as asked. `.repeat(12), 7)) events.push(chunk([c(0, { content: piece })]));
  events.push(chunk([c(0, { audio: { id: "audio_1", transcript: `I will mail ${A}`, data: "UklGRiQA" } })]));
  events.push(chunk([c(0, { audio: { transcript: `${B}.`, data: "AABXQVZF" } })]));
  events.push(chunk([c(1, { role: "assistant", function_call: { name: "send_mail", arguments: "" } })]));
  for (const piece of cut(notJson, 5)) events.push(chunk([c(1, { function_call: { arguments: piece } })]));
  events.push(chunk([c(2, { role: "assistant", tool_calls: [{ index: 0, id: "ct_1", type: "custom", custom: { name: "mailer", input: `mail ${A}` } }] })]));
  events.push(chunk([c(2, { tool_calls: [{ index: 0, custom: { input: B } }] })]));
  events.push(chunk([c(2, { tool_calls: [{ index: 1, id: "call_2", type: "function", function: { name: "tally", arguments: "" } }] })]));
  for (const piece of cut(keyed, 4)) events.push(chunk([c(2, { tool_calls: [{ index: 1, function: { arguments: piece } }] })]));
  events.push(chunk([c(3, { role: "assistant", content: [{ type: "text", text: `Parts: ${A}` }] })]));
  events.push(chunk([c(3, { content: [{ type: "text", text: `${B}.` }] })]));
  events.push(chunk([c(0, {}, "stop"), c(1, {}, "function_call"), c(2, {}, "tool_calls"), c(3, {}, "stop")]));
  events.push([null, { id: "chatcmpl-M1", object: "chat.completion.chunk", created: 1, model, choices: [], usage: { prompt_tokens: 25, completion_tokens: 15, total_tokens: 40 } }]);
  events.push([null, "[DONE]"]);
  return stream(res, events);
}

// A bearer token that does not end for 20 KB, in 64-byte chunks; a pause; then the rest.
function openaiSecret(res, model) {
  const chunk = (content) => [null, { id: "chatcmpl-T1", object: "chat.completion.chunk", created: 1, model,
    choices: [{ index: 0, delta: { content }, logprobs: null, finish_reason: null }] }];
  return stream(res, [
    chunk("Use Bearer "),
    ...cut(SECRET_RUN, 64).map(chunk),
    [null, null, SECRET_PAUSE_MS],
    chunk(" to call it, then tell the user it worked."),
    [null, { id: "chatcmpl-T1", object: "chat.completion.chunk", created: 1, model, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }] }],
    [null, "[DONE]"],
  ]);
}

// Anthropic Messages: a thinking block, a text block, a tool_use block whose input streams.
function anthropic(res, send, model, body) {
  if (asks(body, "MORE")) return anthropicMore(res, send, model, body);
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

// Anthropic's server tools: a fetched page, code execution's output, search results' titles;
// and a tool's input with the address as a key.
function anthropicMore(res, send, model, body) {
  const content = [
    { type: "server_tool_use", id: "srvtoolu_1", name: "web_fetch", input: { url: "https://x.example/" } },
    { type: "web_fetch_tool_result", tool_use_id: "srvtoolu_1", content: { type: "web_fetch_result", url: "https://x.example/", retrieved_at: "2026-11-01T00:00:00Z",
      content: { type: "document", source: { type: "text", media_type: "text/plain", data: `Contact: ${E}` }, title: `${E}'s page` } } },
    { type: "code_execution_tool_result", tool_use_id: "srvtoolu_2", content: { type: "code_execution_result", stdout: `sent to ${E}`, stderr: `warning: ${E}`, return_code: 0, content: [] } },
    { type: "bash_code_execution_tool_result", tool_use_id: "srvtoolu_3", content: { type: "bash_code_execution_result", stdout: `sent to ${E}`, stderr: "", return_code: 0, content: [] } },
    { type: "web_search_tool_result", tool_use_id: "srvtoolu_4", content: [{ type: "web_search_result", title: `${E} - profile`, url: "https://x.example/", encrypted_content: "enc", page_age: null }] },
    { type: "tool_use", id: "toolu_m1", name: "tally", input: { [E]: { n: 1 } } },
  ];
  const message = { id: "msg_M1", type: "message", role: "assistant", model, stop_reason: "tool_use", stop_sequence: null, usage: { input_tokens: 25, output_tokens: 15 } };
  if (!body.stream) return send(200, { ...message, content });
  const ev = (type, data) => [type, { type, ...data }];
  const keyed = JSON.stringify({ [E]: { n: 1 } });
  const events = [ev("message_start", { message: { ...message, content: [], stop_reason: null, usage: { input_tokens: 25, output_tokens: 1 } } })];
  content.forEach((block, index) => {
    if (block.type === "tool_use") {
      events.push(ev("content_block_start", { index, content_block: { ...block, input: {} } }));
      for (const piece of cut(keyed, 4)) events.push(ev("content_block_delta", { index, delta: { type: "input_json_delta", partial_json: piece } }));
    } else events.push(ev("content_block_start", { index, content_block: block }));
    events.push(ev("content_block_stop", { index }));
  });
  events.push(ev("message_delta", { delta: { stop_reason: "tool_use", stop_sequence: null }, usage: { output_tokens: 15 } }));
  events.push(ev("message_stop", {}));
  return stream(res, events);
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

// OpenAI Responses' hosted tools: an MCP call and an approval request, the code interpreter, a
// local shell, file and web search, an annotated message, audio; their text streamed in deltas.
function responsesMore(res, send, model, body) {
  const mcpArgs = JSON.stringify({ to: E });
  const code = `send_mail("${E}")`;
  const items = [
    { type: "mcp_call", id: "mcp_M1", server_label: "mail", name: "send", arguments: mcpArgs, output: `sent to ${E}`, error: null },
    { type: "mcp_approval_request", id: "mcpr_M1", server_label: "mail", name: "send", arguments: mcpArgs },
    { type: "code_interpreter_call", id: "ci_M1", status: "completed", container_id: "cntr_1", code, outputs: [{ type: "logs", logs: `sent to ${E}` }] },
    { type: "local_shell_call", id: "ls_M1", call_id: "call_ls", status: "completed", action: { type: "exec", command: ["mail", E], env: {} } },
    { type: "file_search_call", id: "fs_M1", status: "completed", queries: [`mail of ${E}`], results: [{ file_id: "file_1", filename: "a.txt", score: 0.5, text: `Contact: ${E}`, attributes: {} }] },
    { type: "web_search_call", id: "ws_M1", status: "completed", action: { type: "search", query: `who is ${E}` } },
    { type: "message", id: "msg_M1", status: "completed", role: "assistant", content: [{ type: "output_text", text: "See the page.", logprobs: [],
      annotations: [{ type: "url_citation", title: `${E}'s page`, url: "https://x.example/", start_index: 4, end_index: 12 }] }] },
  ];
  const response = (status, output) => ({ id: "resp_M1", object: "response", created_at: 1, status, model, output, error: null, incomplete_details: null,
    usage: status === "completed" ? { input_tokens: 25, input_tokens_details: { cached_tokens: 0 }, output_tokens: 15, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 40 } : null });
  if (!body.stream) return send(200, response("completed", items));
  let seq = 0;
  const ev = (type, data) => [type, { type, sequence_number: seq++, ...data }];
  const halves = (s) => [s.slice(0, s.indexOf(B)), s.slice(s.indexOf(B))];
  const [mcp, approval, ci, shell, files, web, msg] = items;
  const open = (i, item) => ev("response.output_item.added", { output_index: i, item });
  const done = (i, item) => ev("response.output_item.done", { output_index: i, item });
  return stream(res, [
    ev("response.created", { response: response("in_progress", []) }),
    open(0, { ...mcp, arguments: "", output: null }),
    ...halves(mcpArgs).map((delta) => ev("response.mcp_call_arguments.delta", { item_id: mcp.id, output_index: 0, delta })),
    ev("response.mcp_call_arguments.done", { item_id: mcp.id, output_index: 0, arguments: mcpArgs }),
    done(0, mcp),
    open(1, approval), done(1, approval),
    open(2, { ...ci, code: "", outputs: null, status: "in_progress" }),
    ...halves(code).map((delta) => ev("response.code_interpreter_call_code.delta", { item_id: ci.id, output_index: 2, delta })),
    ev("response.code_interpreter_call_code.done", { item_id: ci.id, output_index: 2, code }),
    done(2, ci),
    open(3, shell), done(3, shell), open(4, files), done(4, files), open(5, web), done(5, web),
    open(6, { ...msg, status: "in_progress", content: [] }),
    ev("response.output_text.delta", { item_id: msg.id, output_index: 6, content_index: 0, delta: "See the page.", logprobs: [] }),
    ev("response.output_text.annotation.added", { item_id: msg.id, output_index: 6, content_index: 0, annotation_index: 0, annotation: msg.content[0].annotations[0] }),
    ev("response.output_text.done", { item_id: msg.id, output_index: 6, content_index: 0, text: "See the page.", logprobs: [] }),
    done(6, msg),
    ...halves(`I will mail ${E}.`).map((delta) => ev("response.audio.transcript.delta", { delta })),
    ev("response.audio.delta", { delta: "UklGRiQAAABXQVZF" }),
    ev("response.audio.transcript.done", {}),
    ev("response.audio.done", {}),
    ev("response.completed", { response: response("completed", items) }),
  ]);
}

// OpenAI Responses: a reasoning item, a message and a function call, each streamed in deltas.
function responses(res, send, model, body) {
  if (asks(body, "MORE")) return responsesMore(res, send, model, body);
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
