// The README's examples as tests: its marked shell and console blocks are extracted, run in
// order as a newcomer would type them after `make dev` (one terminal's environment carried from
// block to block), and a console block's printed outputs compared with what the commands print.
//
// Marker grammar: an HTML comment on the line right before a fence (invisible when rendered).
// Every ```sh, ```bash, ```shell and ```console block must carry one; a block in another language
// (json, text, js) is shown, not run, unless it is marked `output`.
//   <!-- example: run -->            run the ```sh / ```console block; it must exit 0, and curl
//                                    (shims/curl) fails on an HTTP status >= 400 (`run allow-4xx`:
//                                    curl prints the error answer and succeeds, for an example
//                                    showing one)
//   <!-- example: background NAME --> start the ```sh block, leave it running, stop it at the end
//   <!-- example: output NAME -->     lines NAME's output must show, in order, after the lines an
//                                    earlier `output NAME` matched (`...`: any lines between)
//   <!-- example: skip REASON -->     a block the test cannot run (`make dev` itself, a deploy)
// How blocks run:
// - As in one terminal: each block's bash starts in the directory and with the variables the block
//   before left (every variable is exported, `set -a`), under `umask 002` (a common default: an
//   example writing a private file must make it private itself) and, for sh blocks,
//   `set -euo pipefail`. The terminal's directory holds `.dev.vars` and `target/debug/gatewayctl`
//   as the repository's root does after `make dev` and `make listen`.
// - `localhost:8787`, `127.0.0.1:8787` and `:9999` anywhere in a block are rewritten to this run's
//   gateway and listener ports: the README shows the default ports.
// - In a ```console block, `$ ` lines are commands (a trailing `\` continues one on the next
//   line) and the lines after one, up to the next `$ `, what it must print, compared after
//   `normalize` (ids -> <id>, ISO and Unix times -> <t>, HH:MM:SS -> <clock>, runs of spaces ->
//   one, a table's *_MS and *_AT cells -> <n>); a command with no lines after it is run but its
//   output not compared. Each command runs on its own and the first that fails ends the block
//   (the script then exits 0 after saving the terminal's state, so the failure is reported as
//   that command's line and output, not as the shell's).
// - A command starting `read` gets on stdin the last `sk_` key printed in this terminal: what the
//   reader pastes there after minting one.
// - `make listen` runs the repository's own target (shims/make); `make dev` and `make test` are
//   the test's harness, never run from a block.
// `<!-- figure NAME -->...<!-- /figure -->` wraps a figure the test computes (see `figures`).
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, readdirSync, writeFileSync, readFileSync, existsSync, rmSync, symlinkSync, openSync, closeSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { tmpdir } from "node:os";
import path from "node:path";

