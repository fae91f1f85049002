// A bench row is only worth its number when nothing else runs beside it: `make bench` waits, after
// each row's warm-up, until the gateway is quiet. Quiet means both:
//   - every webhook event a tracked gateway accepted has reached the destination stand-in (the
//     `events` and `deliveries` queues owe it nothing): counted from the gateway's own request log
//     lines (a 2xx on the webhook route is an accepted event; each makes the deliveries the row
//     says) against the distinct `webhook-id`s the stand-in received;
//   - no workerd process of this run (gateways and JS references alike) used CPU for longer than
//     the queues' batch timeout (miniflare.config), so no half-filled batch, timer or I/O tail is
//     still to run.
// Other processes on the machine are not ours to quiet: their load is reported beside each row.
// Draining rather than a runtime per route family: a webhook row's backlog would still fall on the
// next webhook row, and another runtime shares the same cores anyway.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { loadavg } from "node:os";
import path from "node:path";

const ROOT = path.resolve(import.meta.dirname, "..");
const consumers = Object.values(JSON.parse(readFileSync(path.join(ROOT, "miniflare.config"), "utf8")).queueConsumers ?? {});
/** Longer than a batch may wait to fill: a message still queued would have run within it. */
export const IDLE_MS = 1000 * Math.max(0, ...consumers.map((c) => c.maxBatchTimeout ?? 0)) + 500;
/** CPU the runtimes may use in IDLE_MS and still count as idle: 2% of a core (timers, GC). */
const IDLE_CPU_MS = 0.02 * IDLE_MS;
const SAMPLE_MS = 100;
const TIMEOUT_MS = 1000 * Number(process.env.BENCH_QUIET_SECONDS ?? 180);
const TICK_MS = 1000 / Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim() || 100);
const WEBHOOK_ROUTE = '"route":"/v1/webhooks/';

/** The workerd processes this process started (Miniflare's runtimes). */
function workerdPids() {
  return readdirSync("/proc").filter((pid) => /^\d+$/.test(pid) && stat(pid)?.[0] === "workerd" && Number(stat(pid)[2]) === process.pid);
}

/** /proc/<pid>/stat as fields: comm, state, ppid, ... (utime and stime at 12 and 13). */
function stat(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    return [s.slice(s.indexOf("(") + 1, s.lastIndexOf(")")), ...s.slice(s.lastIndexOf(")") + 2).split(" ")];
  } catch {
    return undefined; // gone meanwhile
  }
}

/** CPU time (ms, user + system) `pids` have used so far. */
function cpuMs(pids) {
  let ticks = 0;
  for (const pid of pids) {
    const f = stat(pid);
    if (f) ticks += Number(f[12]) + Number(f[13]);
  }
  return ticks * TICK_MS;
}

export class Quiet {
  /** `upstream`: the stand-in (bench/upstream.mjs) whose `/hooks` is every tracked destination. */
  constructor(upstream) {
    this.upstream = upstream;
    this.tracked = [];
    this.perEvent = 1;
    this.expected = 0;
  }

  /** Counts the webhook events `gw` accepts from now on as deliveries owed to the stand-in. */
  track(gw) {
    this.tracked.push({ gw, seen: gw.logs.length });
  }

  /**
   * Each event accepted from now on makes `n` deliveries (its source's destinations; 0 for a row
   * of duplicates, which the gateway answers without queueing). Call it when quiet (right after
   * `wait()`), so that every earlier request's log line is in and counted at the old rate.
   */
  deliveriesPerEvent(n) {
    this.count();
    this.perEvent = n;
  }

  count() {
    for (const t of this.tracked) {
      const logs = t.gw.logs;
      for (; t.seen < logs.length; t.seen++) {
        const m = logs[t.seen].message;
        if (m.includes(WEBHOOK_ROUTE) && /"status":2\d\d/.test(m)) this.expected += this.perEvent;
      }
    }
    return { expected: this.expected, delivered: this.upstream.hooks.size };
  }

  /**
   * Waits until quiet (at most BENCH_QUIET_SECONDS, default 180); returns how long it took, the
   * deliveries owed and made, whether it got quiet, how many runtimes were watched, and the
   * machine's load average then.
   */
  async wait() {
    const start = Date.now();
    const pids = workerdPids();
    if (!pids.length) throw new Error("no workerd process of this run found: cannot tell whether the runtimes are quiet");
    const samples = [{ at: start, cpu: cpuMs(pids) }];
    for (;;) {
      await new Promise((r) => setTimeout(r, SAMPLE_MS));
      const now = Date.now();
      samples.push({ at: now, cpu: cpuMs(pids) });
      while (samples.length > 2 && now - samples[1].at >= IDLE_MS) samples.shift();
      const { expected, delivered } = this.count();
      const idleFor = now - samples[0].at;
      const cpu = samples.at(-1).cpu - samples[0].cpu;
      const ok = delivered >= expected && idleFor >= IDLE_MS && cpu <= IDLE_CPU_MS;
      if (ok || now - start > TIMEOUT_MS) {
        return { ok, ms: now - start, expected, delivered, cpuMs: cpu, windowMs: idleFor, runtimes: pids.length, load: loadavg()[0] };
      }
    }
  }
}

/** How a row's wait reads in the table: seconds to quiet, or what was still running. */
export function quietNote(q) {
  if (!q) return "";
  if (q.ok) return `${(q.ms / 1000).toFixed(1)} s`;
  return `NOT QUIET: ${Math.max(0, q.expected - q.delivered)} undelivered, workerd ${q.cpuMs.toFixed(0)} ms CPU in ${q.windowMs} ms`;
}
