//! The admin API's flow (`/v1/admin/tenants/{t}/...`): tenant configuration without touching KV
//! by hand, API keys, and dead letters. Secrets are write-only.

use super::erase::{confirm_tenant_delete, delete_children, erase_record, missing};
use super::key_admin;
use super::key_settings::KeyKind;
use crate::core::config::document::redact;
use crate::core::config::seal::Sealer;
use crate::core::error::ApiError;
use crate::core::flow::Co;
use crate::core::http::{query_param, HttpResponse};
use crate::core::integration::connect::app::OPERATOR;
use crate::core::integration::flow::{self as integration_flow, Execution};
use crate::core::integration::installed;
use crate::core::integration::oauth::{token_prefix, LLM_HOLDER};
use crate::core::integration::tokens::forget_tokens;
use crate::core::jobs::sequencing;
use crate::core::jobs::wire::{enqueue, QueueSettings};
use crate::core::jobs::{DeleteLetter, GetLetter, ListLetters};
use crate::core::objects::protocol::DeadLetters;
use crate::core::objects::Object;
use crate::core::platform::RecordKind;
use crate::core::records::{exists, get_redacted, put_record};
use crate::core::route::{AdminAction, AdminRoute};
use crate::core::upstream::Trail;
use crate::core::webhook::default_destination;
use crate::core::webhook::destination;
use crate::core::webhook::log_admin;
use crate::core::webhook::rotation;
use crate::core::webhook::sample_flow::{self, SampleAt};
use crate::core::Entropy;
use serde_json::{json, Value};

/// The request body an admin action reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminBody {
    None,
    /// A JSON document, required.
    Json,
    /// A JSON document, or nothing at all.
    OptionalJson,
}

impl AdminAction {
    pub fn body(&self) -> AdminBody {
        match self {
            AdminAction::PutRecord(..)
            | AdminAction::InstallIntegration
            | AdminAction::MintPortalLink => AdminBody::Json,
            AdminAction::PatchKey(_) => AdminBody::Json,
            AdminAction::CreateKey
            | AdminAction::CreateWidgetKey
            | AdminAction::RotateKey(_)
            | AdminAction::RotateDestinationSecret(_) => AdminBody::OptionalJson,
            _ => AdminBody::None,
        }
    }
}

/// What the admin flow needs besides the platform.
pub struct Admin<'a> {
    pub sealer: &'a Sealer,
    pub rng: &'a mut dyn Entropy,
    pub settings: QueueSettings,
    /// The request's URL (for `?confirm=`, and the origin a sample webhook is posted to).
    pub url: &'a str,
    pub request_id: &'a str,
    /// The request's trace, carried by what an integration test or a sample sends.
    pub trail: Trail,
}

