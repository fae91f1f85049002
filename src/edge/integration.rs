//! `POST /v1/integrations/{id}/{endpoint}` and `POST /v1/integrations/{id}/test`: the request's
//! parts to `core::integration::flow`, which plans, calls and answers the envelope.

use super::body::json_body;
use super::effects::drive;
use super::platform::now_ms;
use super::respond::{http, Reply};
use super::{store, Call};
use crate::core::flow::Flow;
use crate::core::http::MAX_JSON_BODY;
use crate::core::integration::flow::{self, Execution};
use worker::Request;

fn execution<'a>(call: &'a Call, tenant: &'a str, id: &'a str, started: u64) -> Execution<'a> {
    Execution {
        tenant,
        id,
        request_id: &call.request_id,
        hops: call.hops,
        started,
    }
}

pub async fn execute(
    call: &mut Call,
    tenant: String,
    id: String,
    endpoint: String,
    mut req: Request,
) -> Reply {
    let started = now_ms();
    let body = json_body(&mut req, MAX_JSON_BODY).await?;
    let sealer = store::sealer(&call.env)?;
    let x = execution(call, &tenant, &id, started);
    let run = Flow::new(|co| flow::execute(co, &sealer, x, &endpoint, body));
    http(drive(call.platform(), run).await?)
}

pub async fn test(call: &mut Call, tenant: &str, id: &str) -> Reply {
    let sealer = store::sealer(&call.env)?;
    let x = execution(call, tenant, id, now_ms());
    http(drive(call.platform(), Flow::new(|co| flow::test(co, &sealer, x))).await?)
}
