//! The marketplace and installed integrations, as flows: `GET /v1/marketplace`,
//! `POST /v1/integrations` (install a template with the tenant's settings), and
//! `GET`/`DELETE /v1/integrations/{id}`.

use super::connect;
use super::health;
pub use super::managing::Managing;
use super::marketplace::{install as fill, InstallRequest, Template};
use crate::core::config::document::redact;
use crate::core::config::seal::Sealer;
use crate::core::error::{ApiError, ErrorKind};
use crate::core::flow::Co;
use crate::core::http::{query_pairs, HttpResponse};
use crate::core::platform::{ConfigKey, RecordKind};
use crate::core::records::{exists, get_redacted, put_record};
use crate::core::route::Route;
use crate::core::tenant::erase::erase_record;
use crate::core::Entropy;
use serde_json::{json, Value};

const KIND: RecordKind = RecordKind::Integration;

pub async fn manage(
    co: Co,
    sealer: &Sealer,
    rng: &mut dyn Entropy,
    m: Managing,
) -> Result<HttpResponse, ApiError> {
    let t = m.tenant.as_str();
    match &m.route {
        Route::Marketplace | Route::AdminMarketplace => search(co, &m.url).await,
        Route::IntegrationInstall => install(co, sealer, rng, t, m.body.unwrap_or_default()).await,
        Route::IntegrationGet { id } => get(co, sealer, t, id).await,
        Route::IntegrationDelete { id } => delete(co, t, id).await,
        _ => connect::flow::run(co, sealer, rng, m).await,
    }
}

/// The templates matching the request's `q` and `category`.
pub async fn search(co: Co, url: &str) -> Result<HttpResponse, ApiError> {
    let params = query_pairs(url);
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let mut found: Vec<Value> = Vec::new();
    for key in co.list(&ConfigKey::templates()).await? {
        if let Some(t) = co.config::<Template>(&key).await? {
            if t.matches(get("q"), get("category")) {
                found.push(t.summary());
            }
        }
    }
    HttpResponse::json(200, &json!({ "data": found }))
}

pub async fn install(
    co: Co,
    sealer: &Sealer,
    rng: &mut dyn Entropy,
    tenant: &str,
    body: Value,
) -> Result<HttpResponse, ApiError> {
    let body = InstallRequest::parse(body)?;
    let id = body.id.as_str();
    if exists(&co, KIND, tenant, Some(id)).await? {
        let why = format!("integration `{id}` is already installed; DELETE it first");
        return Err(ApiError::new(ErrorKind::Conflict, why));
    }
    let template: Template = co
        .config(&ConfigKey::template(&body.template))
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no template `{}` in the marketplace",
                body.template
            ))
        })?;
    let doc = fill(&template, &body.settings)?;
    let (stored, _) = put_record(&co, sealer, rng, KIND, tenant, Some(id), doc).await?;
    let integration = redact(stored, KIND.secret_paths(), None);
    HttpResponse::json(201, &json!({"id": id, "integration": integration}))
}

pub async fn get(
    co: Co,
    sealer: &Sealer,
    tenant: &str,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    let integration = get_redacted(&co, sealer, KIND, tenant, Some(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no integration `{id}`")))?;
    let health = health::of(&co, tenant, id).await?;
    let connection = connect::lost::of(&co, tenant, id).await?;
    let connection = connection.map(|c| c.shown());
    HttpResponse::json(
        200,
        &json!({"id": id, "integration": integration, "health": health, "connection": connection}),
    )
}

pub async fn delete(co: Co, tenant: &str, id: &str) -> Result<HttpResponse, ApiError> {
    if !exists(&co, KIND, tenant, Some(id)).await? {
        return Err(ApiError::not_found(format!("no integration `{id}`")));
    }
    erase_record(&co, KIND, tenant, Some(id)).await?;
    Ok(HttpResponse::empty(204))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::flow::{drive, Effect, Flow, Outcome};
    use crate::core::testing::{sealer, Counter, Kv};

    fn template() -> Value {
        serde_json::from_str(include_str!("../../../kv-seed/templates/rest.json")).unwrap()
    }

    fn run<'a>(kv: &Kv, flow: Flow<'a, HttpResponse>) -> Result<HttpResponse, ApiError> {
        drive(flow, 0, |e| {
            Ok(kv.answer(e).unwrap_or(match e {
                Effect::KvList { .. } => Outcome::Names(vec![]),
                _ => Outcome::Text("null".into()),
            }))
        })
        .0
    }

    #[test]
    fn a_template_installs_once_with_its_secret_sealed_and_shown_only_as_set() {
        let kv = Kv::with(&[(ConfigKey::template("rest"), template())]);
        let sealer = sealer();
        let body = json!({"template": "rest", "id": "crm", "settings": {"base_url": "https://api.example", "token": "tok-secret"}});
        let install = |body: Value| {
            let mut rng = Counter(0);
            let sealer = &sealer;
            run(
                &kv,
                Flow::new(move |co| async move {
                    super::install(co, sealer, &mut rng, "t1", body).await
                }),
            )
        };
        let created = install(body.clone()).unwrap();
        assert_eq!(created.status, 201);
        assert!(!String::from_utf8_lossy(created.body.as_ref().unwrap()).contains("tok-secret"));
        assert_eq!(
            install(body).unwrap_err().status(),
            409,
            "installed already"
        );
        let got = run(&kv, Flow::new(|co| get(co, &sealer, "t1", "crm"))).unwrap();
        let got: Value = serde_json::from_slice(got.body.as_ref().unwrap()).unwrap();
        assert_eq!(got["integration"]["auth"]["token"]["set"], true);
        assert_eq!(
            run(&kv, Flow::new(|co| delete(co, "t1", "crm")))
                .unwrap()
                .status,
            204
        );
        assert_eq!(
            run(&kv, Flow::new(|co| delete(co, "t1", "crm")))
                .unwrap_err()
                .status(),
            404
        );
    }
}
