//! OAuth 2.0 Protected Resource Metadata (RFC 9728) for the MCP endpoint, which the MCP
//! authorization specification asks HTTP servers to publish, and the `WWW-Authenticate`
//! challenge pointing at it. Keys are minted by the tenant's operator (no authorization server
//! of ours yet): the document names where that is explained and how a key is presented.

use crate::core::http::url_origin;
use serde_json::{json, Value};

/// The MCP endpoint's path.
pub const PATH: &str = "/v1/mcp";
/// Where its metadata is published: the well-known prefix inserted before the resource's path.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource/v1/mcp";

/// The metadata document, for the deployment at `url`'s origin.
pub fn metadata(url: &str) -> Value {
    let origin = url_origin(url);
    json!({
        "resource": format!("{origin}{PATH}"),
        "bearer_methods_supported": ["header"],
        "resource_name": "edge-gateway MCP",
        "resource_documentation": format!("{origin}/openapi.json"),
        "scopes_supported": ["mcp"],
    })
}

/// The challenge a refused MCP request carries.
pub fn challenge(url: &str) -> String {
    let origin = url_origin(url);
    format!(r#"Bearer resource_metadata="{origin}{METADATA_PATH}", scope="mcp""#)
}
