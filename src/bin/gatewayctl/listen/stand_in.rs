//! The channel providers' stand-in: a channel whose `base_url` is the listener's `/telegram`,
//! `/slack`, `/whatsapp` or `/twilio` gets the success receipt that provider sends (the shapes
//! tests/mocks/providers.mjs answers with, which the gateway's response parsing reads), and the
//! listener learns what was sent: the method, the recipient, the text. Credentials (Telegram's
//! token in the path, every Authorization header) are checked for presence only and kept out of
//! what is reported.

use super::request::Head;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};

pub const PROVIDERS: [&str; 4] = ["telegram", "slack", "whatsapp", "twilio"];

/// The provider a path is under, and the rest of the path (the provider's own).
pub fn provider_of(path: &str) -> Option<(&'static str, &str)> {
    PROVIDERS.iter().find_map(|p| {
        let rest = path.strip_prefix('/')?.strip_prefix(p)?;
        (rest.is_empty() || rest.starts_with('/')).then_some((*p, rest))
    })
}

/// What a send carried, without its credentials.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// The provider's method (`sendMessage`, `chat.postMessage`) or message type (`text`).
    pub method: String,
    /// Who it was for: `chat 42`, `channel C123`, `to +1555...`.
    pub to: String,
    pub text: Option<String>,
    /// Buttons as `[title]`, media as `photo <url>`, a place as `at lat,lon`.
    pub extras: Vec<String>,
    /// The request body (a form as an object).
    pub body: Value,
}

/// The stand-in's answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub provider: &'static str,
    pub status: u16,
    pub receipt: Value,
    /// The path with any credential in it replaced.
    pub path: String,
    /// What was sent, or why the stand-in refused it (as the provider would).
    pub outcome: Result<Sent, String>,
}