export const SHIMS = path.join(import.meta.dirname, "shims");
const NEEDS_MARKER = new Set(["sh", "bash", "shell", "console"]);
const MARKER = /^\s*<!--\s*example:\s*(\S+)(?:\s+(.*?))?\s*-->\s*$/;
/** A fence, also indented (a block inside a list item): its indent, its characters, its language. */
const FENCE = /^( *)(`{3,}|~{3,})\s*([\w-]*)/;
/** The dev key of kv-seed: printed on purpose, never a minted key to normalize. */
const DEV_KEY = "sk_dev_demo_local_only_0000000000";
const OUTPUT_WAIT_MS = 20_000;
/** A foreground block still running after this is stopped and fails (an example that hangs). */
const BLOCK_TIMEOUT_MS = 60_000;
/** Where a README editor finds the markers' grammar (the comment at the top of this file). */
const GRAMMAR = "the marker grammar is at the top of tests/readme/examples.mjs";

/** A README failure: names the file and line, so the message says where to look. */
export class ExampleError extends Error {
  constructor(file, line, what, detail = "") {
    super(`${file}:${line}: ${what}${detail ? `\n${detail}` : ""}`);
    this.line = line;
  }
}

/**
 * The fenced blocks of a markdown text with their markers, and its figures. A block:
 * `{line, lang, kind, arg, body: [{text, line}]}`, `kind` null for a block without a marker
 * (an error when it is sh or console).
 */
export function extract(markdown) {
  const lines = markdown.split("\n");
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]);
    if (!open) continue;
    const [, indent, fence, lang] = open;
    const start = i;
    const body = [];
    const close = new RegExp(`^ *${fence[0]}{${fence.length},}\\s*$`);
    for (i++; i < lines.length && !close.test(lines[i]); i++) {
      body.push({ text: lines[i].startsWith(indent) ? lines[i].slice(indent.length) : lines[i].trimStart(), line: i + 1 });
    }
    const marker = start > 0 ? MARKER.exec(lines[start - 1]) : null;
    blocks.push({ line: start + 1, lang: lang.toLowerCase(), kind: marker?.[1] ?? null, arg: marker?.[2] ?? "", body });
  }
  const figures = [];
  for (const m of markdown.matchAll(/<!--\s*figure\s+([\w-]+)\s*-->([\s\S]*?)<!--\s*\/figure\s*-->/g)) {
    figures.push({ name: m[1], text: m[2], line: markdown.slice(0, m.index).split("\n").length });
  }
  return { blocks, figures };
}

/** What is wrong with a block's marker, or null: checked for every block before any runs. */
export function markerProblem(block) {
  const what = `a \`\`\`${block.lang} block`;
  if (block.kind === null) {
    return NEEDS_MARKER.has(block.lang) ? `${what} without an \`<!-- example: run|background|output|skip -->\` marker on the line before it (${GRAMMAR})` : null;
  }
  switch (block.kind) {
    case "run":
      if (!["sh", "bash", "console"].includes(block.lang)) return `\`run\` marks ${what}; it runs sh and console blocks`;
      if (block.arg && block.arg !== "allow-4xx") return `\`run ${block.arg}\`: the only option is allow-4xx`;
      return null;
    case "background":
      if (!["sh", "bash"].includes(block.lang)) return `\`background\` marks ${what}; it runs sh blocks`;
      return /^[\w-]+$/.test(block.arg) ? null : "`background` needs a NAME";
    case "output":
      return /^[\w-]+$/.test(block.arg) ? null : "`output` needs the NAME of a background block";
    case "skip":
      return block.arg ? null : "`skip` needs a REASON";
    default:
      return `unknown marker \`${block.kind}\` (run, background, output or skip)`;
  }
}

/**
 * Normalizes one line of printed output, on both sides of a comparison: ids, times and clocks
 * vary by run; runs of spaces are table padding. Everything else compares exactly.
 */
export function normalize(line) {
  return line
    .replace(/\b(evt|req|key|dlv)_[0-9a-f]{8,}/g, "$1_<id>")
    .replace(/\bsk_[\w-]{30,}/g, (k) => (k === DEV_KEY ? k : "sk_<id>"))
    .replace(/\bsk_[\w-]{4}…/g, "sk_<id>…") // a key's hint: its first characters
    .replace(/\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})/g, "<t>")
    .replace(/\b1[6-9]\d{8}(?:\d{3})?(?:\.\d{1,3})?\b/g, "<t>")
    .replace(/\b\d{2}:\d{2}:\d{2}\b/g, "<clock>")
    .replace(/ {2,}/g, " ")
    .replace(/\s+$/, "");
}

/**
 * A table's cells under a header ending `_MS` or `_AT` (durations, times) become `<n>`. Cells are
 * cut at the header's column starts, as the CLI pads them (a cell may be empty).
 */
function normalizeTable(lines) {
  const header = lines[0];
  if (!header || !/^[A-Z][A-Z0-9_]*( {2,}[A-Z][A-Z0-9_]*)+\s*$/.test(header)) return lines;
  const starts = [...header.matchAll(/[A-Z][A-Z0-9_]*/g)].map((m) => [m.index, /_(MS|AT)$/.test(m[0])]);
  if (!starts.some(([, varying]) => varying)) return lines;
  return [header, ...lines.slice(1).map((row) =>
    starts.map(([at, varying], i) => {
      const cell = row.slice(at, i + 1 < starts.length ? starts[i + 1][0] : undefined).trim();
      return varying && cell ? "<n>" : cell;
    }).join("  "))];
}

