//! The admin API and the portal's (`core::portal`): the request's body, as its route says, to
//! the admin flow.

use super::body::{json_body, optional_json_body};
use super::effects::drive;
use super::inbound::Inbound;
use super::platform::Csprng;
use super::queue::settings;
use super::respond::{http, json, Reply};
use super::{store, Call};
use crate::core::flow::Flow;
use crate::core::http::MAX_JSON_BODY;
use crate::core::portal::{answer, Asked};
use crate::core::records::tenant_list;
use crate::core::tenant::admin::{Admin, AdminBody};
use crate::core::tenant::reseal::{walk, Pass, Walk};

/// A master key pass stops starting tenants after this long; its report says where to resume.
const PASS_BUDGET_MS: u64 = 15_000;

pub async fn handle(call: &mut Call, asked: Asked, mut req: Inbound) -> Reply {
    let body = match asked.body() {
        AdminBody::None => None,
        AdminBody::Json => Some(json_body(&mut req, MAX_JSON_BODY).await?),
        AdminBody::OptionalJson => optional_json_body(&mut req, MAX_JSON_BODY).await?,
    };
    let sealer = store::sealer(&call.env)?;
    let url = req.url();
    let mut rng = Csprng;
    let a = Admin {
        sealer: &sealer,
        rng: &mut rng,
        settings: settings(&call.env),
        url: &url,
        request_id: &call.request_id,
        trail: call.trail.clone(),
    };
    http(drive(call.platform(), Flow::new(|co| answer(co, a, asked, body))).await?)
}

/// `GET /v1/admin/tenants`: every tenant's id, sorted.
pub async fn tenants(call: &Call) -> Reply {
    let flow = Flow::new(|co| async move { tenant_list(&co).await });
    json(200, &drive(call.platform(), flow).await?)
}

/// `GET /v1/admin/master-keys` (a survey) and `POST /v1/admin/master-keys/reseal` (a pass).
pub async fn master_keys(call: &mut Call, pass: Pass, req: Inbound) -> Reply {
    let w = Walk::asked(pass, &req.url(), PASS_BUDGET_MS)?;
    let sealer = store::sealer(&call.env)?;
    let mut rng = Csprng;
    let flow = Flow::new(|co| async move {
        let report = walk(&co, &sealer, &mut rng, &w).await?;
        if pass == Pass::Reseal {
            co.log(serde_json::json!({"reseal": &report})).await;
        }
        Ok(report)
    });
    json(200, &drive(call.platform(), flow).await?)
}
