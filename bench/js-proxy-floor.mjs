// The floor: the least any proxying worker costs in workerd. Ten lines of JavaScript that forward
// the request to the same upstream the gateway calls. With LOG_LINE set it also writes one
// request log line like the gateway's, to show what that line alone costs.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const target = env.UPSTREAM + url.pathname + url.search;
    const answer = await fetch(target, { method: request.method, headers: request.headers, body: request.body });
    if (env.LOG_LINE) console.log(JSON.stringify({ ts: Date.now(), request_id: crypto.randomUUID(), method: request.method, route: "proxy", status: answer.status }));
    return answer;
  },
};
