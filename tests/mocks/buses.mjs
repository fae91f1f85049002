// Local stand-ins for the queues and buses a destination publishes to, each speaking its real
// wire format and refusing as the real service refuses.
//
// AWS (`startAws`): one endpoint answering SQS's JSON protocol (`X-Amz-Target:
// AmazonSQS.SendMessage`) and EventBridge's (`AWSEvents.PutEvents`). Every request's SigV4
// signature is recomputed with AWS's own signer (@smithy/signature-v4) over the headers it says it
// signed, for the service its target names (`sqs`, `events`); an unknown key, a clock more than
// 5 minutes off or a signature that does not match gets AWS's JSON error (`__type`, `message`,
// and SQS's `x-amzn-query-error`). SQS: the queue must exist (`aws.queue(name)` makes one); a
// FIFO queue requires `MessageGroupId` and drops a message whose `MessageDeduplicationId` it
// took in the last 5 minutes (answering as if sent); both ids are 1 to 128 printable ASCII
// characters, as SQS requires. EventBridge: the bus must exist (`aws.bus(name)`), `Detail` must
// be a JSON object; events are kept as a rule's target receives them (`detail` parsed).
// `aws.plan` fails requests on command; `aws.unavailable(params, nth)` (the nth SendMessage with
// its deduplication id, else body) answers SQS's 500 without taking the message when true.
import http from "node:http";
import { randomUUID, createHash } from "node:crypto";
import { sigv4Refusal } from "./sigv4.mjs";

const ACCOUNT = "123456789012";
const DEDUPE_MS = 5 * 60_000;
const TARGETS = { "AmazonSQS.SendMessage": "sqs", "AWSEvents.PutEvents": "events" };

/** `keys`: {accessKeyId: secret}. */
export async function startAws({ keys, region = "us-east-1" }) {
  const aws = {
    region,
    queues: new Map(), // name -> {fifo, messages: [], dedupe: Map(id -> {at, messageId})}
    buses: new Map(), // name -> events as targets receive them
    seen: { signed: 0, refused: {}, deduplicated: 0, throttled: 0, requests: 0 },
    /** What to do with the next requests of a kind: {sqs: ["accepted-500", ...], events: ["throttle", ...]}. */
    plan: { sqs: [], events: [] },
    unavailable: () => false,
    /** SendMessage requests so far, by deduplication id (else body). */
    tries: new Map(),
  };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      aws.seen.requests += 1;
      const raw = Buffer.concat(chunks);
      const service = TARGETS[req.headers["x-amz-target"]];
      const send = (status, body, headers = {}) => {
        res.writeHead(status, { "content-type": req.headers["content-type"] ?? "application/x-amz-json-1.0", "x-amzn-requestid": randomUUID(), ...headers });
        res.end(JSON.stringify(body));
      };
      const refuse = (status, type, message, query) => {
        aws.seen.refused[type] = (aws.seen.refused[type] ?? 0) + 1;
        send(status, { __type: type.includes("#") ? type : `com.amazon.coral.service#${type}`, message }, service === "sqs" && query ? { "x-amzn-query-error": query } : {});
      };
      if (req.method !== "POST" || req.url !== "/" || !service) return refuse(400, "UnknownOperationException", "Unknown operation");
      const denied = await verify(req, raw, keys, service);
      if (denied) return refuse(...denied);
      aws.seen.signed++;
      let body;
      try {
        body = JSON.parse(raw.toString("utf8"));
      } catch {
        return refuse(400, "SerializationException", "Start of structure or map found where not expected.");
      }
      return service === "sqs" ? sendMessage(aws, body, send, refuse) : putEvents(aws, body, send, refuse);
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  aws.url = `http://127.0.0.1:${server.address().port}`;
  /** Creates a queue (a FIFO one when `name` ends in .fifo); returns its URL. */
  aws.queue = (name) => {
    aws.queues.set(name, { fifo: name.endsWith(".fifo"), messages: [], dedupe: new Map() });
    return `${aws.url}/${ACCOUNT}/${name}`;
  };
  aws.bus = (name) => {
    aws.buses.set(name, []);
    return name;
  };
  aws.close = () => new Promise((r) => { server.closeAllConnections(); server.close(r); });
  return aws;
}

