//! LLM providers and model routes of a tenant, `llm:{t}`.

use super::catalog::ModelEntry;
use super::guardrails::{check_rules, Rule};
use crate::core::config::document::{check_http_url, Check, Named, Secret};
use serde::{Deserialize, Serialize};

pub const SECRET_PATHS: &[&str] = &[
    "/providers/*/api_key",
    "/providers/*/aws/secret_access_key",
    "/providers/*/aws/session_token",
    "/providers/*/service_account/private_key",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    Openai,
    Anthropic,
    OpenaiCompatible,
    /// Azure OpenAI: Chat Completions at a resource's deployments.
    AzureOpenai,
    /// Google's Gemini API (AI Studio), in its own format.
    Gemini,
    /// Local and deterministic: streams a reply built from the prompt. For development and demos.
    Mock,
    /// Amazon Bedrock: Converse, or Anthropic's Messages format through `invoke`, signed with
    /// AWS Signature Version 4.
    Bedrock,
    /// Google Vertex AI: Gemini models in Gemini's format, Claude models in Anthropic's
    /// (`rawPredict`), with a service account's access tokens.
    Vertex,
    // OpenAI-compatible providers with their own address and quirks (`providers::presets`).
    Mistral,
    Groq,
    Deepseek,
    Xai,
    Together,
    Fireworks,
    Openrouter,
    Perplexity,
    Ollama,
    Vllm,
}

impl ProviderKind {
    /// The provider's official API base: the default, and the only URL the platform's own key
    /// (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`) is ever sent to.
    pub fn official_base(self) -> Option<&'static str> {
        match self {
            ProviderKind::Openai => Some("https://api.openai.com/v1"),
            ProviderKind::Anthropic => Some("https://api.anthropic.com"),
            ProviderKind::Gemini => Some("https://generativelanguage.googleapis.com"),
            _ => None,
        }
    }

    /// Where a provider of this kind is called when it names no `base_url`: its official API,
    /// or a preset's. `None`: the kind has no single address (its `base_url` is required, or,
    /// for Bedrock, built from the region).
    pub fn default_base(self) -> Option<&'static str> {
        self.official_base()
            .or_else(|| super::providers::presets::preset(self).and_then(|p| p.base))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Provider {
    pub kind: ProviderKind,
    pub base_url: Option<String>,
    pub api_key: Option<Secret>,
    /// Azure OpenAI: the `api-version` query parameter (default `AZURE_API_VERSION`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Azure OpenAI: how `api_key` is sent (`api_key`: the `api-key` header; `bearer`: a
    /// Microsoft Entra ID token in `Authorization`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<KeyHeader>,
    /// Bedrock: the AWS region (`us-east-1`): the endpoint and the signature's scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Bedrock: the AWS access key the requests are signed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsKeys>,
    /// Bedrock: which API a request is sent to (default `auto`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<BedrockApi>,
    /// OpenRouter: the app's URL and name, sent as `HTTP-Referer` and `X-OpenRouter-Title` (its app rankings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_name: Option<String>,
    /// Vertex AI: the Google Cloud project (default: the service account's `project_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Vertex AI: the region (`us-east5`, `europe-west1`) or `global`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Vertex AI: the service account's key file, pasted as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<ServiceAccount>,
}

pub use crate::core::cloud::aws::AwsKeys;
pub use crate::core::cloud::google::ServiceAccount;

/// Which Bedrock API carries a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BedrockApi {
    /// Anthropic's Messages format (`invoke`) for an Anthropic client on a Claude model, so
    /// that everything Claude's own API offers passes; Converse for everything else.
    #[default]
    Auto,
    /// Converse and ConverseStream, for every model and client.
    Converse,
    /// `invoke` with Anthropic's Messages format: Claude models only.
    Invoke,
}

/// The Azure OpenAI API version a provider that names none is called with.
pub const AZURE_API_VERSION: &str = "2024-10-21";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyHeader {
    #[default]
    ApiKey,
    Bearer,
}

