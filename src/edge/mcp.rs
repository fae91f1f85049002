//! `POST /v1/mcp`: the tenant's MCP server (`core::mcp`). The key proved the tenant and holds
//! the allowlist; the message goes to `core::mcp::serve` as bytes with its headers. A streamed
//! answer (a remote tool's progress) is written by its relay after the response went out.

use super::body::read_json_bytes;
use super::effects::{drive_with, served, Io};
use super::inbound::Inbound;
use super::platform::random_array;
use super::respond::Reply;
use super::{store, Call};
use crate::core::error::ApiError;
use crate::core::flow::Flow;
use crate::core::mcp::caller::Caller;
use crate::core::mcp::jsonrpc::MAX_MESSAGE_BYTES;
use crate::core::mcp::serve::answer;
use crate::core::tenant::keys::KeyRecord;
use std::rc::Rc;

pub async fn post(call: &mut Call, key: Option<Rc<KeyRecord>>, mut req: Inbound) -> Reply {
    let key = key.ok_or_else(|| ApiError::internal("no key"))?;
    let headers = req.headers();
    let body = read_json_bytes(&mut req, MAX_MESSAGE_BYTES).await?;
    let sealer = store::sealer(&call.env)?;
    let nonce = hex::encode(random_array::<16>());
    let c = Caller {
        nonce: &nonce,
        tenant: &key.tenant,
        key: &key.id,
        allowed: &key.settings.allowed_tools,
        request_id: &call.request_id,
        trail: call.trail.clone(),
        started: call.started_ms,
    };
    let mut io = Io::default();
    let run = Flow::new(|co| answer(co, &sealer, c, &headers, &body));
    let (reply, tool) = drive_with(call.platform(), &mut io, run).await?;
    call.subject = tool;
    served(call.platform(), io, reply, "mcp_relay_failed")
}
