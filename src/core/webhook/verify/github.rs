//! GitHub: `X-Hub-Signature-256: sha256=<hex>` over the body.

use super::meta::sha256_hex_header;
use super::{SignedRequest, Verified};

pub fn verify(secrets: &[String], req: &SignedRequest) -> Verified {
    sha256_hex_header(secrets, req, "x-hub-signature-256", "X-Hub-Signature-256")
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::VerifyError;
    use super::*;

    // The example of GitHub's "Validating webhook deliveries" guide.
    const SECRET: &str = "It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    const SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn check(sig: &str, body: &[u8], secrets: &[&str]) -> Verified {
        let h = headers(&[("X-Hub-Signature-256", sig), ("X-GitHub-Event", "ping")]);
        let s: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
        verify(&s, &inbound("https://x/", &h, body, 0))
    }

    #[test]
    fn reference_delivery() {
        assert_eq!(check(SIG, BODY, &[SECRET]), Ok(()));
        assert_eq!(check(SIG, BODY, &["old-secret", SECRET]), Ok(()));
        assert_eq!(check(SIG, BODY, &["wrong"]), Err(VerifyError::Mismatch));
        assert_eq!(
            check("sha1=757107ea", BODY, &[SECRET]),
            Err(VerifyError::Malformed("X-Hub-Signature-256"))
        );
        every_body_byte_matters(BODY, |b| check(SIG, b, &[SECRET]).is_ok());
    }
}
