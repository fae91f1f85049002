//! Reading request bodies with a hard cap, whether or not a length was declared.

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
    if declared.is_some() {
        // A declared length frames the body and is within the cap: one read, not one crossing
        // per chunk. The cap is checked again on what arrived.
        let bytes = req.bytes().await.map_err(|_| unreadable())?;
        return match bytes.len() <= limit {
            true => Ok(bytes),
            false => Err(too_large(limit)),
        };
    }
    let Some(mut stream) = req.stream() else {
        return Ok(Vec::new()); // no body at all
    };
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| unreadable())?;
        if out.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
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
