//! `POST /v1/portal/session`: a link, spent once, for a session; and what every portal call
//! checks first: its session (signed, not expired, of the tenant as it is now) and the
//! capability its action needs.

use super::capability::Capability;
use super::spend::SpendLink;
use super::token::{Link, Session, Signed};
use super::PortalAction;
use crate::core::config::seal::Sealer;
use crate::core::error::ApiError;
use crate::core::flow::Co;
use crate::core::http::HttpResponse;
use crate::core::objects::protocol::EventLog;
use crate::core::objects::Object;
use crate::core::platform::RecordKind;
use crate::core::tenant::model::TenantConfig;
use crate::core::Entropy;
use serde::Deserialize;
use serde_json::{json, Value};

/// The longest a session lives.
pub const SESSION_TTL_S: u64 = 3600;

/// When a session made at `now_s` expires: an hour from now. A link is spent only before it
/// expires, so no session outlives its link by more than that hour.
pub fn session_expiry(now_s: u64) -> u64 {
    now_s + SESSION_TTL_S
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Exchange {
    link: String,
}

/// The tenant a token names, if it is still the incarnation the token was issued for.
async fn current(co: &Co, tenant: &str, incarnation: &str) -> Result<TenantConfig, ApiError> {
    let t: Option<TenantConfig> = co
        .config_fresh(&RecordKind::Tenant.kv_key(tenant, None))
        .await?;
    t.filter(|t| t.incarnation() == incarnation).ok_or_else(|| {
        ApiError::unauthorized(
            "this portal's tenant no longer exists as it was: ask for a new link",
        )
    })
}

pub async fn exchange(
    co: &Co,
    sealer: &Sealer,
    rng: &mut dyn Entropy,
    body: Option<Value>,
) -> Result<HttpResponse, ApiError> {
    let asked: Exchange = serde_json::from_value(body.unwrap_or(Value::Null))
        .map_err(|_| ApiError::validation("send {\"link\": \"<the link's token>\"}"))?;
    let now_s = co.now() / 1000;
    let link = Link::open(sealer.id_keys(), &asked.link, now_s).map_err(|_| {
        ApiError::unauthorized(
            "this portal link is not valid (expired, changed, or not this gateway's): ask for a new one",
        )
    })?;
    let tenant = current(co, &link.tenant, &link.incarnation).await?;
    let spend = SpendLink {
        nonce: link.nonce.clone(),
        until_ms: link.expires_at.saturating_mul(1000),
    };
    let first = co
        .ask(&Object::<EventLog>::tenant(&link.tenant), spend)
        .await?;
    if !first {
        return Err(ApiError::unauthorized(
            "this portal link was used already: each link opens one session; ask for a new one",
        ));
    }
    let mut id = [0u8; 16];
    rng.fill(&mut id);
    let session = Session {
        tenant: link.tenant,
        incarnation: tenant.incarnation().to_string(),
        capabilities: link.capabilities,
        session: hex::encode(id),
        expires_at: session_expiry(now_s),
    };
    let answer = json!({
        "session": session.sign(sealer.id_key()),
        "tenant": session.tenant,
        "capabilities": session.capabilities,
        "expires_at": session.expires_at,
    });
    Ok(HttpResponse::json(201, &answer)?.header("cache-control", "no-store"))
}

/// The session a portal call presents (`Authorization: Bearer <session>`), and its tenant as it
/// is now. Nothing else is a portal credential: an admin token or an API key is refused.
pub async fn authenticate(
    co: &Co,
    sealer: &Sealer,
    authorization: Option<&str>,
) -> Result<(Session, TenantConfig), ApiError> {
    let token = authorization
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .ok_or_else(|| {
            ApiError::unauthorized("a portal call needs `Authorization: Bearer <session>`")
        })?;
    let session = Session::open(sealer.id_keys(), token, co.now() / 1000).map_err(|_| {
        ApiError::unauthorized(
            "this portal session is not valid (expired, changed, or not a portal session): open a new link",
        )
    })?;
    let tenant = current(co, &session.tenant, &session.incarnation).await?;
    Ok((session, tenant))
}

/// Whether a session granted `granted` may run `action`: 403 naming what is missing.
pub fn allowed(granted: &[Capability], action: &PortalAction) -> Result<(), ApiError> {
    match action.needs() {
        None => Err(ApiError::forbidden(
            "the portal does not offer this: it is the operator's to change",
        )),
        Some(c) if granted.contains(&c) => Ok(()),
        Some(c) => Err(ApiError::forbidden(format!(
            "this portal session was not granted the `{}` capability",
            c.name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::flow::{drive, Effect, Flow, Outcome};
    use crate::core::objects::ObjectClass;
    use crate::core::route::AdminAction;
    use crate::core::testing::{sealer, Counter, Kv};

    #[test]
    fn a_session_lives_an_hour() {
        assert_eq!(session_expiry(1_000), 4_600);
    }

    #[test]
    fn an_action_needs_its_capability_and_some_none_gives() {
        use Capability::*;
        let events = PortalAction::Admin(AdminAction::ListEvents);
        assert!(allowed(&[Events], &events).is_ok());
        let e = allowed(&[Keys, Usage], &events).unwrap_err();
        assert_eq!(e.status(), 403);
        assert!(e.message.contains("`events`"), "{}", e.message);
        let connect = PortalAction::Connect("crm".into());
        assert!(allowed(&[Integrations], &connect).is_ok());
        assert_eq!(allowed(&[Events], &connect).unwrap_err().status(), 403);
        for a in [
            PortalAction::Marketplace,
            PortalAction::Disconnect("c".into()),
        ] {
            assert_eq!(a.needs(), Some(Integrations));
        }
        let tenant = PortalAction::Admin(AdminAction::MintPortalLink);
        let e = allowed(&Capability::ALL, &tenant).unwrap_err();
        assert_eq!(e.status(), 403, "not with every capability either");
    }

    fn tenant(incarnation: &str) -> Value {
        json!({"name": "Acme", "incarnation": incarnation})
    }

    /// Drives `exchange` on a store holding `t1` (as `incarnation`); the spent nonces kept as
    /// the tenant's `EventLog` would keep them.
    fn exchange_at(
        kv: &Kv,
        spent: &std::cell::RefCell<Vec<String>>,
        link: &str,
        now_ms: u64,
    ) -> Result<HttpResponse, ApiError> {
        let sealer = sealer();
        let mut rng = Counter(3);
        let body = Some(json!({ "link": link }));
        let flow = Flow::new(|co| async move { exchange(&co, &sealer, &mut rng, body).await });
        drive(flow, now_ms, |e| match e {
            Effect::Ask {
                class: ObjectClass::EventLog,
                name,
                body,
            } => {
                assert_eq!(name, "t1", "the tenant's own object");
                let cmd: Value = serde_json::from_str(body).unwrap();
                let nonce = cmd["spend_link"]["nonce"].as_str().unwrap().to_string();
                let first = !spent.borrow().contains(&nonce);
                spent.borrow_mut().push(nonce);
                Ok(Outcome::Text(first.to_string()))
            }
            e => Ok(kv.answer(e).unwrap_or(Outcome::Doc(None))),
        })
        .0
    }

    fn link(incarnation: &str, expires_at: u64) -> String {
        Link {
            tenant: "t1".into(),
            incarnation: incarnation.into(),
            capabilities: vec![Capability::Events],
            nonce: "0a".repeat(16),
            expires_at,
        }
        .sign(&sealer().id_keys()[0])
    }

    #[test]
    fn a_link_opens_one_session_for_its_tenant_as_it_was() {
        let kv = Kv::with(&[(RecordKind::Tenant.kv_key("t1", None), tenant("i1"))]);
        let spent = Default::default();
        let now = 1_000_000;
        let got = exchange_at(&kv, &spent, &link("i1", 1_900), now).unwrap();
        assert_eq!(got.status, 201);
        let body: Value = serde_json::from_slice(got.body.as_ref().unwrap()).unwrap();
        assert_eq!(body["tenant"], "t1");
        assert_eq!(body["capabilities"], json!(["events"]));
        assert_eq!(body["expires_at"], 1_000 + SESSION_TTL_S);
        let s = Session::open(sealer().id_keys(), body["session"].as_str().unwrap(), 1_001);
        assert_eq!(s.unwrap().incarnation, "i1");
        // The same link again: spent.
        let again = exchange_at(&kv, &spent, &link("i1", 1_900), now + 1).unwrap_err();
        assert_eq!(again.status(), 401);
        assert!(again.message.contains("used already"), "{}", again.message);
        // Another incarnation's link, an expired one, a forged one: refused before any spend.
        let before = spent.borrow().len();
        for l in [
            link("i0", 1_900),
            link("i1", 1_000),
            link("i1", 1_900).replace('.', "x."),
        ] {
            let e = exchange_at(&kv, &spent, &l, now).unwrap_err();
            assert_eq!(e.status(), 401, "{l}");
        }
        assert_eq!(spent.borrow().len(), before, "nothing spent");
    }

    #[test]
    fn a_session_is_refused_once_its_tenant_is_another_incarnation() {
        let kv = Kv::with(&[(RecordKind::Tenant.kv_key("t1", None), tenant("i2"))]);
        let sealer = &sealer();
        let key = sealer.id_keys()[0];
        let session = |incarnation: &str, expires_at| {
            Session {
                tenant: "t1".into(),
                incarnation: incarnation.into(),
                capabilities: vec![Capability::Keys],
                session: "s".into(),
                expires_at,
            }
            .sign(&key)
        };
        let check = |auth: Option<String>| {
            let flow = Flow::new(|co| async move {
                authenticate(&co, sealer, auth.as_deref())
                    .await
                    .map(|(s, _)| s.tenant)
            });
            drive(flow, 1_000_000, |e| {
                Ok(kv.answer(e).unwrap_or(Outcome::Doc(None)))
            })
            .0
        };
        assert_eq!(
            check(Some(format!("Bearer {}", session("i2", 2_000)))),
            Ok("t1".into())
        );
        for refused in [
            Some(format!("Bearer {}", session("i1", 2_000))),
            Some(format!("Bearer {}", session("i2", 1_000))),
            Some(session("i2", 2_000)),
            Some("Bearer sk_live_not_a_session".into()),
            None,
        ] {
            assert_eq!(
                check(refused.clone()).unwrap_err().status(),
                401,
                "{refused:?}"
            );
        }
    }
}
