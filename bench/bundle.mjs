// What the wasm binary is made of: the size of each function body, from the build that keeps the
// names section (target/profile/, the same code as the shipped build), summed by crate (and by
// module for the gateway's own code), beside the data section. A reader of the WebAssembly binary
// format, enough for its section headers, code bodies and function names.
import { readFileSync } from "node:fs";

function reader(buf) {
  let at = 0;
  const leb = () => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const byte = buf[at++];
      result += (byte & 0x7f) * 2 ** shift;
      if (!(byte & 0x80)) return result;
      shift += 7;
    }
  };
  const name = () => {
    const n = leb();
    const s = buf.toString("utf8", at, at + n);
    at += n;
    return s;
  };
  return { leb, name, get at() { return at; }, set at(v) { at = v; } };
}

/** Bytes of code per function index, names per function index, and the data section's size. */
function parse(buf) {
  const r = reader(buf);
  r.at = 8; // magic and version
  let imported = 0;
  const bodies = [];
  const names = new Map();
  let data = 0;
  while (r.at < buf.length) {
    const id = buf[r.at++];
    const size = r.leb();
    const end = r.at + size;
    if (id === 2) {
      // Imports: only imported functions shift the indices of the module's own.
      for (let n = r.leb(); n > 0; n--) {
        r.name();
        r.name();
        const kind = buf[r.at++];
        if (kind === 0) { r.leb(); imported++; }
        else if (kind === 1) { r.at++; const flags = r.leb(); r.leb(); if (flags & 1) r.leb(); }
        else if (kind === 2) { const flags = r.leb(); r.leb(); if (flags & 1) r.leb(); }
        else if (kind === 3) { r.at += 2; }
        else if (kind === 4) { r.at++; r.leb(); }
      }
    } else if (id === 10) {
      for (let n = r.leb(); n > 0; n--) {
        const len = r.leb();
        bodies.push(len);
        r.at += len;
      }
    } else if (id === 11) {
      data = size;
    } else if (id === 0 && r.name() === "name") {
      while (r.at < end) {
        const sub = buf[r.at++];
        const subEnd = r.leb() + r.at;
        if (sub === 1) for (let n = r.leb(); n > 0; n--) names.set(r.leb(), r.name());
        r.at = subEnd;
      }
    }
    r.at = end;
  }
  return { imported, bodies, names, data };
}

/** The crate of a function's name, or the module for the gateway's own (`edge_gateway::core::llm`). */
function owner(fn) {
  const own = /edge_gateway::(\w+)::(\w+)/.exec(fn);
  if (own) return `edge_gateway::${own[1]}::${own[2]}`;
  const crate = /([A-Za-z_][A-Za-z0-9_]*)(?:\[[0-9a-f]+\])?::/.exec(fn.replace(/^<(?:&(?:mut )?)?/, ""));
  return crate ? crate[1] : fn.startsWith("__") ? "runtime glue (__*)" : "(unnamed)";
}

/**
 * The biggest parts of `wasmPath`: [{part, bytes}] sorted, with the total code and data sizes.
 * `only`: a set of function indices (as the runtime numbers them) to count, the rest left out.
 */
export function bundleParts(wasmPath, top = 12, only) {
  const { imported, bodies, names, data } = parse(readFileSync(wasmPath));
  const parts = new Map();
  let code = 0;
  bodies.forEach((len, i) => {
    if (only && !only.has(imported + i)) return;
    const part = owner(names.get(imported + i) ?? "");
    parts.set(part, (parts.get(part) ?? 0) + len);
    code += len;
  });
  const sorted = [...parts].map(([part, bytes]) => ({ part, bytes })).sort((a, b) => b.bytes - a.bytes);
  return { code, data, parts: sorted.slice(0, top) };
}
