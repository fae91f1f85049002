//! A request to a route that manages a tenant's integrations, as the edge received it: what
//! `installed::manage` dispatches and the connect flows read (its own file, so the two need not
//! import each other).

use crate::core::route::Route;
use crate::core::upstream::Trail;
use serde_json::Value;

/// A request to one of the routes that manage a tenant's integrations (not their calls), as the
/// edge received it.
pub struct Managing {
    pub route: Route,
    /// The tenant the key proved (empty for the marketplace's admin listing and the connect
    /// callback, whose state says whose it is).
    pub tenant: String,
    pub body: Option<Value>,
    pub url: String,
    pub trail: Trail,
    /// From the tenant portal (`core::portal`): a connect comes back to the portal's own page.
    pub portal: bool,
}
