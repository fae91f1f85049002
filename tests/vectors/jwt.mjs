// Writes src/core/sign/testdata/sa_test_jwt.txt: the RS256 JWT a Google service account would sign
// for fixed claims, made with Node's crypto (OpenSSL) from the test-only key beside it, which the
// native test (core::sign::jwt) must reproduce byte for byte. Run once, then commit the output:
//   node tests/vectors/jwt.mjs
// Header and claims in the order core::sign::jwt writes them (JSON member order is not canonical).
import { readFileSync, writeFileSync } from "node:fs";
import { sign } from "node:crypto";

const dir = new URL("../../src/core/sign/testdata/", import.meta.url);
const key = readFileSync(new URL("sa_test_key.pem", dir), "utf8");
const b64url = (b) => Buffer.from(b).toString("base64url");

const header = { alg: "RS256", typ: "JWT", kid: "0123456789abcdef0123456789abcdef01234567" };
const now = 1_764_000_000;
const claims = {
  iss: "gateway-test@example-project.iam.gserviceaccount.com",
  scope: "https://www.googleapis.com/auth/cloud-platform",
  aud: "https://oauth2.googleapis.com/token",
  iat: now,
  exp: now + 3600,
};
const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
const jwt = `${input}.${b64url(sign("sha256", Buffer.from(input), key))}`;
writeFileSync(new URL("sa_test_jwt.txt", dir), jwt + "\n");
console.log(`wrote ${jwt.length} characters to ${new URL("sa_test_jwt.txt", dir).pathname}`);
