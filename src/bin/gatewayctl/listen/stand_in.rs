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

/// The providers stood in for, each under the path prefix of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Telegram,
    Slack,
    Whatsapp,
    Twilio,
}

pub const PROVIDERS: [Provider; 4] = [
    Provider::Telegram,
    Provider::Slack,
    Provider::Whatsapp,
    Provider::Twilio,
];

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::Telegram => "telegram",
            Provider::Slack => "slack",
            Provider::Whatsapp => "whatsapp",
            Provider::Twilio => "twilio",
        }
    }
}

/// The provider a path is under, and the rest of the path (the provider's own).
pub fn provider_of(path: &str) -> Option<(Provider, &str)> {
    PROVIDERS.iter().find_map(|p| {
        let rest = path.strip_prefix('/')?.strip_prefix(p.name())?;
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
    pub provider: Provider,
    pub status: u16,
    pub receipt: Value,
    /// The path with any credential in it replaced.
    pub path: String,
    /// What was sent, or why the stand-in refused it (as the provider would).
    pub outcome: Result<Sent, String>,
}

/// A request as one provider's stand-in read it.
struct Request<'a> {
    /// The path under the provider's prefix.
    rest: &'a str,
    head: &'a Head,
    body: &'a [u8],
    /// Numbers the message ids.
    message_no: u64,
    /// Dates them.
    now_s: u64,
}

impl Request<'_> {
    fn json(&self) -> Value {
        serde_json::from_slice(self.body).unwrap_or(Value::Null)
    }

    /// Whether it carries a bearer token (its value is never read further).
    fn has_bearer(&self) -> bool {
        self.head
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .is_some_and(|t| !t.trim().is_empty())
    }
}

/// A success: the status and receipt the provider sends, and what was sent.
type Handled = Result<(u16, Value, Sent), Refusal>;

/// A refusal as the provider words it, and why, for the listener's line.
struct Refusal {
    status: u16,
    receipt: Value,
    why: &'static str,
}

fn refuse(status: u16, receipt: Value, why: &'static str) -> Handled {
    Err(Refusal {
        status,
        receipt,
        why,
    })
}

/// Answers a request to `provider` (`rest` is its path under the prefix); `message_no` numbers
/// the message ids, `now_s` dates them.
pub fn answer(
    provider: Provider,
    rest: &str,
    head: &Head,
    body: &[u8],
    message_no: u64,
    now_s: u64,
) -> Answer {
    let req = Request {
        rest,
        head,
        body,
        message_no,
        now_s,
    };
    let handled = match provider {
        Provider::Telegram => telegram(&req),
        Provider::Slack => slack(&req),
        Provider::Whatsapp => whatsapp(&req),
        Provider::Twilio => twilio(&req),
    };
    let path = shown_path(&format!("/{}{rest}", provider.name()));
    match handled {
        Ok((status, receipt, sent)) => Answer {
            provider,
            status,
            receipt,
            path,
            outcome: Ok(sent),
        },
        Err(r) => Answer {
            provider,
            status: r.status,
            receipt: r.receipt,
            path,
            outcome: Err(r.why.to_string()),
        },
    }
}

/// Telegram's Bot API: `/bot<token>/<method>`, a JSON body with `chat_id`.
fn telegram(req: &Request) -> Handled {
    let Some((token, method)) = req
        .rest
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
    let b = req.json();
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
        let mut m = json!({"message_id": req.message_no, "date": req.now_s, "chat": {"id": chat, "type": "private"}});
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
    let sent = Sent {
        method: method.into(),
        to: format!("chat {}", scalar(&chat)),
        text: b["text"]
            .as_str()
            .or(b["caption"].as_str())
            .map(String::from),
        extras,
        body: b,
    };
    Ok((200, json!({"ok": true, "result": result}), sent))
}

