//! `GET /console` and its files (`core::console`), where the deployment serves them; the same
//! files under `/portal/` wherever the portal is (`core::portal`).

use super::auth::header;
use super::inbound::Inbound;
use super::respond::{http, Reply};
use super::Call;
use crate::core::console;

pub fn serve(call: &Call, req: &Inbound, file: Option<&str>, portal: bool) -> Reply {
    let var = |name: &str| call.env.var(name).ok().map(|v| v.to_string());
    if !portal {
        console::served(var("GATEWAY_ENV").as_deref(), var("CONSOLE").as_deref())?;
    }
    let asset = console::find(file, portal)?;
    http(console::answer(
        asset,
        header(req, "if-none-match").as_deref(),
    ))
}
