// A test-only entry (never deployed: wrangler.toml's `main` is build/index.js): the built worker,
// unchanged, with its platform bindings wrapped so that a test can make them fail. Durable Object
// namespaces, KV namespaces and queues each fail on command: every call, or a share of them,
// throws or hangs. `POST /__faults` sets the faults ({binding: {rate, mode}}); `{}` clears them.
// Objects get the same wrapped bindings (their alarms send to queues too).
import Gateway, * as built from "../../build/index.js";

/** binding name -> {rate: 0..1, mode: "throw" | "hang", calls: n} */
let faults = {};

/** Whether this call of `binding` fails: the first of every 1/rate calls, so a rate is exact. */
function failing(binding) {
  const f = faults[binding];
  if (!f) return null;
  f.calls = (f.calls ?? 0) + 1;
  const due = Math.floor(f.calls * f.rate) > Math.floor((f.calls - 1) * f.rate);
  return due ? f : null;
}

function fail(binding, f, what) {
  if (f.mode === "hang") return new Promise(() => {});
  return Promise.reject(new Error(`injected fault: ${binding}.${what}`));
}

/** `target[method]` through the fault check of `binding`. */
function guarded(binding, target, method) {
  return (...args) => {
    const f = failing(binding);
    return f ? fail(binding, f, method) : target[method](...args);
  };
}

function wrap(binding, value) {
  if (value === null || typeof value !== "object") return value;
  if (typeof value.getByName === "function") {
    // A Durable Object namespace: its stubs' fetch fails.
    return new Proxy(value, {
      get(t, k) {
        if (k !== "getByName" && k !== "get") return Reflect.get(t, k);
        return (...args) => {
          const stub = t[k](...args);
          return new Proxy(stub, { get: (s, m) => (m === "fetch" ? guarded(binding, s, "fetch") : Reflect.get(s, m)) });
        };
      },
    });
  }
  const methods = typeof value.sendBatch === "function" ? ["send", "sendBatch"] : typeof value.list === "function" && typeof value.put === "function" ? ["get", "getWithMetadata", "put", "delete", "list"] : [];
  if (!methods.length) return value;
  return new Proxy(value, { get: (t, k) => (methods.includes(k) ? guarded(binding, t, k) : Reflect.get(t, k)) });
}

const wrapped = new WeakMap();
function faulty(env) {
  if (!wrapped.has(env)) wrapped.set(env, new Proxy(env, { get: (t, k) => wrap(k, Reflect.get(t, k)) }));
  return wrapped.get(env);
}

export default class extends Gateway {
  constructor(ctx, env) {
    super(ctx, faulty(env));
  }
  async fetch(request) {
    if (new URL(request.url).pathname === "/__faults") {
      faults = await request.json();
      return Response.json(faults);
    }
    return super.fetch(request);
  }
}

const object = (Class) =>
  class extends Class {
    constructor(state, env) {
      super(state, faulty(env));
    }
  };
export const CallGate = object(built.CallGate);
export const Conversation = object(built.Conversation);
export const DeadLetters = object(built.DeadLetters);
export const Dedupe = object(built.Dedupe);
export const EventLog = object(built.EventLog);
export const OauthTokens = object(built.OauthTokens);
export const Outbox = object(built.Outbox);
export const RateLimiter = object(built.RateLimiter);
export const Sequencer = object(built.Sequencer);
export const Usage = object(built.Usage);
