//! Twilio: `X-Twilio-Signature` = base64(HMAC-SHA1(auth token, URL + sorted POST params)).
//! Form posts sign every parameter as `name` + `value`, sorted by name (then value); JSON posts
//! sign the URL alone, which carries `bodySHA256` = hex SHA-256 of the body. Twilio's own
//! validators accept the URL with its port removed or with the default port added, as
//! proxies differ on which one the provider saw; so does this one.

use super::{any_secret, ct_eq, hmac_sha1, unbase64, SignedRequest, Verified, VerifyError};
use sha2::{Digest, Sha256};

pub fn verify(secrets: &[String], req: &SignedRequest) -> Verified {
    let sig = req
        .header("x-twilio-signature")
        .ok_or(VerifyError::Missing("X-Twilio-Signature"))?;
    let presented = unbase64(sig).ok_or(VerifyError::Malformed("X-Twilio-Signature"))?;
    let is_form = req.header("content-type").is_some_and(|ct| {
        ct.to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    });
    let signed_params = if is_form {
        sorted_params(req.body)
    } else {
        Vec::new()
    };
    if !is_form {
        // The body is covered through the URL's bodySHA256 parameter.
        let claimed = query_param(req.url, "bodySHA256")
            .ok_or(VerifyError::Missing("bodySHA256 query parameter"))?;
        let actual = hex::encode(Sha256::digest(req.body));
        if !ct_eq(claimed.to_ascii_lowercase().as_bytes(), actual.as_bytes()) {
            return Err(VerifyError::Mismatch);
        }
    }
    let urls = [without_port(req.url), with_default_port(req.url)];
    any_secret(secrets, |s| {
        urls.iter().fold(false, |ok, url| {
            ok | ct_eq(&presented, &compute(s, url, &signed_params))
        })
    })
}

/// The signature Twilio computes for `url` and form `params` (already sorted).
pub fn compute(token: &str, url: &str, params: &[(String, String)]) -> [u8; 20] {
    let mut data = url.to_string();
    for (k, v) in params {
        data.push_str(k);
        data.push_str(v);
    }
    hmac_sha1(token.as_bytes(), &[data.as_bytes()])
}

/// Form parameters, decoded, sorted by name then value, exact duplicates once.
pub fn sorted_params(body: &[u8]) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    p.sort();
    p.dedup();
    p
}

fn query_param<'a>(url: &'a str, name: &str) -> Option<std::borrow::Cow<'a, str>> {
    let query = url.split_once('?')?.1.split('#').next()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Splits `scheme://authority` from the rest.
fn split(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some((scheme, &rest[..end], &rest[end..]))
}

fn host_port(authority: &str) -> (&str, Option<&str>) {
    let hostpart = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match hostpart.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || hostpart.starts_with('[') => (h, Some(p)),
        _ => (hostpart, None),
    }
}

fn without_port(url: &str) -> String {
    match split(url) {
        Some((scheme, auth, rest)) => format!("{scheme}://{}{rest}", host_port(auth).0),
        None => url.to_string(),
    }
}

fn with_default_port(url: &str) -> String {
    match split(url) {
        Some((scheme, auth, rest)) if host_port(auth).1.is_none() => {
            let port = if scheme.eq_ignore_ascii_case("https") {
                443
            } else {
                80
            };
            format!("{scheme}://{auth}:{port}{rest}")
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    // The vectors of twilio-python's request validator tests.
    const TOKEN: &str = "12345";
    const URI: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const FORM: &[u8] = b"CallSid=CA1234567890ABCDE&Digits=1234&From=%2B14158675309&To=%2B18005551212&Caller=%2B14158675309";

    fn check(url: &str, ct: &str, body: &[u8], sig: &str) -> Verified {
        let h = headers(&[("X-Twilio-Signature", sig), ("Content-Type", ct)]);
        verify(&[TOKEN.into()], &inbound(url, &h, body, 0))
    }
    const FORM_CT: &str = "application/x-www-form-urlencoded; charset=utf-8";

    #[test]
    fn compute_signature() {
        assert_eq!(
            STANDARD.encode(compute(TOKEN, URI, &sorted_params(FORM))),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        assert_eq!(
            check(URI, FORM_CT, FORM, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
            Ok(())
        );
    }

    #[test]
    fn duplicate_parameters() {
        let body = b"Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234";
        assert_eq!(
            STANDARD.encode(compute(TOKEN, URI, &sorted_params(body))),
            "IK+Dwps556ElfBT0I3Rgjkr1wJU="
        );
    }

    #[test]
    fn ports_added_or_removed() {
        let with_port = URI.replace(".com", ".com:1234");
        assert_eq!(
            check(&with_port, FORM_CT, FORM, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
            Ok(())
        );
        let http_port = with_port.replace("https", "http");
        assert_eq!(
            check(&http_port, FORM_CT, FORM, "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="),
            Ok(())
        );
        assert_eq!(
            check(URI, FORM_CT, FORM, "kvajT1Ptam85bY51eRf/AJRuM3w="),
            Ok(())
        );
        assert_eq!(
            check(
                &URI.replace("https", "http"),
                FORM_CT,
                FORM,
                "0ZXoZLH/DfblKGATFgpif+LLRf4="
            ),
            Ok(())
        );
    }

    #[test]
    fn json_body_through_body_sha256() {
        let body = br#"{"property": "value", "boolean": true}"#;
        let hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
        assert_eq!(hex::encode(Sha256::digest(body)), hash);
        let url = format!("{URI}&bodySHA256={hash}");
        assert_eq!(
            check(
                &url,
                "application/json",
                body,
                "a9nBmqA0ju/hNViExpshrM61xv4="
            ),
            Ok(())
        );
        // The URL is signed, so a forged body cannot carry its own hash.
        assert_eq!(
            check(
                &url,
                "application/json",
                b"{}",
                "a9nBmqA0ju/hNViExpshrM61xv4="
            ),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            check(
                URI,
                "application/json",
                body,
                "a9nBmqA0ju/hNViExpshrM61xv4="
            ),
            Err(VerifyError::Missing("bodySHA256 query parameter"))
        );
    }

    #[test]
    fn tampering_fails() {
        let sig = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        assert_eq!(
            check(&URI.replace("foo=1", "foo=2"), FORM_CT, FORM, sig),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(check(URI, FORM_CT, b"CallSid=CA1234567890ABCDE&Digits=1235&From=%2B14158675309&To=%2B18005551212&Caller=%2B14158675309", sig), Err(VerifyError::Mismatch));
        assert_eq!(
            check(URI, FORM_CT, FORM, "not base64"),
            Err(VerifyError::Malformed("X-Twilio-Signature"))
        );
    }
}