/** Lines as compared: tables' varying columns, then each line normalized, trailing blanks dropped. */
export function comparable(lines) {
  const out = normalizeTable(lines).map(normalize);
  while (out.length && out[out.length - 1] === "") out.pop();
  return out;
}

/** A line diff (longest common subsequence): ` ` kept, `-` the README's, `+` printed. */
export function diff(expected, actual) {
  const n = expected.length, m = actual.length;
  const L = Array.from({ length: n + 1 }, () => new Array(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) {
    L[i][j] = expected[i] === actual[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  }
  const out = ["--- README (normalized)", "+++ printed (normalized)"];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && expected[i] === actual[j]) (out.push(`  ${expected[i]}`), i++, j++);
    else if (i < n && (j >= m || L[i + 1][j] >= L[i][j + 1])) out.push(`- ${expected[i++]}`);
    else out.push(`+ ${actual[j++]}`);
  }
  return out.join("\n");
}

/** A console block's commands: `$ cmd` (a trailing `\` continues it), then its expected lines. */
export function commands(block, file = "README.md") {
  const cmds = [];
  let cur = null, continued = false;
  for (const { text, line } of block.body) {
    if (continued) {
      cur.text += "\n" + text.replace(/^> /, "");
      continued = /\\$/.test(text);
    } else if (text.startsWith("$ ") || text === "$") {
      cur = { text: text.slice(2), line, expected: [] };
      cmds.push(cur);
      continued = /\\$/.test(text);
    } else if (cur) {
      cur.expected.push(text);
    } else {
      throw new ExampleError(file, line, "a console block's first line must be a `$ ` command");
    }
  }
  return cmds;
}

/** The figures the README quotes, measured on this build through the running gateway. */
export async function figures(gatewayUrl, consoleDir) {
  const gz = async (p) => gzipSync(Buffer.from(await (await fetch(new URL(p, gatewayUrl))).arrayBuffer())).length;
  const files = readdirSync(consoleDir);
  let consoleBytes = 0;
  for (const f of files) consoleBytes += await gz(`/console/${f}`);
  const market = await fetch(new URL("/v1/marketplace", gatewayUrl), { headers: { authorization: `Bearer ${DEV_KEY}` } });
  const list = await market.json();
  return {
    "console-gzip-kb": Math.round(consoleBytes / 1024),
    "widget-gzip-kb": Math.round((await gz("/widget.js")) / 1024),
    "template-count": (list.data ?? list).length,
  };
}

/** Checks each figure's number (the first in its text) against the measured one. */
export function checkFigures(file, found, measured) {
  const problems = [];
  for (const f of found) {
    if (!(f.name in measured)) {
      problems.push(`${file}:${f.line}: figure \`${f.name}\` is not one the test measures (${Object.keys(measured).join(", ")})`);
      continue;
    }
    const n = Number(/\d+(?:\.\d+)?/.exec(f.text)?.[0]);
    if (n !== measured[f.name]) problems.push(`${file}:${f.line}: figure \`${f.name}\` says "${f.text}", the build measures ${measured[f.name]}`);
  }
  if (problems.length) throw new Error(problems.join("\n"));
}

/**
 * One newcomer's terminal: a working directory holding `.dev.vars` with this run's secrets (as
 * the repository's has after `make dev`) and `target/debug/gatewayctl` (as after `make listen`),
 * its own HOME (gatewayctl's config would land there), PATH with the shims (curl, make), and the
 * environment carried from block to block.
 */
