// Runtime calls made in one crossing from wasm where workers-rs makes one per header, per
// property and per object (a Request built only to be fetched, a Response rebuilt to be read).
// Header lists travel as one string: name and value on alternate lines (`\n` cannot occur in a
// valid header; the Rust side refuses it before it gets here).

/** A Headers from "name\nvalue\nname\nvalue..." ("" is none); a repeated name: the last wins. */
export function headersOf(lines) {
  const h = new Headers();
  if (lines === "") return h;
  const parts = lines.split("\n");
  for (let i = 0; i + 1 < parts.length; i += 2) h.set(parts[i], parts[i + 1]);
  return h;
}

/** The same, a repeated name kept (a response's `Vary`, set once per reason). */
function headersAppended(lines) {
  const h = new Headers();
  if (lines === "") return h;
  const parts = lines.split("\n");
  for (let i = 0; i + 1 < parts.length; i += 2) h.append(parts[i], parts[i + 1]);
  return h;
}

/** Every header of `h`, as the lines `headersOf` reads (names are lowercase). */
export function linesOf(h) {
  const out = [];
  for (const [k, v] of h) out.push(k, v);
  return out.join("\n");
}

/** fetch() without a Request object; throws "URL" or a TypeError (a header) before sending. */
export function send(url, method, lines, body, signal) {
  if (!URL.canParse(url)) throw "URL";
  return fetch(url, { method, headers: headersOf(lines), body, signal });
}

/** One command to a Durable Object by name: its answer's text, or an error with its status. */
export async function askObject(env, binding, name, body) {
  const answer = await env[binding].getByName(name).fetch("https://do.internal/", { method: "POST", body });
  const text = await answer.text();
  if (answer.status !== 200) throw new Error(`${binding} answered ${answer.status}: ${text}`);
  return text;
}

/** The client's Response: status, headers ("name\nvalue..." lines) and body (none or a stream). */
export function respond(status, lines, body) {
  return new Response(body, { status, headers: headersAppended(lines) });
}

/** The same with bytes: a view into wasm memory, copied before wasm runs again. */
export function respondBytes(status, lines, bytes) {
  return new Response(bytes.slice(), { status, headers: headersAppended(lines) });
}

/** A reader of `body` (a ReadableStream of bytes). */
export function readerOf(body) {
  return body.getReader();
}

/** The next chunk of `reader`, or undefined at its end. */
export async function readChunk(reader) {
  const { done, value } = await reader.read();
  return done ? undefined : value;
}

/** Stops reading a body before its end; the runtime drops the rest. */
export function cancelReader(reader) {
  reader.cancel().catch(() => {});
}

/**
 * A byte pipe whose readable end is a response's body and whose writer wasm pushes chunks into
 * (one call a chunk; pulling each chunk from wasm costs several). The runtime's own identity
 * stream where it has one.
 */
export function pipe() {
  const Pipe = globalThis.IdentityTransformStream ?? TransformStream;
  const { readable, writable } = new Pipe();
  return [readable, writable.getWriter()];
}

/** Writes a copy of `bytes` (a view into wasm memory); settles when the reader took it. */
export function writeChunk(writer, bytes) {
  return writer.write(bytes.slice());
}

/** Ends the body; a reader that is gone is no error here. */
export function closeWriter(writer) {
  writer.close().catch(() => {});
}
