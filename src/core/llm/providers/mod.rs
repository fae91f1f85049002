//! What each provider kind needs beyond the wire dialect it speaks: its address, its
//! authentication, its envelope around the dialect, its error shapes, and the checks of its
//! configuration.

pub mod bedrock;
pub mod presets;
pub mod vertex;

use super::config::{BedrockApi, Provider, ProviderKind};
use super::Dialect;
use crate::core::cloud::aws::valid_access_key_id;
pub use crate::core::cloud::aws::valid_region;
use crate::core::sign::AwsCredentials;

/// How a request's body and answer are wrapped around the dialect the target speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    /// The dialect as it is.
    Plain,
    /// Bedrock Converse: an Anthropic-shaped body rewritten (`convert::to_converse`), its
    /// answer read back as an Anthropic message, its stream in event-stream frames.
    Converse,
    /// Bedrock `invoke`: Anthropic's own body (`bedrock::invoke_body`) and answer, its stream
    /// Anthropic's events inside event-stream frames.
    BedrockInvoke,
    /// Claude on Vertex AI: Anthropic's body without `model`, with Vertex's `anthropic_version`
    /// (`vertex::claude_body`); Anthropic's own answers and events.
    VertexAnthropic,
    /// Gemini on Vertex AI: Gemini's own body, answers and events, at Vertex's address.
    VertexGemini,
}

impl Envelope {
    /// The answer's stream arrives in AWS's event-stream framing, not as server-sent events.
    pub fn framed(self) -> bool {
        matches!(self, Envelope::Converse | Envelope::BedrockInvoke)
    }

    /// The content type a stream is answered with.
    pub fn stream_content_type(self) -> &'static str {
        match self.framed() {
            true => "application/vnd.amazon.eventstream",
            false => "text/event-stream",
        }
    }
}

/// What an attempt authenticates with, opened (its `Debug` shows which kind, never the secret).
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    None,
    /// An API key (or bearer token), sent as the kind's header says.
    Key(String),
    /// An AWS access key: the request is signed.
    Aws(AwsCredentials),
    /// An OAuth access token (a Vertex AI service account's), sent as `Authorization: Bearer`;
    /// a 401 fetches a new one once.
    Bearer(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::Key(_) => f.write_str("Key(..)"),
            Credentials::Bearer(_) => f.write_str("Bearer(..)"),
            Credentials::Aws(aws) => aws.fmt(f),
        }
    }
}

impl Credentials {
    pub fn key(&self) -> Option<&str> {
        match self {
            Credentials::Key(k) => Some(k),
            _ => None,
        }
    }
}

/// A provider's refusal (its status and body) as the common error path reads it: AWS's
/// (`x-amzn-errortype` and a bare `{"message"}`) rewritten to the common shape, with the status
/// its exception counts as.
pub fn refusal(
    kind: ProviderKind,
    status: u16,
    aws_type: Option<&str>,
    body: &[u8],
) -> (u16, String) {
    let text = String::from_utf8_lossy(body);
    if kind == ProviderKind::Bedrock {
        if let Some((status, error)) = bedrock::refusal(status, aws_type, &text) {
            return (status, error.to_string());
        }
    }
    (status, text.into_owned())
}

/// A successful answer's body in the dialect the target speaks: a Converse answer becomes the
/// Anthropic message it stands for (named `message_id(random)`, the model as the target named
/// it). `Err` says what is wrong with the provider's answer.
pub fn answer(
    envelope: Envelope,
    body: Vec<u8>,
    model: &str,
    random: u64,
) -> Result<Vec<u8>, String> {
    if envelope != Envelope::Converse {
        return Ok(body);
    }
    let value = serde_json::from_slice::<serde_json::Value>(&body)
        .map_err(|_| "the provider's answer is not JSON".to_string())?;
    let message = super::convert::to_converse::answer(&value, model, &message_id(random))
        .map_err(|e| e.message)?;
    Ok(serde_json::to_vec(&message).unwrap_or_default())
}

/// The id of a Bedrock message, whose Converse answers and streams carry none of their own.
pub fn message_id(random: u64) -> String {
    format!("msg_bdrk_{random:016x}")
}