pub async fn handle(
    co: Co,
    a: Admin<'_>,
    route: AdminRoute,
    body: Option<Value>,
) -> Result<HttpResponse, ApiError> {
    let t = route.tenant.as_str();
    let co = &co;
    match route.action {
        AdminAction::PutRecord(RecordKind::Tenant, _) => {
            let doc = body.unwrap_or(Value::Null);
            put_tenant(co, a.sealer, a.rng, t, doc).await
        }
        AdminAction::PutRecord(kind, name) => {
            require_tenant(co, t).await?;
            let doc = body.unwrap_or(Value::Null);
            let name = name.as_deref();
            let legacy = match (kind, name) {
                (RecordKind::Destination, Some(destination::DEFAULT)) => {
                    kind.validate(&doc)?;
                    let keep = default_destination::keeps_secret(&doc);
                    default_destination::ensure_record(co, a.sealer, a.rng, t, keep).await?
                }
                _ => None,
            };
            let (stored, created) = put_record(co, a.sealer, a.rng, kind, t, name, doc).await?;
            // A legacy field was the default destination already (GET showed it): replaced.
            // The legacy field stays, inert beside the record: only a tenant PUT (writing the body
            // it was given) or DELETE of `default` rewrites the tenant document.
            let created = created && legacy.is_none();
            match (kind, created) {
                // A replaced integration fetches its own tokens; so do replaced LLM providers.
                (RecordKind::Integration, false) => {
                    forget_tokens(co, &token_prefix(t, name)).await?
                }
                (RecordKind::Llm, false) => {
                    forget_tokens(co, &token_prefix(t, Some(LLM_HOLDER))).await?
                }
                _ => {}
            }
            let status = if created { 201 } else { 200 };
            let doc = redact(stored, kind.secret_paths(), None);
            HttpResponse::json(status, &shown(kind, doc))
        }
        AdminAction::GetRecord(RecordKind::Tenant, None) => {
            let doc = get_redacted(co, a.sealer, RecordKind::Tenant, t, None).await?;
            let doc = doc.ok_or_else(|| missing(RecordKind::Tenant, t, None))?;
            let doc = default_destination::read_back(co, a.sealer, t, doc).await?;
            HttpResponse::json(200, &doc)
        }
        AdminAction::GetRecord(RecordKind::Destination, Some(name))
            if name == destination::DEFAULT =>
        {
            let kind = RecordKind::Destination;
            let doc = default_destination::get(co, a.sealer, t).await?;
            let doc = doc.ok_or_else(|| missing(kind, t, Some(&name)))?;
            HttpResponse::json(200, &shown(kind, doc))
        }
        AdminAction::GetRecord(kind, name) => {
            let doc = get_redacted(co, a.sealer, kind, t, name.as_deref()).await?;
            let doc = doc.ok_or_else(|| missing(kind, t, name.as_deref()))?;
            HttpResponse::json(200, &shown(kind, doc))
        }
        AdminAction::DeleteRecord(RecordKind::Destination, Some(name))
            if name == destination::DEFAULT =>
        {
            // The record and the legacy field alike; the legacy secret is not opened.
            let kind = RecordKind::Destination;
            let name = Some(destination::DEFAULT);
            let legacy = default_destination::ensure_record(co, a.sealer, a.rng, t, false).await?;
            let record = exists(co, kind, t, name).await?;
            if !record && legacy.is_none() {
                return Err(missing(kind, t, name));
            }
            if record {
                erase_record(co, kind, t, name).await?;
            }
            default_destination::strip_legacy(co, t, legacy).await?;
            Ok(HttpResponse::empty(204))
        }
        AdminAction::DeleteRecord(kind, name) => {
            let name = name.as_deref();
            if !exists(co, kind, t, name).await? {
                return Err(missing(kind, t, name));
            }
            if kind == RecordKind::Tenant {
                confirm_tenant_delete(query_param(a.url, "confirm").as_deref(), t)?;
                delete_children(co, t).await?;
            }
            erase_record(co, kind, t, name).await?;
            Ok(HttpResponse::empty(204))
        }
        AdminAction::ListRecords(kind) => {
            require_tenant(co, t).await?;
            let prefix = kind.kv_key(t, None);
            let ids: Vec<Value> = co
                .list(&prefix)
                .await?
                .iter()
                .map(|k| json!({"id": k.after(&prefix)}))
                .collect();
            HttpResponse::json(200, &json!({"data": ids}))
        }
        AdminAction::CreateKey | AdminAction::CreateWidgetKey => {
            require_tenant(co, t).await?;
            let kind = match route.action {
                AdminAction::CreateKey => KeyKind::Secret,
                _ => KeyKind::Publishable,
            };
            let answer = key_admin::create(co, a.rng, t, kind, body).await?;
            secret_answer(201, &answer)
        }
        AdminAction::ListKeys => {
            require_tenant(co, t).await?;
            HttpResponse::json(200, &key_admin::list(co, t).await?)
        }
        AdminAction::GetKey(id) => HttpResponse::json(200, &key_admin::get(co, t, &id).await?),
        AdminAction::PatchKey(id) => {
            HttpResponse::json(200, &key_admin::patch(co, t, &id, body).await?)
        }
        AdminAction::RotateKey(id) => {
            let answer = key_admin::rotate(co, a.rng, t, &id, body).await?;
            secret_answer(201, &answer)
        }
        AdminAction::DeleteKey(id) => {
            key_admin::delete(co, t, &id).await?;
            Ok(HttpResponse::empty(204))
        }
        AdminAction::Usage => {
            require_tenant(co, t).await?;
            crate::core::usage::query::report(co, t, a.url).await
        }
        AdminAction::ListEvents => {
            require_tenant(co, t).await?;
            log_admin::list(co, t, a.url).await
        }
        AdminAction::GetEvent(id) => log_admin::get(co, t, &id).await,
        AdminAction::ListToolCalls => {
            require_tenant(co, t).await?;
            crate::core::webhook::log_admin::tool_calls(co, t, a.url).await
        }
        AdminAction::RetryEvent(id) => log_admin::retry_event(co, a.settings, t, &id, a.url).await,
        AdminAction::RetryDestination(d) => {
            require_tenant(co, t).await?;
            log_admin::retry_destination(co, a.settings, t, &d, a.url).await
        }
        AdminAction::RotateDestinationSecret(d) => {
            let answer = rotation::rotate(co, a.sealer, a.rng, t, &d, body).await?;
            secret_answer(201, &answer)
        }
        AdminAction::ListDeadLetters => {
            require_tenant(co, t).await?;
            let list = ListLetters { limit: Some(1000) };
            let letters = co.ask(&Object::<DeadLetters>::tenant(t), list).await?;
            let shown: Vec<Value> = letters.iter().map(|l| l.shown()).collect();
            HttpResponse::json(200, &json!({"data": shown}))
        }
        AdminAction::ReplayDeadLetter(id) => {
            let letters = Object::<DeadLetters>::tenant(t);
            let letter = co.ask(&letters, GetLetter { id: id.clone() }).await?;
            let letter = letter.ok_or_else(|| {
                ApiError::not_found(format!("tenant `{t}` has no dead letter `{id}`"))
            })?;
            let queue = letter.queue.clone();
            let (_, msg) = letter.replay(t)?;
            for msg in sequencing::requeue_letters(co, vec![msg]).await? {
                enqueue(co, &msg, 0, a.settings).await?;
            }
            co.ask(&letters, DeleteLetter { id: id.clone() }).await?;
            HttpResponse::json(202, &json!({"replayed": id, "queue": queue}))
        }
        AdminAction::InstallIntegration => {
            require_tenant(co, t).await?;
            let doc = body.unwrap_or(Value::Null);
            installed::install(co.clone(), a.sealer, a.rng, t, doc).await
        }
        AdminAction::TestIntegration(id) => {
            let x = Execution {
                tenant: t,
                id: &id,
                request_id: a.request_id,
                trail: a.trail,
                started: co.now(),
            };
            integration_flow::test(co.clone(), a.sealer, x).await
        }
        AdminAction::SendSample(source) => {
            let at = SampleAt {
                tenant: t,
                source: &source,
                admin_url: a.url,
                trail: a.trail,
            };
            sample_flow::send(co.clone(), a.sealer, a.rng, a.settings, at).await
        }
        AdminAction::MintPortalLink => {
            crate::core::portal::mint::mint(co, a.sealer, a.rng, t, a.url, body).await
        }
    }
}

/// `PUT /v1/admin/tenants/{t}`: the tenant document, and its destination shorthand written into
/// the default destination (validated whole first, so a bad one changes nothing). Without
/// `destination` the default destination is kept as it is (a legacy field is copied into the
/// record); `"destination": null` removes it. The document keeps the record's mirror (the legacy
/// field, `webhook::default_destination`) for isolates that do not see the record yet.
async fn put_tenant(
    co: &Co,
    sealer: &Sealer,
    rng: &mut dyn Entropy,
    t: &str,
    mut doc: Value,
) -> Result<HttpResponse, ApiError> {
    let kind = RecordKind::Tenant;
    kind.validate(&doc)?;
    let shorthand = doc.as_object_mut().and_then(|o| o.remove("destination"));
    // A tenant that reads absent may be a stale "not found" of a live one: nothing is erased
    // here (deleting a tenant erases its destinations).
    let created = !exists(co, kind, t, None).await?;
    let mut stored = None;
    if created {
        // The tenant document goes first, so a failed write leaves no record without a tenant.
        stored = Some(
            put_record(co, sealer, rng, kind, t, None, doc.clone())
                .await?
                .0,
        );
    }
    let mirror = match shorthand {
        // The tenant document written below drops the legacy field: its secret is not opened.
        Some(Value::Null) => {
            let name = Some(destination::DEFAULT);
            if exists(co, RecordKind::Destination, t, name).await? {
                erase_record(co, RecordKind::Destination, t, name).await?;
            }
            None
        }
        Some(d) => default_destination::put_shorthand(co, sealer, rng, t, d).await?,
        // A legacy field is copied into the record before the document replaces it.
        None => {
            default_destination::ensure_record(co, sealer, rng, t, true).await?;
            default_destination::mirror(co, sealer, t).await?
        }
    };
    if let (Some(m), Some(o)) = (&mirror, doc.as_object_mut()) {
        o.insert("destination".into(), m.clone());
    }
    let stored = match stored {
        Some(stored) if mirror.is_none() => stored,
        _ => put_record(co, sealer, rng, kind, t, None, doc).await?.0,
    };
    let doc = redact(stored, kind.secret_paths(), None);
    let doc = default_destination::read_back(co, sealer, t, doc).await?;
    HttpResponse::json(if created { 201 } else { 200 }, &doc)
}

