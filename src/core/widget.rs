//! The chat widget's protocol: which origins may use a publishable key, what a visitor may send,
//! and the LLM request built from the tenant's assistant and the conversation so far.

pub mod flow;
pub mod retention;

use crate::core::error::{ApiError, ErrorKind};
use crate::core::http::valid_id;
use crate::core::limits::limiter::Check;
use crate::core::llm::admission::LimitKind;
use crate::core::llm::request::{parse, ClientRequest};
use crate::core::llm::Dialect;
use crate::core::tenant::model::TenantConfig;
use crate::core::upstream::FetchError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Longest visitor message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4000;
/// History kept per conversation when the tenant sets none.
pub const DEFAULT_HISTORY: u32 = 20;
/// Widget messages per minute per visitor when the tenant sets none.
pub const DEFAULT_VISITOR_RPM: u32 = 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    pub role: String,
    pub content: String,
}

/// Appends turns to a widget conversation, keeping at most `max`; the conversation is its
/// `owner`'s, kept until its retention after this message.
#[derive(Debug, Serialize, Deserialize)]
pub struct AppendCmd {
    pub turns: Vec<Turn>,
    pub max: u32,
    pub owner: retention::Owner,
}

impl AppendCmd {
    /// One exchange: the visitor's message and the answer.
    pub fn exchange(user: &str, answer: &str, max: u32, owner: retention::Owner) -> Self {
        let turn = |role: &str, content: &str| Turn {
            role: role.into(),
            content: content.into(),
        };
        AppendCmd {
            turns: vec![turn("user", user), turn("assistant", answer)],
            max,
            owner,
        }
    }
}

/// The kept history of a conversation.
#[derive(Debug, Serialize, Deserialize)]
pub struct GetHistory;

#[derive(Debug, Serialize, Deserialize)]
pub struct History {
    pub turns: Vec<Turn>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatInput {
    pub conversation_id: Option<String>,
    pub message: String,
}

/// Whether a browser at `origin` may use the tenant's widget key. `None` (no `Origin` header)
/// is a same-origin GET or not a browser; it is refused where the browser always sends one.
pub fn origin_allowed(tenant: &TenantConfig, origin: Option<&str>) -> bool {
    match origin {
        Some(o) => tenant.allowed_origins.iter().any(|a| a == o),
        None => false,
    }
}

/// The origin a widget API response allows (its CORS answer), or the refusal: an origin not in
/// the tenant's list, or none where a browser always sends one (`required`).
pub fn cors_origin(
    tenant: &TenantConfig,
    origin: Option<&str>,
    required: bool,
) -> Result<Option<String>, ApiError> {
    match origin {
        Some(o) if origin_allowed(tenant, Some(o)) => Ok(Some(o.to_string())),
        Some(_) => Err(ApiError::forbidden(
            "this origin may not use this widget key (see the tenant's allowed_origins)",
        )),
        None if required => Err(ApiError::forbidden(
            "the widget API needs an Origin header from an allowed origin",
        )),
        None => Ok(None),
    }
}

/// `GET /v1/widget/config`: the tenant's theme, with defaults for what it leaves out.
pub fn theme(tenant: &TenantConfig) -> Value {
    let theme = tenant.widget.clone().unwrap_or_default();
    json!({
        "title": theme.title.unwrap_or_else(|| tenant.name.clone()),
        "greeting": theme.greeting.unwrap_or_else(|| "Hi! How can I help?".into()),
        "color": theme.color.unwrap_or_else(|| "#1a73e8".into()),
        "position": theme.position.unwrap_or_else(|| "bottom-right".into()),
    })
}

/// How many visitors' worth of messages one IP may send.
const IP_FACTOR: u64 = 5;

/// The per-visitor windows: one on the widget's visitor id (else the IP), and a looser one on
/// the client IP Cloudflare saw (a visitor id is the browser's to choose; an office shares one
/// IP). Hashed, so no address is stored.
pub fn visitor_checks(
    visitor_id: Option<&str>,
    ip: Option<&str>,
    per_visitor: u32,
) -> Vec<(LimitKind, Check)> {
    let window = |name: &str, raw: &str, limit: u64| {
        let digest = hex::encode(Sha256::digest(raw.as_bytes()));
        Check::per_minute(format!("{name}:{}", &digest[..24]), limit, 1)
    };
    let per_visitor = u64::from(per_visitor);
    let visitor_id = visitor_id.filter(|v| !v.is_empty() && v.len() <= 64);
    let mut checks = Vec::new();
    if let Some(id) = visitor_id.or(ip) {
        checks.push((LimitKind::Visitor, window("visitor", id, per_visitor)));
    }
    if let Some(ip) = ip {
        checks.push((LimitKind::Ip, window("ip", ip, per_visitor * IP_FACTOR)));
    }
    checks
}

pub fn parse_chat(bytes: &[u8]) -> Result<ChatInput, ApiError> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("request body is not valid JSON: {e}")))?;
    let Value::Object(o) = v else {
        return Err(ApiError::bad_request("request body must be a JSON object"));
    };
    if let Some(k) = o
        .keys()
        .find(|k| *k != "message" && *k != "conversation_id")
    {
        let k: String = k.chars().take(40).collect();
        return Err(ApiError::bad_request(format!("unknown field `{k}`")));
    }
    let message = match o.get("message") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(Value::String(_)) | None => {
            return Err(ApiError::bad_request("`message` is required"))
        }
        Some(_) => return Err(ApiError::bad_request("`message` must be a string")),
    };
    if message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(ApiError::bad_request(format!(
            "`message` is longer than {MAX_MESSAGE_CHARS} characters"
        )));
    }
    let conversation_id = match o.get("conversation_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if valid_conversation_id(s) => Some(s.clone()),
        Some(_) => {
            return Err(ApiError::bad_request(
                "`conversation_id` is not one this gateway issued",
            ))
        }
    };
    Ok(ChatInput {
        conversation_id,
        message,
    })
}

