//! The router: from a request to its handler, and from the handler's result to the response.

use super::context::Call;
use super::effects::drive;
use super::inbound::Inbound;
use super::respond::Outgoing;
use super::respond::{self, json, Reply};
use super::{
    admin, auth, channel, console, integration, llm, mcp, platform, store, usage, webhook, widget,
};
use crate::core::error::{ApiError, ErrorKind};
use crate::core::flow::Flow;
use crate::core::llm::Dialect;
use crate::core::log::RequestLog;
use crate::core::mcp::{jsonrpc::refused_before_reading, resource};
use crate::core::portal::Asked;
use crate::core::route::{match_route, Access, InboundMethod, Route};
use crate::core::tenant::key_admin;
use crate::core::tenant::keys::KeyRecord;
use crate::core::tenant::reseal::Pass;
use crate::core::upstream;
use crate::core::usage::point::point;
use crate::core::usage::query::report as usage_report;
use crate::core::usage::{Counters, Dims, Sample};
use serde_json::json;
use worker::{web_sys, Context, Env};

/// Answers one request: its route, authenticated as the route table says, handled; an error in
/// the error model of its route; one log line.
pub async fn serve(req: Inbound, env: Env, ctx: Context) -> web_sys::Response {
    let method = InboundMethod::parse(&req.method());
    let path = req.path();
    let url = req.url();
    let mut call = Call::new(&req, env, ctx);
    let started = call.started_ms;
    let hops = call.trail.hops;
    let mut counted = None;
    let (route_name, dialect, outcome) = match match_route(method, &path) {
        _ if upstream::is_loop(hops) => (
            "loop",
            None,
            Err(ApiError::new(
                ErrorKind::LoopDetected,
                format!("this request passed through the gateway {hops} times: a configured URL points back at it"),
            )),
        ),
        Ok(route) => {
            counted = route.usage();
            call.family = counted.as_ref().map(|c| c.family);
            (
                route.name(),
                route.dialect(),
                dispatch(&mut call, method, route, req).await,
            )
        }
        Err(e) => ("unmatched", None, Err(e)),
    };
    let (resp, failed) = match outcome {
        Ok(r) => (r, None),
        // The gateway's own failure: a bodiless 500; its detail goes to the request's log line.
        Err(e) if e.is_internal() => (Outgoing::new(500), Some(e)),
        Err(e) => {
            let resp = match dialect {
                Some(d) => llm::error_response(d, &e, &call.request_id),
                // An MCP client reads a JSON-RPC error, whatever stopped its message.
                None if route_name == resource::PATH => {
                    let body = refused_before_reading(&e.message).to_string();
                    respond::error_with_body(&e, body)
                }
                None => respond::error(&e, &call.request_id),
            };
            (resp, Some(e))
        }
    };
    let mut resp = resp.with("x-request-id", &call.request_id);
    if resp.status == 401 && route_name == resource::PATH {
        resp.set("www-authenticate", &resource::challenge(&url));
    }
    if let Some(origin) = &call.cors {
        widget::cors(&mut resp, origin);
    }
    let log = RequestLog {
        ts: started,
        request_id: &call.request_id,
        method: method.as_str(),
        route: route_name,
        tenant: call.tenant.as_deref(),
        status: resp.status,
        latency_ms: platform::now_ms().saturating_sub(started),
        error: failed.as_ref().map(|e| e.kind.type_name()),
        detail: failed.as_ref().and_then(ApiError::log_detail),
        llm_usage: call.usage.as_ref(),
        guardrails: call.guardrails.as_ref(),
        key: call.key.as_deref().map(KeyRecord::logged),
        trace_id: call.trail.trace.as_ref().map(|t| t.trace_id.as_str()),
    };
    match log.detail {
        Some(_) => worker::console_error!("{}", log.line()),
        None => worker::console_log!("{}", log.line()),
    }
    let counting = counted.filter(|_| usage::enabled(&call.env));
    if let (Some(c), Some(tenant)) = (counting, call.tenant.as_deref()) {
        if c.counts(resp.status) {
            let (provider, model) = call.llm_target.clone().unzip();
            let dims = Dims {
                hour: 0,
                family: c.family,
                key: call.key.as_ref().map(|k| k.id.clone()),
                provider,
                model,
                subject: c.subject.or(call.subject.take()),
            };
            let used = call.llm_used.take().unwrap_or_default();
            if !call.point_later {
                let p = point(tenant, &dims, resp.status, log.latency_ms, &used);
                usage::write_point(&call.env, p);
            }
            let mut counters = Counters::request(resp.status, log.latency_ms);
            counters.add(&used);
            if let Some(send) = usage::count(&call.env, tenant, Sample { dims, counters }) {
                call.ctx.wait_until(send);
            }
        }
    }
    resp.into_raw(&call.request_id)
}

