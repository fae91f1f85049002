//! OpenAI-compatible providers by name: `{"kind": "groq"}` needs no `base_url`. Each preset is
//! the provider's documented address, what its API needs of a key, and what it refuses in a
//! body (`quirks`, applied by `Preset::adapt`).

mod quirks;
#[cfg(test)]
mod tests;

use crate::core::llm::config::{Provider, ProviderKind};
use crate::core::llm::request::ClientRequest;

/// An OpenAI-compatible provider the gateway knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    pub kind: ProviderKind,
    /// Its API base (`{base}/chat/completions`); `None`: a server the tenant runs, so
    /// `base_url` is required.
    pub base: Option<&'static str>,
    /// Its API refuses a request without a key.
    pub key_required: bool,
    /// Its models' prefix in the catalog (LiteLLM's provider name).
    pub catalog_prefix: &'static str,
}

const fn hosted(kind: ProviderKind, base: &'static str, catalog_prefix: &'static str) -> Preset {
    Preset {
        kind,
        base: Some(base),
        key_required: true,
        catalog_prefix,
    }
}

const fn local(kind: ProviderKind, catalog_prefix: &'static str) -> Preset {
    Preset {
        kind,
        base: None,
        key_required: false,
        catalog_prefix,
    }
}

pub const PRESETS: &[Preset] = &[
    hosted(
        ProviderKind::Mistral,
        "https://api.mistral.ai/v1",
        "mistral",
    ),
    hosted(ProviderKind::Groq, "https://api.groq.com/openai/v1", "groq"),
    hosted(
        ProviderKind::Deepseek,
        "https://api.deepseek.com",
        "deepseek",
    ),
    hosted(ProviderKind::Xai, "https://api.x.ai/v1", "xai"),
    hosted(
        ProviderKind::Together,
        "https://api.together.ai/v1",
        "together_ai",
    ),
    hosted(
        ProviderKind::Fireworks,
        "https://api.fireworks.ai/inference/v1",
        "fireworks_ai",
    ),
    hosted(
        ProviderKind::Openrouter,
        "https://openrouter.ai/api/v1",
        "openrouter",
    ),
    hosted(
        ProviderKind::Perplexity,
        "https://api.perplexity.ai",
        "perplexity",
    ),
    local(ProviderKind::Ollama, "ollama"),
    local(ProviderKind::Vllm, "hosted_vllm"),
];

/// The preset of `kind`, if it is one.
pub fn preset(kind: ProviderKind) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.kind == kind)
}

impl Preset {
    /// Rewrites `req`'s OpenAI-style body for what the provider's API accepts (`quirks`).
    pub fn adapt(&self, body: &mut serde_json::Value, req: &ClientRequest) {
        match self.kind {
            ProviderKind::Mistral => quirks::mistral(body),
            ProviderKind::Groq => quirks::groq(body),
            ProviderKind::Xai => quirks::xai(body),
            ProviderKind::Deepseek => quirks::deepseek(body, req),
            ProviderKind::Perplexity => quirks::perplexity(body),
            // Together, Fireworks, OpenRouter: nothing documented to refuse. Ollama lists
            // `stream_options.include_usage` among its fields; vLLM ignores unknown fields.
            _ => {}
        }
    }

    /// The preset's name as tenants write it (`groq`).
    pub fn name(&self) -> String {
        serde_json::to_value(self.kind)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    }

    pub fn check(&self, name: &str, prov: &Provider, p: &mut Vec<String>) {
        let kind = self.name();
        if self.key_required && prov.api_key.is_none() {
            p.push(format!("`providers.{name}.api_key` is required for {kind}"));
        }
        if self.base.is_none() && prov.base_url.is_none() {
            p.push(format!(
                "`providers.{name}.base_url` is required for {kind}: the server's OpenAI-compatible API, such as http://my-host:8000/v1"
            ));
        }
    }
}
