//! From a model name to an ordered chain of targets, the request for each target, and what to
//! do after each attempt: done, retry the same target after a delay, fall over, or give up.
//! Which targets a request fits is `fit`'s.

mod fit;

pub use fit::{fit, fit_chain, window, Fit, Fitted, Reach, Skipped};

pub use super::errors::AttemptOutcome;
use super::providers::{self, bedrock, vertex, Credentials, Envelope};
use super::request::ClientRequest;
use super::{convert, Dialect};
use crate::core::error::ApiError;
use crate::core::http::path_segment;
use crate::core::llm::config::{
    BedrockApi, KeyHeader, LlmConfig, Provider, ProviderKind, Strategy, AZURE_API_VERSION,
};
use crate::core::upstream::{HttpMethod, OutboundRequest};
use crate::core::webhook::delivery::parse_retry_after;

fn official(kind: ProviderKind) -> &'static str {
    kind.official_base().unwrap_or_default()
}

/// Per-attempt timeout when a target names none. For streams it bounds the wait for the first
/// content, not the whole answer.
pub const DEFAULT_TIMEOUT_MS: u32 = 60_000;
/// Retries of one target before falling over, when the target names none.
pub const DEFAULT_RETRIES: u32 = 1;
/// A `retry-after` longer than this is not waited for: the next target is tried instead.
pub const MAX_RETRY_WAIT_MS: u64 = 2_000;
const BACKOFF_BASE_MS: u64 = 250;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The tenant's name for the provider.
    pub provider: String,
    pub kind: ProviderKind,
    pub model: String,
    pub timeout_ms: u32,
    pub retries: u32,
    pub base_url: Option<String>,
    /// Its share under the `weighted` strategy.
    pub weight: u32,
    /// Azure OpenAI: the API version, and whether the key is a bearer token.
    pub api_version: Option<String>,
    pub bearer: bool,
    /// The model's name in the catalog (`pricing:{catalog}`).
    pub catalog: String,
    /// The kind whose habits the model has (`providers::family`): Claude on Bedrock is sized
    /// and windowed as Anthropic's.
    pub family: ProviderKind,
    /// Where and how the kind is reached beyond its base URL.
    pub place: Place,
}

/// A target's provider settings beyond its address and key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    /// Bedrock: the AWS region, and which API.
    pub region: Option<String>,
    pub api: BedrockApi,
    /// Headers the provider asks for (OpenRouter's attribution).
    pub headers: Vec<(&'static str, String)>,
    /// Vertex AI: the project and location (a region, or `global`).
    pub project: Option<String>,
    pub location: Option<String>,
}

impl Place {
    fn of(p: &Provider) -> Self {
        let mut headers = Vec::new();
        if let Some(url) = &p.site_url {
            headers.push(("http-referer", url.clone()));
        }
        if let Some(name) = &p.app_name {
            headers.push(("x-openrouter-title", name.clone()));
        }
        Place {
            region: p.region.clone(),
            api: p.api.unwrap_or_default(),
            headers,
            project: vertex::project(p).map(String::from),
            location: p.location.clone(),
        }
    }
}

impl Target {
    /// What the target speaks to a `client` of that dialect: OpenAI itself answers Responses
    /// clients in their own format; every other OpenAI-style server knows Chat Completions.
    pub fn wire(&self, client: Dialect) -> Dialect {
        match (self.kind, client) {
            (ProviderKind::Anthropic | ProviderKind::Bedrock, _) => Dialect::Anthropic,
            (ProviderKind::Vertex, _) if vertex::is_claude(&self.model) => Dialect::Anthropic,
            (ProviderKind::Gemini | ProviderKind::Vertex, _) => Dialect::Gemini,
            (_, Dialect::Embeddings) => Dialect::Embeddings,
            (ProviderKind::Openai, Dialect::Responses) => Dialect::Responses,
            _ => Dialect::OpenAi,
        }
    }

