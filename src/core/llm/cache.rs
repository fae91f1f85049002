//! The LLM response cache: whether a request is answered from the cache, under which key and for
//! how long. Off unless the route (`cache.ttl_seconds`) or the request (`x-gateway-cache-ttl`,
//! `x-gateway-cache-key`) turns it on; `x-gateway-cache: skip` bypasses it. The key is a digest of
//! the tenant and the normalized request (the route's targets, the client's dialect, whether it
//! streams, and every field of the body that shapes the answer), never of a credential; a tenant
//! can only reach its own entries. A request with `temperature` above 0 is cached only when it
//! asks itself.

use super::request::ClientRequest;
use super::{Dialect, Usage};
use crate::core::error::ApiError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A route's cache setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    pub ttl_seconds: u32,
    /// Also keep answers in KV, found from every location (the Cache API is per location).
    #[serde(default)]
    pub kv: bool,
}

/// The longest an answer is kept.
pub const MAX_TTL_S: u32 = 86_400;
/// Answers larger than this are not stored.
pub const MAX_ENTRY_BYTES: usize = 1024 * 1024;

/// The cache headers of a request.
#[derive(Debug, Clone, Default)]
pub struct Asked {
    /// `x-gateway-cache`: `skip`.
    pub mode: Option<String>,
    /// `x-gateway-cache-ttl`: seconds.
    pub ttl: Option<String>,
    /// `x-gateway-cache-key`: the caller's own key.
    pub key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Not cached (the answer says nothing about the cache).
    Off,
    /// The caller bypassed the cache (`x-gateway-cache: skip`).
    Skip,
    /// Look up `key`; on a miss, keep the answer `ttl_s` seconds (in KV too when `kv`).
    Use { key: String, ttl_s: u32, kv: bool },
}

impl Decision {
    /// The `x-gateway-cache` answer header for this decision and whether it was a hit.
    pub fn header(&self, hit: bool) -> Option<&'static str> {
        match (self, hit) {
            (Decision::Off, _) => None,
            (Decision::Skip, _) => Some("skip"),
            (Decision::Use { .. }, true) => Some("hit"),
            (Decision::Use { .. }, false) => Some("miss"),
        }
    }
}

/// Whether and how `req` (already through the request guardrails) uses the cache.
pub fn decide(
    route: Option<&CacheConfig>,
    asked: &Asked,
    tenant: &str,
    req: &ClientRequest,
    targets: &[String],
) -> Result<Decision, ApiError> {
    match asked.mode.as_deref().map(str::trim) {
        None => {}
        Some(m) if m.eq_ignore_ascii_case("skip") => return Ok(Decision::Skip),
        Some(_) => {
            return Err(ApiError::bad_request(
                "`x-gateway-cache` may only be `skip` (a TTL turns the cache on: `x-gateway-cache-ttl`)",
            ))
        }
    }
    let asked_ttl = match asked.ttl.as_deref() {
        None => None,
        Some(t) => Some(
            t.trim()
                .parse::<u32>()
                .ok()
                .filter(|s| (1..=MAX_TTL_S).contains(s))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "`x-gateway-cache-ttl` must be whole seconds from 1 to {MAX_TTL_S}"
                    ))
                })?,
        ),
    };
    let custom = match asked.key.as_deref() {
        None => None,
        Some(k) if (1..=256).contains(&k.len()) && k.bytes().all(|b| (0x21..0x7f).contains(&b)) => {
            Some(k)
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "`x-gateway-cache-key` must be 1-256 visible ASCII characters",
            ))
        }
    };
    let explicit = asked_ttl.is_some() || custom.is_some();
    let Some(ttl_s) = asked_ttl.or(route.map(|c| c.ttl_seconds.min(MAX_TTL_S))) else {
        return Ok(Decision::Off);
    };
    let sampled = req
        .body
        .get("temperature")
        .and_then(serde_json::Value::as_f64)
        .is_some_and(|t| t > 0.0);
    if ttl_s == 0 || (sampled && !explicit) {
        return Ok(Decision::Off);
    }
    Ok(Decision::Use {
        key: key(tenant, req, targets, custom),
        ttl_s,
        kv: route.is_some_and(|c| c.kv),
    })
}

