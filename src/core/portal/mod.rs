//! The tenant portal (issue #39): a page a tenant's own users reach through a link the operator
//! mints (`mint`), framed only by the tenant's origins (`page`), whose link is spent once for a
//! session (`session`, `spend`); the session then calls `/v1/portal/...`, the admin API's paths
//! for the session's tenant, each action only under the capability that covers it
//! (`capability`). A portal call runs the same flows as the admin API and the tenant's own
//! integration routes: nothing here decides twice what those decide.

pub mod capability;
pub mod mint;
pub mod page;
pub mod session;
pub mod spend;
pub mod token;

use crate::core::error::ApiError;
use crate::core::flow::Co;
use crate::core::http::HttpResponse;
use crate::core::integration::installed::{self, Managing};
use crate::core::platform::RecordKind;
use crate::core::route::{AdminAction, AdminRoute, PortalAction, PortalRoute, Route};
use crate::core::tenant::admin::{self, Admin, AdminBody};
use capability::{covering, Capability};
use serde_json::{json, Value};

impl PortalAction {
    /// The capability a session needs for it (`None`: the portal never does it).
    pub fn needs(&self) -> Option<Capability> {
        match self {
            PortalAction::Admin(a) => covering(a),
            PortalAction::Marketplace | PortalAction::Connect(_) | PortalAction::Disconnect(_) => {
                Some(Capability::Integrations)
            }
        }
    }
}

impl PortalRoute {
    /// The route's template, for logs: never an id.
    pub fn name(&self) -> &'static str {
        match self {
            PortalRoute::Page => "/portal",
            PortalRoute::Connected => "/portal/connected",
            PortalRoute::Session => "/v1/portal/session",
            PortalRoute::Me => "/v1/portal/me",
            PortalRoute::Api(PortalAction::Marketplace) => "/v1/portal/marketplace",
            PortalRoute::Api(PortalAction::Connect(_)) => "/v1/portal/integrations/{id}/connect",
            PortalRoute::Api(PortalAction::Disconnect(_)) => {
                "/v1/portal/integrations/{id}/connection"
            }
            PortalRoute::Api(PortalAction::Admin(_)) => "/v1/portal/{path}",
        }
    }

    /// The request body it reads.
    pub fn body(&self) -> AdminBody {
        match self {
            PortalRoute::Session => AdminBody::Json,
            PortalRoute::Api(PortalAction::Admin(a)) => a.body(),
            PortalRoute::Api(PortalAction::Connect(_)) => AdminBody::OptionalJson,
            _ => AdminBody::None,
        }
    }
}

/// What the shell asks of the admin flow: an admin route, or a portal route with the request's
/// `Authorization` header (the only place a portal session comes from).
pub enum Asked {
    Admin(AdminRoute),
    Portal(PortalRoute, Option<String>),
}

impl Asked {
    pub fn body(&self) -> AdminBody {
        match self {
            Asked::Admin(r) => r.action.body(),
            Asked::Portal(r, _) => r.body(),
        }
    }
}

/// Answers an admin or a portal request.
pub async fn answer(
    co: Co,
    a: Admin<'_>,
    asked: Asked,
    body: Option<Value>,
) -> Result<HttpResponse, ApiError> {
    match asked {
        Asked::Admin(route) => admin::handle(co, a, route, body).await,
        Asked::Portal(route, authorization) => serve(co, a, route, authorization, body).await,
    }
}

async fn serve(
    co: Co,
    a: Admin<'_>,
    route: PortalRoute,
    authorization: Option<String>,
    body: Option<Value>,
) -> Result<HttpResponse, ApiError> {
    let action = match route {
        PortalRoute::Page => return page::page(&co, a.sealer, a.url).await,
        PortalRoute::Connected => return Ok(page::connected(a.url)),
        PortalRoute::Session => return session::exchange(&co, a.sealer, a.rng, body).await,
        PortalRoute::Me => {
            let (s, t) = session::authenticate(&co, a.sealer, authorization.as_deref()).await?;
            let me = json!({"tenant": s.tenant, "name": t.name, "capabilities": s.capabilities, "expires_at": s.expires_at});
            return HttpResponse::json(200, &me);
        }
        PortalRoute::Api(action) => action,
    };
    let (s, _) = session::authenticate(&co, a.sealer, authorization.as_deref()).await?;
    session::allowed(&s.capabilities, &action)?;
    if let PortalAction::Admin(a) = &action {
        capability::keys_within(a, body.as_ref()).map_err(ApiError::forbidden)?;
    }
    let tenant = s.tenant;
    let managed = match action {
        // An integration as the tenant's own API shows it, with its connection's state (the
        // portal's Connect shows it); the admin API answers the document alone.
        PortalAction::Admin(AdminAction::GetRecord(RecordKind::Integration, Some(id))) => {
            Route::IntegrationGet { id }
        }
        PortalAction::Admin(action) => {
            return admin::handle(co, a, AdminRoute { tenant, action }, body).await
        }
        PortalAction::Marketplace => Route::Marketplace,
        PortalAction::Connect(id) => Route::IntegrationConnect { id },
        PortalAction::Disconnect(id) => Route::IntegrationDisconnect { id },
    };
    let m = Managing {
        route: managed,
        tenant,
        body,
        url: a.url.to_string(),
        trail: a.trail,
        portal: true,
    };
    installed::manage(co, a.sealer, a.rng, m).await
}
