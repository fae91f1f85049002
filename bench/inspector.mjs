// A DevTools protocol client for the gateway's own isolate in workerd (Miniflare started with
// `inspectorPort`), for `make profile` and `make soak`. Uses Node's WebSocket (behind
// `--experimental-websocket` before Node 22; the Makefile passes it).

/** The socket of the gateway's isolate (workerd lists Miniflare's too): `send(method, params)`. */
export async function inspector(port) {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const own = targets.find((t) => t.title.endsWith("worker core:user:"));
  if (!own) throw new Error(`no gateway isolate among ${targets.map((t) => t.title).join(", ")}`);
  const ws = new WebSocket(own.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => ((ws.onopen = resolve), (ws.onerror = reject)));
  let id = 0;
  const waiting = new Map();
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    waiting.get(msg.id)?.(msg);
    waiting.delete(msg.id);
  };
  const send = (method, params = {}) =>
    new Promise((resolve, reject) => {
      const n = ++id;
      waiting.set(n, (msg) => (msg.error ? reject(new Error(JSON.stringify(msg.error))) : resolve(msg.result)));
      ws.send(JSON.stringify({ id: n, method, params }));
    });
  return { send, close: () => ws.close() };
}
