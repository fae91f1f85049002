// AWS Signature Version 4 as AWS checks it, for the AWS stand-ins (tests/mocks/bedrock.mjs,
// tests/mocks/buses.mjs): the authorization header's shape, the key, its session token, the
// service in the scope, the clock (5 minutes), the headers that must be signed, then the
// signature, recomputed with AWS's own signer (@smithy/signature-v4) over exactly the headers
// the request says it signed. Each stand-in answers a failure with its service's own error.
import { SignatureV4 } from "@smithy/signature-v4";
import { Sha256 } from "@aws-crypto/sha256-js";

/**
 * Why `req` (its body `raw`) is not signed by one of `keys` (`{id: secret}` or
 * `{id: {secret, session}}`) for `service`, with `mustSign` among its signed headers: null when
 * it is, else one of "malformed", "unknown_key", "wrong_service", "bad_date", "expired",
 * "unsigned_header", "mismatch", with the service `expected`.
 */
export async function sigv4Refusal(req, raw, keys, { service: expected, mustSign = ["host"] }) {
  const auth = req.headers.authorization ?? "";
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return "malformed";
  const [, keyId, day, region, service, signedHeaders, signature] = m;
  const key = typeof keys[keyId] === "string" ? { secret: keys[keyId] } : keys[keyId];
  if (!key) return "unknown_key";
  if (key.session && req.headers["x-amz-security-token"] !== key.session) return "unknown_key";
  if (service !== expected) return "wrong_service";
  const stamp = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(req.headers["x-amz-date"] ?? "");
  if (!stamp || stamp.slice(1, 4).join("") !== day) return "bad_date";
  const at = new Date(Date.UTC(+stamp[1], +stamp[2] - 1, +stamp[3], +stamp[4], +stamp[5], +stamp[6]));
  if (Math.abs(Date.now() - at.getTime()) > 5 * 60_000) return "expired";
  const names = signedHeaders.split(";");
  if (!mustSign.every((h) => names.includes(h))) return "unsigned_header";
  const headers = Object.fromEntries(names.map((n) => [n, req.headers[n] ?? ""]));
  const signer = new SignatureV4({
    credentials: { accessKeyId: keyId, secretAccessKey: key.secret, sessionToken: key.session },
    region,
    service,
    sha256: Sha256,
    uriEscapePath: true,
    applyChecksum: false,
  });
  const [path, query = ""] = req.url.split("?");
  const signed = await signer.sign(
    { method: req.method, protocol: "http:", hostname: req.headers.host, path, query: Object.fromEntries(new URLSearchParams(query)), headers, body: raw },
    { signingDate: at, signableHeaders: new Set(names), unsignableHeaders: new Set() },
  );
  const computed = /Signature=([0-9a-f]{64})/.exec(signed.headers.authorization)?.[1];
  return computed === signature ? null : "mismatch";
}