/// Where a provider's API key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource<'a> {
    /// The tenant's own, sealed in its LLM config.
    Sealed(&'a Secret),
    /// The gateway's secret of this name (only to the provider's official base URL).
    Platform(&'static str),
    None,
}

impl Provider {
    pub fn key_source(&self) -> KeySource<'_> {
        if let Some(secret) = &self.api_key {
            return KeySource::Sealed(secret);
        }
        match self.kind {
            _ if !self.may_use_platform_key() => KeySource::None,
            ProviderKind::Openai => KeySource::Platform("OPENAI_API_KEY"),
            ProviderKind::Anthropic => KeySource::Platform("ANTHROPIC_API_KEY"),
            ProviderKind::Gemini => KeySource::Platform("GEMINI_API_KEY"),
            _ => KeySource::None,
        }
    }

    /// Whether a request may carry the platform's key: the provider has none of its own and goes
    /// to its kind's official base URL, not wherever a tenant pointed it.
    pub fn may_use_platform_key(&self) -> bool {
        let Some(official) = self.kind.official_base() else {
            return false;
        };
        self.api_key.is_none()
            && self
                .base_url
                .as_deref()
                .is_none_or(|b| b.trim_end_matches('/') == official)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Target {
    pub provider: String,
    pub model: String,
    pub timeout_ms: Option<u32>,
    /// Retries of this target (on 429, 5xx, connection errors) before falling over; default 1.
    pub retries: Option<u32>,
    /// Its share of traffic under the `weighted` strategy (1-10000; default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// The model's name in the catalog (`pricing:{catalog}`) where the provider's is not it: an
    /// Azure deployment `prod-4o` of `azure/gpt-4o` (default: `routing::catalog_name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<String>,
}

/// How a route picks the target it calls first (`core::llm::balance`); the others stay its
/// fallbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The targets in the order listed.
    #[default]
    Ordered,
    /// By weight, at random (or fixed per session).
    Weighted,
    /// The cheapest for the request's estimated tokens, from the pricing table.
    LowestCost,
    /// The fastest to its first byte lately, as this isolate measured.
    LowestLatency,
}

/// A model route: its targets in order (the short form, a JSON list), or an object with a
/// strategy: `{"strategy": "weighted", "targets": [...]}`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Route {
    Chain(Vec<Target>),
    Balanced {
        #[serde(default)]
        strategy: Strategy,
        targets: Vec<Target>,
        /// The route's own guardrails, instead of the tenant's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        guardrails: Option<Vec<Rule>>,
        /// Answers kept and replayed (`core::llm::cache`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache: Option<CacheConfig>,
        /// Larger-window targets, called only for a request too large for the route's own
        /// targets (never after their failures).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context_fallbacks: Option<Vec<Target>>,
    },
}

impl Route {
    pub fn targets(&self) -> &[Target] {
        match self {
            Route::Chain(t) | Route::Balanced { targets: t, .. } => t,
        }
    }

    pub fn strategy(&self) -> Strategy {
        match self {
            Route::Chain(_) => Strategy::Ordered,
            Route::Balanced { strategy, .. } => *strategy,
        }
    }

    /// The route's cache setting, if it has one.
    pub fn cache(&self) -> Option<&CacheConfig> {
        match self {
            Route::Chain(_) => None,
            Route::Balanced { cache, .. } => cache.as_ref(),
        }
    }

    /// The targets called only for size.
    pub fn context_fallbacks(&self) -> &[Target] {
        match self {
            Route::Balanced {
                context_fallbacks: Some(t),
                ..
            } => t,
            _ => &[],
        }
    }

    /// The route's own guardrails, if it sets them.
    pub fn guardrails(&self) -> Option<&[Rule]> {
        match self {
            Route::Chain(_) => None,
            Route::Balanced { guardrails, .. } => guardrails.as_deref(),
        }
    }
}

