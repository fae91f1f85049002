//! A provider's answer to a send: the message id, or whether the failure is worth retrying.

use super::super::webhook::delivery::parse_retry_after;
use crate::core::channel::config::ChannelKind;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Sent {
        message_id: String,
    },
    /// Timeout, 429, 5xx, or a provider error that says "try later".
    Transient {
        retry_after_s: Option<u64>,
        error: String,
    },
    /// The provider refused the request; retrying will not help.
    Permanent {
        status: u16,
        error: String,
    },
}

/// What the client hears when a provider refuses a send for good: the provider's own words, with
/// a status that says whose problem it is (the message's: 422; the channel's setup: 502).
pub fn refusal(channel_kind: &str, status: u16, error: &str) -> crate::core::error::ApiError {
    use crate::core::error::{ApiError, ErrorKind};
    match status {
        400 | 404 | 413 | 422 => {
            ApiError::validation(format!("{channel_kind} refused the message: {error}"))
        }
        401 | 403 => ApiError::new(
            ErrorKind::Upstream,
            format!("{channel_kind} rejected the channel's credentials: {error}"),
        ),
        _ => ApiError::new(
            ErrorKind::Upstream,
            format!("{channel_kind} refused the message ({status}): {error}"),
        ),
    }
}

/// `status` is the HTTP status; Slack and Telegram also report failures inside a 200 body.
pub fn parse(
    p: ChannelKind,
    status: u16,
    retry_after: Option<&str>,
    body: &str,
    now_s: u64,
) -> SendOutcome {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let header_wait = retry_after.and_then(|r| parse_retry_after(r, now_s));
    let transient_status = status == 429 || status == 408 || status >= 500;
    let message_id = match p {
        ChannelKind::Whatsapp => v
            .pointer("/messages/0/id")
            .and_then(Value::as_str)
            .map(String::from),
        ChannelKind::Slack => (v["ok"] == true)
            .then(|| v["ts"].as_str().map(String::from))
            .flatten(),
        ChannelKind::Telegram => match &v["result"] {
            _ if v["ok"] != true => None,
            Value::Object(r) => r.get("message_id").map(|id| id.to_string()),
            Value::Bool(true) => Some("true".into()),
            _ => None,
        },
        ChannelKind::Twilio => v["sid"].as_str().map(String::from),
    };
    if (200..300).contains(&status) {
        if let Some(id) = message_id {
            return SendOutcome::Sent { message_id: id };
        }
    }
    let error = error_text(p, &v).unwrap_or_else(|| format!("provider answered {status}"));
    let provider_says_later = match p {
        ChannelKind::Whatsapp => matches!(
            v.pointer("/error/code").and_then(Value::as_i64),
            Some(4 | 80007 | 130429 | 131000 | 131016 | 131056 | 133004)
        ),
        ChannelKind::Slack => matches!(
            v["error"].as_str(),
            Some(
                "ratelimited"
                    | "internal_error"
                    | "fatal_error"
                    | "service_unavailable"
                    | "request_timeout"
            )
        ),
        ChannelKind::Telegram => v["error_code"].as_i64() == Some(429),
        ChannelKind::Twilio => matches!(v["code"].as_i64(), Some(20429 | 20500 | 20503)),
    };
    if transient_status || provider_says_later {
        let body_wait = v.pointer("/parameters/retry_after").and_then(Value::as_u64);
        return SendOutcome::Transient {
            retry_after_s: header_wait.or(body_wait),
            error,
        };
    }
    SendOutcome::Permanent {
        status: if (200..300).contains(&status) {
            502
        } else {
            status
        },
        error,
    }
}