/// Conversation ids are issued by the gateway: 128 random bits from the platform CSPRNG
/// (unguessable, so holding one is what entitles a browser to its history) and a 128-bit tag
/// that binds them to the tenant, and to the tenant's incarnation (a tenant deleted and created
/// again under the same id issues new ones). An id the gateway did not issue to this tenant is
/// refused before any state is touched.
pub fn new_conversation_id(
    key: &[u8; 32],
    tenant: &str,
    incarnation: &str,
    random: &[u8; 16],
) -> String {
    let nonce = hex::encode(random);
    let tag = conversation_tag(key, tenant, incarnation, &nonce);
    format!("{nonce}{tag}")
}

/// Whether `id` was issued by `new_conversation_id` for this tenant and incarnation, under any
/// of the keyring's id keys (so ids issued before a master key rotation keep working until the
/// old key is removed).
pub fn issued_conversation_id(
    keys: &[[u8; 32]],
    tenant: &str,
    incarnation: &str,
    id: &str,
) -> bool {
    if !valid_conversation_id(id) {
        return false;
    }
    let (nonce, tag) = id.split_at(32);
    keys.iter().any(|key| {
        let expected = conversation_tag(key, tenant, incarnation, nonce);
        crate::core::webhook::verify::ct_eq(tag.as_bytes(), expected.as_bytes())
    })
}

fn conversation_tag(key: &[u8; 32], tenant: &str, incarnation: &str, nonce: &str) -> String {
    let mac = crate::core::webhook::verify::hmac_sha256(
        key,
        &[
            b"conversation\x1f",
            tenant.as_bytes(),
            b"\x1f",
            incarnation.as_bytes(),
            b"\x1f",
            nonce.as_bytes(),
        ],
    );
    hex::encode(&mac[..16])
}

/// The shape of a conversation id: 64 lowercase hex characters.
pub fn valid_conversation_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        && valid_id(s)
}

/// The LLM request for the next answer: the tenant's system prompt, the kept history, the new
/// message; streamed, through the tenant's model route.
pub fn llm_request(
    tenant: &TenantConfig,
    history: &[Turn],
    message: &str,
) -> Result<ClientRequest, ApiError> {
    let assistant = tenant.assistant.as_ref();
    let model = assistant
        .and_then(|a| a.model.clone())
        .unwrap_or_else(|| "default".into());
    let mut messages = Vec::new();
    if let Some(p) = assistant.and_then(|a| a.system_prompt.as_deref()) {
        messages.push(json!({"role": "system", "content": p}));
    }
    for t in history {
        messages.push(json!({"role": t.role, "content": t.content}));
    }
    messages.push(json!({"role": "user", "content": message}));
    let body = json!({"model": model, "messages": messages, "stream": true, "max_tokens": 1024});
    parse(Dialect::OpenAi, body.to_string().as_bytes())
}

/// Keeps the last `max` turns (whole user/assistant pairs where possible).
pub fn bound_history(mut turns: Vec<Turn>, max: u32) -> Vec<Turn> {
    let max = max.max(2) as usize;
    if turns.len() > max {
        turns.drain(..turns.len() - max);
    }
    if turns.first().is_some_and(|t| t.role == "assistant") {
        turns.remove(0);
    }
    turns
}

