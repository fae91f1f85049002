// The floor: the least any proxying worker costs in workerd. Ten lines of JavaScript that forward
// the request to the same upstream the gateway calls.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const target = env.UPSTREAM + url.pathname + url.search;
    return fetch(target, { method: request.method, headers: request.headers, body: request.body });
  },
};