    /// How the dialect is wrapped for a `client` request (Bedrock's Converse or invoke).
    pub fn envelope(&self, client: Dialect) -> Envelope {
        providers::envelope(self.kind, self.place.api, &self.model, client)
    }

    /// The breaker's name: one breaker per tenant provider target.
    pub fn key(&self) -> String {
        format!("{}/{}", self.provider, self.model)
    }
}

/// A model name resolved: its targets in the route's order, how the route picks among them, and
/// the targets it calls only for a request too large for those.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub targets: Vec<Target>,
    pub strategy: Strategy,
    pub context_fallbacks: Vec<Target>,
}

impl Resolved {
    /// Every target the request may reach: the route's, then its context fallbacks.
    pub fn reachable(&self) -> impl Iterator<Item = &Target> {
        self.targets.iter().chain(&self.context_fallbacks)
    }
}

/// The name a provider's model has in the catalog (the target's `catalog`, when it gives one):
/// Azure's deployments are named by the tenant, so theirs is `azure/{model}` (a deployment named
/// after its model); Gemini's API may prefix `models/`; a preset's models carry the catalog's
/// prefix for the provider (`groq/…`).
pub fn catalog_name(kind: ProviderKind, model: &str, explicit: Option<&str>) -> String {
    match (explicit, kind) {
        (Some(name), _) => name.to_string(),
        (None, ProviderKind::AzureOpenai) => format!("azure/{model}"),
        (None, ProviderKind::Gemini) => model.trim_start_matches("models/").to_string(),
        (None, ProviderKind::Vertex) => format!("vertex_ai/{model}"),
        // A Bedrock model id as sent (a cross-region profile `us.…` is priced as its own);
        // an ARN by the foundation model or profile it names.
        (None, ProviderKind::Bedrock) => match model.starts_with("arn:") {
            true => model
                .rsplit_once('/')
                .map_or(model, |(_, id)| id)
                .to_string(),
            false => model.to_string(),
        },
        (None, k) => match providers::presets::preset(k) {
            Some(p) => format!("{}/{model}", p.catalog_prefix),
            None => model.to_string(),
        },
    }
}

/// `alias` from the tenant's routes, or `provider/model` for one of the tenant's providers.
pub fn resolve(model: &str, cfg: &LlmConfig) -> Result<Resolved, ApiError> {
    let target = |t: &crate::core::llm::config::Target| {
        cfg.providers.get(&t.provider).map(|p| Target {
            provider: t.provider.clone(),
            kind: p.kind,
            model: t.model.clone(),
            timeout_ms: t.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
            retries: t.retries.unwrap_or(DEFAULT_RETRIES),
            base_url: p.base_url.clone(),
            weight: t.weight.unwrap_or(1),
            api_version: p.api_version.clone(),
            bearer: p.auth == Some(KeyHeader::Bearer),
            catalog: catalog_name(p.kind, &t.model, t.catalog.as_deref()),
            family: providers::family(p.kind, &t.model),
            place: Place::of(p),
        })
    };
    if let Some(route) = cfg.routes.get(model) {
        let targets: Vec<Target> = route.targets().iter().filter_map(target).collect();
        // The admin API refuses such a route; a stored one is ours to fix, before any limit
        // is charged for a request that can go nowhere.
        if targets.is_empty() {
            return Err(ApiError::internal(format!(
                "stored route `{model}` has no target with a configured provider"
            )));
        }
        return Ok(Resolved {
            targets,
            strategy: route.strategy(),
            context_fallbacks: route
                .context_fallbacks()
                .iter()
                .filter_map(target)
                .collect(),
        });
    }
    if let Some((provider, name)) = model.split_once('/') {
        let direct = crate::core::llm::config::Target {
            provider: provider.to_string(),
            model: name.to_string(),
            timeout_ms: None,
            retries: None,
            weight: None,
            catalog: None,
        };
        if let Some(t) = target(&direct).filter(|_| !name.is_empty()) {
            return Ok(Resolved {
                targets: vec![t],
                strategy: Strategy::Ordered,
                context_fallbacks: vec![],
            });
        }
    }
    let shown: String = model.chars().take(100).collect();
    Err(ApiError::bad_request(format!(
        "unknown model `{shown}`: use an alias from this tenant's routes or `provider/model` with a configured provider (GET /v1/models lists them)"
    )))
}