function sendMessage(aws, body, send, refuse) {
  const name = /^https?:\/\/[^/]+\/(\d{12})\/([^/]+)$/.exec(body.QueueUrl ?? "")?.[2];
  const q = aws.queues.get(name);
  if (!q) return refuse(400, "com.amazonaws.sqs#QueueDoesNotExist", "The specified queue does not exist.", "AWS.SimpleQueueService.NonExistentQueue;Sender");
  if (typeof body.MessageBody !== "string" || !body.MessageBody) return refuse(400, "com.amazonaws.sqs#MissingParameter", "The request must contain the parameter MessageBody.", "MissingParameter;Sender");
  const attributes = Object.fromEntries(Object.entries(body.MessageAttributes ?? {}).map(([k, v]) => [k, v.StringValue]));
  if (Object.keys(attributes).length > 10) return refuse(400, "com.amazonaws.sqs#InvalidParameterValue", "Number of message attributes [11] exceeds the allowed maximum [10].", "InvalidParameterValue;Sender");
  const md5 = createHash("md5").update(body.MessageBody).digest("hex");
  const tried = body.MessageDeduplicationId ?? body.MessageBody;
  aws.tries.set(tried, (aws.tries.get(tried) ?? 0) + 1);
  if (aws.unavailable(body, aws.tries.get(tried))) return refuse(500, "com.amazonaws.sqs#InternalError", "We encountered an internal error. Please try again.", "InternalError;Receiver");
  if (q.fifo) {
    if (!body.MessageGroupId) return refuse(400, "com.amazonaws.sqs#MissingParameter", "The request must contain the parameter MessageGroupId.", "MissingParameter;Sender");
    if (!body.MessageDeduplicationId) return refuse(400, "com.amazonaws.sqs#InvalidParameterValue", "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly", "InvalidParameterValue;Sender");
    for (const name of ["MessageGroupId", "MessageDeduplicationId"]) {
      if (!/^[\x21-\x7e]{1,128}$/.test(body[name])) return refuse(400, "com.amazonaws.sqs#InvalidParameterValue", `Value ${body[name]} for parameter ${name} is invalid. Reason: ${name} can only include alphanumeric and punctuation characters. 1 to 128 in length.`, "InvalidParameterValue;Sender");
    }
    const seen = q.dedupe.get(body.MessageDeduplicationId);
    if (seen && Date.now() - seen.at < DEDUPE_MS) {
      aws.seen.deduplicated += 1;
      return send(200, { MD5OfMessageBody: md5, MessageId: seen.messageId, SequenceNumber: seen.sequence });
    }
  } else if (body.MessageDeduplicationId) {
    return refuse(400, "com.amazonaws.sqs#InvalidParameterValue", "The request include parameter that is not valid for this queue type", "InvalidParameterValue;Sender");
  }
  const messageId = randomUUID();
  const sequence = String(10n ** 19n + BigInt(q.messages.length));
  q.messages.push({ messageId, body: body.MessageBody, attributes, groupId: body.MessageGroupId, deduplicationId: body.MessageDeduplicationId });
  if (q.fifo) q.dedupe.set(body.MessageDeduplicationId, { at: Date.now(), messageId, sequence });
  // Taken, but the answer is lost: the sender tries again.
  if (aws.plan.sqs.shift() === "accepted-500") return refuse(500, "com.amazonaws.sqs#InternalError", "We encountered an internal error. Please try again.", "InternalError;Receiver");
  return send(200, { MD5OfMessageBody: md5, MessageId: messageId, ...(q.fifo ? { SequenceNumber: sequence } : {}) });
}