async fn dispatch(call: &mut Call, method: InboundMethod, route: Route, req: Inbound) -> Reply {
    // Who may call the route is the route table's to say; the handlers get the tenant it proves.
    let key = match route.access() {
        Access::Tenant | Access::Scoped(_) => Some(auth::tenant_key(call, &req).await?),
        Access::Admin => {
            auth::admin(&call.env, &req)?;
            None
        }
        Access::Public | Access::Widget | Access::Signed | Access::Portal => None,
    };
    if let (Access::Scoped(scope), Some(k)) = (route.access(), &key) {
        k.require(scope)?;
    }
    let tenant = key.as_ref().map(|k| k.tenant.clone()).unwrap_or_default();
    match route {
        Route::Health => json(200, &health()),
        Route::OpenApi => respond::bytes(200, "application/json", OPENAPI.as_bytes()),
        Route::EventTypes => respond::http(crate::core::webhook::event_types::answer()),
        Route::Usage => {
            let url = req.url();
            let report = drive(
                call.platform(),
                Flow::new(|co| async move { usage_report(&co, &tenant, &url).await }),
            )
            .await?;
            respond::http(report)
        }
        Route::Me => {
            let key = key.ok_or_else(|| ApiError::internal("no key"))?;
            let me = drive(
                call.platform(),
                Flow::new(|co| async move { key_admin::me(&co, &key).await }),
            )
            .await?;
            json(200, &me)
        }
        Route::ChannelSend { channel: name } => channel::send(call, tenant, name, req).await,
        Route::Marketplace
        | Route::AdminMarketplace
        | Route::IntegrationInstall
        | Route::IntegrationGet { .. }
        | Route::IntegrationDelete { .. }
        | Route::IntegrationConnect { .. }
        | Route::IntegrationDisconnect { .. }
        | Route::ConnectCallback
        | Route::ConnectPage => integration::manage(call, route, tenant, req).await,
        Route::IntegrationTest { id } => integration::test(call, &tenant, &id).await,
        Route::IntegrationExecute { id, endpoint } => {
            integration::execute(call, tenant, id, endpoint, req).await
        }
        Route::Delivery { id } => channel::delivery(call, &tenant, &id).await,
        Route::Webhook { tenant, source } => {
            webhook::handle(call, method, tenant, source, req).await
        }
        Route::Mcp => mcp::post(call, key, req).await,
        Route::McpResourceMetadata => json(200, &resource::metadata(&req.url())),
        Route::ChatCompletions => llm::chat(call, tenant, Dialect::OpenAi, req).await,
        Route::Messages => llm::chat(call, tenant, Dialect::Anthropic, req).await,
        Route::Responses => llm::chat(call, tenant, Dialect::Responses, req).await,
        Route::Embeddings => llm::chat(call, tenant, Dialect::Embeddings, req).await,
        Route::StoredResponse => Err(ApiError::not_found(
            "this gateway keeps no responses: send the conversation again as `input` (stored responses exist only at OpenAI, through an `openai` target)",
        )),
        Route::Models => llm::models(call, &tenant, req).await,
        Route::WidgetScript => widget::script(&req),
        Route::Demo => widget::demo(call),
        Route::Console(file) => console::serve(call, &req, file.as_deref(), false),
        Route::PortalFile(file) => console::serve(call, &req, Some(&file), true),
        Route::Portal(p) => {
            let bearer = auth::header(&req, "authorization");
            admin::handle(call, Asked::Portal(p, bearer), req).await
        }
        Route::WidgetPreflight => widget::preflight(call, req).await,
        Route::WidgetConfig => widget::config(call, req).await,
        Route::WidgetChat => widget::chat(call, req).await,
        Route::WidgetConversation { id } => widget::conversation(call, req, id).await,
        Route::Admin(a) => {
            call.tenant = Some(a.tenant.clone());
            admin::handle(call, Asked::Admin(a), req).await
        }
        Route::Tenants => admin::tenants(call).await,
        Route::MasterKeys => admin::master_keys(call, Pass::Survey, req).await,
        Route::Reseal => admin::master_keys(call, Pass::Reseal, req).await,
        Route::Runtime => json(200, &store::runtime()),
    }
}

const OPENAPI: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));

fn health() -> serde_json::Value {
    json!({
        "status": "ok",
        "name": env!("CARGO_PKG_NAME"),
        "version": env!("CARGO_PKG_VERSION"),
        "build": {"git_sha": env!("BUILD_GIT_SHA"), "rustc": env!("BUILD_RUSTC"), "profile": env!("BUILD_PROFILE")},
    })
}
