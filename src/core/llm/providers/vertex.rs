//! Google Vertex AI: Gemini models in Gemini's own format (`generateContent`), Claude models in
//! Anthropic's Messages format (`rawPredict`), at a project's region or its global endpoint,
//! authorized by a service account's access token (`oauth::token_request`'s JWT grant, held
//! like an integration's tokens under the tenant's `~llm` holder).

use crate::core::cloud::google;
use crate::core::http::path_segment;
use crate::core::integration::config::Auth;
use crate::core::llm::config::{Provider, ServiceAccount};
use serde_json::{json, Value};

pub use crate::core::cloud::google::{CLOUD_PLATFORM, GOOGLE_TOKEN_URI};
/// The Messages API version Claude on Vertex takes, in the body.
const ANTHROPIC_VERSION: &str = "vertex-2023-10-16";

/// Whether a Vertex model is one of Anthropic's (publisher `anthropic`), else Google's.
pub fn is_claude(model: &str) -> bool {
    model.starts_with("claude")
}

/// The body of `rawPredict` / `streamRawPredict` for an Anthropic Messages body: without `model`
/// (the URL names it), with Vertex's `anthropic_version`; `stream` set for a stream, as
/// Anthropic's own Vertex client sends it, and left out otherwise.
pub fn claude_body(anthropic: &Value, stream: bool) -> Value {
    let mut body = match anthropic {
        Value::Object(o) => o.clone(),
        _ => serde_json::Map::new(),
    };
    body.remove("model");
    body.remove("stream");
    if stream {
        body.insert("stream".into(), json!(true));
    }
    body.insert("anthropic_version".into(), json!(ANTHROPIC_VERSION));
    Value::Object(body)
}

/// Where a model is called: `https://{location}-aiplatform.googleapis.com` (the global endpoint
/// has no location in its host), or `base_url` in its place; then
/// `/v1/projects/{project}/locations/{location}/publishers/{anthropic|google}/models/{model}:{op}`.
/// `@` stays literal in the model (`claude-sonnet-4-5@20250929`), as Google's own clients and
/// samples send it (a legal path character, RFC 3986); everything else is encoded.
pub fn address(
    base_url: Option<&str>,
    project: &str,
    location: &str,
    model: &str,
    stream: bool,
) -> String {
    let base = match base_url {
        Some(b) => b.trim_end_matches('/').to_string(),
        None if location == "global" => "https://aiplatform.googleapis.com".to_string(),
        None => format!("https://{location}-aiplatform.googleapis.com"),
    };
    let (publisher, op) = match (is_claude(model), stream) {
        (true, false) => ("anthropic", "rawPredict"),
        (true, true) => ("anthropic", "streamRawPredict"),
        (false, false) => ("google", "generateContent"),
        (false, true) => ("google", "streamGenerateContent?alt=sse"),
    };
    // `path_segment` writes `@` as %40 and a literal `%` as %25, so %40 is always an `@`.
    let model = path_segment(model).replace("%40", "@");
    format!(
        "{base}/v1/projects/{}/locations/{}/publishers/{publisher}/models/{model}:{op}",
        path_segment(project),
        path_segment(location),
    )
}

/// The project a provider's requests go to: its own, else its key file's.
pub fn project(prov: &Provider) -> Option<&str> {
    prov.project.as_deref().or_else(|| {
        prov.service_account
            .as_ref()
            .and_then(|s| s.project_id.as_deref())
    })
}

/// How a service account's access tokens are fetched: its JWT, for the cloud-platform scope, at
/// its `token_uri`.
pub fn token_auth(sa: &ServiceAccount) -> Auth {
    google::token_auth(sa, CLOUD_PLATFORM)
}

/// A Vertex AI location: a region (`us-east5`) or `global`.
fn valid_location(l: &str) -> bool {
    // Google Cloud's region names: `us-east5`, `europe-west4`, `northamerica-northeast1`. The
    // region makes the endpoint's host, so nothing else passes.
    let Some((area, rest)) = l.split_once('-') else {
        return l == "global";
    };
    let digits = rest.bytes().rev().take_while(u8::is_ascii_digit).count();
    let direction = &rest[..rest.len() - digits];
    (2..=20).contains(&area.len())
        && area.bytes().all(|b| b.is_ascii_lowercase())
        && (1..=2).contains(&digits)
        && (4..=20).contains(&direction.len())
        && direction.bytes().all(|b| b.is_ascii_lowercase())
}

/// The checks of a `vertex` provider `name`.
pub fn check(name: &str, prov: &Provider, p: &mut Vec<String>) {
    let at = |field: &str| format!("`providers.{name}.{field}`");
    match project(prov) {
        Some(pr) if google::valid_project(pr) => {}
        Some(_) => p.push(format!(
            "{} must be a Google Cloud project id such as my-project-123",
            at("project")
        )),
        None => p.push(format!(
            "{} is required for vertex (or the service account's `project_id`)",
            at("project")
        )),
    }
    match prov.location.as_deref() {
        Some(l) if valid_location(l) => {}
        Some(_) => p.push(format!(
            "{} must be a Vertex AI region such as us-east5, or global",
            at("location")
        )),
        None => p.push(format!(
            "{} is required for vertex: a region such as us-east5, or global",
            at("location")
        )),
    }
    if prov.api_key.is_some() {
        p.push(format!(
            "{} does not apply to vertex: requests carry the service account's access tokens",
            at("api_key")
        ));
    }
    let Some(sa) = &prov.service_account else {
        p.push(format!(
            "{} is required for vertex: the service account's JSON key file, as it is",
            at("service_account")
        ));
        return;
    };
    google::check_service_account(&|f| format!("providers.{name}.{f}"), sa, p);
}

#[cfg(test)]
mod tests;
