//! `POST /v1/channels/{channel}/messages` and `GET /v1/deliveries/{id}`: the request's parts to
//! `core::channel::flow`, which decides and asks for the I/O.

use super::auth::header;
use super::body::json_body;
use super::effects::drive;
use super::inbound::Inbound;
use super::platform::random_array;
use super::queue::settings;
use super::respond::{http, Reply};
use super::{store, Call};
use crate::core::channel::flow::{self, SendRequest};
use crate::core::flow::Flow;
use crate::core::http::MAX_JSON_BODY;

pub async fn send(call: &mut Call, tenant: String, channel: String, mut req: Inbound) -> Reply {
    let sealer = store::sealer(&call.env)?;
    let r = SendRequest {
        tenant: &tenant,
        channel: &channel,
        body: json_body(&mut req, MAX_JSON_BODY).await?,
        idempotency_key: header(&req, "idempotency-key"),
        request_id: &call.request_id,
        trail: call.trail.clone(),
        random: random_array(),
    };
    let settings = settings(&call.env);
    let send = Flow::new(|co| flow::send_message(co, &sealer, settings, r));
    http(drive(call.platform(), send).await?)
}

pub async fn delivery(call: &Call, tenant: &str, id: &str) -> Reply {
    http(
        drive(
            call.platform(),
            Flow::new(|co| flow::delivery(co, tenant, id)),
        )
        .await?,
    )
}