/// The envelope for a `client` request to a provider of `kind` with `api` at `model`.
pub fn envelope(kind: ProviderKind, api: BedrockApi, model: &str, client: Dialect) -> Envelope {
    match kind {
        ProviderKind::Vertex if vertex::is_claude(model) => return Envelope::VertexAnthropic,
        ProviderKind::Vertex => return Envelope::VertexGemini,
        ProviderKind::Bedrock => {}
        _ => return Envelope::Plain,
    }
    match api {
        BedrockApi::Invoke => Envelope::BedrockInvoke,
        BedrockApi::Converse => Envelope::Converse,
        BedrockApi::Auto if client == Dialect::Anthropic && bedrock::is_anthropic_model(model) => {
            Envelope::BedrockInvoke
        }
        BedrockApi::Auto => Envelope::Converse,
    }
}

/// The kind whose habits (image token counts, long-context windows, usage) a model of a
/// provider has: Claude on Bedrock counts like Anthropic's own API.
pub fn family(kind: ProviderKind, model: &str) -> ProviderKind {
    match kind {
        ProviderKind::Bedrock if bedrock::is_anthropic_model(model) => ProviderKind::Anthropic,
        ProviderKind::Bedrock => ProviderKind::OpenaiCompatible,
        ProviderKind::Vertex if vertex::is_claude(model) => ProviderKind::Anthropic,
        ProviderKind::Vertex => ProviderKind::Gemini,
        k if presets::preset(k).is_some() => ProviderKind::OpenaiCompatible,
        k => k,
    }
}

/// The checks of provider `name` that depend on its kind.
pub fn check(name: &str, prov: &Provider, p: &mut Vec<String>) {
    let at = |field: &str| format!("providers.{name}.{field}");
    let only = |field: &str, set: bool, kind: &str, p: &mut Vec<String>| {
        if set {
            p.push(format!("`{}` applies to {kind} providers only", at(field)));
        }
    };
    let bedrock = prov.kind == ProviderKind::Bedrock;
    only("region", prov.region.is_some() && !bedrock, "bedrock", p);
    only("aws", prov.aws.is_some() && !bedrock, "bedrock", p);
    only("api", prov.api.is_some() && !bedrock, "bedrock", p);
    let openrouter = prov.kind == ProviderKind::Openrouter;
    only(
        "site_url",
        prov.site_url.is_some() && !openrouter,
        "openrouter",
        p,
    );
    only(
        "app_name",
        prov.app_name.is_some() && !openrouter,
        "openrouter",
        p,
    );
    if let Some(url) = &prov.site_url {
        crate::core::config::document::check_http_url(&at("site_url"), url, p);
    }
    // Sent as a header: printable ASCII, bounded (anything else would fail every request).
    if let Some(app) = &prov.app_name {
        if !(1..=100).contains(&app.len()) || !app.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            p.push(format!(
                "`{}` must be 1 to 100 printable ASCII characters",
                at("app_name")
            ));
        }
    }
    let on_vertex = prov.kind == ProviderKind::Vertex;
    only("project", prov.project.is_some() && !on_vertex, "vertex", p);
    only(
        "location",
        prov.location.is_some() && !on_vertex,
        "vertex",
        p,
    );
    only(
        "service_account",
        prov.service_account.is_some() && !on_vertex,
        "vertex",
        p,
    );
    if bedrock {
        check_bedrock(name, prov, p);
    }
    if on_vertex {
        vertex::check(name, prov, p);
    }
    if let Some(preset) = presets::preset(prov.kind) {
        preset.check(name, prov, p);
    }
}

fn check_bedrock(name: &str, prov: &Provider, p: &mut Vec<String>) {
    match prov.region.as_deref() {
        Some(r) if valid_region(r) => {}
        Some(_) => p.push(format!(
            "`providers.{name}.region` must be an AWS region such as us-east-1"
        )),
        None => p.push(format!(
            "`providers.{name}.region` is required for bedrock: the AWS region, such as us-east-1"
        )),
    }
    match &prov.aws {
        None => p.push(format!(
            "`providers.{name}.aws` is required for bedrock: {{\"access_key_id\", \"secret_access_key\"}} (and \"session_token\" for temporary credentials)"
        )),
        Some(k) => {
            if !valid_access_key_id(&k.access_key_id) {
                p.push(format!(
                    "`providers.{name}.aws.access_key_id` must be an AWS access key id (AKIA…, ASIA…)"
                ));
            }
        }
    }
    if prov.api_key.is_some() {
        p.push(format!(
            "`providers.{name}.api_key` does not apply to bedrock: requests are signed with `aws`"
        ));
    }
}

#[cfg(test)]
mod tests;