/// The tenant's own chat service answers `{"reply": "...", "quick_replies": [..]}`; the widget
/// shows quick replies written as a final `[[a | b]]` line, as the model would write them.
pub fn service_reply(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    let reply = v.get("reply")?.as_str()?.to_string();
    let quick: Vec<&str> = v
        .get("quick_replies")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    Some(if quick.is_empty() {
        reply
    } else {
        format!("{reply}\n[[{}]]", quick.join(" | "))
    })
}

/// The chat service's answer: its reply, or the error the visitor gets.
pub fn service_answer(result: Result<(u16, &str), &FetchError>) -> Result<String, ApiError> {
    match result {
        Ok((200, body)) => service_reply(body),
        Ok(_) => None,
        Err(e) => {
            let kind = match e {
                FetchError::Timeout(_) => ErrorKind::Timeout,
                _ => ErrorKind::Upstream,
            };
            return Err(ApiError::new(
                kind,
                format!("the chat service failed: {}", e.describe()),
            ));
        }
    }
    .ok_or_else(|| {
        let status = result.map(|(s, _)| s).unwrap_or_default();
        ApiError::new(
            ErrorKind::Upstream,
            format!("the chat service answered {status} without a reply"),
        )
    })
}

/// A visitor over its windows, when the tenant's own chat service answers.
pub fn visitor_refused() -> ApiError {
    ApiError::new(ErrorKind::RateLimited, "too many messages; wait a minute").with_retry_after(60)
}

/// What a tenant's widget chat runs with.
pub struct ChatSettings {
    pub max_history: u32,
    pub per_visitor_rpm: u32,
    /// The tenant's own chat service, answering instead of a model.
    pub chat_url: Option<String>,
}

impl ChatSettings {
    pub fn of(tenant: &TenantConfig) -> Self {
        let assistant = tenant.assistant.as_ref();
        ChatSettings {
            max_history: assistant
                .and_then(|a| a.max_history)
                .unwrap_or(DEFAULT_HISTORY),
            per_visitor_rpm: tenant
                .limits
                .widget_rpm_per_visitor
                .unwrap_or(DEFAULT_VISITOR_RPM),
            chat_url: assistant.and_then(|a| a.chat_url.clone()),
        }
    }
}

/// The conversation a message belongs to: the one it names, if this gateway issued it to the
/// tenant in its current incarnation, else a new one, signed with the first of `keys`.
pub fn conversation_for(
    keys: &[[u8; 32]],
    tenant: &str,
    cfg: &TenantConfig,
    given: Option<&str>,
    random: &[u8; 16],
) -> Result<String, ApiError> {
    let incarnation = cfg.incarnation();
    match given {
        Some(id) if issued_conversation_id(keys, tenant, incarnation, id) => Ok(id.to_string()),
        Some(_) => Err(ApiError::bad_request(
            "`conversation_id` is not one this gateway issued",
        )),
        None => {
            let key = keys
                .first()
                .ok_or_else(|| ApiError::internal("no id key"))?;
            Ok(new_conversation_id(key, tenant, incarnation, random))
        }
    }
}

/// The chat service's reply as the widget reads a model's: one OpenAI chunk, then `[DONE]`.
pub fn service_answer_events(reply: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let chunk = json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant", "content": reply}, "finish_reason": "stop"}]});
    crate::core::llm::sse::encode(&mut out, None, &chunk.to_string());
    crate::core::llm::sse::encode(&mut out, None, "[DONE]");
    out
}

