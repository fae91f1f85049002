//! The LLM response cache: whether a request is answered from the cache, under which key and for
//! how long. Off unless the route (`cache.ttl_seconds`) or the request (`x-gateway-cache-ttl`,
//! `x-gateway-cache-key`) turns it on; `x-gateway-cache: skip` bypasses it, and a route with
//! `cache.client: "refuse"` refuses the request's TTL and key. The key is a digest of everything
//! that decides what an answer may be (`Scope`: the tenant and its incarnation, the route, its
//! targets, its guardrails, the dialect and shape of the answer) and of the normalized body (or,
//! instead of the body only, the caller's own key); never of a credential. A request with
//! `temperature` above 0 is cached only when it asks itself. What is kept is what the client was
//! sent, after the answer guardrails.

pub use super::config::{CacheConfig, ClientControl, MAX_TTL_S};
use super::request::ClientRequest;
use super::routing::Target;
use super::{Dialect, Usage};
use crate::core::error::ApiError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Everything besides the body that decides what an answer to a request may be: two requests
/// share an entry only if all of it is the same.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub tenant: &'a str,
    /// The tenant's incarnation: a tenant deleted and created again reads none of the old
    /// answers.
    pub incarnation: &'a str,
    /// The route (alias) asked for.
    pub route: &'a str,
    /// Its targets, in any order.
    pub targets: &'a [Target],
    /// The guardrails in force on the route (an answer kept under other rules may not be one
    /// these would let through).
    pub guardrails: &'a [crate::core::llm::guardrails::Rule],
    /// The API key asking (its id): a caller's own cache key is that key's alone, so one key
    /// cannot choose what another reads under a name.
    pub caller: Option<&'a str>,
    /// Headers besides the body that change the answer (`anthropic-beta`).
    pub beta: Option<&'a str>,
}

/// Answers larger than this are not stored.
pub const MAX_ENTRY_BYTES: usize = 1024 * 1024;

/// The cache headers of a request.
#[derive(Debug, Clone, Default)]
pub struct CacheHeaders {
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
    asked: &CacheHeaders,
    scope: &Scope,
    req: &ClientRequest,
) -> Result<Decision, ApiError> {
    if route.is_some_and(|c| c.client == ClientControl::Refuse)
        && (asked.ttl.is_some() || asked.key.is_some())
    {
        return Err(ApiError::bad_request(
            "this route does not let requests control its cache (`cache.client` is `refuse`): send no `x-gateway-cache-ttl` or `x-gateway-cache-key`",
        ));
    }
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
    let route_ttl = route
        .map(|c| c.ttl_seconds.min(MAX_TTL_S))
        .filter(|t| *t > 0);
    let Some(ttl_s) = asked_ttl.or(route_ttl) else {
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
        key: key(scope, req, custom),
        ttl_s,
        kv: route.is_some_and(|c| c.kv),
    })
}

