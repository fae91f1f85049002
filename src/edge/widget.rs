//! The chat widget's edge: the script and the demo page, and the browser-facing API authorized by
//! a publishable key (`?key=pk_...`, so that CORS preflights can be answered per tenant) and the
//! tenant's allowed origins. Answers stream through the LLM proxy's routing.

use super::auth::{self, header};
use super::body::read_json_bytes;
use super::durable;
use super::effects::drive;
use super::inbound::Inbound;
use super::llm;
use super::platform::{now_ms, random_array};
use super::respond::Outgoing;
use super::respond::{http, json, with_headers, Reply};
use super::{store, Call};
use crate::core::error::ApiError;
use crate::core::flow::{ask_effect, Flow};
use crate::core::http::query_param;
use crate::core::llm::flow::{Ask, OnAnswer};
use crate::core::objects::protocol::Conversation;
use crate::core::objects::Object;
use crate::core::platform::RecordKind;
use crate::core::tenant::key_settings::KeyKind;
use crate::core::tenant::keys::widget_key_presented;
use crate::core::tenant::model::TenantConfig;
use crate::core::widget::flow::{forward, Forward};
use crate::core::widget::retention::Owner;
use crate::core::widget::{self, AppendCmd, ChatSettings, GetHistory};
use serde_json::json;

const WIDGET_JS: &str = include_str!("../../widget/widget.js");
const DEMO_HTML: &str = include_str!("../../widget/demo.html");
const MAX_CHAT_BODY: usize = 32 * 1024;

/// `GET /widget.js`: cacheable at the edge, revalidated by its content hash.
pub fn script(req: &Inbound) -> Reply {
    let (caching, current) =
        widget::script_headers(WIDGET_JS, header(req, "if-none-match").as_deref());
    let mut headers: Vec<(&str, &str)> = caching.iter().map(|(k, v)| (*k, v.as_str())).collect();
    if current {
        return with_headers(304, &headers, None);
    }
    headers.push(("content-type", "application/javascript; charset=utf-8"));
    with_headers(200, &headers, Some(WIDGET_JS.as_bytes().to_vec()))
}

/// `GET /demo`: the widget on a page, for the seeded demo tenant; only where the deployment
/// says it is for development or tests.
pub fn demo(call: &Call) -> Reply {
    let env = call.env.var("GATEWAY_ENV").ok().map(|v| v.to_string());
    if !widget::demo_served(env.as_deref()) {
        return Err(ApiError::not_found(
            "the demo page is served only when GATEWAY_ENV is development or test",
        ));
    }
    super::respond::bytes(200, "text/html; charset=utf-8", DEMO_HTML.as_bytes())
}

/// The tenant behind a publishable key, and whether the request's origin may use it. Sets the
/// CORS answer for the response only for an allowed origin.
async fn tenant_of(
    call: &mut Call,
    req: &Inbound,
    origin_required: bool,
) -> Result<(String, TenantConfig), ApiError> {
    let key = query_param(&req.url(), "key");
    let key = widget_key_presented(key.as_deref())?;
    let record = auth::lookup(&call.env, key)
        .await?
        .filter(|r| r.kind == KeyKind::Publishable)
        .ok_or_else(|| ApiError::unauthorized("invalid widget key"))?;
    call.tenant = Some(record.tenant.clone());
    record.settings.check_expiry(now_ms() / 1000)?;
    call.key = Some(record.clone());
    let cfg: TenantConfig =
        store::get_json_cached(&call.env, &RecordKind::Tenant.kv_key(&record.tenant, None))
            .await?
            .ok_or_else(|| ApiError::unauthorized("invalid widget key"))?;
    call.cors = widget::cors_origin(&cfg, header(req, "origin").as_deref(), origin_required)?;
    Ok((record.tenant.clone(), cfg))
}

