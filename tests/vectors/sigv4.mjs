// Writes src/core/sign/sigv4_vectors.json: Bedrock-shaped requests signed by AWS's own JavaScript
// signer (@smithy/signature-v4, as the AWS SDK for JavaScript v3 signs Bedrock), which the native
// SigV4 test signs again and compares header for header. Run once, then commit the JSON:
//   node tests/vectors/sigv4.mjs
// Bedrock signs as every non-S3 service: `uriEscapePath` (the wire path is encoded again, so a
// model id's `%3A` is `%253A` in the canonical request), and no `x-amz-content-sha256` header
// (`applyChecksum: false`, as botocore and the JS SDK's Bedrock client send it).
import { writeFileSync } from "node:fs";
import { SignatureV4 } from "@smithy/signature-v4";
import { Sha256 } from "@aws-crypto/sha256-js";

// AWS's documented example keys: not usable anywhere.
const LONG_TERM = { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" };
const TEMPORARY = {
  accessKeyId: "ASIAIOSFODNN7EXAMPLE",
  secretAccessKey: "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
  sessionToken: "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQEXAMPLE+token/with=signs",
};

// What the gateway's `path_segment` does to a model id: every byte but the unreserved ones encoded.
const segment = (s) => [...new TextEncoder().encode(s)]
  .map((b) => /[A-Za-z0-9._~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : "%" + b.toString(16).toUpperCase().padStart(2, "0"))
  .join("");

const claude = "anthropic.claude-sonnet-4-5-20250929-v1:0";
const profileArn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0";
const converseBody = JSON.stringify({
  messages: [{ role: "user", content: [{ text: "Hello, Bedrock: ü, 中文, \"quotes\"" }] }],
  inferenceConfig: { maxTokens: 256, temperature: 0.5 },
});

const cases = [
  {
    name: "converse, model id with a colon (%3A on the wire)",
    method: "POST",
    url: `https://bedrock-runtime.us-east-1.amazonaws.com/model/${segment(claude)}/converse`,
    headers: [["content-type", "application/json"]],
    body: converseBody,
    creds: LONG_TERM, region: "us-east-1", time: "2025-10-07T12:34:56Z",
  },
  {
    name: "converse-stream, inference-profile ARN (: and / encoded on the wire), temporary credentials",
    method: "POST",
    url: `https://bedrock-runtime.us-east-1.amazonaws.com/model/${segment(profileArn)}/converse-stream`,
    headers: [["content-type", "application/json"], ["accept", "application/vnd.amazon.eventstream"]],
    body: converseBody,
    creds: TEMPORARY, region: "us-east-1", time: "2025-10-07T12:34:56Z",
  },
  {
    name: "invoke, another region, on a leap day just before midnight",
    method: "POST",
    url: `https://bedrock-runtime.eu-west-1.amazonaws.com/model/${segment("eu.anthropic.claude-3-7-sonnet-20250219-v1:0")}/invoke`,
    headers: [["content-type", "application/json"]],
    body: JSON.stringify({ anthropic_version: "bedrock-2023-05-31", max_tokens: 64, messages: [{ role: "user", content: "Hi" }] }),
    creds: LONG_TERM, region: "eu-west-1", time: "2024-02-29T23:59:59Z",
  },
  {
    name: "a GET with a query string out of order, a value with reserved characters, no body",
    method: "GET",
    url: "https://bedrock.us-east-1.amazonaws.com/inference-profiles?typeEquals=SYSTEM_DEFINED&maxResults=10&nextToken=abc%2Fdef%2Bg%3D%3D",
    headers: [],
    body: null,
    creds: TEMPORARY, region: "us-east-1", time: "2025-01-01T00:00:00Z",
  },
];

const vectors = [];
for (const c of cases) {
  const url = new URL(c.url);
  const query = {};
  for (const [k, v] of url.searchParams) query[k] = v;
  const signer = new SignatureV4({
    credentials: c.creds, region: c.region, service: "bedrock", sha256: Sha256,
    uriEscapePath: true, applyChecksum: false,
  });
  const signed = await signer.sign({
    method: c.method, protocol: url.protocol, hostname: url.hostname,
    // The path as it goes on the wire (URL keeps percent-escapes as they are).
    path: url.pathname, query,
    headers: Object.fromEntries([["host", url.host], ...c.headers]),
    ...(c.body == null ? {} : { body: c.body }),
  }, { signingDate: new Date(c.time) });
  vectors.push({
    name: c.name,
    request: { method: c.method, url: c.url, headers: c.headers, body: c.body },
    creds: { access_key_id: c.creds.accessKeyId, secret_access_key: c.creds.secretAccessKey, session_token: c.creds.sessionToken ?? null },
    region: c.region,
    service: "bedrock",
    now_s: Date.parse(c.time) / 1000,
    // Every header of the signed request (names lowercased, sorted): what ours must carry.
    expected_headers: Object.entries(signed.headers).map(([k, v]) => [k.toLowerCase(), v]).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  });
}

const out = new URL("../../src/core/sign/sigv4_vectors.json", import.meta.url);
writeFileSync(out, JSON.stringify({
  generated_by: "tests/vectors/sigv4.mjs with @smithy/signature-v4 (uriEscapePath: true, applyChecksum: false)",
  vectors,
}, null, 2) + "\n");
console.log(`wrote ${vectors.length} vectors to ${out.pathname}`);