/// The digest an entry is stored under: the scope, the shape of the answer, and the body as
/// sent (or instead of the body only, the caller's own key).
fn key(scope: &Scope, req: &ClientRequest, custom: Option<&str>) -> String {
    let dialect = match req.dialect {
        Dialect::OpenAi => "openai",
        Dialect::Anthropic => "anthropic",
        Dialect::Responses => "responses",
        Dialect::Gemini => "gemini",
        Dialect::Embeddings => "embeddings",
    };
    // The route's targets (each as the provider it is reached at), not the order this request
    // tries them in.
    let mut targets: Vec<String> = scope
        .targets
        .iter()
        .map(|t| {
            let url = t.base_url.as_deref().unwrap_or_default();
            let version = t.api_version.as_deref().unwrap_or_default();
            // Bedrock's region and Vertex's project and location are part of the address, and
            // Bedrock's API of the answer's shape.
            let p = &t.place;
            let region = p.region.as_deref().unwrap_or_default();
            let project = p.project.as_deref().unwrap_or_default();
            let location = p.location.as_deref().unwrap_or_default();
            format!(
                "{}/{}\x1d{:?}\x1d{url}\x1d{version}\x1d{region}\x1d{:?}\x1d{project}\x1d{location}",
                t.provider, t.model, t.kind, p.api
            )
        })
        .collect();
    targets.sort();
    let rules = serde_json::to_string(scope.guardrails).unwrap_or_default();
    let mut h = Sha256::new();
    let output_cap = req.output_cap.to_string();
    for part in [
        "llm-cache/2",
        scope.tenant,
        scope.incarnation,
        scope.route,
        &targets.join("\x1e"),
        &rules,
        dialect,
        if req.stream { "stream" } else { "whole" },
        if req.include_usage { "usage" } else { "-" },
        if req.thinking { "thinking" } else { "-" },
        &output_cap,
        scope.beta.unwrap_or_default(),
    ] {
        // Each part's length first (the same width on every target), so parts cannot run
        // together.
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    match custom {
        Some(k) => {
            h.update(b"key");
            h.update(scope.caller.unwrap_or_default().as_bytes());
            h.update([0x1f]);
            h.update(k.as_bytes());
        }
        None => {
            // The body as sent, less what does not shape the answer (who the end user is). Its
            // maps are ordered by key, so the same request always gives the same text. A
            // Responses answer echoes `user`, `metadata` and `safety_identifier`: they stay.
            let mut body = req.body.clone();
            let unshaping: &[&str] = match req.dialect {
                Dialect::Responses => &["stream"],
                _ => &["user", "metadata", "stream"],
            };
            for k in unshaping {
                body.remove(*k);
            }
            h.update(b"body");
            h.update(serde_json::Value::Object(body).to_string().as_bytes());
        }
    }
    hex::encode(h.finalize())
}

/// Whether a kept answer may be served to a request of this route: it must have come from one
/// of the route's targets (what the key was allowed to reach when it was admitted).
pub fn servable(entry: &Entry, targets: &[Target]) -> bool {
    targets
        .iter()
        .any(|t| t.provider == entry.provider && t.model == entry.model)
}

/// What is kept: the answer as the client received it, after the answer guardrails (JSON, or the
/// stream's events), with the target that gave it and its usage.
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
    format!("{}{key}", kv_prefix(tenant))
}