/// A list or an object, each read with its own error messages (serde's untagged enums say only
/// that nothing matched).
impl<'de> Deserialize<'de> for Route {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{self, MapAccess, SeqAccess, Visitor};
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Balanced {
            #[serde(default)]
            strategy: Strategy,
            targets: Vec<Target>,
            guardrails: Option<Vec<Rule>>,
            cache: Option<CacheConfig>,
            context_fallbacks: Option<Vec<Target>>,
        }
        struct RouteVisitor;
        impl<'de> Visitor<'de> for RouteVisitor {
            type Value = Route;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of targets, or an object with `strategy` and `targets`")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Route, A::Error> {
                Vec::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Route::Chain)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Route, A::Error> {
                let b = Balanced::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Route::Balanced {
                    strategy: b.strategy,
                    targets: b.targets,
                    guardrails: b.guardrails,
                    cache: b.cache,
                    context_fallbacks: b.context_fallbacks,
                })
            }
        }
        d.deserialize_any(RouteVisitor)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LlmLimits {
    pub rpm: Option<u32>,
    pub tpm: Option<u64>,
    /// The output maximum of requests that set none: sent upstream and charged against `tpm`
    /// (default 4096).
    pub max_output_tokens: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LlmConfig {
    pub providers: Named<Provider>,
    #[serde(default)]
    pub routes: Named<Route>,
    #[serde(default)]
    pub limits: LlmLimits,
    /// One breaker per provider target (the defaults without one: `BreakerPolicy::policy`).
    pub circuit_breaker: Option<crate::core::limits::breaker::BreakerPolicy>,
    /// What may pass, in requests and answers (`core::llm::guardrails`); a route may set its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guardrails: Vec<Rule>,
    /// `provider/model` -> the tenant's own catalog entry, overlaid field by field on the
    /// catalog's (a negotiated price; a private deployment's window).
    #[serde(default, skip_serializing_if = "Named::is_empty")]
    pub models: Named<ModelEntry>,
}

impl LlmConfig {
    /// The guardrails of the route `alias` (its own, else the tenant's).
    pub fn guardrails_of(&self, alias: &str) -> &[Rule] {
        self.routes
            .get(alias)
            .and_then(Route::guardrails)
            .unwrap_or(&self.guardrails)
    }

    /// The checks of one target (a route's, or a context fallback's) at `at`.
    fn check_target(&self, at: &str, t: &Target, p: &mut Vec<String>) {
        if t.weight.is_some_and(|w| !(1..=10_000).contains(&w)) {
            p.push(format!("`{at}.weight` must be between 1 and 10000"));
        }
        if !self.providers.contains_key(&t.provider) {
            p.push(format!(
                "`{at}.provider` names unknown provider `{}`",
                t.provider
            ));
        }
        if t.retries.is_some_and(|r| r > 5) {
            p.push(format!("`{at}.retries` must be at most 5"));
        }
        if let Some(ms) = t.timeout_ms {
            if !(100..=600_000).contains(&ms) {
                p.push(format!("`{at}.timeout_ms` must be between 100 and 600000"));
            }
        }
        let printable = |c: &str| c.chars().all(|c| c.is_ascii_graphic());
        if t.catalog
            .as_deref()
            .is_some_and(|c| c.is_empty() || c.len() > MAX_CATALOG_NAME || !printable(c))
        {
            p.push(format!(
                "`{at}.catalog` must be a catalog model name: 1 to {MAX_CATALOG_NAME} printable characters without spaces"
            ));
        }
    }
}

impl Check for LlmConfig {
    fn check(&self, p: &mut Vec<String>) {
        if let Some(b) = &self.circuit_breaker {
            b.check(p);
        }
        for (name, prov) in &self.providers {
            if let Some(u) = &prov.base_url {
                check_http_url(&format!("providers.{name}.base_url"), u, p);
            }
            if let (Some(official), None, Some(_)) =
                (prov.kind.official_base(), &prov.api_key, &prov.base_url)
            {
                if !prov.may_use_platform_key() {
                    p.push(format!(
                        "`providers.{name}.api_key` is required with a custom base_url: the platform's key is sent only to {official}"
                    ));
                }
            }
            super::providers::check(name, prov, p);
            if prov.kind == ProviderKind::OpenaiCompatible && prov.base_url.is_none() {
                p.push(format!(
                    "`providers.{name}.base_url` is required for openai_compatible"
                ));
            }
            if prov.kind == ProviderKind::AzureOpenai {
                if prov.base_url.is_none() {
                    p.push(format!("`providers.{name}.base_url` is required for azure_openai: the resource endpoint, https://{{resource}}.openai.azure.com"));
                }
                if prov.api_key.is_none() {
                    p.push(format!(
                        "`providers.{name}.api_key` is required for azure_openai"
                    ));
                }
            }
            if let Some(v) = &prov.api_version {
                let ok = !v.is_empty()
                    && v.len() <= 40
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
                if !ok || prov.kind != ProviderKind::AzureOpenai {
                    p.push(format!("`providers.{name}.api_version` must be an Azure API version such as {AZURE_API_VERSION}, on an azure_openai provider"));
                }
            }
            if prov.auth.is_some() && prov.kind != ProviderKind::AzureOpenai {
                p.push(format!(
                    "`providers.{name}.auth` applies to azure_openai providers only"
                ));
            }
        }
        if self
            .limits
            .max_output_tokens
            .is_some_and(|m| !(1..=1_000_000).contains(&m))
        {
            p.push("`limits.max_output_tokens` must be between 1 and 1000000".into());
        }
        check_rules(&self.guardrails, "guardrails", p);
        for (alias, route) in &self.routes {
            if route.cache().is_some_and(|c| c.ttl_seconds > MAX_TTL_S) {
                p.push(format!(
                    "`routes.{alias}.cache.ttl_seconds` must be between 0 (the route keeps nothing itself) and {MAX_TTL_S}"
                ));
            }
            if let Some(rules) = route.guardrails() {
                check_rules(rules, &format!("routes.{alias}.guardrails"), p);
            }
            let chain = route.targets();
            if chain.is_empty() {
                p.push(format!("`routes.{alias}` must list at least one target"));
            }
            for (i, t) in chain.iter().enumerate() {
                let at = format!("routes.{alias}[{i}]");
                let valid = t.weight.is_some_and(|w| (1..=10_000).contains(&w));
                if valid && route.strategy() != Strategy::Weighted {
                    p.push(format!(
                        "`{at}.weight` has no effect: the route's strategy is not `weighted`"
                    ));
                }
                self.check_target(&at, t, p);
            }
            for (i, t) in route.context_fallbacks().iter().enumerate() {
                let at = format!("routes.{alias}.context_fallbacks[{i}]");
                if t.weight.is_some_and(|w| (1..=10_000).contains(&w)) {
                    p.push(format!(
                        "`{at}.weight` has no effect: context fallbacks are called in order"
                    ));
                }
                self.check_target(&at, t, p);
            }
        }
        for (name, entry) in &self.models {
            let configured = name.split_once('/').is_some_and(|(prov, model)| {
                self.providers.contains_key(prov) && !model.is_empty()
            });
            if !configured {
                p.push(format!(
                    "`models.{name}` must be named `provider/model` with a configured provider"
                ));
            }
            let mut found = Vec::new();
            entry.check(&mut found);
            p.extend(found.into_iter().map(|f| format!("`models.{name}`: {f}")));
        }
    }
}

/// The longest catalog name a target may give (its KV key, `pricing:{name}`, stays storable).
pub const MAX_CATALOG_NAME: usize = 200;

/// A route's cache setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// 0: the route keeps nothing itself (with `client: refuse`, nothing at all).
    #[serde(default)]
    pub ttl_seconds: u32,
    /// Also keep answers in KV, found from every location (the Cache API is per location).
    #[serde(default)]
    pub kv: bool,
    /// Whether a request may turn the cache on or name its own key (`x-gateway-cache-ttl`,
    /// `x-gateway-cache-key`).
    #[serde(default, skip_serializing_if = "ClientControl::is_allow")]
    pub client: ClientControl,
}