/// The upstream request of one attempt at target `t`, authenticated with `creds` (an AWS key
/// signs it at `now_s`).
pub fn plan(
    req: &ClientRequest,
    t: &Target,
    creds: &Credentials,
    anthropic_beta: Option<&str>,
    now_s: u64,
) -> Result<OutboundRequest, ApiError> {
    let dialect = t.wire(req.dialect);
    let envelope = t.envelope(req.dialect);
    if t.kind == ProviderKind::Vertex && req.dialect == Dialect::Embeddings {
        return Err(ApiError::bad_request(
            "Vertex AI targets take no embeddings here: route embeddings to a gemini (Gemini API) or OpenAI-style target",
        ));
    }
    let max_completion_tokens = matches!(t.kind, ProviderKind::Openai | ProviderKind::AzureOpenai);
    let body = convert::upstream_body(req, dialect, &t.model, max_completion_tokens)?;
    // Bedrock takes Anthropic's beta flags in the body, not as a header.
    let beta = || -> Vec<String> {
        anthropic_beta
            .into_iter()
            .flat_map(|b| b.split(','))
            .map(|b| b.trim().to_string())
            .filter(|b| !b.is_empty())
            .collect()
    };
    let body = match envelope {
        Envelope::Plain => match providers::presets::preset(t.kind) {
            Some(preset) => {
                let mut body = body;
                preset.adapt(&mut body, req);
                body
            }
            None => body,
        },
        Envelope::Converse => {
            let mut converse = convert::to_converse::request(&body)?;
            convert::to_converse::with_beta(&mut converse, &beta());
            converse
        }
        Envelope::BedrockInvoke => bedrock::invoke_body(&body, &beta()),
        Envelope::VertexAnthropic => vertex::claude_body(&body, req.stream),
        Envelope::VertexGemini => body,
    };
    let mut headers: Vec<(&str, String)> = vec![("content-type", "application/json".to_string())];
    if req.stream && !envelope.framed() {
        headers.push(("accept", "text/event-stream".into()));
    }
    let operation = match (dialect, req.stream) {
        (Dialect::Gemini, _) if req.dialect == Dialect::Embeddings => "batchEmbedContents",
        (Dialect::Gemini, true) => "streamGenerateContent?alt=sse",
        (Dialect::Gemini, false) => "generateContent",
        (Dialect::Embeddings, _) => "embeddings",
        _ => "chat/completions",
    };
    let url = match envelope {
        Envelope::Plain => address(t, dialect, operation, creds.key(), &mut headers),
        Envelope::VertexAnthropic | Envelope::VertexGemini => vertex::address(
            t.base_url.as_deref(),
            t.place.project.as_deref().unwrap_or_default(),
            t.place.location.as_deref().unwrap_or_default(),
            &t.model,
            req.stream,
        ),
        Envelope::Converse | Envelope::BedrockInvoke => {
            bedrock_address(t, envelope, req.stream, &mut headers)
        }
    };
    if let Credentials::Bearer(token) = creds {
        headers.push(("authorization", format!("Bearer {token}")));
    }
    // Vertex reads the client's beta flags from the header too (Bedrock's are in its body).
    if matches!(envelope, Envelope::Plain | Envelope::VertexAnthropic)
        && dialect == Dialect::Anthropic
    {
        if let Some(b) = anthropic_beta {
            headers.push(("anthropic-beta", b.into()));
        }
    }
    for (name, value) in &t.place.headers {
        headers.push((name, value.clone()));
    }
    let mut request = OutboundRequest {
        method: HttpMethod::Post,
        url,
        headers: headers
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        // `to_string` (not `Value`'s Display, a formatter call a token); a `Value` always writes.
        body: Some(crate::core::upstream::OutboundBody::Text(
            serde_json::to_string(&body).unwrap_or_default(),
        )),
    };
    if let Credentials::Aws(aws) = creds {
        let region = t.place.region.as_deref().unwrap_or_default();
        crate::core::sign::sigv4::sign(&mut request, aws, region, "bedrock", now_s)
            .map_err(ApiError::internal)?;
    }
    Ok(request)
}

