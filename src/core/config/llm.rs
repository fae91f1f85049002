//! LLM providers and model routes of a tenant, `llm:{t}`.

use super::document::{check_http_url, Check, Named, Secret};
use serde::{Deserialize, Serialize};

pub const SECRET_PATHS: &[&str] = &["/providers/*/api_key"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    Openai,
    Anthropic,
    OpenaiCompatible,
    /// Local and deterministic: streams a reply built from the prompt. For development and demos.
    Mock,
}

impl ProviderKind {
    /// The provider's official API base: the default, and the only URL the platform's own key
    /// (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`) is ever sent to.
    pub fn official_base(self) -> Option<&'static str> {
        match self {
            ProviderKind::Openai => Some("https://api.openai.com/v1"),
            ProviderKind::Anthropic => Some("https://api.anthropic.com"),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Provider {
    pub kind: ProviderKind,
    pub base_url: Option<String>,
    pub api_key: Option<Secret>,
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
    pub routes: Named<Vec<Target>>,
    #[serde(default)]
    pub limits: LlmLimits,
    /// One breaker per provider target; without one: 5 failures in 60 s open it for 30 s.
    pub circuit_breaker: Option<super::integration::BreakerPolicy>,
}

impl Check for LlmConfig {
    fn check(&self, p: &mut Vec<String>) {
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
            if prov.kind == ProviderKind::OpenaiCompatible && prov.base_url.is_none() {
                p.push(format!(
                    "`providers.{name}.base_url` is required for openai_compatible"
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
        for (alias, chain) in &self.routes {
            if chain.is_empty() {
                p.push(format!("`routes.{alias}` must list at least one target"));
            }
            for (i, t) in chain.iter().enumerate() {
                if !self.providers.contains_key(&t.provider) {
                    p.push(format!(
                        "`routes.{alias}[{i}].provider` names unknown provider `{}`",
                        t.provider
                    ));
                }
                if t.retries.is_some_and(|r| r > 5) {
                    p.push(format!("`routes.{alias}[{i}].retries` must be at most 5"));
                }
                if let Some(ms) = t.timeout_ms {
                    if !(100..=600_000).contains(&ms) {
                        p.push(format!(
                            "`routes.{alias}[{i}].timeout_ms` must be between 100 and 600000"
                        ));
                    }
                }
            }
        }
    }
}
