/**
 * What an OpenAI chat stream (the official SDK's chunks) said: its text, usage, last finish
 * reason and tool calls (`{id, name, arguments}` assembled from their deltas, by index).
 */
export async function chatStream(stream) {
  let text = "";
  let usage = null;
  let finish = null;
  const calls = [];
  for await (const c of stream) {
    const choice = c.choices[0];
    text += choice?.delta?.content ?? "";
    for (const tc of choice?.delta?.tool_calls ?? []) {
      calls[tc.index] ??= { id: tc.id, name: "", arguments: "" };
      calls[tc.index].name += tc.function?.name ?? "";
      calls[tc.index].arguments += tc.function?.arguments ?? "";
    }
    finish = choice?.finish_reason ?? finish;
    if (c.usage) usage = c.usage;
  }
  return { text, usage, finish, calls };
}