export class Session {
  constructor({ file = "README.md", root, gatewayUrl, listenPort, adminToken, masterKey }) {
    const gatewayctl = path.join(root, "target", "debug", "gatewayctl");
    if (!existsSync(gatewayctl)) throw new Error(`${gatewayctl} is missing: run \`cargo build --bin gatewayctl\` first (the README's examples use it)`);
    Object.assign(this, { file, root, listenPort });
    this.gateway = new URL(gatewayUrl);
    this.dir = mkdtempSync(path.join(tmpdir(), "readme-"));
    this.cwd = path.join(this.dir, "repo");
    this.home = path.join(this.dir, "home");
    this.state = path.join(this.dir, "state.sh");
    this.transcript = path.join(this.dir, "transcript");
    const debug = path.join(this.cwd, "target", "debug");
    for (const d of [debug, this.home]) mkdirSync(d, { recursive: true, mode: 0o700 });
    writeFileSync(path.join(this.cwd, ".dev.vars"), `MASTER_KEY=${masterKey}\nADMIN_TOKEN=${adminToken}\n`);
    // Not on PATH: the README puts it there, as a reader must.
    symlinkSync(gatewayctl, path.join(debug, "gatewayctl"));
    writeFileSync(this.transcript, "");
    const system = (process.env.PATH ?? "/usr/bin:/bin").split(":").filter((p) => p !== root && !p.startsWith(root + "/") && !p.startsWith(SHIMS));
    const which = (name) => system.map((d) => path.join(d, name)).find((p) => existsSync(p)) ?? `/usr/bin/${name}`;
    // A clean environment: nothing of the test process's (no GATEWAY_* of a developer's shell).
    this.env = {
      PATH: [SHIMS, ...system].join(":"),
      HOME: this.home,
      LANG: "C.UTF-8",
      TERM: "dumb",
      TMPDIR: tmpdir(),
      GATEWAY_URL: this.gateway.origin,
      PORT: this.gateway.port,
      LISTEN_PORT: String(listenPort),
      README_ROOT: root,
      README_REAL_HOME: process.env.HOME ?? "/root",
      README_CURL: which("curl"),
      README_MAKE: which("make"),
      // Where the reader's Rust toolchain lives when it is not under HOME (make listen builds).
      ...Object.fromEntries(["CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN"].filter((k) => process.env[k]).map((k) => [k, process.env[k]])),
    };
    writeFileSync(this.state, `declare -x PWD=${shellQuote(this.cwd)}\n`);
    this.background = new Map();
    this.counter = 0;
  }

  /** The README's placeholders pointed at this run: the gateway's port and the listener's. */
  localize(text) {
    return text
      .replaceAll("localhost:8787", this.gateway.host)
      .replaceAll("127.0.0.1:8787", this.gateway.host)
      .replaceAll("localhost:9999", `127.0.0.1:${this.listenPort}`)
      .replaceAll("127.0.0.1:9999", `127.0.0.1:${this.listenPort}`);
  }

  /** Runs one block as its marker says; throws an ExampleError naming the line on a failure. */
  async run(block) {
    const problem = markerProblem(block);
    if (problem) throw new ExampleError(this.file, block.line, problem);
    if (block.kind === null || block.kind === "skip") return;
    if (block.kind === "output") return this.expectOutput(block);
    if (block.kind === "background") return this.startBackground(block);
    if (block.lang === "console") return this.runConsole(block);
    return this.runScript(block);
  }

  /** The prologue every block's bash starts with: the terminal's environment and directory. */
  prologue(strict) {
    return [
      "set -a", // every variable assigned is exported, so the next block sees it as a terminal would
      `. ${shellQuote(this.state)}`,
      'cd "$PWD"',
      "umask 002",
      strict ? "set -euo pipefail" : "set -uo pipefail",
    ].join("\n");
  }

  saveState() {
    return `export -p > ${shellQuote(this.state)}.new && mv ${shellQuote(this.state)}.new ${shellQuote(this.state)}`;
  }

  envFor(block) {
    return block.arg === "allow-4xx" ? { ...this.env, README_ALLOW_4XX: "1" } : this.env;
  }

