use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::signature::Verifier;
use rsa::{BoxedUint, PrivateKey};
use serde_json::Value;

const TEST_KEY: &str = include_str!("../testdata/sa_test_key.pem");
const SHORT_KEY: &str = include_str!("../testdata/short_1024_key.pem");
const LONG_KEY: &str = include_str!("../testdata/long_4608_key.pem");
const TEST_JWT: &str = include_str!("../testdata/sa_test_jwt.txt");

/// The claims tests/vectors/jwt.mjs signed.
fn fixed() -> Assertion<'static> {
    Assertion {
        iss: "gateway-test@example-project.iam.gserviceaccount.com",
        scope: "https://www.googleapis.com/auth/cloud-platform",
        aud: "https://oauth2.googleapis.com/token",
        kid: Some("0123456789abcdef0123456789abcdef01234567"),
        now_s: 1_764_000_000,
    }
}

fn part(jwt: &str, i: usize) -> Vec<u8> {
    B64URL.decode(jwt.split('.').nth(i).unwrap()).unwrap()
}

fn json(jwt: &str, i: usize) -> Value {
    serde_json::from_slice(&part(jwt, i)).unwrap()
}

/// RFC 7515 Appendix A.2: its RSA key (n, e, d as published in its JWK; the primes are recovered),
/// its JWS Signing Input and the signature it gives. The key goes through both PEM forms.
#[test]
fn rfc7515_a2_rs256_signature() {
    let n = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
    let e = "AQAB";
    let d = "Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2NXOoAJe46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_jTj3ccPDVZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ";
    let input = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
    let signature = "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
    let uint = |s: &str| BoxedUint::from_be_slice_vartime(&B64URL.decode(s).unwrap());
    let key = PrivateKey::from_components(uint(n), uint(e), uint(d), vec![]).unwrap();
    let pkcs8 = key.to_pkcs8_pem(LineEnding::LF).unwrap();
    let pkcs1 = key.to_pkcs1_pem(LineEnding::LF).unwrap();
    let want = B64URL.decode(signature).unwrap();
    assert_eq!(rs256(input.as_bytes(), &pkcs8).unwrap(), want);
    assert_eq!(rs256(input.as_bytes(), &pkcs1).unwrap(), want);
}

/// The same JWT as Node's crypto (OpenSSL) signs, byte for byte (tests/vectors/jwt.mjs).
#[test]
fn a_service_account_assertion_is_the_jwt_node_signs() {
    assert_eq!(
        google_assertion(&fixed(), TEST_KEY).unwrap(),
        TEST_JWT.trim()
    );
}

#[test]
fn the_assertion_verifies_with_the_public_key_and_lasts_an_hour() {
    let jwt = google_assertion(&fixed(), TEST_KEY).unwrap();
    assert_eq!(
        json(&jwt, 0),
        serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "0123456789abcdef0123456789abcdef01234567"})
    );
    let claims = json(&jwt, 1);
    assert_eq!(claims["iss"], fixed().iss);
    assert_eq!(claims["scope"], fixed().scope);
    assert_eq!(claims["aud"], fixed().aud);
    assert_eq!(claims["iat"], 1_764_000_000);
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        3600
    );

    let public = PrivateKey::from_pkcs8_pem(TEST_KEY)
        .unwrap()
        .to_public_key();
    let verifier = rsa::pkcs1v15::VerifyingKey::<rsa::sha2::Sha256>::new(public);
    let (input, _) = jwt.rsplit_once('.').unwrap();
    let sig = rsa::pkcs1v15::Signature::try_from(&part(&jwt, 2)[..]).unwrap();
    verifier.verify(input.as_bytes(), &sig).unwrap();
    assert!(verifier.verify(b"another input", &sig).is_err());
}

#[test]
fn without_a_key_id_the_header_has_no_kid() {
    let a = Assertion {
        kid: None,
        ..fixed()
    };
    let jwt = google_assertion(&a, TEST_KEY).unwrap();
    assert_eq!(
        json(&jwt, 0),
        serde_json::json!({"alg": "RS256", "typ": "JWT"})
    );
}

#[test]
fn pkcs1_and_pasted_pems_give_the_same_jwt() {
    let key = PrivateKey::from_pkcs8_pem(TEST_KEY).unwrap();
    let pkcs1 = key.to_pkcs1_pem(LineEnding::LF).unwrap();
    assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    // A key file's PEM pasted with its JSON escapes left in (`\n` as two characters), CRLF lines,
    // surrounding blanks.
    let escaped = TEST_KEY.trim_end().replace('\n', "\\n") + "\\n";
    let crlf = format!("\n  {}  \n", TEST_KEY.replace('\n', "\r\n"));
    for pem in [pkcs1.as_str(), &escaped, &crlf] {
        assert_eq!(
            google_assertion(&fixed(), pem).unwrap(),
            TEST_JWT.trim(),
            "{pem}"
        );
    }
}

/// What is wrong with a key, told without any of its text.
#[test]
fn short_keys_and_garbage_are_refused_without_quoting_them() {
    let body_of = |pem: &str| -> Vec<String> {
        pem.lines()
            .filter(|l| !l.starts_with("-----"))
            .flat_map(|l| {
                l.as_bytes()
                    .chunks(12)
                    .map(|c| String::from_utf8_lossy(c).to_string())
                    .collect::<Vec<_>>()
            })
            .filter(|c| c.len() >= 8)
            .collect()
    };
    let garbage_der = "-----BEGIN PRIVATE KEY-----\nTUlJQmFkS2V5Tm90UmVhbGx5REVSU2VjcmV0U2VjcmV0\n-----END PRIVATE KEY-----\n";
    let cases = [
        (SHORT_KEY, "private_key is too short: at least 2048 bits (it has 1024)"),
        (LONG_KEY, "private_key is too long: at most 4096 bits (it has 4608)"),
        (garbage_der, "private_key is not a PEM RSA key"),
        ("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7", "private_key is not a PEM RSA key"),
        ("", "private_key is not a PEM RSA key"),
        (
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "private_key is encrypted: give the unencrypted key (as in a service account's key file)",
        ),
    ];
    for (pem, want) in cases {
        let err = google_assertion(&fixed(), pem).unwrap_err();
        assert!(err.starts_with(want), "{err}");
        assert_eq!(rs256(b"x", pem).unwrap_err(), err);
        for chunk in body_of(pem) {
            assert!(!err.contains(&chunk), "the error quotes the key: {err}");
        }
    }
}
