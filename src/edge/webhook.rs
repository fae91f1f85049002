//! `GET|POST /v1/webhooks/{tenant}/{source}`: the request's parts (its body read under the cap)
//! to `core::webhook::flow::receive`, which verifies, dedupes, enqueues and answers.

use super::body::read_capped;
use super::effects::drive;
use super::inbound::Inbound;
use super::queue::settings;
use super::respond::{http, Reply};
use super::{store, Call};
use crate::core::flow::Flow;
use crate::core::http::MAX_WEBHOOK_BODY;
use crate::core::route::InboundMethod;
use crate::core::webhook::flow::{receive, Webhook};

pub async fn handle(
    call: &mut Call,
    method: InboundMethod,
    tenant: String,
    source: String,
    mut req: Inbound,
) -> Reply {
    call.tenant = Some(tenant.clone());
    let handshake = method == InboundMethod::Get;
    let body = match handshake {
        true => Vec::new(),
        false => read_capped(&mut req, MAX_WEBHOOK_BODY).await?,
    };
    // The serialized URL as the runtime has it; parsing it with the `url` crate would pull
    // IDNA tables into the wasm for nothing.
    let url = req.url();
    let w = Webhook {
        tenant: &tenant,
        source: &source,
        handshake,
        url: &url,
        headers: req.headers(),
        body,
        trail: call.trail.clone(),
    };
    let sealer = store::sealer(&call.env)?;
    let settings = settings(&call.env);
    http(
        drive(
            call.platform(),
            Flow::new(|co| receive(co, &sealer, settings, w)),
        )
        .await?,
    )
}
