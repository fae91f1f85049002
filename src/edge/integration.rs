//! The integration routes: `POST /v1/integrations/{id}/{endpoint}` and `.../test`, and those
//! that manage integrations (`installed::manage`: the marketplace, install, get, delete and
//! connect). The request's parts go to `core::integration`'s flows, which plan, call and answer.

use super::body::{json_body, optional_json_body};
use super::effects::drive;
use super::inbound::Inbound;
use super::platform::{now_ms, Csprng};
use super::respond::{http, Reply};
use super::{store, Call};
use crate::core::flow::Flow;
use crate::core::http::MAX_JSON_BODY;
use crate::core::integration::flow::{self, Execution};
use crate::core::integration::installed::{self, Managing};
use crate::core::route::Route;

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

/// The routes that manage integrations (marketplace, install, get, delete, connect): their
/// request's parts to `installed::manage`.
pub async fn manage(call: &Call, route: Route, tenant: String, mut req: Inbound) -> Reply {
    let body = match route {
        Route::IntegrationInstall => Some(json_body(&mut req, MAX_JSON_BODY).await?),
        _ => optional_json_body(&mut req, MAX_JSON_BODY).await?,
    };
    let (url, trail) = (req.url(), call.trail.clone());
    let m = Managing {
        route,
        tenant,
        body,
        url,
        trail,
        portal: false,
    };
    let (sealer, mut rng) = (store::sealer(&call.env)?, Csprng);
    let run = Flow::new(|co| installed::manage(co, &sealer, &mut rng, m));
    http(drive(call.platform(), run).await?)
}
