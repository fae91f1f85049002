//! The marketplace and installed integrations: `GET /v1/marketplace`, `POST /v1/integrations`
//! (install a template with the tenant's settings), `GET`/`DELETE /v1/integrations/{id}`, and
//! `POST /v1/integrations/{id}/test`.

use super::admin::erase_state;
use super::body::json_body;
use super::integration::{load, run_test};
use super::respond::{json, no_content, Reply};
use super::{store, Call};
use crate::core::config::document::{redact, RecordRef};
use crate::core::config::{ConfigKey, RecordKind};
use crate::core::error::{ApiError, ErrorKind};
use crate::core::http::{valid_id, MAX_JSON_BODY};
use crate::core::integration::marketplace::{install as fill, Template};
use serde::Deserialize;
use serde_json::{json, Value};
use worker::{Env, Request};

async fn templates(env: &Env) -> Result<Vec<Template>, ApiError> {
    let mut out = Vec::new();
    for key in store::list(env, &ConfigKey::template("")).await? {
        if let Some(t) = store::get_json_cached::<Template>(env, &key).await? {
            out.push(t);
        }
    }
    Ok(out)
}

pub async fn search(call: &Call, req: &Request) -> Reply {
    let url = req.inner().url();
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let found: Vec<Value> = templates(&call.env)
        .await?
        .iter()
        .filter(|t| t.matches(get("q"), get("category")))
        .map(Template::summary)
        .collect();
    json(200, &json!({ "data": found }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InstallBody {
    template: String,
    id: String,
    #[serde(default)]
    settings: Value,
}

pub async fn install(call: &Call, tenant: &str, mut req: Request) -> Reply {
    let body: InstallBody = serde_json::from_value(json_body(&mut req, MAX_JSON_BODY).await?)
        .map_err(|e| ApiError::validation(format!("invalid install request: {e}")))?;
    if !valid_id(&body.id) || !valid_id(&body.template) {
        return Err(ApiError::validation(
            "`id` and `template` must be 1-64 letters, digits, `-`, `_` or `.`",
        ));
    }
    let env = &call.env;
    let key = RecordKind::Integration.kv_key(tenant, Some(&body.id));
    if store::get_json::<Value>(env, &key).await?.is_some() {
        return Err(ApiError::new(
            ErrorKind::Conflict,
            format!(
                "integration `{}` is already installed; DELETE it first",
                body.id
            ),
        ));
    }
    let template: Template = store::get_json_cached(env, &ConfigKey::template(&body.template))
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no template `{}` in the marketplace",
                body.template
            ))
        })?;
    let settings = if body.settings.is_null() {
        json!({})
    } else {
        body.settings
    };
    let doc = fill(&template, &settings)?;
    let (stored, _) =
        store::put_record(env, RecordKind::Integration, tenant, Some(&body.id), doc).await?;
    json(
        201,
        &json!({"id": body.id, "integration": redact(stored, RecordKind::Integration.secret_paths(), None)}),
    )
}

pub async fn get(call: &Call, tenant: &str, id: &str) -> Reply {
    let env = &call.env;
    let doc: Value = store::get_json(env, &RecordKind::Integration.kv_key(tenant, Some(id)))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no integration `{id}`")))?;
    let record = RecordKind::Integration.seal_record(Some(id));
    let sealer = store::sealer(env)?;
    let at = RecordRef {
        tenant,
        record: &record,
    };
    json(
        200,
        &json!({"id": id, "integration": redact(doc, RecordKind::Integration.secret_paths(), Some((&sealer, &at)))}),
    )
}

pub async fn delete(call: &Call, tenant: &str, id: &str) -> Reply {
    let key = RecordKind::Integration.kv_key(tenant, Some(id));
    if store::get_json::<Value>(&call.env, &key).await?.is_none() {
        return Err(ApiError::not_found(format!("no integration `{id}`")));
    }
    erase_state(&call.env, RecordKind::Integration, tenant, Some(id)).await?;
    store::delete(&call.env, &key).await?;
    no_content()
}

/// Runs the integration's test call; reports what failed instead of failing itself.
pub async fn test(call: &mut Call, tenant: &str, id: &str) -> Reply {
    let cfg = load(&call.env, tenant, id).await?;
    let t = cfg.test.clone().ok_or_else(|| {
        ApiError::validation(format!("integration `{id}` defines no `test` call"))
    })?;
    let report = match run_test(call, tenant, id, &cfg, &t.endpoint, t.input).await {
        Ok(e) => json!({
            "ok": e.success, "endpoint": t.endpoint, "status_code": e.status_code,
            "execution_time_ms": e.execution_time_ms, "retries": e.retries, "error": e.error,
        }),
        Err(e) => {
            json!({"ok": false, "endpoint": t.endpoint, "error": {"code": e.kind.type_name(), "message": e.public_message()}})
        }
    };
    json(200, &report)
}