/// `OPTIONS /v1/widget/*`: the CORS preflight, answered only for the tenant's allowed origins.
pub async fn preflight(call: &mut Call, req: Inbound) -> Reply {
    tenant_of(call, &req, true).await?;
    with_headers(204, &widget::PREFLIGHT_HEADERS, None)
}

/// `GET /v1/widget/config`: the tenant's theme for the widget.
pub async fn config(call: &mut Call, req: Inbound) -> Reply {
    let (_, cfg) = tenant_of(call, &req, false).await?;
    json(200, &widget::theme(&cfg))
}

/// Whether the gateway issued `id` to this tenant (in its current incarnation).
fn issued(call: &Call, tenant: &str, cfg: &TenantConfig, id: &str) -> Result<bool, ApiError> {
    let sealer = store::sealer(&call.env)?;
    let incarnation = cfg.incarnation();
    Ok(widget::issued_conversation_id(
        sealer.id_keys(),
        tenant,
        incarnation,
        id,
    ))
}

/// `GET /v1/widget/conversations/{id}`: the kept history, to restore the widget after a reload.
pub async fn conversation(call: &mut Call, req: Inbound, id: String) -> Reply {
    let (tenant, cfg) = tenant_of(call, &req, false).await?;
    if !issued(call, &tenant, &cfg, &id)? {
        return Err(ApiError::not_found("no such conversation"));
    }
    let object = Object::<Conversation>::of(&tenant, &id);
    let turns = durable::ask(&call.env, &object, GetHistory).await?.turns;
    json(200, &json!({"conversation_id": id, "messages": turns}))
}

/// `POST /v1/widget/chat`: the answer as an SSE stream of OpenAI chunks; the conversation id in
/// `x-conversation-id`.
pub async fn chat(call: &mut Call, mut req: Inbound) -> Reply {
    let (tenant, cfg) = tenant_of(call, &req, true).await?;
    let bytes = read_json_bytes(&mut req, MAX_CHAT_BODY).await?;
    let input = widget::parse_chat(&bytes)?;
    let sealer = store::sealer(&call.env)?;
    let given = input.conversation_id.as_deref();
    let id = widget::conversation_for(sealer.id_keys(), &tenant, &cfg, given, &random_array())?;
    let object = Object::<Conversation>::of(&tenant, &id);
    let settings = ChatSettings::of(&cfg);
    let max_history = settings.max_history;
    let owner = Owner::of(&tenant, &cfg);
    let visitor_checks = widget::visitor_checks(
        header(&req, "x-visitor-id").as_deref(),
        header(&req, "cf-connecting-ip").as_deref(),
        settings.per_visitor_rpm,
    );
    let history = durable::ask(&call.env, &object, GetHistory).await?.turns;
    let mut resp = match settings.chat_url {
        Some(url) => {
            let f = Forward {
                tenant: &tenant,
                url: &url,
                conversation_id: &id,
                message: &input.message,
                history,
                visitor_checks,
                max_history,
                owner,
                trail: call.trail.clone(),
            };
            http(drive(call.platform(), Flow::new(|co| forward(co, f))).await?)?
        }
        None => {
            let creq = widget::llm_request(&cfg, &history, &input.message)?;
            let on_answer: OnAnswer = Box::new(move |answer| {
                let cmd = AppendCmd::exchange(&input.message, &answer, max_history, owner);
                ask_effect(&object, cmd)
            });
            let ask = Ask {
                checks: visitor_checks,
                on_answer: Some(on_answer),
                // A conversation keeps its target on a weighted route.
                session: Some(id.to_string()),
                ..llm::ask(call, tenant, creq)
            };
            llm::serve(call, ask).await?
        }
    };
    resp.set("x-conversation-id", &id);
    Ok(resp)
}

/// The CORS headers of a widget API response to an allowed origin.
pub fn cors(resp: &mut Outgoing, origin: &str) {
    resp.set("access-control-allow-origin", origin);
    resp.append("vary", "Origin");
    resp.set("access-control-expose-headers", widget::EXPOSED_HEADERS);
}
