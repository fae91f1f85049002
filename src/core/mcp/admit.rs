//! What is settled of an MCP POST before it is served (`serve::answer` asks): Origin, framing,
//! protocol revision and the mirrored headers.

use serde_json::Value;

use super::headers::{check_mirrored, header, mismatch};
use super::jsonrpc::{parse, Message, Refusal, INVALID_PARAMS, INVALID_REQUEST};
use super::version::{
    negotiate_initialize, unsupported, Version, ASSUMED_WITHOUT_HEADER, META_VERSION_KEY,
};

/// A message we will process, and the revision to answer it in.
#[derive(Debug, Clone, PartialEq)]
pub struct Admitted {
    /// For `initialize`, the revision we answer with; otherwise the one the request speaks.
    pub version: Version,
    pub message: Message,
}

/// DNS-rebinding guard: a browser always sends `Origin`, so a present one must be on the list
/// (ASCII case-insensitive); an absent one is a non-browser client and passes.
pub fn origin_allowed(origin: Option<&str>, allowed: &[&str]) -> bool {
    match origin {
        None => true,
        Some(o) => allowed.iter().any(|a| a.eq_ignore_ascii_case(o)),
    }
}

/// `headers` as received (any name case); `body` already capped at `MAX_MESSAGE_BYTES`.
pub fn admit(
    headers: &[(String, String)],
    body: &[u8],
    allowed_origins: &[&str],
) -> Result<Admitted, Refusal> {
    if !origin_allowed(header(headers, "origin"), allowed_origins) {
        return Err(Refusal::new(
            403,
            None,
            INVALID_REQUEST,
            "this Origin is not allowed",
            None,
        ));
    }
    let message = parse(body)?;
    let id = message.id();
    if let Message::Request { method, params, .. } = &message {
        if method == "initialize" {
            let Some(asked) = params.get("protocolVersion").and_then(Value::as_str) else {
                return Err(Refusal::new(
                    400,
                    id,
                    INVALID_PARAMS,
                    "params.protocolVersion must be a string",
                    None,
                ));
            };
            let version = negotiate_initialize(asked);
            return Ok(Admitted { version, message });
        }
    }
    let meta_version = match message
        .params()
        .get("_meta")
        .and_then(|m| m.get(META_VERSION_KEY))
    {
        None => None,
        Some(Value::String(v)) => Some(v.as_str()),
        Some(_) => {
            return Err(Refusal::new(
                400,
                id,
                INVALID_PARAMS,
                "the _meta protocol version must be a string",
                None,
            ))
        }
    };
    let header_version = header(headers, "mcp-protocol-version");
    let version = match (meta_version, header_version) {
        (Some(_), None) => return Err(mismatch(id, "the MCP-Protocol-Version header is required")),
        (Some(m), Some(h)) if m != h => {
            return Err(mismatch(
                id,
                "the MCP-Protocol-Version header does not match the body's _meta",
            ))
        }
        (Some(m), Some(_)) => Version::parse(m).ok_or_else(|| unsupported(id, m))?,
        (None, h) => {
            let named = h.unwrap_or(ASSUMED_WITHOUT_HEADER);
            let v = Version::parse(named).ok_or_else(|| unsupported(id, named))?;
            if v.is_modern() && id.is_some() {
                return Err(mismatch(
                    id,
                    "a request in this revision names it in params._meta too",
                ));
            }
            v
        }
    };
    if version.is_modern() && id.is_some() {
        check_mirrored(headers, &message)?;
    }
    Ok(Admitted { version, message })
}