/// Slack's Web API: `/api/chat.postMessage` with a bearer token. Slack answers its errors, but
/// for a wrong path, with HTTP 200 and `"ok": false`, and so does its stand-in: the gateway's
/// parser must read the body, not the status.
fn slack(req: &Request) -> Handled {
    let Some(method) = req.rest.strip_prefix("/api/").filter(|m| !m.contains('/')) else {
        return refuse(
            404,
            json!({"ok": false, "error": "unknown_method"}),
            "not a Web API path (/slack/api/<method>)",
        );
    };
    if !req.has_bearer() {
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
    let b = req.json();
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
    let ts = format!("{}.{:06}", req.now_s, req.message_no % 1_000_000);
    let receipt = json!({"ok": true, "channel": channel, "ts": ts, "message": {"type": "message", "text": text, "ts": ts}});
    let sent = Sent {
        method: method.into(),
        to: format!("channel {channel}"),
        text,
        extras,
        body: b,
    };
    Ok((200, receipt, sent))
}

/// WhatsApp's Cloud API: `/<version>/<phone number id>/messages` with a bearer token.
fn whatsapp(req: &Request) -> Handled {
    let parts: Vec<&str> = req.rest.split('/').collect();
    if !matches!(parts[..], ["", version, phone, "messages"] if !version.is_empty() && !phone.is_empty())
    {
        return refuse(
            404,
            json!({"error": {"message": "Unknown path components", "type": "OAuthException", "code": 2500, "fbtrace_id": "local"}}),
            "not a Cloud API path (/whatsapp/<version>/<phone id>/messages)",
        );
    }
    if !req.has_bearer() {
        return refuse(
            401,
            json!({"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190, "fbtrace_id": "local"}}),
            "no bearer token",
        );
    }
    let b = req.json();
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
    let receipt = json!({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}], "messages": [{"id": format!("wamid.local.{}", req.message_no)}]});
    let sent = Sent {
        method: kind,
        to: format!("to {to}"),
        text,
        extras,
        body: b,
    };
    Ok((200, receipt, sent))
}

/// Twilio's Messages API: `/2010-04-01/Accounts/<sid>/Messages.json`, a form, Basic auth.
fn twilio(req: &Request) -> Handled {
    let account = req
        .rest
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
    let user = req
        .head
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
    let form: Map<String, Value> = form_urlencoded::parse(req.body)
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
    let sid = format!("SM{:016x}{:016x}", req.now_s, req.message_no);
    let receipt = json!({
        "sid": sid, "account_sid": account, "to": to, "from": field("From"),
        "messaging_service_sid": field("MessagingServiceSid"), "body": text.clone().unwrap_or_default(),
        "status": "queued", "num_media": if media.is_some() { "1" } else { "0" },
        "direction": "outbound-api", "api_version": "2010-04-01",
        "uri": format!("/2010-04-01/Accounts/{account}/Messages/{sid}.json"),
    });
    let sent = Sent {
        method: "Messages".into(),
        to: format!("to {to}"),
        text,
        extras: media.map(|m| format!("media {m}")).into_iter().collect(),
        body: Value::Object(form),
    };
    Ok((201, receipt, sent))
}

/// A path as printed, every request's (a delivery's and a stand-in's): with Telegram's bot token,
/// which its Bot API carries in the path (`/bot<id>:<secret>/<method>`), replaced. Under
/// `/telegram` that is the segment after it; elsewhere any `bot...` segment holding a `:`, since
/// a Telegram channel whose base_url lacks `/telegram` sends to a delivery path.
pub fn shown_path(path: &str) -> String {
    let under_telegram = matches!(provider_of(path), Some((Provider::Telegram, _)));
    path.split('/')
        .enumerate()
        .map(|(i, segment)| {
            let token = segment.strip_prefix("bot").is_some_and(|t| {
                !t.is_empty()
                    && ((under_telegram && i == 2)
                        || t.contains(':')
                        || t.to_ascii_lowercase().contains("%3a"))
            });
            if token {
                "bot<token>"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
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
