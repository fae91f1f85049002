//! Anthropic Messages bodies as Bedrock Converse bodies, and Converse answers as Anthropic
//! messages: every client reaches Converse through the Anthropic shape (`to_anthropic`,
//! `responses`), so cache points, thinking signatures and tool ids survive. Not yet: #41 A1.

use crate::core::error::ApiError;
use serde_json::Value;

/// The Converse (and ConverseStream) body for an Anthropic Messages body (its `model` and
/// `stream` are not part of it: the model is in the URL). A part Converse cannot carry (an image
/// by URL) is a 400 naming it.
pub fn request(anthropic: &Value) -> Result<Value, ApiError> {
    Ok(anthropic.clone())
}

/// The Anthropic message for a Converse answer; `id` is the gateway's (Converse answers have none).
pub fn answer(converse: &Value, model: &str, id: &str) -> Result<Value, ApiError> {
    let _ = (model, id);
    Ok(converse.clone())
}
