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

// A failed exchange rejects with one of these (or the runtime's own error): the Rust side maps
// them to its FetchError without reading any message text.
const INVALID_URL = "URL";
const INVALID_HEADER = "header";
const TIMEOUT = "timeout";
const TOO_LARGE = "too large";

/**
 * fetch() without a Request object, its answer's headers due within `ms` (the fetch aborted
 * otherwise). Rejects with INVALID_URL or INVALID_HEADER before anything is sent.
 */
export function send(url, method, lines, body, ms) {
  return within(ms, (signal) => request(url, method, lines, body, signal));
}

/**
 * The whole exchange in one promise, for the callers that read the whole answer: the request
 * sent, its answer's body read up to `cap` bytes (`cap` < 0: only its first -`cap` bytes, the
 * rest released), all within `ms`. Resolves to [status, header lines, body bytes].
 */
export function exchange(url, method, lines, body, ms, cap) {
  return within(ms, async (signal) => {
    const answer = await request(url, method, lines, body, signal);
    const bytes = cap < 0 ? await readStart(answer, -cap) : await readAll(answer, cap);
    return [answer.status, linesOf(answer.headers), bytes];
  });
}

/** The first `n` bytes of `message`'s body (fewer if it is shorter); the rest is released. */
async function readStart(message, n) {
  if (message.body === null) return new Uint8Array(0);
  const reader = message.body.getReader();
  const start = new Uint8Array(n);
  let size = 0;
  while (size < n) {
    const { done, value } = await reader.read();
    if (done) break;
    const take = Math.min(value.length, n - size);
    start.set(value.subarray(0, take), size);
    size += take;
  }
  reader.cancel().catch(() => {});
  return start.subarray(0, size);
}

function request(url, method, lines, body, signal) {
  if (!URL.canParse(url)) return Promise.reject(INVALID_URL);
  let headers;
  try {
    headers = headersOf(lines);
  } catch {
    return Promise.reject(INVALID_HEADER);
  }
  // The runtime follows no redirect: it would send every header, credentials included, wherever
  // the Location points. A 3xx is the answer; core decides whether it is followed.
  return fetch(url, { method, headers, body, signal, redirect: "manual" });
}

/** `work(signal)`, unless `ms` pass first: then the signal aborts it and TIMEOUT rejects. */
async function within(ms, work) {
  const abort = new AbortController();
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => {
      abort.abort();
      reject(TIMEOUT);
    }, ms);
  });
  try {
    return await Promise.race([work(abort.signal), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The body of `message` (a Request or a Response), at most `cap` bytes, else TOO_LARGE. A
 * declared length (the caller checked it against the cap) frames the body: one arrayBuffer().
 * Otherwise it is read chunk by chunk and given up as soon as the cap is passed.
 */
export async function readAll(message, cap) {
  const declared = message.headers.get("content-length");
  const framed = declared !== null && /^\s*\d+\s*$/.test(declared);
  if (framed && Number(declared) > cap) {
    message.body?.cancel().catch(() => {});
    throw TOO_LARGE;
  }
  if (framed || message.body === null) {
    const whole = new Uint8Array(await message.arrayBuffer());
    if (whole.length > cap) throw TOO_LARGE;
    return whole;
  }
  const reader = message.body.getReader();
  const parts = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > cap) {
      reader.cancel().catch(() => {});
      throw TOO_LARGE;
    }
    parts.push(value);
  }
  const whole = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    whole.set(p, at);
    at += p.length;
  }
  return whole;
}

/**
 * One command to a Durable Object by name: its answer's text within `ms`, or an error with its
 * status (TIMEOUT when it did not answer in time).
 */
export function askObject(env, binding, name, body, ms) {
  return within(ms, async () => {
    const answer = await env[binding].getByName(name).fetch("https://do.internal/", { method: "POST", body });
    const text = await answer.text();
    if (answer.status !== 200) throw new Error(`${binding} answered ${answer.status}: ${text}`);
    return text;
  });
}

/** The client's Response: status, headers ("name\nvalue..." lines) and body (none or a stream). */
export function respond(status, lines, body) {
  return new Response(body, { status, headers: headersAppended(lines) });
}

/** The same with bytes: a view into wasm memory, copied before wasm runs again. */
export function respondBytes(status, lines, bytes) {
  return new Response(bytes.slice(), { status, headers: headersAppended(lines) });
}

/** One data point to an Analytics Engine dataset (workers-rs builds it one property at a time). */
export function writePoint(dataset, index, blobs, doubles) {
  dataset.writeDataPoint({ indexes: [index], blobs, doubles: Array.from(doubles) });
}

/** A reader of `body` (a ReadableStream of bytes). */
export function readerOf(body) {
  return body.getReader();
}

/** The next chunk of `reader`, or undefined at its end; TIMEOUT if none came within `ms`. */
export async function readChunk(reader, ms) {
  let timer;
  const late = new Promise((_, reject) => (timer = setTimeout(() => reject(TIMEOUT), ms)));
  try {
    const { done, value } = await Promise.race([reader.read(), late]);
    return done ? undefined : value;
  } finally {
    clearTimeout(timer);
  }
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

/**
 * Writes a copy of `bytes` (a view into wasm memory); settles when the reader took it, or, if it
 * took nothing within `ms`, aborts the body and rejects with TIMEOUT: a client that stops
 * reading holds nothing open.
 */
export async function writeChunk(writer, bytes, ms) {
  let timer;
  const late = new Promise((_, reject) => (timer = setTimeout(() => reject(TIMEOUT), ms)));
  try {
    return await Promise.race([writer.write(bytes.slice()), late]);
  } catch (e) {
    if (e === TIMEOUT) writer.abort(TIMEOUT).catch(() => {});
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * writeChunk and readChunk at once, under one timer: `bytes` to the client while the next chunk
 * of `reader` is read. Resolves to that chunk (undefined at the body's end), or to null when the
 * client is gone or took nothing within `ms` (its body is then aborted); rejects as readChunk.
 */
export async function relayChunk(writer, bytes, reader, ms) {
  let timer;
  const late = new Promise((_, reject) => (timer = setTimeout(() => reject(TIMEOUT), ms)));
  const next = reader.read();
  // Handled from the start: the read may fail while the write is still waiting.
  next.catch(() => {});
  try {
    try {
      await Promise.race([writer.write(bytes.slice()), late]);
    } catch (e) {
      if (e === TIMEOUT) writer.abort(TIMEOUT).catch(() => {});
      return null;
    }
    const { done, value } = await Promise.race([next, late]);
    return done ? undefined : value;
  } finally {
    clearTimeout(timer);
  }
}

/** Ends the body; a reader that is gone is no error here. */
export function closeWriter(writer) {
  writer.close().catch(() => {});
}