fn error_text(p: ChannelKind, v: &Value) -> Option<String> {
    match p {
        ChannelKind::Whatsapp => {
            let e = v.get("error")?;
            Some(format!(
                "{} (code {})",
                e["message"].as_str().unwrap_or("error"),
                e["code"]
            ))
        }
        ChannelKind::Slack => v["error"].as_str().map(String::from),
        ChannelKind::Telegram => v["description"].as_str().map(String::from),
        ChannelKind::Twilio => Some(format!("{} (code {})", v["message"].as_str()?, v["code"])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successes_carry_the_provider_message_id() {
        let wa = r#"{"messaging_product":"whatsapp","contacts":[{"input":"+16505551234","wa_id":"16505551234"}],"messages":[{"id":"wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"}]}"#;
        assert_eq!(
            parse(ChannelKind::Whatsapp, 200, None, wa, 0),
            SendOutcome::Sent {
                message_id: "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA".into()
            }
        );
        let sl = r#"{"ok":true,"channel":"C123ABC456","ts":"1503435956.000247","message":{"text":"Here's a message for you","type":"message"}}"#;
        assert_eq!(
            parse(ChannelKind::Slack, 200, None, sl, 0),
            SendOutcome::Sent {
                message_id: "1503435956.000247".into()
            }
        );
        let tg = r#"{"ok":true,"result":{"message_id":1366,"chat":{"id":1111111,"type":"private"},"date":1441645540,"text":"hi"}}"#;
        assert_eq!(
            parse(ChannelKind::Telegram, 200, None, tg, 0),
            SendOutcome::Sent {
                message_id: "1366".into()
            }
        );
        let tw = r#"{"account_sid":"AC1","sid":"SM1234567890abcdef1234567890abcdef","status":"queued","body":"hi"}"#;
        assert_eq!(
            parse(ChannelKind::Twilio, 201, None, tw, 0),
            SendOutcome::Sent {
                message_id: "SM1234567890abcdef1234567890abcdef".into()
            }
        );
    }

    #[test]
    fn failures_inside_a_200() {
        assert_eq!(
            parse(
                ChannelKind::Slack,
                200,
                None,
                r#"{"ok":false,"error":"channel_not_found"}"#,
                0
            ),
            SendOutcome::Permanent {
                status: 502,
                error: "channel_not_found".into()
            }
        );
        assert!(matches!(
            parse(
                ChannelKind::Slack,
                200,
                None,
                r#"{"ok":false,"error":"ratelimited"}"#,
                0
            ),
            SendOutcome::Transient { .. }
        ));
    }

    #[test]
    fn rate_limits_and_outages_are_transient_with_their_wait() {
        assert_eq!(
            parse(
                ChannelKind::Slack,
                429,
                Some("30"),
                r#"{"ok":false,"error":"ratelimited"}"#,
                0
            ),
            SendOutcome::Transient {
                retry_after_s: Some(30),
                error: "ratelimited".into()
            }
        );
        assert_eq!(
            parse(
                ChannelKind::Telegram,
                429,
                None,
                r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 5","parameters":{"retry_after":5}}"#,
                0
            ),
            SendOutcome::Transient {
                retry_after_s: Some(5),
                error: "Too Many Requests: retry after 5".into()
            }
        );
        let wa = r#"{"error":{"message":"(#130429) Rate limit hit","type":"OAuthException","code":130429,"fbtrace_id":"A"}}"#;
        assert!(matches!(
            parse(ChannelKind::Whatsapp, 400, None, wa, 0),
            SendOutcome::Transient { .. }
        ));
        assert!(matches!(
            parse(ChannelKind::Twilio, 503, None, "<html>", 0),
            SendOutcome::Transient {
                retry_after_s: None,
                ..
            }
        ));
    }

    #[test]
    fn refusals_are_permanent_with_the_provider_message() {
        let wa = r#"{"error":{"message":"(#100) Invalid parameter","type":"OAuthException","code":100,"fbtrace_id":"A"}}"#;
        assert_eq!(
            parse(ChannelKind::Whatsapp, 400, None, wa, 0),
            SendOutcome::Permanent {
                status: 400,
                error: "(#100) Invalid parameter (code 100)".into()
            }
        );
        let tw = r#"{"code":21211,"message":"The 'To' number 5551234 is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":400}"#;
        assert_eq!(
            parse(ChannelKind::Twilio, 400, None, tw, 0),
            SendOutcome::Permanent {
                status: 400,
                error: "The 'To' number 5551234 is not a valid phone number. (code 21211)".into()
            }
        );
        let tg = r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#;
        assert_eq!(
            parse(ChannelKind::Telegram, 400, None, tg, 0),
            SendOutcome::Permanent {
                status: 400,
                error: "Bad Request: chat not found".into()
            }
        );
    }
}
