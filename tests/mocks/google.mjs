// A local stand-in for Google Cloud: the OAuth token endpoint a service account trades its signed
// JWT at (RFC 7523, as https://developers.google.com/identity/protocols/oauth2/service-account
// describes it), and Vertex AI's model paths, which take only the access tokens it issued.
//
// Token endpoint (`POST /token`): the form's grant type must be the JWT bearer grant; the JWT is
// verified with the registered account's public key (RS256), its header's `alg` and `kid`, and its
// claims: `iss` a registered account, `aud` this endpoint's own URL, `scope` holding cloud-platform
// or pubsub (the token holds its scopes: Vertex takes cloud-platform only, Pub/Sub either),
// `iat` within 5 minutes of now and `exp` at most an hour after it. It answers
// `{access_token: "ya29.…", expires_in: 3599, token_type: "Bearer"}`, or Google's 400
// `{"error": "invalid_grant", "error_description": …}`.
//
// Vertex (`/v1/projects/{p}/locations/{loc}/publishers/{google|anthropic}/models/{m}:{op}`): a
// bearer token it issued and that has not expired (`POST /__expire` expires them all), else 401
// UNAUTHENTICATED; the token's account belongs to the path's project, else 403. Claude bodies
// carry `anthropic_version: vertex-2023-10-16` and no `model` (`stream: true` for
// streamRawPredict). Answers replay tests/fixtures/llm (`anthropic_*.sse`, `gemini_*.sse`) and
// the JSON shapes of tests/mocks/llm.mjs; a model ending `-throttled` answers 429
// RESOURCE_EXHAUSTED. `google.seen` counts token fetches and refusals.
import http from "node:http";
import { generateKeyPairSync, randomBytes, verify } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";

const FIX = path.join(import.meta.dirname, "..", "fixtures", "llm");
const fixture = (name) => readFileSync(path.join(FIX, name), "utf8");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform";
export const PUBSUB_SCOPE = "https://www.googleapis.com/auth/pubsub";
const HELLO = "Hello, world! ünïcødé ✓";
const VERTEX = /^\/v1\/projects\/([^/]+)\/locations\/([^/]+)\/publishers\/(google|anthropic)\/models\/([^/:]+):(generateContent|streamGenerateContent\?alt=sse|rawPredict|streamRawPredict)$/;

const b64json = (part) => JSON.parse(Buffer.from(part, "base64url").toString("utf8"));