function putEvents(aws, body, send, refuse) {
  const entries = body.Entries;
  if (!Array.isArray(entries) || entries.length < 1 || entries.length > 10) return refuse(400, "ValidationException", "1 validation error detected: Value at 'entries' failed to satisfy constraint");
  const results = [];
  let failed = 0;
  for (const e of entries) {
    const name = e.EventBusName ?? "default";
    const events = aws.buses.get(name.replace(/^arn:.*:event-bus\//, ""));
    if (!events) return refuse(400, "ResourceNotFoundException", `Event bus ${name} does not exist.`);
    let detail;
    try {
      detail = JSON.parse(e.Detail);
    } catch {}
    if (!e.Source || !e.DetailType || typeof detail !== "object" || detail === null || Array.isArray(detail)) {
      failed += 1;
      results.push({ ErrorCode: "MalformedDetail", ErrorMessage: "Detail is malformed." });
      continue;
    }
    if (aws.plan.events[0] === "throttle") {
      aws.plan.events.shift();
      aws.seen.throttled += 1;
      failed += 1;
      results.push({ ErrorCode: "ThrottlingException", ErrorMessage: "Rate exceeded" });
      continue;
    }
    const id = randomUUID();
    // As a rule's target receives it: EventBridge's envelope, `detail` parsed (not the bytes sent).
    events.push({ version: "0", id, "detail-type": e.DetailType, source: e.Source, account: ACCOUNT, time: new Date().toISOString().replace(/\.\d+Z$/, "Z"), region: aws.region, resources: [], detail });
    results.push({ EventId: id });
  }
  return send(200, { Entries: results, FailedEntryCount: failed });
}

// SQS's and EventBridge's answers to a request SigV4 does not verify (tests/mocks/sigv4.mjs),
// with SQS's query-compatible code.
const refusals = (service) => ({
  malformed: [400, "IncompleteSignatureException", "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters.", "IncompleteSignature;Sender"],
  unknown_key: [403, "UnrecognizedClientException", "The security token included in the request is invalid.", "InvalidClientTokenId;Sender"],
  wrong_service: [403, "InvalidSignatureException", `Credential should be scoped to correct service: '${service}'.`, "SignatureDoesNotMatch;Sender"],
  bad_date: [400, "IncompleteSignatureException", "Date must be in ISO-8601 'basic format'.", "IncompleteSignature;Sender"],
  expired: [400, "InvalidSignatureException", "Signature expired.", "RequestExpired;Sender"],
  unsigned_header: [403, "InvalidSignatureException", "'Host' and 'X-Amz-Target' must be signed headers.", "SignatureDoesNotMatch;Sender"],
  mismatch: [403, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.", "SignatureDoesNotMatch;Sender"],
});

async function verify(req, raw, keys, service) {
  const why = await sigv4Refusal(req, raw, keys, { service, mustSign: ["host", "x-amz-target"] });
  return why && refusals(service)[why];
}

// Kafka REST (`startKafka`): Confluent's v3 produce (`POST /kafka/v3/clusters/{c}/topics/{t}/
// records`, JSON, BINARY values and base64 headers) and v2 as Redpanda's pandaproxy speaks it
// (`POST /topics/{t}`, `application/vnd.kafka.binary.v2+json` only, base64 keys and values).
// Basic auth against `users`, or a bearer in `tokens`; an unknown cluster or topic is Confluent's
// 404 `{"error_code": 40403}`. Records are kept per topic with their key, value bytes and headers.
export async function startKafka({ cluster = "lkc-test", users = {}, tokens = [] } = {}) {
  const kafka = { topics: new Map(), seen: { refused: {} } };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const send = (status, body, type = "application/json") => {
        res.writeHead(status, { "content-type": type });
        res.end(JSON.stringify(body));
      };
      const refuse = (status, code, message) => {
        kafka.seen.refused[code] = (kafka.seen.refused[code] ?? 0) + 1;
        send(status, { error_code: code, message });
      };
      const auth = req.headers.authorization ?? "";
      const basic = /^Basic (.+)$/.exec(auth)?.[1];
      const [user, ...pw] = basic ? Buffer.from(basic, "base64").toString("utf8").split(":") : [];
      const bearer = /^Bearer (.+)$/.exec(auth)?.[1];
      const allowed = (user !== undefined && users[user] === pw.join(":")) || (bearer && tokens.includes(bearer));
      if (!allowed) return refuse(401, 401, "Unauthorized");
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        return refuse(400, 400, "Malformed JSON");
      }
      const v3 = /^\/kafka\/v3\/clusters\/([^/]+)\/topics\/([^/]+)\/records$/.exec(req.url);
      const v2 = /^\/topics\/([^/]+)$/.exec(req.url);
      if (req.method !== "POST" || (!v3 && !v2)) return refuse(404, 404, "HTTP 404 Not Found");
      const topic = v3 ? v3[2] : v2[1];
      if ((v3 && v3[1] !== cluster) || !kafka.topics.has(topic)) return refuse(404, 40403, "This server does not host this topic-partition.");
      const records = kafka.topics.get(topic);
      const partition = (key) => createHash("sha256").update(key).digest()[0] % 3;
      if (v3) {
        if (body.value?.type !== "BINARY" || typeof body.value.data !== "string") return refuse(400, 400, "value: a BINARY value is expected");
        const key = body.key?.type === "STRING" ? body.key.data : Buffer.from(body.key?.data ?? "", "base64").toString("utf8");
        const headers = Object.fromEntries((body.headers ?? []).map((h) => [h.name, Buffer.from(h.value, "base64").toString("utf8")]));
        const value = Buffer.from(body.value.data, "base64");
        records.push({ api: "v3", key, value, headers, partition: partition(key) });
        return send(200, { error_code: 200, cluster_id: cluster, topic_name: topic, partition_id: partition(key), offset: records.length - 1, timestamp: new Date().toISOString(), key: { type: "STRING", size: Buffer.byteLength(key) }, value: { type: "BINARY", size: value.length } });
      }
      if (!(req.headers["content-type"] ?? "").startsWith("application/vnd.kafka.binary.v2+json")) return refuse(415, 415, "HTTP 415 Unsupported Media Type");
      const offsets = [];
      for (const r of body.records ?? []) {
        const key = Buffer.from(r.key ?? "", "base64").toString("utf8");
        records.push({ api: "v2", key, value: Buffer.from(r.value, "base64"), headers: {}, partition: partition(key) });
        offsets.push({ partition: partition(key), offset: records.length - 1 });
      }
      return send(200, { offsets }, "application/vnd.kafka.v2+json");
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  kafka.url = `http://127.0.0.1:${server.address().port}`;
  kafka.topic = (name) => {
    kafka.topics.set(name, []);
    return { v3: `${kafka.url}/kafka/v3/clusters/${cluster}/topics/${name}`, v2: `${kafka.url}/topics/${name}` };
  };
  kafka.close = () => new Promise((r) => { server.closeAllConnections(); server.close(r); });
  return kafka;
}

// Pub/Sub (`startPubsub`): `POST /v1/projects/{p}/topics/{t}:publish` taking only the access
// tokens `google` (tests/mocks/google.mjs, the token endpoint) issued and that have not expired
// (else 401 UNAUTHENTICATED) for the pubsub or cloud-platform scope (else 403, as Google's
// ACCESS_TOKEN_SCOPE_INSUFFICIENT; `seen.scopes` is the last publish's token's), from an account of the topic's project (else 403
// PERMISSION_DENIED); an unknown topic is 404 NOT_FOUND. Messages need base64 `data` and an
// `orderingKey` of at most 1,024 bytes; they are kept with their decoded bytes, attributes and
// ordering key. `pubsub.unavailable(message, nth)` (the nth publish of its `webhook-id`) answers
// 503 UNAVAILABLE, publishing nothing, when true.
export async function startPubsub({ google }) {
  const pubsub = { topics: new Map(), seen: { unauthenticated: 0, published: 0 }, unavailable: () => false, tries: new Map() };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const send = (status, body) => {
        res.writeHead(status, { "content-type": "application/json; charset=UTF-8" });
        res.end(JSON.stringify(body));
      };
      const error = (code, status, message) => send(code, { error: { code, message, status } });
      const m = /^\/v1\/projects\/([^/]+)\/topics\/([^/:]+):publish$/.exec(req.url);
      if (req.method !== "POST" || !m) return error(404, "NOT_FOUND", "The requested URL was not found on this server.");
      const held = google.tokens.get(/^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1]);
      if (!held || held.expires_ms <= Date.now()) {
        pubsub.seen.unauthenticated += 1;
        return error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.");
      }
      pubsub.seen.scopes = held.scopes;
      if (!held.scopes.some((s) => s.endsWith("/auth/pubsub") || s.endsWith("/auth/cloud-platform")))
        return error(403, "PERMISSION_DENIED", "Request had insufficient authentication scopes.");
      const [, project, topic] = m;
      if (google.accounts.get(held.email).project !== project) return error(403, "PERMISSION_DENIED", `User not authorized to perform this action.`);
      const messages = pubsub.topics.get(`${project}/${topic}`);
      if (!messages) return error(404, "NOT_FOUND", `Resource not found (resource=${topic}).`);
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        return error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
      }
      const messagesIn = body.messages ?? [];
      for (const msg of messagesIn) {
        if (typeof msg.data !== "string" || !msg.data) return error(400, "INVALID_ARGUMENT", "Some messages are empty.");
        if (msg.orderingKey !== undefined && (typeof msg.orderingKey !== "string" || Buffer.byteLength(msg.orderingKey) > 1024))
          return error(400, "INVALID_ARGUMENT", "An ordering key must be at most 1024 bytes.");
      }
      let refused = false;
      for (const msg of messagesIn) {
        const tried = msg.attributes?.["webhook-id"] ?? msg.data;
        pubsub.tries.set(tried, (pubsub.tries.get(tried) ?? 0) + 1);
        refused ||= pubsub.unavailable(msg, pubsub.tries.get(tried));
      }
      if (refused) return error(503, "UNAVAILABLE", "The service was unable to fulfill your request. Please try again.");
      const ids = [];
      for (const msg of messagesIn) {
        const id = String(1e15 + pubsub.seen.published++);
        messages.push({ id, data: Buffer.from(msg.data, "base64"), attributes: msg.attributes ?? {}, orderingKey: msg.orderingKey });
        ids.push(id);
      }
      return send(200, { messageIds: ids });
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  pubsub.url = `http://127.0.0.1:${server.address().port}`;
  pubsub.topic = (project, name) => {
    pubsub.topics.set(`${project}/${name}`, []);
    return `${pubsub.url}/v1/projects/${project}/topics/${name}`;
  };
  pubsub.close = () => new Promise((r) => { server.closeAllConnections(); server.close(r); });
  return pubsub;
}