/// The digest an entry is stored under.
fn key(tenant: &str, req: &ClientRequest, targets: &[String], custom: Option<&str>) -> String {
    let dialect = match req.dialect {
        Dialect::OpenAi => "openai",
        Dialect::Anthropic => "anthropic",
        Dialect::Responses => "responses",
        Dialect::Gemini => "gemini",
        Dialect::Embeddings => "embeddings",
    };
    let mut h = Sha256::new();
    for part in [
        "llm-cache/1",
        tenant,
        dialect,
        if req.stream { "stream" } else { "whole" },
    ] {
        h.update(part.as_bytes());
        h.update([0x1f]);
    }
    match custom {
        Some(k) => h.update(format!("key\x1f{k}").as_bytes()),
        None => {
            // The route's targets, not the order this request tries them in.
            let mut targets = targets.to_vec();
            targets.sort();
            h.update(targets.join("\x1e").as_bytes());
            h.update([0x1f]);
            // The body as sent, less what does not shape the answer (who the end user is). Its
            // maps are ordered by key, so the same request always gives the same text.
            let mut body = req.body.clone();
            for k in ["user", "metadata", "stream"] {
                body.remove(k);
            }
            h.update(serde_json::Value::Object(body).to_string().as_bytes());
            h.update([0x1f]);
            h.update(req.output_cap.to_string().as_bytes());
        }
    }
    hex::encode(h.finalize())
}

/// What is kept: the answer as the client received it before the answer guardrails (JSON, or
/// the stream's events), with the target that gave it and its usage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub provider: String,
    pub model: String,
    pub body: String,
    pub usage: Usage,
    /// When it stops being an answer (ms since the epoch): every tier honours it, also one that
    /// keeps entries longer (KV keeps nothing under a minute).
    pub expires_ms: u64,
}

/// The events of a streamed answer as the client was sent them, kept for the cache until the
/// stream ends well (not over `MAX_ENTRY_BYTES`, not failed, not blocked).
#[derive(Debug, Default)]
pub struct Recorder {
    events: Vec<u8>,
    too_big: bool,
}

impl Recorder {
    pub fn push(&mut self, bytes: &[u8]) {
        if self.events.len() + bytes.len() > MAX_ENTRY_BYTES {
            self.too_big = true;
            self.events = Vec::new();
        }
        if !self.too_big {
            self.events.extend_from_slice(bytes);
        }
    }

    /// What to keep once the stream is over: its events if it ended normally (`done`) and
    /// nothing stopped it.
    pub fn finish(self, done: bool, stopped: bool) -> Option<String> {
        (done && !stopped && !self.too_big)
            .then(|| String::from_utf8_lossy(&self.events).into_owned())
    }
}

/// KV keeps nothing for less than a minute.
pub const KV_MIN_TTL_S: u32 = 60;

/// The KV key of a tenant's entry.
pub fn kv_key(tenant: &str, key: &str) -> String {
    format!("llm:{tenant}:{key}")
}