export async function startGoogle() {
  const google = {
    accounts: new Map(), // client_email -> { project, kid, publicKey }
    tokens: new Map(), // access token -> { email, expires_ms }
    seen: { token_fetches: 0, tokens_issued: 0, token_refusals: {}, unauthenticated: 0 },
    requests: [],
  };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      const send = (status, body, headers = {}) => {
        res.writeHead(status, { "content-type": "application/json; charset=UTF-8", ...headers });
        res.end(JSON.stringify(body));
      };
      if (req.method === "POST" && req.url === "/token") return token(google, raw, send);
      if (req.method === "POST" && req.url === "/__expire") {
        for (const t of google.tokens.values()) t.expires_ms = 0;
        return send(200, { expired: google.tokens.size });
      }
      const m = VERTEX.exec(req.url);
      if (!m || req.method !== "POST") return send(404, { error: { code: 404, message: "The requested URL was not found on this server.", status: "NOT_FOUND" } });
      const [, project, location, publisher, rawModel, op] = m;
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
      const held = google.tokens.get(bearer);
      if (!held || held.expires_ms <= Date.now() || !held.scopes.includes(CLOUD_PLATFORM)) {
        google.seen.unauthenticated += 1;
        return send(401, { error: { code: 401, message: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.", status: "UNAUTHENTICATED" } });
      }
      if (google.accounts.get(held.email).project !== project)
        return send(403, { error: { code: 403, message: `Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/projects/${project}/locations/${location}/publishers/${publisher}/models/${decodeURIComponent(rawModel)}' (or it may not exist).`, status: "PERMISSION_DENIED" } });
      let body;
      try {
        body = JSON.parse(raw);
      } catch {
        return send(400, { error: { code: 400, message: "Invalid JSON payload received.", status: "INVALID_ARGUMENT" } });
      }
      const model = decodeURIComponent(rawModel);
      google.requests.push({ path: req.url, project, location, publisher, model, op, body, headers: req.headers, atLiteral: rawModel.includes("@") });
      if (model.endsWith("-throttled"))
        return send(429, { error: { code: 429, message: "Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.", status: "RESOURCE_EXHAUSTED" } });
      const tools = Array.isArray(body.tools) && body.tools.length > 0;
      if (publisher === "anthropic") {
        const claudeOp = op === "rawPredict" || op === "streamRawPredict";
        const problem = !claudeOp ? `publisher anthropic has no ${op}`
          : body.anthropic_version !== "vertex-2023-10-16" ? "anthropic_version: vertex-2023-10-16 is required"
          : "model" in body ? "model: Extra inputs are not permitted"
          : op === "streamRawPredict" && body.stream !== true ? "stream: streamRawPredict streams only with stream: true"
          : null;
        if (problem) return send(400, { error: { code: 400, message: problem, status: "INVALID_ARGUMENT" } });
        if (op === "streamRawPredict") return replay(res, fixture(tools ? "anthropic_tools.sse" : "anthropic_text.sse"), /(?<=\n\n)/);
        const content = tools
          ? [{ type: "text", text: "Checking both." },
             { type: "tool_use", id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6", name: "get_weather", input: { location: "San Francisco, CA" } },
             { type: "tool_use", id: "toolu_01Hx9VQ3kZ8sA2mR5tY7uP4e", name: "get_time", input: {} }]
          : [{ type: "text", text: HELLO }];
        return send(200, { id: "msg_vrtx_01XFDUDYJgAACzvnptvVoYEL", type: "message", role: "assistant", model, content,
          stop_reason: tools ? "tool_use" : "end_turn", stop_sequence: null, usage: { input_tokens: 25, output_tokens: 15 } });
      }
      if (op === "rawPredict" || op === "streamRawPredict") return send(400, { error: { code: 400, message: `${op} is for partner models`, status: "INVALID_ARGUMENT" } });
      if (!Array.isArray(body.contents)) return send(400, { error: { code: 400, message: "* GenerateContentRequest.contents: contents is not specified", status: "INVALID_ARGUMENT" } });
      if (op.startsWith("streamGenerateContent")) return replay(res, fixture(tools ? "gemini_tools.sse" : "gemini_text.sse"), /(?<=\r\n\r\n)/);
      return send(200, {
        candidates: [{ content: { role: "model", parts: tools ? [{ functionCall: { name: "get_weather", args: { location: "San Francisco, CA" } } }, { functionCall: { name: "get_time", args: {} } }] : [{ text: HELLO }] }, finishReason: "STOP", avgLogprobs: -0.01 }],
        usageMetadata: { promptTokenCount: 25, candidatesTokenCount: 15, totalTokenCount: 40, trafficType: "ON_DEMAND", promptTokensDetails: [{ modality: "TEXT", tokenCount: 25 }] },
        modelVersion: model, createTime: "2026-01-01T00:00:00.000000Z", responseId: "vrtx-1",
      });
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  google.url = `http://127.0.0.1:${server.address().port}`;
  google.tokenUrl = `${google.url}/token`;
  /**
   * A new service account of `project` (a key pair made for this run): its key file, as Google's
   * console downloads it. `register: false` makes one the endpoint does not know.
   */
  google.serviceAccount = (project, { register = true, name = "gateway" } = {}) => {
    const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const kid = randomBytes(20).toString("hex");
    const email = `${name}-${randomBytes(3).toString("hex")}@${project}.iam.gserviceaccount.com`;
    if (register) google.accounts.set(email, { project, kid, publicKey });
    return {
      type: "service_account",
      project_id: project,
      private_key_id: kid,
      private_key: privateKey.export({ type: "pkcs8", format: "pem" }),
      client_email: email,
      client_id: String(BigInt("0x" + randomBytes(8).toString("hex"))),
      auth_uri: "https://accounts.google.com/o/oauth2/auth",
      token_uri: google.tokenUrl,
      auth_provider_x509_cert_url: "https://www.googleapis.com/oauth2/v1/certs",
      client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${encodeURIComponent(email)}`,
      universe_domain: "googleapis.com",
    };
  };
  google.last = () => google.requests.at(-1);
  google.close = () => new Promise((r) => { server.closeAllConnections(); server.close(r); });
  return google;
}

/** The token endpoint: checks what Google checks of a service account's assertion. */
function token(google, raw, send) {
  google.seen.token_fetches += 1;
  const form = new URLSearchParams(raw);
  const refuse = (error, description) => {
    google.seen.token_refusals[description] = (google.seen.token_refusals[description] ?? 0) + 1;
    return send(400, { error, error_description: description });
  };
  if (form.get("grant_type") !== JWT_BEARER) return refuse("unsupported_grant_type", "Invalid grant_type: " + form.get("grant_type"));
  const parts = (form.get("assertion") ?? "").split(".");
  if (parts.length !== 3) return refuse("invalid_grant", "Invalid JWT: Malformed.");
  let header, claims;
  try {
    [header, claims] = [b64json(parts[0]), b64json(parts[1])];
  } catch {
    return refuse("invalid_grant", "Invalid JWT: Malformed.");
  }
  const account = google.accounts.get(claims.iss);
  if (header.alg !== "RS256" || header.typ !== "JWT") return refuse("invalid_grant", "Invalid JWT: alg must be RS256.");
  if (!account) return refuse("invalid_grant", "Invalid grant: account not found");
  if (header.kid !== undefined && header.kid !== account.kid) return refuse("invalid_grant", "Invalid JWT Signature.");
  const signed = verify("RSA-SHA256", Buffer.from(`${parts[0]}.${parts[1]}`), account.publicKey, Buffer.from(parts[2], "base64url"));
  if (!signed) return refuse("invalid_grant", "Invalid JWT Signature.");
  if (claims.aud !== google.tokenUrl) return refuse("invalid_grant", "Invalid JWT: Failed audience check. The expected audience is " + google.tokenUrl + ".");
  const now = Math.floor(Date.now() / 1000);
  if (!Number.isInteger(claims.iat) || !Number.isInteger(claims.exp) || Math.abs(claims.iat - now) > 300 || claims.exp - claims.iat > 3600 || claims.exp <= claims.iat)
    return refuse("invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.");
  const scopes = String(claims.scope ?? "").split(" ");
  if (!scopes.some((s) => s === CLOUD_PLATFORM || s === PUBSUB_SCOPE)) return refuse("invalid_scope", "Invalid OAuth scope or ID token audience provided.");
  const access = "ya29." + randomBytes(24).toString("base64url");
  google.tokens.set(access, { email: claims.iss, expires_ms: Date.now() + 3599_000, scopes });
  google.seen.tokens_issued += 1;
  return send(200, { access_token: access, expires_in: 3599, token_type: "Bearer" });
}

/** A recorded stream, event by event with a pause, as a model streams. */
async function replay(res, text, separator) {
  res.writeHead(200, { "content-type": "text/event-stream" });
  for (const part of text.split(separator)) {
    res.write(part);
    await sleep(2);
  }
  res.end();
}