/// An answer that shows a secret (once): no cache, shared or private, keeps a copy.
fn secret_answer(status: u16, answer: &Value) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::json(status, answer)?.header("cache-control", "no-store"))
}

/// A record as the API shows it: stored times in the API's units.
fn shown(kind: RecordKind, doc: Value) -> Value {
    match kind {
        RecordKind::Destination => destination::shown(doc),
        _ => doc,
    }
}

async fn require_tenant(co: &Co, t: &str) -> Result<(), ApiError> {
    // The operator's OAuth apps belong to no tenant (the route makes no other record of it).
    if t == OPERATOR {
        return Ok(());
    }
    match exists(co, RecordKind::Tenant, t, None).await? {
        true => Ok(()),
        false => Err(ApiError::not_found(format!(
            "tenant `{t}` does not exist; create it with PUT /v1/admin/tenants/{t}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::flow::{drive, Effect, Outcome};
    use crate::core::objects::ObjectClass;
    use crate::core::platform::ConfigKey;
    use crate::core::testing::{asked, sealer, Counter, Kv};

    fn admin(
        kv: &Kv,
        action: AdminAction,
        url: &str,
        body: Option<Value>,
    ) -> (Result<HttpResponse, ApiError>, Vec<Effect>) {
        thread_local! {
            /// Each call draws other random bytes, as the platform's would.
            static CALLS: std::cell::Cell<u8> = const { std::cell::Cell::new(0) };
        }
        let sealer = sealer();
        let mut rng = Counter(CALLS.with(|c| {
            c.set(c.get().wrapping_add(37));
            c.get()
        }));
        let a = Admin {
            sealer: &sealer,
            rng: &mut rng,
            settings: QueueSettings::default(),
            url,
            request_id: "req_test",
            trail: Trail::default(),
        };
        let route = AdminRoute {
            tenant: "t1".into(),
            action,
        };
        let flow = crate::core::flow::Flow::new(|co| handle(co, a, route, body));
        drive(flow, 1_000_000, |e| match (kv.answer(e), e) {
            (Some(o), _) => Ok(o),
            (None, Effect::KvList { .. }) => Ok(Outcome::Names(vec![])),
            (None, Effect::Ask { body, .. }) if body.starts_with(r#"{"get""#) => {
                Ok(Outcome::Text(letter().to_string()))
            }
            (None, Effect::Ask { body, .. }) if body.starts_with(r#"{"list""#) => {
                Ok(Outcome::Text(json!([letter()]).to_string()))
            }
            _ => Ok(Outcome::Text("null".into())),
        })
    }

    /// The one dead letter the tenant's `DeadLetters` holds.
    fn letter() -> Value {
        json!({"id": "evt_1", "queue": "events", "dead_at": 1_796_014_360_123_u64, "attempts": 8, "last_error": "503",
            "message": {"tenant": "t1", "id": "evt_1", "attempt": 8, "job": {"kind": "deliver_event",
                "event": {"id": "evt_1", "type": "x", "tenant": "t1", "source": "shop", "source_kind": "shopify",
                    "received_at": 1, "data": {}}}}})
    }

    fn body(r: &HttpResponse) -> Value {
        serde_json::from_slice(r.body.as_ref().unwrap()).unwrap()
    }

    fn tenant_doc() -> Value {
        json!({"name": "Acme", "destination": {"url": "https://d.example/h", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}})
    }

    /// A store holding the tenant of `tenant_doc`.
    fn with_tenant() -> Kv {
        let kv = Kv::default();
        let put = AdminAction::PutRecord(RecordKind::Tenant, None);
        admin(&kv, put, "u", Some(tenant_doc())).0.unwrap();
        kv
    }

    #[test]
    fn a_tenant_is_created_then_replaced_and_its_secret_never_comes_back() {
        let kv = Kv::default();
        let put = || AdminAction::PutRecord(RecordKind::Tenant, None);
        let (out, _) = admin(&kv, put(), "https://gw/x", Some(tenant_doc()));
        let created = out.unwrap();
        assert_eq!(created.status, 201);
        assert!(!String::from_utf8_lossy(created.body.as_ref().unwrap()).contains("whsec_Mf"));
        assert_eq!(
            body(&created)["destination"]["secret"]["set"],
            true,
            "read back"
        );
        // The destination is the record `default`, sealed under it; the tenant keeps a mirror,
        // sealed to the tenant.
        let stored = kv.get(&RecordKind::Tenant.kv_key("t1", None)).unwrap();
        assert!(
            stored["destination"]["secret"]["$sealed"].is_string(),
            "{stored}"
        );
        let record = kv.get(&RecordKind::Destination.kv_key("t1", Some("default")));
        let record = record.unwrap();
        assert!(record["secret"]["$sealed"].is_string(), "{record}");
        assert_eq!(record["url"], "https://d.example/h");
        let (out, _) = admin(&kv, put(), "https://gw/x", Some(tenant_doc()));
        assert_eq!(out.unwrap().status, 200);
        let (out, _) = admin(
            &kv,
            AdminAction::GetRecord(RecordKind::Tenant, None),
            "https://gw/x",
            None,
        );
        assert_eq!(body(&out.unwrap())["destination"]["secret"]["set"], true);
    }

    #[test]
    fn the_default_destination_reads_as_the_tenants_own_secret_redacted() {
        let kv = Kv::default();
        let get = || AdminAction::GetRecord(RecordKind::Destination, Some("default".into()));
        let put = AdminAction::PutRecord(RecordKind::Tenant, None);
        let (out, _) = admin(&kv, put, "u", Some(json!({"name": "Acme"})));
        assert_eq!(out.unwrap().status, 201);
        let (out, _) = admin(&kv, get(), "u", None);
        let e = out.unwrap_err();
        assert_eq!(e.status(), 404);
        assert!(e.message.contains("no destination"), "{}", e.message);
        let put = AdminAction::PutRecord(RecordKind::Tenant, None);
        let (out, _) = admin(&kv, put, "u", Some(tenant_doc()));
        assert_eq!(out.unwrap().status, 200);
        let (out, _) = admin(&kv, get(), "u", None);
        let doc = body(&out.unwrap());
        assert_eq!(doc["url"], "https://d.example/h");
        assert_eq!(doc["secret"]["set"], true);
        assert!(!doc.to_string().contains("whsec_Mf"));
    }

    #[test]
    fn a_tenants_destination_is_the_default_record_kept_read_back_and_removed_on_null() {
        let kv = with_tenant();
        let key = RecordKind::Destination.kv_key("t1", Some("default"));
        let put = |doc| {
            admin(
                &kv,
                AdminAction::PutRecord(RecordKind::Tenant, None),
                "u",
                Some(doc),
            )
            .0
        };
        let put_default = |doc| {
            let action = AdminAction::PutRecord(RecordKind::Destination, Some("default".into()));
            admin(&kv, action, "u", Some(doc)).0
        };
        // `default` is a destination name like any other now: a filter and a transform.
        let own = json!({"url": "https://d.example/h", "secret": {"set": true}, "filter": {"types": ["stripe.*"]},
                         "transform": {"field_mappings": {"amount": "data.object.amount"}}});
        assert_eq!(put_default(own).unwrap().status, 200);
        let sealed_before = kv.get(&key).unwrap()["secret"].clone();
        // A tenant document sent back as GET shows it, with a new url: the rest of the record stays.
        let get = || {
            body(
                &admin(
                    &kv,
                    AdminAction::GetRecord(RecordKind::Tenant, None),
                    "u",
                    None,
                )
                .0
                .unwrap(),
            )
        };
        let mut shown = get();
        assert_eq!(
            shown["destination"],
            json!({"url": "https://d.example/h", "secret": {"set": true}})
        );
        shown["destination"]["url"] = json!("https://moved.example/h");
        shown["destination"]["timeout_ms"] = json!(2000);
        assert_eq!(put(shown).unwrap().status, 200);
        let record = kv.get(&key).unwrap();
        assert_eq!(
            (record["url"].clone(), record["timeout_ms"].clone()),
            (json!("https://moved.example/h"), json!(2000))
        );
        assert_eq!(record["filter"]["types"], json!(["stripe.*"]));
        assert_eq!(record["secret"], sealed_before, "the secret kept");
        // Without `destination`, the default destination stays as it is.
        assert_eq!(put(json!({"name": "Acme 2"})).unwrap().status, 200);
        assert_eq!(get()["destination"]["url"], "https://moved.example/h");
        // A bad destination is refused, and changes nothing.
        let bad = json!({"name": "Acme", "destination": {"url": "ftp://x", "secret": "nope"}});
        assert_eq!(put(bad).unwrap_err().status(), 422);
        assert_eq!(kv.get(&key).unwrap(), record);
        assert_eq!(get()["name"], "Acme 2");
        // `null` removes it.
        assert_eq!(
            put(json!({"name": "Acme", "destination": null}))
                .unwrap()
                .status,
            200
        );
        assert!(kv.get(&key).is_none());
        assert!(get().get("destination").is_none());
    }

    #[test]
    fn a_tenant_not_yet_migrated_keeps_its_destination_through_a_put_without_it() {
        let legacy = json!({"name": "Acme", "destination": {"url": "https://d.example/h", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}});
        let kv = Kv::with(&[(
            RecordKind::Tenant.kv_key("t1", None),
            crate::core::testing::stored(RecordKind::Tenant, "t1", None, legacy),
        )]);
        let put = AdminAction::PutRecord(RecordKind::Tenant, None);
        let shown = body(
            &admin(&kv, put, "u", Some(json!({"name": "Renamed"})))
                .0
                .unwrap(),
        );
        assert_eq!(shown["destination"]["url"], "https://d.example/h");
        let record = kv
            .get(&RecordKind::Destination.kv_key("t1", Some("default")))
            .unwrap();
        assert!(record["secret"]["$sealed"].is_string());
        let tenant = kv.get(&RecordKind::Tenant.kv_key("t1", None)).unwrap();
        assert_eq!(
            tenant["destination"]["url"], "https://d.example/h",
            "the mirror"
        );
        // Deleting `default` deletes it wherever it is.
        let delete = AdminAction::DeleteRecord(RecordKind::Destination, Some("default".into()));
        assert_eq!(admin(&kv, delete, "u", None).0.unwrap().status, 204);
        let get = AdminAction::GetRecord(RecordKind::Destination, Some("default".into()));
        assert_eq!(admin(&kv, get, "u", None).0.unwrap_err().status(), 404);
    }

    #[test]
    fn a_record_of_a_tenant_that_does_not_exist_is_refused() {
        let kv = Kv::default();
        let put = AdminAction::PutRecord(RecordKind::Source, Some("wa".into()));
        let doc = json!({"kind": "whatsapp", "secrets": ["s"]});
        let (out, seen) = admin(&kv, put, "https://gw/x", Some(doc));
        assert_eq!(out.unwrap_err().status(), 404);
        assert!(!seen.iter().any(|e| matches!(e, Effect::PutConfig { .. })));
    }

    #[test]
    fn a_tenant_is_deleted_with_everything_it_owns_only_when_named_again() {
        let kv = with_tenant();
        let source = json!({"kind": "whatsapp", "secrets": ["s"]});
        admin(
            &kv,
            AdminAction::PutRecord(RecordKind::Source, Some("wa".into())),
            "u",
            Some(source),
        )
        .0
        .unwrap();
        let scoped = Some(json!({"scopes": ["*"]}));
        admin(&kv, AdminAction::CreateKey, "u", scoped).0.unwrap();
        assert_eq!(
            kv.0.borrow().len(),
            5,
            "tenant, default destination, source, key and its index"
        );

        let delete = || AdminAction::DeleteRecord(RecordKind::Tenant, None);
        let (out, _) = admin(&kv, delete(), "https://gw/v1/admin/tenants/t1", None);
        assert_eq!(out.unwrap_err().status(), 400);
        assert_eq!(kv.0.borrow().len(), 5, "nothing deleted");

        let (out, seen) = admin(
            &kv,
            delete(),
            "https://gw/v1/admin/tenants/t1?confirm=t1",
            None,
        );
        assert_eq!(out.unwrap().status, 204);
        assert!(kv.0.borrow().is_empty(), "{:?}", kv.0.borrow().keys());
        assert_eq!(asked(&seen, ObjectClass::Dedupe), vec![json!("purge")]);
        assert_eq!(asked(&seen, ObjectClass::DeadLetters), vec![json!("purge")]);
        assert!(seen.contains(&Effect::ForgetPrefix("oauth:t1:".into())));
    }

    #[test]
    fn a_key_is_changed_and_rotated_in_its_record_and_its_index_alike() {
        let kv = with_tenant();
        let body = json!({"name": "ci", "scopes": ["llm"], "rpm": 5, "metadata": {"team": "a"}});
        let created = body_of(admin(&kv, AdminAction::CreateKey, "u", Some(body)));
        let id = created["id"].as_str().unwrap().to_string();
        let record = |hash: &str| kv.get(&ConfigKey::api_key(hash)).unwrap();
        let index = |id: &str| kv.get(&ConfigKey::key_index("t1", Some(id))).unwrap();
        let hash = index(&id)["hash"].as_str().unwrap().to_string();
        assert_eq!(record(&hash)["rpm"], 5);

        let patch = json!({"rpm": null, "allowed_models": ["openai/*"]});
        let changed = body_of(admin(
            &kv,
            AdminAction::PatchKey(id.clone()),
            "u",
            Some(patch),
        ));
        assert_eq!(changed["rpm"], Value::Null);
        assert_eq!(changed["name"], "ci");
        for doc in [record(&hash), index(&id)] {
            assert_eq!(
                (doc.get("rpm"), &doc["allowed_models"][0]),
                (None, &json!("openai/*"))
            );
        }
        let bad = admin(
            &kv,
            AdminAction::PatchKey(id.clone()),
            "u",
            Some(json!({"rpm": 0})),
        );
        assert_eq!(bad.0.unwrap_err().status(), 422);
        assert_eq!(
            index(&id)["allowed_models"][0],
            "openai/*",
            "a refused patch changes nothing"
        );

        let expire = json!({"old_key_expires_at": 77});
        let rotated = body_of(admin(
            &kv,
            AdminAction::RotateKey(id.clone()),
            "u",
            Some(expire),
        ));
        let new_id = rotated["id"].as_str().unwrap();
        assert_ne!(new_id, id);
        assert_eq!(
            (&rotated["rotated_from"], &rotated["name"]),
            (&json!(id), &json!("ci"))
        );
        let new_hash = index(new_id)["hash"].as_str().unwrap().to_string();
        assert_eq!(
            record(&new_hash)["line"],
            json!(id),
            "it spends the old key's budget"
        );
        assert_eq!(record(&hash)["expires_at"], 77);
        let missing = admin(&kv, AdminAction::RotateKey("key_none".into()), "u", None);
        assert_eq!(missing.0.unwrap_err().status(), 404);
    }

    #[test]
    fn a_secret_key_is_never_minted_without_scopes_and_a_stored_one_without_them_shows_every_scope()
    {
        let kv = with_tenant();
        let before = kv.0.borrow().len();
        for body in [
            None,
            Some(json!({})),
            Some(json!({"scopes": []})),
            Some(json!({"scopes": null})),
        ] {
            let e = admin(&kv, AdminAction::CreateKey, "u", body.clone())
                .0
                .unwrap_err();
            assert_eq!(e.status(), 422, "{body:?}");
            assert_eq!(
                e.message,
                r#"a secret key needs "scopes": one or more of llm, channels, integrations, deliveries, mcp, or "*" for every scope"#
            );
        }
        assert_eq!(kv.0.borrow().len(), before, "nothing was written");
        let widget = body_of(admin(&kv, AdminAction::CreateWidgetKey, "u", None));
        assert_eq!(
            widget.get("scopes"),
            None,
            "a publishable key shows no scopes"
        );

        // A key stored before scopes were required: shown as `*` in the list, a change and a
        // rotation (which copies it, unrefused).
        let created = body_of(admin(
            &kv,
            AdminAction::CreateKey,
            "u",
            Some(json!({"scopes": ["llm"]})),
        ));
        let id = created["id"].as_str().unwrap().to_string();
        let index = ConfigKey::key_index("t1", Some(&id));
        let mut legacy = kv.get(&index).unwrap();
        legacy["scopes"] = json!([]);
        kv.0.borrow_mut().insert(index.as_str().to_string(), legacy);
        let list = body_of(admin(&kv, AdminAction::ListKeys, "u", None));
        let shown: Vec<_> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.get("scopes").cloned())
            .collect();
        assert!(
            shown.contains(&Some(json!(["*"]))) && shown.contains(&None),
            "{list}"
        );
        let renamed = admin(
            &kv,
            AdminAction::PatchKey(id.clone()),
            "u",
            Some(json!({"name": "old"})),
        );
        assert_eq!(body_of(renamed)["scopes"], json!(["*"]));
        for scopes in [json!([]), Value::Null] {
            let patch = Some(json!({ "scopes": scopes }));
            let e = admin(&kv, AdminAction::PatchKey(id.clone()), "u", patch)
                .0
                .unwrap_err();
            assert!(e.message.contains(r#"needs "scopes""#), "{}", e.message);
        }
        let rotated = body_of(admin(&kv, AdminAction::RotateKey(id.clone()), "u", None));
        assert_eq!(rotated["scopes"], json!(["*"]));
    }

    fn body_of(out: (Result<HttpResponse, ApiError>, Vec<Effect>)) -> Value {
        body(&out.0.unwrap())
    }

    #[test]
    fn dead_letters_and_a_disabled_destination_answer_in_unix_seconds() {
        let kv = with_tenant();
        let letters = body_of(admin(&kv, AdminAction::ListDeadLetters, "u", None));
        assert_eq!(letters["data"][0]["dead_at"].to_string(), "1796014360.123");
        // Disabled by an earlier version (epoch ms), and by this one (seconds).
        let key = RecordKind::Destination.kv_key("t1", Some("crm"));
        for at in [1_796_014_360_123_u64, 1_796_014_360] {
            let doc = json!({"url": "https://d.example/h", "disabled": {"at": at, "reason": "every attempt failed"}});
            kv.0.borrow_mut().insert(key.as_str().to_string(), doc);
            let get = AdminAction::GetRecord(RecordKind::Destination, Some("crm".into()));
            let shown = body_of(admin(&kv, get, "u", None));
            assert_eq!(shown["disabled"]["at"], 1_796_014_360, "{at}");
        }
    }

    #[test]
    fn a_dead_letter_is_replayed_as_a_first_attempt_and_then_removed() {
        let kv = Kv::default();
        let (out, seen) = admin(
            &kv,
            AdminAction::ReplayDeadLetter("evt_1".into()),
            "u",
            None,
        );
        assert_eq!(out.unwrap().status, 202);
        let Some(Effect::All(both)) = seen.iter().find(|e| matches!(e, Effect::All(_))) else {
            panic!("{seen:?}")
        };
        let Effect::Send { texts, .. } = &both[0] else {
            panic!()
        };
        assert_eq!(
            serde_json::from_str::<Value>(&texts[0]).unwrap()["attempt"],
            1
        );
        assert_eq!(
            asked(&seen, ObjectClass::DeadLetters).last().unwrap(),
            &json!({"delete": {"id": "evt_1"}})
        );
    }

    /// A tenant stored before the default destination was a record: the legacy field, its
    /// secret sealed to the tenant (or, with `sealed_for`, to another tenant: it does not open).
    fn legacy_tenant(sealed_for: &str) -> Kv {
        let doc = json!({"name": "Acme", "destination": {"url": "https://old.example/h",
            "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}});
        let mut stored = crate::core::testing::stored(RecordKind::Tenant, sealed_for, None, doc);
        stored["incarnation"] = json!("00");
        Kv::with(&[(RecordKind::Tenant.kv_key("t1", None), stored)])
    }

    #[test]
    fn an_explicit_destination_or_null_replaces_a_legacy_field_whose_secret_does_not_open() {
        let fresh = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let put = AdminAction::PutRecord(RecordKind::Tenant, None);
        let explicit = json!({"name": "Acme", "destination": {"url": "https://new.example/h", "secret": fresh}});
        for (body, mirror) in [
            (explicit, Some("https://new.example/h")),
            (json!({"name": "Acme", "destination": null}), None),
        ] {
            let kv = legacy_tenant("t2");
            let out = admin(&kv, put.clone(), "u", Some(body.clone())).0;
            assert_eq!(out.unwrap().status, 200, "{body}");
            let tenant = kv.get(&RecordKind::Tenant.kv_key("t1", None)).unwrap();
            let url = tenant.get("destination").map(|d| d["url"].clone());
            assert_eq!(url, mirror.map(|u| json!(u)), "{tenant}");
        }
        // Nor a PUT of the destination `default` with a secret of its own (the field stays,
        // inert beside the record).
        let kv = legacy_tenant("t2");
        let action = AdminAction::PutRecord(RecordKind::Destination, Some("default".into()));
        let doc = json!({"url": "https://new.example/h", "secret": fresh});
        assert_eq!(admin(&kv, action, "u", Some(doc)).0.unwrap().status, 200);
        let record = kv.get(&RecordKind::Destination.kv_key("t1", Some("default")));
        assert_eq!(record.unwrap()["url"], "https://new.example/h");
        // Deleting it does not need to open it either.
        let kv = legacy_tenant("t2");
        let delete = AdminAction::DeleteRecord(RecordKind::Destination, Some("default".into()));
        assert_eq!(admin(&kv, delete, "u", None).0.unwrap().status, 204);
        let tenant = kv.get(&RecordKind::Tenant.kv_key("t1", None)).unwrap();
        assert!(tenant.get("destination").is_none(), "{tenant}");
    }

    #[test]
    fn a_put_of_default_keeping_its_secret_copies_the_legacy_field_and_leaves_it() {
        let kv = legacy_tenant("t1");
        let action = AdminAction::PutRecord(RecordKind::Destination, Some("default".into()));
        let doc = json!({"url": "https://old.example/h", "secret": {"set": true}, "filter": {"types": ["stripe.*"]}});
        // It existed (GET showed it): replaced, not created.
        assert_eq!(admin(&kv, action, "u", Some(doc)).0.unwrap().status, 200);
        let record = kv.get(&RecordKind::Destination.kv_key("t1", Some("default")));
        let cfg: destination::DestinationConfig = serde_json::from_value(record.unwrap()).unwrap();
        assert_eq!(cfg.filter.types, ["stripe.*"]);
        let at = crate::core::config::document::RecordRef {
            tenant: "t1",
            record: "destination:default",
        };
        let secret =
            crate::core::config::document::open_secret(&sealer(), &at, "/secret", &cfg.secret);
        assert_eq!(secret.unwrap(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let tenant = kv.get(&RecordKind::Tenant.kv_key("t1", None)).unwrap();
        assert_eq!(
            tenant["destination"]["url"], "https://old.example/h",
            "left"
        );
    }

    #[test]
    fn get_default_has_one_shape_whether_it_is_the_legacy_field_or_the_record() {
        let get = || AdminAction::GetRecord(RecordKind::Destination, Some("default".into()));
        let kv = legacy_tenant("t1");
        let legacy = body(&admin(&kv, get(), "u", None).0.unwrap());
        let action = AdminAction::PutRecord(RecordKind::Destination, Some("default".into()));
        let doc = json!({"url": "https://old.example/h", "secret": {"set": true}});
        admin(&kv, action, "u", Some(doc)).0.unwrap();
        let record = body(&admin(&kv, get(), "u", None).0.unwrap());
        assert_eq!(legacy, record);
    }

    #[test]
    fn a_create_whose_tenant_read_answers_absent_erases_no_destination() {
        // A stale "not found" for a live tenant (KV caches it per data centre): its destinations
        // stay (deleting the tenant is what erases them).
        let crm = json!({"url": "https://crm.example/h", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"});
        let key = RecordKind::Destination.kv_key("t1", Some("crm"));
        let kv = Kv::with(&[(
            key.clone(),
            crate::core::testing::stored(RecordKind::Destination, "t1", Some("crm"), crm),
        )]);
        let before = kv.get(&key);
        let put = AdminAction::PutRecord(RecordKind::Tenant, None);
        let (out, seen) = admin(&kv, put, "u", Some(json!({"name": "New"})));
        assert_eq!(out.unwrap().status, 201);
        assert_eq!(kv.get(&key), before, "destination:t1:crm kept");
        assert!(
            !seen.iter().any(|e| matches!(e, Effect::DeleteConfig(_))),
            "{seen:?}"
        );
    }

    #[test]
    fn a_put_or_rotation_of_default_on_a_legacy_tenant_writes_no_tenant_key() {
        let tenant_key = RecordKind::Tenant.kv_key("t1", None);
        let wrote_tenant = |seen: &[Effect]| {
            seen.iter()
                .any(|e| matches!(e, Effect::PutConfig { key, .. } if *key == tenant_key))
        };
        let put = AdminAction::PutRecord(RecordKind::Destination, Some("default".into()));
        let fresh = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        for doc in [
            json!({"url": "https://old.example/h", "secret": {"set": true}}),
            json!({"url": "https://new.example/h", "secret": fresh}),
        ] {
            let kv = legacy_tenant("t1");
            let before = kv.get(&tenant_key);
            let (out, seen) = admin(&kv, put.clone(), "u", Some(doc.clone()));
            assert_eq!(out.unwrap().status, 200, "{doc}");
            assert!(!wrote_tenant(&seen), "{doc}");
            assert_eq!(kv.get(&tenant_key), before);
        }
        let kv = legacy_tenant("t1");
        let rotate = AdminAction::RotateDestinationSecret("default".into());
        let (out, seen) = admin(&kv, rotate, "u", None);
        assert_eq!(out.unwrap().status, 201);
        assert!(!wrote_tenant(&seen));
        assert!(kv.get(&tenant_key).unwrap()["destination"].is_object());
    }

    #[test]
    fn a_tenant_put_with_the_shorthand_keeps_a_mirror_and_writes_the_record() {
        let kv = Kv::default();
        let put = || AdminAction::PutRecord(RecordKind::Tenant, None);
        assert_eq!(
            admin(&kv, put(), "u", Some(tenant_doc())).0.unwrap().status,
            201
        );
        let record = kv.get(&RecordKind::Destination.kv_key("t1", Some("default")));
        assert_eq!(record.unwrap()["url"], "https://d.example/h");
        let mirror = |kv: &Kv| {
            let tenant = kv.get(&RecordKind::Tenant.kv_key("t1", None)).unwrap();
            let t: crate::core::tenant::model::TenantConfig =
                serde_json::from_value(tenant).unwrap();
            let d = t.destination.expect("the mirror");
            let at = crate::core::config::document::RecordRef {
                tenant: "t1",
                record: "tenant",
            };
            let open = crate::core::config::document::open_secret;
            let secret = open(&sealer(), &at, "/destination/secret", &d.secret).unwrap();
            (d.url, secret, d.timeout_ms)
        };
        let first = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        assert_eq!(
            mirror(&kv),
            ("https://d.example/h".into(), first.into(), None)
        );
        // Kept as the shorthand reads it back ({"set": true}), and without `destination`.
        let mut shown = body_of(admin(
            &kv,
            AdminAction::GetRecord(RecordKind::Tenant, None),
            "u",
            None,
        ));
        shown["destination"]["timeout_ms"] = json!(2000);
        assert_eq!(admin(&kv, put(), "u", Some(shown)).0.unwrap().status, 200);
        assert_eq!(
            mirror(&kv),
            ("https://d.example/h".into(), first.into(), Some(2000))
        );
        assert_eq!(
            admin(&kv, put(), "u", Some(json!({"name": "B"})))
                .0
                .unwrap()
                .status,
            200
        );
        assert_eq!(mirror(&kv).1, first);
        let null = json!({"name": "B", "destination": null});
        assert_eq!(admin(&kv, put(), "u", Some(null)).0.unwrap().status, 200);
        let tenant = kv.get(&RecordKind::Tenant.kv_key("t1", None)).unwrap();
        assert!(tenant.get("destination").is_none(), "{tenant}");
    }

    #[test]
    fn a_tenant_put_without_destination_whose_legacy_secret_does_not_open_is_a_409() {
        let kv = legacy_tenant("t2");
        let before = kv.0.borrow().clone();
        let put = AdminAction::PutRecord(RecordKind::Tenant, None);
        let (out, _) = admin(&kv, put, "u", Some(json!({"name": "Renamed"})));
        let e = out.unwrap_err();
        assert_eq!(e.status(), 409, "{}", e.message);
        assert!(
            e.message.contains("`destination`") && e.message.contains("null"),
            "{}",
            e.message
        );
        assert_eq!(*kv.0.borrow(), before, "nothing written");
    }

    #[test]
    fn a_failed_tenant_write_leaves_no_default_record_behind() {
        let kv = Kv::default();
        let sealer = sealer();
        let mut rng = Counter(1);
        let a = Admin {
            sealer: &sealer,
            rng: &mut rng,
            settings: QueueSettings::default(),
            url: "u",
            request_id: "req_test",
            trail: Trail::default(),
        };
        let route = AdminRoute {
            tenant: "t1".into(),
            action: AdminAction::PutRecord(RecordKind::Tenant, None),
        };
        let flow = crate::core::flow::Flow::new(|co| handle(co, a, route, Some(tenant_doc())));
        let (out, _) = drive(flow, 1_000_000, |e| match e {
            Effect::PutConfig { key, .. } if key.as_str() == "tenant:t1" => {
                Err(ApiError::internal("KV write failed"))
            }
            e => Ok(kv.answer(e).unwrap_or(Outcome::Done)),
        });
        assert!(out.is_err());
        assert!(kv.0.borrow().is_empty(), "{:?}", kv.0.borrow());
    }

    #[test]
    fn answers_carrying_a_secret_are_never_cached() {
        let kv = with_tenant();
        let dest = AdminAction::PutRecord(RecordKind::Destination, Some("crm".into()));
        let doc = json!({"url": "https://crm.example/h", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"});
        admin(&kv, dest, "u", Some(doc)).0.unwrap();
        let minted = admin(
            &kv,
            AdminAction::CreateKey,
            "u",
            Some(json!({"scopes": ["*"]})),
        )
        .0;
        let minted = minted.unwrap();
        let id = body(&minted)["id"].as_str().unwrap().to_string();
        let answers = [
            minted,
            admin(&kv, AdminAction::CreateWidgetKey, "u", None)
                .0
                .unwrap(),
            admin(&kv, AdminAction::RotateKey(id), "u", None).0.unwrap(),
            admin(
                &kv,
                AdminAction::RotateDestinationSecret("crm".into()),
                "u",
                None,
            )
            .0
            .unwrap(),
        ];
        for answer in answers {
            let cache = answer
                .headers
                .iter()
                .find(|(h, _)| h.eq_ignore_ascii_case("cache-control"));
            assert_eq!(
                cache.map(|(_, v)| v.as_str()),
                Some("no-store"),
                "{}",
                body(&answer)
            );
        }
    }

    #[test]
    fn get_tenant_shows_a_disabled_default_destination() {
        let kv = with_tenant();
        let action = AdminAction::PutRecord(RecordKind::Destination, Some("default".into()));
        let doc = json!({"url": "https://d.example/h", "secret": {"set": true},
                         "disabled": {"at": 1_800_000_000, "reason": "every attempt failed"}});
        admin(&kv, action, "u", Some(doc)).0.unwrap();
        let get = AdminAction::GetRecord(RecordKind::Tenant, None);
        let shown = body(&admin(&kv, get, "u", None).0.unwrap());
        assert_eq!(shown["destination"]["disabled"]["at"], 1_800_000_000);
    }

    /// An admin action's status, or its error's status and message.
    fn status(out: Result<HttpResponse, ApiError>) -> Result<u16, (u16, String)> {
        out.map(|r| r.status).map_err(|e| (e.status(), e.message))
    }

    fn default_record(kv: &Kv) -> Value {
        kv.get(&RecordKind::Destination.kv_key("t1", Some("default")))
            .unwrap()
    }

    #[test]
    fn the_shorthand_after_a_rotation_of_default_keeps_its_previous_secrets() {
        let kv = with_tenant();
        let rotate = AdminAction::RotateDestinationSecret("default".into());
        assert_eq!(status(admin(&kv, rotate, "u", None).0), Ok(201));
        let previous = default_record(&kv)["previous_secrets"].clone();
        assert!(previous[0]["secret"]["$sealed"].is_string(), "{previous}");
        let put = AdminAction::PutRecord(RecordKind::Tenant, None);
        let doc = json!({"name": "Acme", "destination": {"url": "https://d.example/h2", "secret": {"set": true}}});
        assert_eq!(status(admin(&kv, put, "u", Some(doc)).0), Ok(200));
        let record = default_record(&kv);
        assert_eq!(record["url"], "https://d.example/h2");
        assert_eq!(
            record["previous_secrets"], previous,
            "kept, sealed as it was"
        );
    }

    #[test]
    fn the_tenant_as_get_shows_it_saves_after_a_rotation_and_with_a_disabled_default() {
        let kv = with_tenant();
        let get = || AdminAction::GetRecord(RecordKind::Tenant, None);
        let put = || AdminAction::PutRecord(RecordKind::Tenant, None);
        let rotate = AdminAction::RotateDestinationSecret("default".into());
        admin(&kv, rotate, "u", None).0.unwrap();
        let shown = body(&admin(&kv, get(), "u", None).0.unwrap());
        assert_eq!(status(admin(&kv, put(), "u", Some(shown)).0), Ok(200));
        // `disabled` is shown, read-only: saving the profile neither refuses nor changes it.
        let kv = with_tenant();
        let key = RecordKind::Destination.kv_key("t1", Some("default"));
        let mut rec = kv.get(&key).unwrap();
        let disabled = json!({"at": 1_800_000_000u64, "reason": "every attempt failed"});
        rec["disabled"] = disabled.clone();
        kv.0.borrow_mut().insert(key.as_str().to_string(), rec);
        let shown = body(&admin(&kv, get(), "u", None).0.unwrap());
        assert_eq!(shown["destination"]["disabled"], disabled);
        assert_eq!(status(admin(&kv, put(), "u", Some(shown)).0), Ok(200));
        assert_eq!(default_record(&kv)["disabled"], disabled);
        let tenant = kv.get(&RecordKind::Tenant.kv_key("t1", None)).unwrap();
        assert!(tenant["destination"].get("disabled").is_none(), "{tenant}");
    }

    /// A tenant whose default destination is a Pub/Sub topic.
    fn with_pubsub_default() -> Kv {
        let kv = with_tenant();
        let put = AdminAction::PutRecord(RecordKind::Destination, Some("default".into()));
        let sa = crate::core::webhook::bus::tests::SA_KEY;
        let doc = json!({"kind": "pubsub", "url": "https://pubsub.googleapis.com/v1/projects/acme-prod/topics/orders", "secret": {"set": true},
            "google": {"service_account": {"client_email": "gw@acme-prod.iam.gserviceaccount.com", "private_key": sa}}});
        assert_eq!(status(admin(&kv, put, "u", Some(doc)).0), Ok(200));
        kv
    }

    #[test]
    fn the_shorthand_on_a_bus_default_keeps_its_credential_only_where_it_was_given() {
        let kv = with_pubsub_default();
        let key = default_record(&kv)["google"]["service_account"]["private_key"].clone();
        let put = || AdminAction::PutRecord(RecordKind::Tenant, None);
        let to = |url: &str| json!({"name": "Acme", "destination": {"url": url, "secret": {"set": true}, "timeout_ms": 5000}});
        let other_topic = "https://pubsub.googleapis.com/v1/projects/acme-prod/topics/invoices";
        assert_eq!(
            status(admin(&kv, put(), "u", Some(to(other_topic))).0),
            Ok(200)
        );
        let record = default_record(&kv);
        assert_eq!(
            (
                record["url"].as_str(),
                &record["google"]["service_account"]["private_key"]
            ),
            (Some(other_topic), &key)
        );
        let before = kv.0.borrow().clone();
        let moved = to("https://pubsub.elsewhere.example/v1/projects/acme-prod/topics/orders");
        let (code, message) = status(admin(&kv, put(), "u", Some(moved)).0).unwrap_err();
        assert_eq!(code, 422, "{message}");
        assert!(
            message.contains("`google.service_account.private_key` cannot be kept"),
            "{message}"
        );
        assert_eq!(*kv.0.borrow(), before, "nothing written");
    }

    #[test]
    fn a_bus_default_leaves_no_https_mirror_in_the_tenant_document() {
        let kv = with_pubsub_default();
        let put = || AdminAction::PutRecord(RecordKind::Tenant, None);
        let topic = "https://pubsub.googleapis.com/v1/projects/acme-prod/topics/orders";
        for doc in [
            json!({"name": "Renamed"}),
            json!({"name": "Acme", "destination": {"url": topic, "secret": {"set": true}}}),
        ] {
            assert_eq!(status(admin(&kv, put(), "u", Some(doc.clone())).0), Ok(200));
            let tenant = kv.get(&RecordKind::Tenant.kv_key("t1", None)).unwrap();
            assert!(tenant.get("destination").is_none(), "{doc} left {tenant}");
            assert_eq!(default_record(&kv)["kind"], "pubsub");
        }
    }
}