/// The Cache API address of a tenant's entry (the tenant in the path too, so that entries can be
/// told apart by tenant).
pub fn url(tenant: &str, key: &str) -> String {
    format!("https://llm-cache.gateway.internal/{tenant}/{key}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::llm::request::parse;
    use serde_json::json;

    fn req(body: serde_json::Value) -> ClientRequest {
        parse(Dialect::OpenAi, body.to_string().as_bytes())
            .unwrap()
            .with_output_ceiling(4096)
    }

    fn base() -> serde_json::Value {
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    }

    fn on(ttl: u32) -> Option<CacheConfig> {
        Some(CacheConfig {
            ttl_seconds: ttl,
            kv: false,
        })
    }

    fn key_of(d: Decision) -> String {
        match d {
            Decision::Use { key, .. } => key,
            other => panic!("{other:?}"),
        }
    }

    const T: &[String] = &[];

    #[test]
    fn a_stream_is_kept_only_whole_well_ended_and_small_enough() {
        let whole = |chunks: &[&[u8]], done, stopped| {
            let mut r = Recorder::default();
            for c in chunks {
                r.push(c);
            }
            r.finish(done, stopped)
        };
        assert_eq!(
            whole(&[b"data: a\n\n", b"data: b\n\n"], true, false).as_deref(),
            Some("data: a\n\ndata: b\n\n")
        );
        assert_eq!(
            whole(&[b"data: a\n\n"], false, false),
            None,
            "failed or cut"
        );
        assert_eq!(whole(&[b"data: a\n\n"], true, true), None, "blocked");
        let big = vec![b'x'; MAX_ENTRY_BYTES];
        assert_eq!(whole(&[&big, b"y"], true, false), None, "over the cap");
        assert!(whole(&[&big], true, false).is_some(), "at the cap");
    }

    #[test]
    fn off_unless_the_route_or_the_request_turns_it_on() {
        let r = req(base());
        assert_eq!(
            decide(None, &Asked::default(), "t", &r, T).unwrap(),
            Decision::Off
        );
        let by_route = decide(on(60).as_ref(), &Asked::default(), "t", &r, T).unwrap();
        assert!(matches!(by_route, Decision::Use { ttl_s: 60, .. }));
        let asked = Asked {
            ttl: Some("30".into()),
            ..Default::default()
        };
        assert!(matches!(
            decide(None, &asked, "t", &r, T).unwrap(),
            Decision::Use { ttl_s: 30, .. }
        ));
        let skip = Asked {
            mode: Some("skip".into()),
            ttl: Some("30".into()),
            ..Default::default()
        };
        assert_eq!(
            decide(on(60).as_ref(), &skip, "t", &r, T).unwrap(),
            Decision::Skip
        );
        assert_eq!(Decision::Skip.header(false), Some("skip"));
        assert_eq!(Decision::Off.header(false), None);
    }

    #[test]
    fn sampled_requests_only_when_asked() {
        let hot = req(
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.7}),
        );
        assert_eq!(
            decide(on(60).as_ref(), &Asked::default(), "t", &hot, T).unwrap(),
            Decision::Off
        );
        let asked = Asked {
            ttl: Some("60".into()),
            ..Default::default()
        };
        assert!(matches!(
            decide(None, &asked, "t", &hot, T).unwrap(),
            Decision::Use { .. }
        ));
        let cold = req(
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}),
        );
        assert!(matches!(
            decide(on(60).as_ref(), &Asked::default(), "t", &cold, T).unwrap(),
            Decision::Use { .. }
        ));
    }

    #[test]
    fn bad_headers_are_refused() {
        let r = req(base());
        for asked in [
            Asked {
                mode: Some("always".into()),
                ..Default::default()
            },
            Asked {
                ttl: Some("0".into()),
                ..Default::default()
            },
            Asked {
                ttl: Some("86401".into()),
                ..Default::default()
            },
            Asked {
                ttl: Some("1.5".into()),
                ..Default::default()
            },
            Asked {
                key: Some(String::new()),
                ..Default::default()
            },
            Asked {
                key: Some("a b".into()),
                ..Default::default()
            },
            Asked {
                key: Some("k".repeat(257)),
                ..Default::default()
            },
        ] {
            let e = decide(on(60).as_ref(), &asked, "t", &r, T).unwrap_err();
            assert_eq!(e.status(), 400, "{asked:?}");
        }
    }

    #[test]
    fn the_key_follows_what_shapes_the_answer_and_the_tenant() {
        let k = |tenant: &str, body: serde_json::Value, targets: &[String]| {
            key_of(
                decide(
                    on(60).as_ref(),
                    &Asked::default(),
                    tenant,
                    &req(body),
                    targets,
                )
                .unwrap(),
            )
        };
        let a = k("t", base(), T);
        assert_eq!(a, k("t", base(), T), "stable");
        assert_ne!(a, k("u", base(), T), "scoped by tenant");
        let mut other = base();
        other["messages"][0]["content"] = json!("hello");
        assert_ne!(a, k("t", other, T));
        let mut tools = base();
        tools["tools"] = json!([{"type": "function", "function": {"name": "f"}}]);
        assert_ne!(a, k("t", tools, T));
        let mut capped = base();
        capped["max_tokens"] = json!(10);
        assert_ne!(a, k("t", capped, T));
        assert_ne!(
            a,
            k("t", base(), &["p/m".to_string()]),
            "the route's targets"
        );
        let pq = ["p/m".to_string(), "q/m".to_string()];
        let qp = ["q/m".to_string(), "p/m".to_string()];
        assert_eq!(k("t", base(), &pq), k("t", base(), &qp), "in any order");
        let mut user = base();
        user["user"] = json!("someone");
        assert_eq!(a, k("t", user, T), "who asks does not shape the answer");
        let mut streamed = base();
        streamed["stream"] = json!(true);
        assert_ne!(a, k("t", streamed, T), "a stream is kept as events");
        // Field order does not matter.
        let reordered: serde_json::Value = serde_json::from_str(
            r#"{"messages": [{"content": "hi", "role": "user"}], "model": "m"}"#,
        )
        .unwrap();
        assert_eq!(a, k("t", reordered, T));
        // A caller's own key ignores the body but not the tenant.
        let own = |tenant: &str, body| {
            let asked = Asked {
                key: Some("faq:shipping".into()),
                ..Default::default()
            };
            key_of(decide(on(60).as_ref(), &asked, tenant, &req(body), T).unwrap())
        };
        let mut different = base();
        different["messages"][0]["content"] = json!("other");
        assert_eq!(own("t", base()), own("t", different));
        assert_ne!(own("t", base()), own("u", base()));
    }
}
