//! Reading request bodies with a hard cap, whether or not a length was declared.

use super::crossings::Unread;
use super::inbound::Inbound;
use crate::core::error::ApiError;
use crate::core::http::{
    check_declared_length, parse_json_body, require_json_content_type, too_large,
};
use serde_json::Value;

/// Reads at most `limit` bytes; stops reading (and refuses) as soon as the body exceeds it.
pub async fn read_capped(req: &mut Inbound, limit: usize) -> Result<Vec<u8>, ApiError> {
    let declared = req.header("content-length");
    check_declared_length(declared.as_deref(), limit)?;
    req.read_capped(limit).await.map_err(|e| match e {
        Unread::TooLarge => too_large(limit),
        Unread::Failed => unreadable(),
    })
}

/// A body read without a content-type check beyond this: a declared type must be JSON, an absent
/// one is taken as JSON (LLM clients and curl users often send none), as the providers do.
pub async fn read_json_bytes(req: &mut Inbound, limit: usize) -> Result<Vec<u8>, ApiError> {
    if let Some(ct) = req.header("content-type") {
        require_json_content_type(Some(&ct))?;
    }
    read_capped(req, limit).await
}

/// A JSON request body: content type checked, size capped, parse errors located.
pub async fn json_body(req: &mut Inbound, limit: usize) -> Result<Value, ApiError> {
    let ct = req.header("content-type");
    require_json_content_type(ct.as_deref())?;
    let bytes = read_capped(req, limit).await?;
    parse_json_body(&bytes, limit)
}

/// Like `json_body`, but an absent body (no content type, nothing sent) is `None`.
pub async fn optional_json_body(
    req: &mut Inbound,
    limit: usize,
) -> Result<Option<Value>, ApiError> {
    if req.header("content-type").is_none() {
        let bytes = read_capped(req, limit).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        require_json_content_type(None)?;
    }
    json_body(req, limit).await.map(Some)
}

fn unreadable() -> ApiError {
    ApiError::bad_request("request body could not be read")
}