/// Bedrock's runtime URL for `t`'s model: the region's endpoint (or `base_url`, a VPC
/// endpoint), the model id (or inference-profile ARN) as one path segment.
fn bedrock_address(
    t: &Target,
    envelope: Envelope,
    stream: bool,
    headers: &mut Vec<(&str, String)>,
) -> String {
    let base = match &t.base_url {
        Some(b) => b.trim_end_matches('/').to_string(),
        None => format!(
            "https://bedrock-runtime.{}.amazonaws.com",
            t.place.region.as_deref().unwrap_or_default()
        ),
    };
    let operation = match (envelope, stream) {
        (Envelope::BedrockInvoke, false) => {
            headers.push(("accept", "application/json".into()));
            "invoke"
        }
        (Envelope::BedrockInvoke, true) => {
            headers.push(("x-amzn-bedrock-accept", "application/json".into()));
            "invoke-with-response-stream"
        }
        (_, false) => "converse",
        (_, true) => "converse-stream",
    };
    format!("{base}/model/{}/{operation}", path_segment(&t.model))
}

/// The URL of `t`'s API for `wire` and `operation` (OpenAI-style: `chat/completions`; Gemini:
/// `generateContent`), with the headers that carry its key.
fn address(
    t: &Target,
    wire: Dialect,
    operation: &str,
    api_key: Option<&str>,
    headers: &mut Vec<(&str, String)>,
) -> String {
    let base = |default: &str| {
        t.base_url
            .as_deref()
            .unwrap_or(default)
            .trim_end_matches('/')
            .to_string()
    };
    let bearer = |headers: &mut Vec<(&str, String)>| {
        if let Some(k) = api_key {
            headers.push(("authorization", format!("Bearer {k}")));
        }
    };
    match (t.kind, wire) {
        (_, Dialect::Anthropic) => {
            headers.push(("anthropic-version", "2023-06-01".into()));
            if let Some(k) = api_key {
                headers.push(("x-api-key", k.into()));
            }
            format!("{}/v1/messages", base(official(ProviderKind::Anthropic)))
        }
        (_, Dialect::Gemini) => {
            if let Some(k) = api_key {
                headers.push(("x-goog-api-key", k.into()));
            }
            let base = base(official(ProviderKind::Gemini));
            let model = path_segment(t.model.trim_start_matches("models/"));
            format!("{base}/v1beta/models/{model}:{operation}")
        }
        (ProviderKind::AzureOpenai, _) => {
            match (api_key, t.bearer) {
                (Some(k), false) => headers.push(("api-key", k.into())),
                _ => bearer(headers),
            }
            let version = t.api_version.as_deref().unwrap_or(AZURE_API_VERSION);
            format!(
                "{}/openai/deployments/{}/{operation}?api-version={}",
                base(""),
                path_segment(&t.model),
                path_segment(version)
            )
        }
        (_, Dialect::Responses) => {
            bearer(headers);
            format!(
                "{}/responses",
                base(t.kind.default_base().unwrap_or_default())
            )
        }
        _ => {
            bearer(headers);
            // A kind without a default address has a `base_url` (its check requires one).
            format!(
                "{}/{operation}",
                base(t.kind.default_base().unwrap_or_default())
            )
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterAttempt {
    Done,
    Retry {
        delay_ms: u64,
    },
    NextTarget,
    /// A client error: answer it; another target would refuse it too.
    GiveUp,
}

/// After attempt number `attempt` (0-based) at a target that allows `retries` retries.
pub fn after(outcome: AttemptOutcome, attempt: u32, retries: u32) -> AfterAttempt {
    if outcome == AttemptOutcome::Ok {
        return AfterAttempt::Done;
    }
    if !outcome.retryable() {
        return AfterAttempt::GiveUp;
    }
    // A timeout already cost the whole budget of this target: move on.
    if outcome == AttemptOutcome::Timeout || attempt >= retries {
        return AfterAttempt::NextTarget;
    }
    let backoff = BACKOFF_BASE_MS << attempt.min(6);
    match outcome {
        AttemptOutcome::Status(_, Some(wait)) if wait > MAX_RETRY_WAIT_MS => {
            AfterAttempt::NextTarget
        }
        AttemptOutcome::Status(_, Some(wait)) => AfterAttempt::Retry { delay_ms: wait },
        _ => AfterAttempt::Retry { delay_ms: backoff },
    }
}

/// The upstream's requested wait: `retry-after-ms` (OpenAI), else `retry-after` (seconds or an
/// HTTP date).
pub fn retry_after_ms(
    retry_after_ms: Option<&str>,
    retry_after: Option<&str>,
    now_s: u64,
) -> Option<u64> {
    if let Some(ms) = retry_after_ms.and_then(|v| v.trim().parse::<f64>().ok()) {
        if ms.is_finite() && ms >= 0.0 {
            return Some(ms as u64);
        }
    }
    retry_after
        .and_then(|v| parse_retry_after(v, now_s))
        .map(|s| s.saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    fn key(k: &str) -> Credentials {
        Credentials::Key(k.into())
    }

    use super::*;
    use crate::core::config::document::validate;
    use crate::core::llm::request::parse;
    use serde_json::json;

    fn cfg() -> LlmConfig {
        validate::<LlmConfig>(&json!({
            "providers": {
                "oai": {"kind": "openai", "api_key": "sk-x"},
                "claude": {"kind": "anthropic"},
                "local": {"kind": "openai_compatible", "base_url": "http://127.0.0.1:11434/v1/"}
            },
            "routes": {"smart": [
                {"provider": "claude", "model": "claude-sonnet-4-5", "timeout_ms": 5000},
                {"provider": "oai", "model": "gpt-4o", "retries": 0}
            ]}
        }))
        .unwrap()
    }

    #[test]
    fn aliases_and_provider_models() {
        let c = cfg();
        let chain = resolve("smart", &c).unwrap().targets;
        assert_eq!(chain.len(), 2);
        assert_eq!(
            (
                chain[0].wire(Dialect::OpenAi),
                chain[0].timeout_ms,
                chain[0].retries
            ),
            (Dialect::Anthropic, 5000, 1)
        );
        assert_eq!((chain[1].model.as_str(), chain[1].retries), ("gpt-4o", 0));
        let one = resolve("local/llama3.1:8b", &c).unwrap().targets;
        assert_eq!(
            (one[0].provider.as_str(), one[0].model.as_str()),
            ("local", "llama3.1:8b")
        );
        assert!(resolve("gpt-4o", &c)
            .unwrap_err()
            .message
            .contains("unknown model `gpt-4o`"));
        assert!(resolve("nobody/x", &c).is_err());
        assert!(resolve("oai/", &c).is_err());
    }

    #[test]
    fn a_targets_catalog_name_is_its_models_unless_its_provider_names_it_otherwise() {
        assert_eq!(catalog_name(ProviderKind::Openai, "gpt-4o", None), "gpt-4o");
        assert_eq!(
            catalog_name(ProviderKind::AzureOpenai, "gpt-4o", None),
            "azure/gpt-4o"
        );
        assert_eq!(
            catalog_name(ProviderKind::Gemini, "models/gemini-2.5-pro", None),
            "gemini-2.5-pro"
        );
        assert_eq!(
            catalog_name(ProviderKind::Gemini, "gemini-2.5-pro", None),
            "gemini-2.5-pro"
        );
        assert_eq!(
            catalog_name(ProviderKind::AzureOpenai, "prod-4o", Some("azure/gpt-4o")),
            "azure/gpt-4o"
        );
        // As KV may hold it: a fallback's provider since removed is left out.
        let c: LlmConfig = serde_json::from_value(json!({
            "providers": {"oai": {"kind": "openai"}, "g": {"kind": "gemini"}},
            "routes": {"r": {"targets": [{"provider": "g", "model": "models/gemini-2.5-flash"}],
                "context_fallbacks": [{"provider": "oai", "model": "big", "catalog": "gpt-4.1"}, {"provider": "gone", "model": "x"}]}}
        }))
        .unwrap();
        let r = resolve("r", &c).unwrap();
        assert_eq!(r.targets[0].catalog, "gemini-2.5-flash");
        let spare: Vec<_> = r
            .context_fallbacks
            .iter()
            .map(|t| (t.key(), t.catalog.as_str()))
            .collect();
        assert_eq!(spare, vec![("oai/big".to_string(), "gpt-4.1")]);
        assert_eq!(r.reachable().count(), 2);
        assert!(resolve("oai/gpt-4o", &c)
            .unwrap()
            .context_fallbacks
            .is_empty());
    }

    #[test]
    fn plans_use_each_providers_url_and_auth() {
        let c = cfg();
        let req = parse(
            Dialect::OpenAi,
            br#"{"model":"smart","messages":[{"role":"user","content":"hi"}],"stream":true}"#,
        )
        .unwrap();
        let chain = resolve("smart", &c).unwrap().targets;
        let a = plan(&req, &chain[0], &key("sk-ant"), None, 0).unwrap();
        assert_eq!(a.url, "https://api.anthropic.com/v1/messages");
        assert!(a.headers.contains(&("x-api-key".into(), "sk-ant".into())));
        assert!(a
            .headers
            .contains(&("anthropic-version".into(), "2023-06-01".into())));
        let body: serde_json::Value = serde_json::from_str(a.body_text().unwrap()).unwrap();
        assert_eq!(
            (body["model"].as_str(), body["max_tokens"].as_u64()),
            (Some("claude-sonnet-4-5"), Some(4096))
        );
        let o = plan(&req, &chain[1], &key("sk-x"), None, 0).unwrap();
        assert_eq!(o.url, "https://api.openai.com/v1/chat/completions");
        let body: serde_json::Value = serde_json::from_str(o.body_text().unwrap()).unwrap();
        assert_eq!(body["model"], "gpt-4o");
        assert_eq!(
            body["stream_options"]["include_usage"], true,
            "the gateway asks for usage itself"
        );
        // An uncapped request is sent the ceiling it is charged for, under each upstream's name.
        assert_eq!(body["max_completion_tokens"], 4096);
        let l = plan(
            &req,
            &resolve("local/m", &c).unwrap().targets[0],
            &Credentials::None,
            None,
            0,
        )
        .unwrap();
        assert_eq!(l.url, "http://127.0.0.1:11434/v1/chat/completions");
        assert!(!l.headers.iter().any(|(k, _)| *k == "authorization"));
        let body: serde_json::Value = serde_json::from_str(l.body_text().unwrap()).unwrap();
        assert_eq!(body["max_tokens"], 4096);
        let capped = req.clone().with_output_ceiling(512);
        let a: serde_json::Value = serde_json::from_str(
            plan(&capped, &chain[0], &Credentials::None, None, 0)
                .unwrap()
                .body_text()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(a["max_tokens"], 512);
        assert!(capped.estimated_tokens >= 512 && capped.estimated_tokens < 1024);
    }

    #[test]
    fn azure_deployments_their_version_and_key_header() {
        // As KV may hold it: a fallback's provider since removed is left out.
        let c: LlmConfig = serde_json::from_value(json!({"providers": {
            "az": {"kind": "azure_openai", "base_url": "https://acme.openai.azure.com/", "api_key": "k1"},
            "entra": {"kind": "azure_openai", "base_url": "https://acme.openai.azure.com", "api_key": "tok", "auth": "bearer", "api_version": "2025-04-01-preview"}
        }}))
        .unwrap();
        let req = parse(Dialect::Responses, br#"{"model":"az/gpt 4o","input":"hi"}"#).unwrap();
        let t = &resolve("az/gpt 4o", &c).unwrap().targets[0];
        assert_eq!(
            t.wire(Dialect::Responses),
            Dialect::OpenAi,
            "deployments speak chat"
        );
        let a = plan(&req, t, &key("k1"), None, 0).unwrap();
        assert_eq!(
            a.url,
            "https://acme.openai.azure.com/openai/deployments/gpt%204o/chat/completions?api-version=2024-10-21"
        );
        assert!(a.headers.contains(&("api-key".into(), "k1".into())));
        let body: serde_json::Value = serde_json::from_str(a.body_text().unwrap()).unwrap();
        assert_eq!(body["messages"][0]["content"], "hi");
        assert_eq!(body["max_completion_tokens"], 4096);
        let e = plan(
            &req,
            &resolve("entra/gpt-4o", &c).unwrap().targets[0],
            &key("tok"),
            None,
            0,
        )
        .unwrap();
        assert!(e
            .url
            .ends_with("/gpt-4o/chat/completions?api-version=2025-04-01-preview"));
        assert!(e
            .headers
            .contains(&("authorization".into(), "Bearer tok".into())));
        for bad in [
            json!({"az": {"kind": "azure_openai", "api_key": "k"}}),
            json!({"az": {"kind": "azure_openai", "base_url": "https://a.openai.azure.com"}}),
            json!({"az": {"kind": "azure_openai", "base_url": "https://a.openai.azure.com", "api_key": "k", "api_version": "x&y=1"}}),
            json!({"o": {"kind": "openai", "auth": "bearer"}}),
        ] {
            assert!(
                validate::<LlmConfig>(&json!({"providers": bad})).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn retry_fall_over_or_give_up() {
        assert_eq!(after(AttemptOutcome::Ok, 0, 1), AfterAttempt::Done);
        assert_eq!(
            after(AttemptOutcome::Status(500, None), 0, 1),
            AfterAttempt::Retry { delay_ms: 250 }
        );
        assert_eq!(
            after(AttemptOutcome::Status(500, None), 1, 1),
            AfterAttempt::NextTarget
        );
        assert_eq!(
            after(AttemptOutcome::Status(429, Some(1200)), 0, 1),
            AfterAttempt::Retry { delay_ms: 1200 }
        );
        assert_eq!(
            after(AttemptOutcome::Status(429, Some(30_000)), 0, 3),
            AfterAttempt::NextTarget
        );
        assert_eq!(
            after(AttemptOutcome::Timeout, 0, 3),
            AfterAttempt::NextTarget
        );
        assert_eq!(
            after(AttemptOutcome::Network, 0, 0),
            AfterAttempt::NextTarget
        );
        assert_eq!(
            after(AttemptOutcome::Status(400, None), 0, 3),
            AfterAttempt::GiveUp
        );
        assert!(
            AttemptOutcome::Status(503, None).is_failure()
                && !AttemptOutcome::Status(429, None).is_failure()
        );
    }

    #[test]
    fn retry_after_headers() {
        assert_eq!(retry_after_ms(Some("1500"), Some("9"), 0), Some(1500));
        assert_eq!(retry_after_ms(None, Some("2"), 0), Some(2000));
        assert_eq!(retry_after_ms(Some("soon"), None, 0), None);
        assert_eq!(
            retry_after_ms(None, Some("Thu, 01 Jan 1970 00:00:10 GMT"), 4),
            Some(6000)
        );
    }
}