  async runScript(block) {
    const text = this.localize(block.body.map((l) => l.text).join("\n"));
    const script = `${this.prologue(true)}\n${text}\n${this.saveState()}\n`;
    const r = await bash(script, this.envFor(block));
    writeFileSync(this.transcript, r.output, { flag: "a" });
    if (r.code !== 0) {
      throw new ExampleError(this.file, block.line, `the block ${exited(r.code)}${hint(r.code)}`, indent(r.output));
    }
  }

  async runConsole(block) {
    const cmds = commands(block, this.file).map((c) => ({ ...c, shown: c.text, text: this.localize(c.text), expected: c.expected.map((l) => this.localize(l)) }));
    const dir = path.join(this.dir, `block-${++this.counter}`);
    mkdirSync(dir);
    const t = shellQuote(this.transcript);
    const parts = [this.prologue(false)];
    cmds.forEach((c, i) => {
      const f = (ext) => shellQuote(path.join(dir, `${String(i).padStart(3, "0")}.${ext}`));
      let stdin = "/dev/null";
      if (/^read\s/.test(c.text)) {
        // `read` is where the README has the reader paste the key minted above: the last one printed.
        parts.push(`grep -hoE 'sk_[A-Za-z0-9_-]{30,}' ${t} | grep -vx '${DEV_KEY}' | tail -1 > ${f("in")} || true`);
        stdin = f("in");
      }
      // `:;` keeps a command that is only a `# comment` a valid group.
      parts.push(`{ :; ${c.text}\n} < ${stdin} > ${f("out")} 2>&1; echo $? > ${f("rc")}; cat ${f("out")} >> ${t}`);
      parts.push(`[ "$(cat ${f("rc")})" = 0 ] || { ${this.saveState()}; exit 0; }`);
    });
    parts.push(this.saveState());
    const r = await bash(parts.join("\n") + "\n", this.envFor(block));
    if (r.code !== 0) throw new ExampleError(this.file, block.line, `the block's shell ${exited(r.code)}`, indent(r.output));
    cmds.forEach((c, i) => {
      const f = (ext) => path.join(dir, `${String(i).padStart(3, "0")}.${ext}`);
      if (!existsSync(f("rc"))) throw new ExampleError(this.file, c.line, `\`${c.shown}\` did not run`, indent(r.output));
      const out = readFileSync(f("out"), "utf8");
      const code = Number(readFileSync(f("rc"), "utf8"));
      if (code !== 0) throw new ExampleError(this.file, c.line, `\`${c.shown}\` exited ${code}${hint(code)}`, indent(out));
      if (!c.expected.length) return;
      const want = comparable(c.expected);
      const got = comparable(out.split("\n"));
      if (want.join("\n") !== got.join("\n")) {
        throw new ExampleError(this.file, c.line, `\`${c.shown}\` printed other than the README says`, `${diff(want, got)}\n${COPY_HINT}`);
      }
    });
  }

  async startBackground(block) {
    if (this.background.has(block.arg)) throw new ExampleError(this.file, block.line, `a background block \`${block.arg}\` is already running`);
    const log = path.join(this.dir, `background-${block.arg}.log`);
    const text = this.localize(block.body.map((l) => l.text).join("\n"));
    const fd = openSync(log, "w");
    // Its own process group, so that stopping it stops what it started (make, then the listener).
    const child = spawn("bash", ["-c", `${this.prologue(true)}\n${text}\n`], { env: this.env, stdio: ["ignore", fd, fd], detached: true });
    closeSync(fd);
    const proc = { child, log, cursor: 0, exited: null, line: block.line };
    child.on("exit", (code, signal) => (proc.exited = signal ?? code));
    this.background.set(block.arg, proc);
  }

