//! The admin API: the request's body, as its action says, to `core::tenant::admin`.

use super::body::{json_body, optional_json_body};
use super::effects::drive;
use super::inbound::Inbound;
use super::platform::Csprng;
use super::queue::settings;
use super::respond::{http, Reply};
use super::{store, Call};
use crate::core::flow::Flow;
use crate::core::http::MAX_JSON_BODY;
use crate::core::route::AdminRoute;
use crate::core::tenant::admin::{self, Admin, AdminBody};

pub async fn handle(call: &mut Call, route: AdminRoute, mut req: Inbound) -> Reply {
    let body = match route.action.body() {
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
    };
    http(
        drive(
            call.platform(),
            Flow::new(|co| admin::handle(co, a, route, body)),
        )
        .await?,
    )
}