/// Answers a request to `provider` (`rest` is its path under the prefix); `n` numbers the
/// message ids, `now_s` dates them.
pub fn answer(
    provider: &'static str,
    rest: &str,
    head: &Head,
    body: &[u8],
    n: u64,
    now_s: u64,
) -> Answer {
    let bearer = head
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .is_some_and(|t| !t.trim().is_empty());
    let json_body = || serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
    let path = shown_path(provider, rest);
    let refuse = |status: u16, receipt: Value, why: &str| Answer {
        provider,
        status,
        receipt,
        path: path.clone(),
        outcome: Err(why.to_string()),
    };
    let sent = |status: u16, receipt: Value, s: Sent| Answer {
        provider,
        status,
        receipt,
        path: path.clone(),
        outcome: Ok(s),
    };
    match provider {
        "telegram" => {
            let Some((token, method)) = rest
                .strip_prefix("/bot")
                .and_then(|r| r.split_once('/'))
                .filter(|(_, m)| !m.is_empty() && !m.contains('/'))
            else {
                return refuse(
                    404,
                    json!({"ok": false, "error_code": 404, "description": "Not Found"}),
                    "not a Bot API path (/telegram/bot<token>/<method>)",
                );
            };
            if token.is_empty() {
                return refuse(
                    401,
                    json!({"ok": false, "error_code": 401, "description": "Unauthorized"}),
                    "no bot token in the path",
                );
            }
            let b = json_body();
            let chat = b["chat_id"].clone();
            if chat.is_null() {
                return refuse(
                    400,
                    json!({"ok": false, "error_code": 400, "description": "Bad Request: chat_id is empty"}),
                    "no chat_id",
                );
            }
            let result = if method == "setMessageReaction" {
                json!(true)
            } else {
                let mut m = json!({"message_id": n, "date": now_s, "chat": {"id": chat, "type": "private"}});
                if let Some(t) = b["text"].as_str() {
                    m["text"] = t.into();
                }
                m
            };
            let mut extras: Vec<String> = b
                .pointer("/reply_markup/inline_keyboard")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|row| row.as_array().into_iter().flatten())
                .filter_map(|button| button["text"].as_str().map(|t| format!("[{t}]")))
                .collect();
            for media in ["photo", "audio", "video", "document"] {
                if let Some(file) = b[media].as_str() {
                    extras.push(format!("{media} {file}"));
                }
            }
            extras.extend(place(&b["latitude"], &b["longitude"]));
            if let Some(emoji) = b.pointer("/reaction/0/emoji").and_then(Value::as_str) {
                extras.push(format!("reaction {emoji}"));
            }
            sent(
                200,
                json!({"ok": true, "result": result}),
                Sent {
                    method: method.into(),
                    to: format!("chat {}", scalar(&chat)),
                    text: b["text"]
                        .as_str()
                        .or(b["caption"].as_str())
                        .map(String::from),
                    extras,
                    body: b,
                },
            )
        }
        "slack" => {
            let Some(method) = rest.strip_prefix("/api/").filter(|m| !m.contains('/')) else {
                return refuse(
                    404,
                    json!({"ok": false, "error": "unknown_method"}),
                    "not a Web API path (/slack/api/<method>)",
                );
            };
            if !bearer {
                return refuse(
                    200,
                    json!({"ok": false, "error": "not_authed"}),
                    "no bearer token",
                );
            }
            if method != "chat.postMessage" {
                return refuse(
                    200,
                    json!({"ok": false, "error": "unknown_method"}),
                    "only chat.postMessage is stood in for",
                );
            }
            let b = json_body();
            let Some(channel) = b["channel"].as_str().filter(|c| !c.is_empty()) else {
                return refuse(
                    200,
                    json!({"ok": false, "error": "channel_not_found"}),
                    "no channel",
                );
            };
            let text = b["text"].as_str().map(String::from);
            let mut extras: Vec<String> = b["blocks"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|block| block["elements"].as_array().into_iter().flatten())
                .filter_map(|e| e.pointer("/text/text").and_then(Value::as_str))
                .map(|t| format!("[{t}]"))
                .collect();
            if let Some(ts) = b["thread_ts"].as_str() {
                extras.push(format!("in thread {ts}"));
            }
            let ts = format!("{now_s}.{:06}", n % 1_000_000);
            sent(
                200,
                json!({"ok": true, "channel": channel, "ts": ts, "message": {"type": "message", "text": text, "ts": ts}}),
                Sent {
                    method: method.into(),
                    to: format!("channel {}", channel),
                    text,
                    extras,
                    body: b,
                },
            )
        }
        "whatsapp" => {
            let parts: Vec<&str> = rest.split('/').collect();
            if !matches!(parts[..], ["", version, phone, "messages"] if !version.is_empty() && !phone.is_empty())
            {
                return refuse(
                    404,
                    json!({"error": {"message": "Unknown path components", "type": "OAuthException", "code": 2500, "fbtrace_id": "local"}}),
                    "not a Cloud API path (/whatsapp/<version>/<phone id>/messages)",
                );
            }
            if !bearer {
                return refuse(
                    401,
                    json!({"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190, "fbtrace_id": "local"}}),
                    "no bearer token",
                );
            }
            let b = json_body();
            let Some(to) = b["to"].as_str().filter(|t| !t.is_empty()) else {
                return refuse(
                    400,
                    json!({"error": {"message": "(#100) The parameter to is required.", "type": "OAuthException", "code": 100, "fbtrace_id": "local"}}),
                    "no recipient (to)",
                );
            };
            let kind = b["type"].as_str().unwrap_or("text").to_string();
            let part = &b[kind.as_str()];
            let text = part["body"]
                .as_str()
                .or(part.pointer("/body/text").and_then(Value::as_str))
                .or(part["caption"].as_str())
                .map(String::from);
            let action = &part["action"];
            let mut extras: Vec<String> = action["buttons"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.pointer("/reply/title").and_then(Value::as_str))
                .chain(
                    action["sections"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .flat_map(|s| s["rows"].as_array().into_iter().flatten())
                        .filter_map(|r| r["title"].as_str()),
                )
                .map(|t| format!("[{t}]"))
                .collect();
            if let Some(media) = part["link"].as_str().or(part["id"].as_str()) {
                extras.push(media.to_string());
            }
            if let Some(name) = part["name"].as_str() {
                // A template's name, or a place's.
                extras.push(match kind.as_str() {
                    "template" => format!("template {name}"),
                    _ => name.to_string(),
                });
            }
            if let Some(emoji) = part["emoji"].as_str() {
                extras.push(format!("reaction {emoji}"));
            }
            extras.extend(place(&part["latitude"], &part["longitude"]));
            sent(
                200,
                json!({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}], "messages": [{"id": format!("wamid.local.{n}")}]}),
                Sent {
                    method: kind,
                    to: format!("to {to}"),
                    text,
                    extras,
                    body: b,
                },
            )
        }
        _ => {
            let account = rest
                .strip_prefix("/2010-04-01/Accounts/")
                .and_then(|r| r.strip_suffix("/Messages.json"))
                .filter(|sid| !sid.is_empty() && !sid.contains('/'));
            let Some(account) = account else {
                return refuse(
                    404,
                    json!({"code": 20404, "message": "The requested resource was not found", "status": 404}),
                    "not a Messages path (/twilio/2010-04-01/Accounts/<sid>/Messages.json)",
                );
            };
            // Basic auth: the account SID as the user, the auth token (never reported) as the password.
            let user = head
                .header("authorization")
                .and_then(|a| a.strip_prefix("Basic "))
                .and_then(|b| STANDARD.decode(b.trim()).ok())
                .and_then(|d| String::from_utf8(d).ok())
                .and_then(|up| {
                    let (user, pass) = up.split_once(':')?;
                    (!pass.is_empty()).then(|| user.to_string())
                });
            if user.as_deref() != Some(account) {
                return refuse(
                    401,
                    json!({"code": 20003, "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}),
                    "no basic auth for this account",
                );
            }
            let form: Map<String, Value> = form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect();
            let field = |k: &str| form.get(k).and_then(Value::as_str).map(String::from);
            let Some(to) = field("To").filter(|t| !t.is_empty()) else {
                return refuse(
                    400,
                    json!({"code": 21604, "message": "A 'To' phone number is required.", "status": 400}),
                    "no To",
                );
            };
            let text = field("Body");
            let media = field("MediaUrl");
            if text.is_none() && media.is_none() {
                return refuse(
                    400,
                    json!({"code": 21602, "message": "Message body is required.", "status": 400}),
                    "no Body",
                );
            }
            let sid = format!("SM{now_s:016x}{n:016x}");
            let receipt = json!({
                "sid": sid, "account_sid": account, "to": to, "from": field("From"),
                "messaging_service_sid": field("MessagingServiceSid"), "body": text.clone().unwrap_or_default(),
                "status": "queued", "num_media": if media.is_some() { "1" } else { "0" },
                "direction": "outbound-api", "api_version": "2010-04-01",
                "uri": format!("/2010-04-01/Accounts/{account}/Messages/{sid}.json"),
            });
            sent(
                201,
                receipt,
                Sent {
                    method: "Messages".into(),
                    to: format!("to {to}"),
                    text,
                    extras: media.map(|m| format!("media {m}")).into_iter().collect(),
                    body: Value::Object(form),
                },
            )
        }
    }
}

/// The path as reported: Telegram's token, which its path carries, replaced.
fn shown_path(provider: &str, rest: &str) -> String {
    match (provider, rest.strip_prefix("/bot")) {
        ("telegram", Some(r)) => match r.split_once('/') {
            Some((_, method)) => format!("/telegram/bot<token>/{method}"),
            None => "/telegram/bot<token>".into(),
        },
        _ => format!("/{provider}{rest}"),
    }
}

/// `at lat,lon` when both are numbers.
fn place(lat: &Value, lon: &Value) -> Option<String> {
    Some(format!("at {},{}", lat.as_f64()?, lon.as_f64()?))
}

/// A JSON scalar as text: a string without its quotes.
fn scalar(v: &Value) -> String {
    v.as_str()
        .map(String::from)
        .unwrap_or_else(|| v.to_string())
}
