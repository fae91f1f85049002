//! `GET /console` and its files (`core::console`), where the deployment serves them.

use super::auth::header;
use super::inbound::Inbound;
use super::respond::{with_headers, Reply};
use super::Call;
use crate::core::console;

pub fn serve(call: &Call, req: &Inbound, file: Option<&str>) -> Reply {
    let var = |name: &str| call.env.var(name).ok().map(|v| v.to_string());
    console::served(var("GATEWAY_ENV").as_deref(), var("CONSOLE").as_deref())?;
    let asset = console::find(file)?;
    let (caching, current) = console::headers(asset, header(req, "if-none-match").as_deref());
    let mut headers: Vec<(&str, &str)> = caching.iter().map(|(k, v)| (*k, v.as_str())).collect();
    if current {
        return with_headers(304, &headers, None);
    }
    headers.push(("content-type", asset.content_type));
    with_headers(200, &headers, Some(asset.body.as_bytes().to_vec()))
}