/// `GET /widget.js`'s caching headers: cacheable at the edge, revalidated by its content hash,
/// and whether the client's copy (`If-None-Match`) is current.
pub fn script_headers(
    script: &str,
    if_none_match: Option<&str>,
) -> ([(&'static str, String); 3], bool) {
    let (etag, current) = crate::core::http::content_etag(script.as_bytes(), if_none_match);
    let headers = [
        ("etag", etag),
        (
            "cache-control",
            "public, max-age=300, stale-while-revalidate=86400".into(),
        ),
        ("access-control-allow-origin", "*".into()),
    ];
    (headers, current)
}

/// The answer to an allowed origin's CORS preflight of the widget API.
pub const PREFLIGHT_HEADERS: [(&str, &str); 3] = [
    ("access-control-allow-methods", "GET, POST, OPTIONS"),
    ("access-control-allow-headers", "content-type, x-visitor-id"),
    ("access-control-max-age", "600"),
];

/// What a widget API response tells an allowed origin's browser it may read.
pub const EXPOSED_HEADERS: &str = "x-conversation-id, x-request-id, retry-after";

/// Whether `/demo` is served: only in a deployment that says it is for development or tests.
/// Production is the default, so a deployment that sets nothing serves no demo.
pub fn demo_served(gateway_env: Option<&str>) -> bool {
    matches!(gateway_env, Some("development" | "test"))
}

/// The request to the tenant's own chat service (`assistant.chat_url`) for the next answer: the
/// conversation, the visitor's message and the kept history.
pub fn service_request(
    url: &str,
    conversation_id: &str,
    message: &str,
    history: &[Turn],
) -> crate::core::upstream::OutboundRequest {
    let body = serde_json::json!({"conversation_id": conversation_id, "message": message, "history": history});
    crate::core::upstream::OutboundRequest::post(
        url.to_string(),
        "application/json",
        body.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_is_opt_in() {
        assert!(demo_served(Some("development")));
        assert!(demo_served(Some("test")));
        for off in [None, Some("production"), Some(""), Some("Development")] {
            assert!(!demo_served(off), "{off:?}");
        }
    }
    use crate::core::config::document::validate;

    fn tenant() -> TenantConfig {
        validate::<TenantConfig>(&json!({
            "name": "Shop", "allowed_origins": ["https://shop.example.com"],
            "assistant": {"system_prompt": "Be kind.", "model": "default"}
        }))
        .unwrap()
    }

    #[test]
    fn visitors_are_limited_by_id_and_more_loosely_by_ip_without_storing_either() {
        let both = visitor_checks(Some("v-123"), Some("203.0.113.9"), 20);
        assert_eq!(both.len(), 2);
        assert_eq!((both[0].0, both[0].1.limit), (LimitKind::Visitor, 20));
        assert_eq!((both[1].0, both[1].1.limit), (LimitKind::Ip, 100));
        assert!(!both
            .iter()
            .any(|(_, c)| c.key.contains("v-123") || c.key.contains("203.0")));
        // No usable visitor id: the IP stands in for it.
        let long = "x".repeat(65);
        let ip_only = visitor_checks(Some(&long), Some("203.0.113.9"), 20);
        assert_eq!(
            ip_only[0].1.key,
            visitor_checks(None, Some("203.0.113.9"), 20)[0].1.key
        );
        assert!(visitor_checks(None, None, 20).is_empty());
    }

    #[test]
    fn a_chat_service_must_answer_200_with_a_reply() {
        let ok = service_answer(Ok((200, r#"{"reply":"Hi"}"#))).unwrap();
        assert_eq!(ok, "Hi");
        let e = service_answer(Ok((500, r#"{"reply":"Hi"}"#))).unwrap_err();
        assert_eq!(e.message, "the chat service answered 500 without a reply");
        let e = service_answer(Err(&FetchError::Timeout(30_000))).unwrap_err();
        assert_eq!(e.status(), 504);
    }

    #[test]
    fn a_conversation_is_the_tenants_own_or_a_new_one() {
        let t = tenant();
        let key = [[9u8; 32]];
        let id = conversation_for(&key, "shop", &t, None, &[1; 16]).unwrap();
        assert_eq!(
            conversation_for(&key, "shop", &t, Some(&id), &[2; 16]).unwrap(),
            id
        );
        assert!(conversation_for(&key, "other", &t, Some(&id), &[2; 16]).is_err());
        // During a master key rotation the old key's ids still name their conversation; new
        // ones are signed with the new key; once the old key is gone its ids are refused.
        let rotating = [[5u8; 32], [9u8; 32]];
        assert_eq!(
            conversation_for(&rotating, "shop", &t, Some(&id), &[2; 16]).unwrap(),
            id
        );
        let fresh = conversation_for(&rotating, "shop", &t, None, &[3; 16]).unwrap();
        assert!(issued_conversation_id(&[[5u8; 32]], "shop", "", &fresh));
        assert!(conversation_for(&[[5u8; 32]], "shop", &t, Some(&id), &[2; 16]).is_err());
        assert_eq!(ChatSettings::of(&t).max_history, DEFAULT_HISTORY);
    }

    #[test]
    fn the_script_revalidates_by_its_content() {
        let (h, current) = script_headers("console.log(1)", None);
        assert!(!current);
        let etag = h[0].1.clone();
        assert!(script_headers("console.log(1)", Some(&format!("W/\"x\", {etag}"))).1);
        assert!(!script_headers("console.log(2)", Some(&etag)).1);
    }

    #[test]
    fn a_browser_needs_an_allowed_origin() {
        let t = tenant();
        let ok = cors_origin(&t, Some("https://shop.example.com"), true).unwrap();
        assert_eq!(ok.as_deref(), Some("https://shop.example.com"));
        assert_eq!(
            cors_origin(&t, Some("https://evil.io"), false)
                .unwrap_err()
                .status(),
            403
        );
        assert_eq!(cors_origin(&t, None, true).unwrap_err().status(), 403);
        assert_eq!(cors_origin(&t, None, false).unwrap(), None);
        assert_eq!(theme(&t)["title"], "Shop");
    }

    #[test]
    fn origins_are_matched_exactly() {
        let t = tenant();
        assert!(origin_allowed(&t, Some("https://shop.example.com")));
        for o in [
            "https://shop.example.com.evil.io",
            "http://shop.example.com",
            "https://evil.io",
            "null",
        ] {
            assert!(!origin_allowed(&t, Some(o)), "{o}");
        }
        assert!(!origin_allowed(&t, None));
    }

    #[test]
    fn chat_input_is_checked() {
        let ok = parse_chat(
            br#"{"message":"  hi  ","conversation_id":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}"#,
        )
        .unwrap();
        assert_eq!(ok.message, "hi");
        assert!(ok.conversation_id.is_some());
        for (body, needle) in [
            (&b"{"[..], "not valid JSON"),
            (b"[]", "JSON object"),
            (b"{}", "`message` is required"),
            (br#"{"message":5}"#, "must be a string"),
            (
                br#"{"message":"x","conversation_id":"../etc"}"#,
                "conversation_id",
            ),
            (
                br#"{"message":"x","tenant":"other"}"#,
                "unknown field `tenant`",
            ),
        ] {
            assert!(
                parse_chat(body).unwrap_err().message.contains(needle),
                "{needle}"
            );
        }
        let long = format!("{{\"message\":\"{}\"}}", "a".repeat(MAX_MESSAGE_CHARS + 1));
        assert!(parse_chat(long.as_bytes()).is_err());
    }

    #[test]
    fn request_carries_prompt_history_and_message() {
        let h = vec![
            Turn {
                role: "user".into(),
                content: "a".into(),
            },
            Turn {
                role: "assistant".into(),
                content: "b".into(),
            },
        ];
        let r = llm_request(&tenant(), &h, "c").unwrap();
        assert!(r.stream);
        assert_eq!(r.model, "default");
        let m = r.body["messages"].as_array().unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!(m[0]["content"], "Be kind.");
        assert_eq!(m[3]["content"], "c");
    }

    #[test]
    fn history_is_bounded_to_whole_turns() {
        let turns: Vec<Turn> = (0..9)
            .map(|i| Turn {
                role: if i % 2 == 0 { "user" } else { "assistant" }.into(),
                content: i.to_string(),
            })
            .collect();
        let kept = bound_history(turns, 4);
        assert_eq!(
            kept.iter().map(|t| t.content.as_str()).collect::<Vec<_>>(),
            ["6", "7", "8"]
        );
        assert_eq!(kept[0].role, "user");
    }

    #[test]
    fn chat_service_replies() {
        assert_eq!(
            service_reply(r#"{"reply":"Hi","quick_replies":["Yes","No"]}"#).unwrap(),
            "Hi\n[[Yes | No]]"
        );
        assert_eq!(service_reply(r#"{"reply":"Hi"}"#).unwrap(), "Hi");
        assert_eq!(service_reply("nope"), None);
    }

    #[test]
    fn conversation_ids() {
        let key = [7u8; 32];
        let id = new_conversation_id(&key, "acme", "i1", &[0xab; 16]);
        assert!(valid_conversation_id(&id));
        let keys = [key];
        assert!(issued_conversation_id(&keys, "acme", "i1", &id));
        // Bound to the tenant, its incarnation and the gateway's key; the random half alone or a
        // changed tag is not an id.
        assert!(!issued_conversation_id(&keys, "globex", "i1", &id));
        assert!(!issued_conversation_id(&keys, "acme", "i2", &id));
        assert!(!issued_conversation_id(&[[8u8; 32]], "acme", "i1", &id));
        assert!(!issued_conversation_id(&keys, "acme", "i1", &id[..32]));
        let mut forged = id.clone().into_bytes();
        forged[63] = if forged[63] == b'0' { b'1' } else { b'0' };
        assert!(!issued_conversation_id(
            &keys,
            "acme",
            "i1",
            std::str::from_utf8(&forged).unwrap()
        ));
        assert_ne!(id, new_conversation_id(&key, "acme", "i1", &[0xac; 16]));
        assert!(!valid_conversation_id("ABABABABABABABABABABABABABABABAB"));
        assert!(!valid_conversation_id("short"));
    }
}