/// What every KV key of a tenant's entries starts with.
pub fn kv_prefix(tenant: &str) -> String {
    format!("llm:{tenant}:")
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
            client: ClientControl::Allow,
        })
    }

    fn key_of(d: Decision) -> String {
        match d {
            Decision::Use { key, .. } => key,
            other => panic!("{other:?}"),
        }
    }

    fn scope(tenant: &str) -> Scope<'_> {
        Scope {
            tenant,
            incarnation: "i1",
            route: "m",
            targets: &[],
            guardrails: &[],
            caller: Some("key_1"),
            beta: None,
        }
    }

    fn target(provider: &str, model: &str) -> Target {
        Target {
            provider: provider.into(),
            kind: crate::core::llm::config::ProviderKind::Openai,
            model: model.into(),
            timeout_ms: 1000,
            retries: 0,
            base_url: None,
            weight: 1,
            api_version: None,
            bearer: false,
            catalog: model.into(),
            family: crate::core::llm::config::ProviderKind::Openai,
            place: Default::default(),
        }
    }

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
            decide(None, &CacheHeaders::default(), &scope("t"), &r).unwrap(),
            Decision::Off
        );
        let by_route = decide(on(60).as_ref(), &CacheHeaders::default(), &scope("t"), &r).unwrap();
        assert!(matches!(by_route, Decision::Use { ttl_s: 60, .. }));
        let asked = CacheHeaders {
            ttl: Some("30".into()),
            ..Default::default()
        };
        assert!(matches!(
            decide(None, &asked, &scope("t"), &r).unwrap(),
            Decision::Use { ttl_s: 30, .. }
        ));
        let skip = CacheHeaders {
            mode: Some("skip".into()),
            ttl: Some("30".into()),
            ..Default::default()
        };
        assert_eq!(
            decide(on(60).as_ref(), &skip, &scope("t"), &r).unwrap(),
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
            decide(on(60).as_ref(), &CacheHeaders::default(), &scope("t"), &hot).unwrap(),
            Decision::Off
        );
        let asked = CacheHeaders {
            ttl: Some("60".into()),
            ..Default::default()
        };
        assert!(matches!(
            decide(None, &asked, &scope("t"), &hot).unwrap(),
            Decision::Use { .. }
        ));
        let cold = req(
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}),
        );
        assert!(matches!(
            decide(
                on(60).as_ref(),
                &CacheHeaders::default(),
                &scope("t"),
                &cold
            )
            .unwrap(),
            Decision::Use { .. }
        ));
    }

    #[test]
    fn bad_headers_are_refused() {
        let r = req(base());
        for asked in [
            CacheHeaders {
                mode: Some("always".into()),
                ..Default::default()
            },
            CacheHeaders {
                ttl: Some("0".into()),
                ..Default::default()
            },
            CacheHeaders {
                ttl: Some("86401".into()),
                ..Default::default()
            },
            CacheHeaders {
                ttl: Some("1.5".into()),
                ..Default::default()
            },
            CacheHeaders {
                key: Some(String::new()),
                ..Default::default()
            },
            CacheHeaders {
                key: Some("a b".into()),
                ..Default::default()
            },
            CacheHeaders {
                key: Some("k".repeat(257)),
                ..Default::default()
            },
        ] {
            let e = decide(on(60).as_ref(), &asked, &scope("t"), &r).unwrap_err();
            assert_eq!(e.status(), 400, "{asked:?}");
        }
    }

    #[test]
    fn the_key_follows_what_shapes_the_answer_and_the_tenant() {
        let k_in = |s: &Scope, body: serde_json::Value| {
            key_of(decide(on(60).as_ref(), &CacheHeaders::default(), s, &req(body)).unwrap())
        };
        let k = |tenant: &str, body: serde_json::Value| k_in(&scope(tenant), body);
        let a = k("t", base());
        assert_eq!(a, k("t", base()), "stable");
        assert_ne!(a, k("u", base()), "scoped by tenant");
        let mut other = base();
        other["messages"][0]["content"] = json!("hello");
        assert_ne!(a, k("t", other));
        let mut tools = base();
        tools["tools"] = json!([{"type": "function", "function": {"name": "f"}}]);
        assert_ne!(a, k("t", tools));
        let mut capped = base();
        capped["max_tokens"] = json!(10);
        assert_ne!(a, k("t", capped));
        let pm = [target("p", "m")];
        let with = |targets| Scope {
            targets,
            ..scope("t")
        };
        assert_ne!(a, k_in(&with(&pm), base()), "the route's targets");
        let pq = [target("p", "m"), target("q", "m")];
        let qp = [target("q", "m"), target("p", "m")];
        assert_eq!(
            k_in(&with(&pq), base()),
            k_in(&with(&qp), base()),
            "in any order"
        );
        let mut elsewhere = target("p", "m");
        elsewhere.base_url = Some("https://other.example/v1".into());
        assert_ne!(
            k_in(&with(&pm), base()),
            k_in(&with(&[elsewhere]), base()),
            "a target reached elsewhere"
        );
        let mut user = base();
        user["user"] = json!("someone");
        assert_eq!(a, k("t", user), "who asks does not shape the answer");
        let mut streamed = base();
        streamed["stream"] = json!(true);
        assert_ne!(a, k("t", streamed), "a stream is kept as events");
        // Field order does not matter.
        let reordered: serde_json::Value = serde_json::from_str(
            r#"{"messages": [{"content": "hi", "role": "user"}], "model": "m"}"#,
        )
        .unwrap();
        assert_eq!(a, k("t", reordered));
    }

    #[test]
    fn everything_that_decides_the_answer_scopes_the_key_also_a_callers_own() {
        let own = |s: &Scope, body| {
            let asked = CacheHeaders {
                key: Some("ticket:42".into()),
                ..Default::default()
            };
            key_of(decide(on(60).as_ref(), &asked, s, &req(body)).unwrap())
        };
        let base_scope = scope("t");
        let a = own(&base_scope, base());
        // The caller's key replaces the body digest only.
        let mut different = base();
        different["messages"][0]["content"] = json!("other");
        assert_eq!(a, own(&base_scope, different));
        assert_ne!(a, own(&scope("u"), base()), "tenant");
        let reborn = Scope {
            incarnation: "i2",
            ..scope("t")
        };
        assert_ne!(a, own(&reborn, base()), "the tenant's incarnation");
        let internal = Scope {
            route: "internal",
            ..scope("t")
        };
        assert_ne!(a, own(&internal, base()), "the route");
        let pm = [target("p", "m")];
        let targets = Scope {
            targets: &pm,
            ..scope("t")
        };
        assert_ne!(a, own(&targets, base()), "the targets");
        let mut elsewhere = target("p", "m");
        elsewhere.place.region = Some("eu-west-1".into());
        let moved = [elsewhere.clone()];
        let in_region = own(
            &Scope {
                targets: &moved,
                ..scope("t")
            },
            base(),
        );
        assert_ne!(
            in_region,
            own(&targets, base()),
            "a Bedrock target's region"
        );
        elsewhere.place.api = crate::core::llm::config::BedrockApi::Invoke;
        let invoked = [elsewhere];
        let api = own(
            &Scope {
                targets: &invoked,
                ..scope("t")
            },
            base(),
        );
        assert_ne!(in_region, api, "a Bedrock target's API");
        let mut vertex = target("p", "m");
        vertex.place.location = Some("us-east5".into());
        let regional = [vertex.clone()];
        let east = own(
            &Scope {
                targets: &regional,
                ..scope("t")
            },
            base(),
        );
        vertex.place.location = Some("global".into());
        let global = [vertex.clone()];
        assert_ne!(
            east,
            own(
                &Scope {
                    targets: &global,
                    ..scope("t")
                },
                base()
            ),
            "a Vertex location"
        );
        vertex.place.project = Some("other-project".into());
        let elsewhere = [vertex];
        assert_ne!(
            east,
            own(
                &Scope {
                    targets: &elsewhere,
                    ..scope("t")
                },
                base()
            ),
            "a Vertex project"
        );
        let rules: Vec<crate::core::llm::guardrails::Rule> =
            serde_json::from_value(json!([{"detector": "email", "response": "redact"}])).unwrap();
        let guarded = Scope {
            guardrails: &rules,
            ..scope("t")
        };
        assert_ne!(a, own(&guarded, base()), "the guardrails in force");
        let mut streamed = base();
        streamed["stream"] = json!(true);
        assert_ne!(a, own(&base_scope, streamed), "the answer's shape");
        let other_key = Scope {
            caller: Some("key_2"),
            ..scope("t")
        };
        assert_ne!(a, own(&other_key, base()), "the API key that named it");
        let beta = Scope {
            beta: Some("interleaved-thinking-2025-05-14"),
            ..scope("t")
        };
        assert_ne!(a, own(&beta, base()), "a header that changes the answer");
        // Without a caller's key, the keys of a tenant share entries.
        let k = |s: &Scope| {
            key_of(decide(on(60).as_ref(), &CacheHeaders::default(), s, &req(base())).unwrap())
        };
        assert_eq!(k(&base_scope), k(&other_key));
    }

    #[test]
    fn a_route_may_refuse_the_requests_own_cache_controls() {
        let refuse = Some(CacheConfig {
            ttl_seconds: 60,
            kv: false,
            client: ClientControl::Refuse,
        });
        let r = req(base());
        for asked in [
            CacheHeaders {
                key: Some("ticket:42".into()),
                ..Default::default()
            },
            CacheHeaders {
                ttl: Some("30".into()),
                ..Default::default()
            },
        ] {
            let e = decide(refuse.as_ref(), &asked, &scope("t"), &r).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.message.contains("cache.client"), "{}", e.message);
        }
        // Its own caching and a skip still work.
        assert!(matches!(
            decide(refuse.as_ref(), &CacheHeaders::default(), &scope("t"), &r).unwrap(),
            Decision::Use { ttl_s: 60, .. }
        ));
        let skip = CacheHeaders {
            mode: Some("skip".into()),
            ..Default::default()
        };
        assert_eq!(
            decide(refuse.as_ref(), &skip, &scope("t"), &r).unwrap(),
            Decision::Skip
        );
        // A route that keeps nothing itself and refuses the request's controls: never cached.
        let never = Some(CacheConfig {
            ttl_seconds: 0,
            kv: false,
            client: ClientControl::Refuse,
        });
        assert_eq!(
            decide(never.as_ref(), &CacheHeaders::default(), &scope("t"), &r).unwrap(),
            Decision::Off
        );
    }

    #[test]
    fn a_kept_answer_is_served_only_for_a_route_that_has_its_maker() {
        let entry = Entry {
            provider: "p".into(),
            model: "m".into(),
            body: "{}".into(),
            usage: Usage::default(),
            expires_ms: 1,
        };
        assert!(servable(&entry, &[target("q", "x"), target("p", "m")]));
        assert!(!servable(&entry, &[target("p", "other")]));
        assert!(!servable(&entry, &[]));
    }
}
