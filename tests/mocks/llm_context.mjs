// Models with a context window, as the real ones check it: the prompt (counted as their
// tokenizers roughly do, four characters a token) plus the output maximum asked for must fit,
// else the provider's own context-length refusal, in its own words and shape.
//   ctx-{N}k       a window of N thousand tokens (ctx-1k, ctx-8k, ctx-200k): answers what fits
//   ctx-refuse-*   refuses every request as too long (a model whose catalog window is wrong)
// Anything that fits falls through to llm.mjs's ordinary answer (`answerContext` returns false).

const text = (content) =>
  typeof content === "string" ? content : Array.isArray(content) ? content.map((p) => p.text ?? "").join("") : "";

/** The prompt's tokens, about four characters each. */
function promptTokens(body) {
  const system = typeof body.system === "string" ? body.system : text(body.system);
  const chars = (body.messages ?? []).reduce((n, m) => n + text(m.content).length, system.length);
  return Math.ceil(chars / 4);
}

/** Answers a `ctx-*` model's refusal and returns true, or returns false to let it answer. */
export function answerContext(model, body, { openai, send }) {
  if (!model.startsWith("ctx-")) return false;
  const sized = /^ctx-(\d+)k$/.exec(model);
  const prompt = promptTokens(body);
  // A refuser's real window is always just short of the prompt.
  const window = sized ? Number(sized[1]) * 1000 : Math.max(prompt - 1, 0);
  const out = body.max_completion_tokens ?? body.max_tokens ?? 0;
  if (sized && prompt + out <= window) return false;
  if (openai)
    send(400, { error: {
      message: `This model's maximum context length is ${window} tokens. However, you requested ${prompt + out} tokens (${prompt} in the messages, ${out} in the completion). Please reduce the length of the messages or completion.`,
      type: "invalid_request_error", param: "messages", code: "context_length_exceeded" } });
  else
    send(400, { type: "error", error: { type: "invalid_request_error", message: prompt > window
      ? `prompt is too long: ${prompt} tokens > ${window} maximum`
      : `input length and \`max_tokens\` exceed context limit: ${prompt} + ${out} > ${window}, decrease input length or \`max_tokens\` and try again` } });
  return true;
}