/// What a route lets its callers do with the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientControl {
    #[default]
    Allow,
    /// `x-gateway-cache-ttl` and `x-gateway-cache-key` are refused with a 400 (`skip` still
    /// works: it only bypasses).
    Refuse,
}

impl ClientControl {
    fn is_allow(&self) -> bool {
        *self == ClientControl::Allow
    }
}

/// The longest an answer is kept.
pub const MAX_TTL_S: u32 = 86_400;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::document::validate;
    use serde_json::json;

    fn problems(extra: serde_json::Value) -> String {
        let mut doc = json!({"providers": {"oai": {"kind": "openai"}}, "routes": {"r": [{"provider": "oai", "model": "m"}]}});
        for (k, v) in extra.as_object().unwrap() {
            doc[k] = v.clone();
        }
        match validate::<LlmConfig>(&doc) {
            Ok(_) => String::new(),
            Err(e) => e.message,
        }
    }

    #[test]
    fn the_tenants_models_are_entries_of_configured_provider_models() {
        let ok = json!({"models": {"oai/m": {"input_per_mtok": 1, "output_per_mtok": 2, "context_window": 128000}}});
        assert_eq!(problems(ok), "");
        let e = problems(json!({"models": {"other/m": {"input_per_mtok": 1}, "oai": {}}}));
        assert!(
            e.contains(
                "`models.other/m` must be named `provider/model` with a configured provider"
            ),
            "{e}"
        );
        assert!(e.contains("`models.oai` must be named"), "{e}");
        let e = problems(
            json!({"models": {"oai/m": {"input_per_mtok": -1, "context_window": 10, "max_output_tokens": 20}}}),
        );
        assert!(e.contains("`models.oai/m`: input_per_mtok"), "{e}");
        assert!(e.contains("`models.oai/m`: max_output_tokens"), "{e}");
        let e = problems(json!({"models": {"oai/m": {"price": 1}}}));
        assert!(e.contains("price"), "an unknown field is refused: {e}");
    }

    #[test]
    fn a_targets_catalog_name_and_a_routes_context_fallbacks_are_checked() {
        let ok = json!({"routes": {"r": {"targets": [{"provider": "oai", "model": "prod", "catalog": "azure/gpt-4o"}],
            "context_fallbacks": [{"provider": "oai", "model": "big", "timeout_ms": 1000}]}}});
        assert_eq!(problems(ok.clone()), "");
        let cfg: LlmConfig = validate(&{
            let mut d = json!({"providers": {"oai": {"kind": "openai"}}});
            d["routes"] = ok["routes"].clone();
            d
        })
        .unwrap();
        assert_eq!(cfg.routes["r"].context_fallbacks().len(), 1);
        let e = problems(
            json!({"routes": {"r": [{"provider": "oai", "model": "m", "catalog": "has space"}]}}),
        );
        assert!(
            e.contains("`routes.r[0].catalog` must be a catalog model name"),
            "{e}"
        );
        let long = "x".repeat(MAX_CATALOG_NAME + 1);
        assert!(problems(
            json!({"routes": {"r": [{"provider": "oai", "model": "m", "catalog": long}]}})
        )
        .contains("catalog"));
        let e = problems(
            json!({"routes": {"r": {"targets": [{"provider": "oai", "model": "m"}],
            "context_fallbacks": [{"provider": "nobody", "model": "m", "retries": 9, "weight": 2}]}}}),
        );
        for want in [
            "`routes.r.context_fallbacks[0].provider` names unknown provider `nobody`",
            "`routes.r.context_fallbacks[0].retries` must be at most 5",
            "`routes.r.context_fallbacks[0].weight` has no effect",
        ] {
            assert!(e.contains(want), "{want}: {e}");
        }
    }
}
