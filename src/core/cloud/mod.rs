//! What the LLM providers (Bedrock, Vertex AI) and the queue and bus destinations (SQS,
//! EventBridge, Pub/Sub) share about the clouds they call: AWS access keys, regions and error
//! codes; Google service accounts, their checks and their token grant; the user agent.

pub mod aws;
pub mod google;

/// The `user-agent` of the gateway's own requests to a destination or a bus.
pub const USER_AGENT: &str = concat!("edge-gateway/", env!("CARGO_PKG_VERSION"));

/// A provider's or a bus's error type or code as a log-safe code: `[a-z0-9_.-]`, at most 64 characters.
pub fn sanitized_code(raw: &str) -> String {
    raw.chars()
        .filter_map(|c| {
            let c = c.to_ascii_lowercase();
            (c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')).then_some(c)
        })
        .take(64)
        .collect()
}