  /** Waits until the background process's output shows the block's lines, after what matched before. */
  async expectOutput(block) {
    const proc = this.background.get(block.arg);
    if (!proc) throw new ExampleError(this.file, block.line, `no background block \`${block.arg}\` started before this output`);
    const want = block.body.map((l) => this.localize(l.text));
    const groups = [[]];
    for (const l of want) (l.trim() === "..." ? groups.push([]) : groups[groups.length - 1].push(l));
    const wanted = groups.map((g) => comparable(g)).filter((g) => g.length);
    const deadline = Date.now() + OUTPUT_WAIT_MS;
    let got;
    for (;;) {
      got = comparable(readFileSync(proc.log, "utf8").split("\n")).slice(proc.cursor);
      const end = matchGroups(wanted, got);
      if (end !== null) {
        proc.cursor += end;
        return;
      }
      if (Date.now() > deadline || proc.exited !== null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const why = proc.exited !== null ? `\`${block.arg}\` exited (${proc.exited}) without printing` : `\`${block.arg}\` did not print within ${OUTPUT_WAIT_MS / 1000} s`;
    const shown = diff(wanted.flatMap((g, i) => (i ? ["...", ...g] : g)), got);
    throw new ExampleError(this.file, block.line, `${why} what the README shows`, `${shown}\n${COPY_HINT}\nREADME_KEEP_DIR=1 keeps the terminal's files, \`${block.arg}\`'s whole log among them (background-${block.arg}.log).`);
  }

  /** Stops every background process (their whole process groups) and removes the terminal. */
  async close() {
    for (const proc of this.background.values()) {
      if (proc.exited !== null) continue;
      const gone = new Promise((r) => proc.child.once("exit", r));
      try {
        process.kill(-proc.child.pid, "SIGTERM");
      } catch {}
      await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
      if (proc.exited === null) try { process.kill(-proc.child.pid, "SIGKILL"); } catch {}
    }
    // README_KEEP_DIR=1 keeps the terminal's files (outputs, the listener's log) to look at.
    if (process.env.README_KEEP_DIR) console.error(`README session kept in ${this.dir}`);
    else rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Where the groups (lines that must follow one another) appear in order in `got`, anything
 * allowed before and between them: the index just past the last group's end, or null.
 */
function matchGroups(groups, got) {
  let at = 0;
  for (const g of groups) {
    let found = -1;
    for (let i = at; i + g.length <= got.length; i++) {
      if (g.every((l, k) => got[i + k] === l)) {
        found = i;
        break;
      }
    }
    if (found < 0) return null;
    at = found + g.length;
  }
  return at;
}

/** Runs every block of a markdown text in order in one fresh session; throws at the first failure. */
export async function runAll(markdown, options) {
  const { blocks } = extract(markdown);
  const wrong = blocks.map((b) => [b, markerProblem(b)]).filter(([, p]) => p);
  if (wrong.length) throw new Error(wrong.map(([b, p]) => `${options.file ?? "README.md"}:${b.line}: ${p}`).join("\n"));
  const session = new Session(options);
  try {
    for (const b of blocks) await session.run(b);
  } finally {
    await session.close();
  }
}

/** Runs a script in its own process group, stopped whole (with what it started) at the timeout. */
function bash(script, env) {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-c", script], { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    const chunks = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
    }, BLOCK_TIMEOUT_MS);
    child.stdout.on("data", (d) => chunks.push(d));
    child.stderr.on("data", (d) => chunks.push(d));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const output = Buffer.concat(chunks).toString("utf8");
      resolve({ code: timedOut ? `stopped: still running after ${BLOCK_TIMEOUT_MS / 1000} s` : code ?? signal, output });
    });
  });
}

/** What an output diff asks of the README's editor. */
const COPY_HINT =
  "If the printed lines are right, copy the `+` lines into the README. <id>, <t>, <clock> and <n> stand for ids, times, clock times and table numbers, which vary by run: any value compares equal there.";

/** What an exit status likely means, for the editor of the failing example. */
function hint(code) {
  return code === 22 ? " (curl's exit for an HTTP status >= 400: if the example shows an error answer on purpose, mark it `<!-- example: run allow-4xx -->`)" : "";
}

function exited(code) {
  return typeof code === "number" ? `exited ${code}` : `was ${code}`;
}

function shellQuote(s) {
  return `'${String(s).replaceAll("'", `'\\''`)}'`;
}

function indent(text) {
  return text.trimEnd().split("\n").map((l) => `    ${l}`).join("\n");
}
