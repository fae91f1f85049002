//! The marketplace and installed integrations: `GET /v1/marketplace`, `POST /v1/integrations`
//! (install a template with the tenant's settings), and `GET`/`DELETE /v1/integrations/{id}`.

use super::admin::erase_state;
use super::body::json_body;
use super::respond::{json, no_content, Reply};
use super::{store, Call};
use crate::core::config::document::{redact, RecordRef};
use crate::core::config::{ConfigKey, RecordKind};
use crate::core::error::{ApiError, ErrorKind};
use crate::core::http::{query_pairs, MAX_JSON_BODY};
use crate::core::integration::marketplace::{install as fill, InstallRequest, Template};
use serde_json::{json, Value};
use worker::{Env, Request};

async fn templates(env: &Env) -> Result<Vec<Template>, ApiError> {
    let mut out = Vec::new();
    for key in store::list(env, &ConfigKey::templates()).await? {
        if let Some(t) = store::get_json_cached::<Template>(env, &key).await? {
            out.push(t);
        }
    }
    Ok(out)
}

pub async fn search(call: &Call, req: &Request) -> Reply {
    let params = query_pairs(&req.inner().url());
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let found: Vec<Value> = templates(&call.env)
        .await?
        .iter()
        .filter(|t| t.matches(get("q"), get("category")))
        .map(Template::summary)
        .collect();
    json(200, &json!({ "data": found }))
}

pub async fn install(call: &Call, tenant: &str, mut req: Request) -> Reply {
    let body = InstallRequest::parse(json_body(&mut req, MAX_JSON_BODY).await?)?;
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
    let doc = fill(&template, &body.settings)?;
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
