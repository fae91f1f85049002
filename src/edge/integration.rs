//! The integration routes: `GET /v1/marketplace`, `POST /v1/integrations` (install a template),
//! `GET`/`DELETE /v1/integrations/{id}`, `POST /v1/integrations/{id}/test` and
//! `POST /v1/integrations/{id}/{endpoint}`. The request's parts go to `core::integration`'s flows,
//! which plan, call and answer.

use super::body::json_body;
use super::effects::drive;
use super::inbound::Inbound;
use super::platform::{now_ms, Csprng};
use super::respond::{http, Reply};
use super::{store, Call};
use crate::core::flow::Flow;
use crate::core::http::MAX_JSON_BODY;
use crate::core::integration::flow::{self, Execution};
use crate::core::integration::installed;

fn execution<'a>(call: &'a Call, tenant: &'a str, id: &'a str, started: u64) -> Execution<'a> {
    Execution {
        tenant,
        id,
        request_id: &call.request_id,
        trail: call.trail.clone(),
        started,
    }
}

pub async fn execute(
    call: &mut Call,
    tenant: String,
    id: String,
    endpoint: String,
    mut req: Inbound,
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

pub async fn search(call: &Call, req: &Inbound) -> Reply {
    let url = req.url();
    http(drive(call.platform(), Flow::new(|co| installed::search(co, &url))).await?)
}

pub async fn install(call: &Call, tenant: &str, mut req: Inbound) -> Reply {
    let body = json_body(&mut req, MAX_JSON_BODY).await?;
    let sealer = store::sealer(&call.env)?;
    let mut rng = Csprng;
    let run = Flow::new(|co| installed::install(co, &sealer, &mut rng, tenant, body));
    http(drive(call.platform(), run).await?)
}

pub async fn get(call: &Call, tenant: &str, id: &str) -> Reply {
    let sealer = store::sealer(&call.env)?;
    http(
        drive(
            call.platform(),
            Flow::new(|co| installed::get(co, &sealer, tenant, id)),
        )
        .await?,
    )
}

pub async fn delete(call: &Call, tenant: &str, id: &str) -> Reply {
    http(
        drive(
            call.platform(),
            Flow::new(|co| installed::delete(co, tenant, id)),
        )
        .await?,
    )
}
