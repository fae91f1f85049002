//! Telegram: the `secret_token` given to `setWebhook` comes back in
//! `X-Telegram-Bot-Api-Secret-Token`; compared in constant time. Telegram signs no body.

use super::{any_secret, ct_eq, SignedRequest, Verified, VerifyError};

pub fn verify(secrets: &[String], req: &SignedRequest) -> Verified {
    let token = req
        .header("x-telegram-bot-api-secret-token")
        .ok_or(VerifyError::Missing("X-Telegram-Bot-Api-Secret-Token"))?;
    any_secret(secrets, |s| ct_eq(token.as_bytes(), s.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn secret_token() {
        let check = |v: Option<&str>, secrets: &[&str]| {
            let h = match v {
                Some(v) => headers(&[("X-Telegram-Bot-Api-Secret-Token", v)]),
                None => headers(&[]),
            };
            let s: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
            verify(&s, &inbound("https://x/", &h, b"{}", 0))
        };
        assert_eq!(check(Some("tg-Secret_1"), &["tg-Secret_1"]), Ok(()));
        assert_eq!(check(Some("tg-Secret_1"), &["old", "tg-Secret_1"]), Ok(()));
        assert_eq!(
            check(Some("tg-Secret_2"), &["tg-Secret_1"]),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            check(Some("tg-Secret_"), &["tg-Secret_1"]),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            check(None, &["tg-Secret_1"]),
            Err(VerifyError::Missing("X-Telegram-Bot-Api-Secret-Token"))
        );
    }
}
