//! `POST /v1/admin/tenants/{t}/portal-links` (admin): a signed link to the tenant portal for the
//! tenant as it is now (its incarnation), with the capabilities asked, for 60 s to 1 h.

use super::capability::Capability;
use super::token::{Link, Signed};
use crate::core::config::seal::Sealer;
use crate::core::error::ApiError;
use crate::core::flow::Co;
use crate::core::http::{url_origin, HttpResponse};
use crate::core::platform::RecordKind;
use crate::core::tenant::model::TenantConfig;
use crate::core::Entropy;
use serde::Deserialize;
use serde_json::{json, Value};

pub const DEFAULT_TTL_S: u64 = 900;
pub const MIN_TTL_S: u64 = 60;
pub const MAX_TTL_S: u64 = 3600;

/// What the operator asks for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MintRequest {
    capabilities: Option<Vec<String>>,
    ttl_s: Option<u64>,
}

/// The request's capabilities and lifetime, checked.
pub fn asked(body: Option<Value>) -> Result<(Vec<Capability>, u64), ApiError> {
    let body = body.unwrap_or(Value::Null);
    let req: MintRequest = serde_json::from_value(body).map_err(|e| {
        ApiError::validation(format!(
            "a portal link is asked as {{\"capabilities\": [...], \"ttl_s\": 900}}: {e}"
        ))
    })?;
    let capabilities = Capability::parse_list(&req.capabilities.unwrap_or_default())
        .map_err(ApiError::validation)?;
    let ttl_s = req.ttl_s.unwrap_or(DEFAULT_TTL_S);
    if !(MIN_TTL_S..=MAX_TTL_S).contains(&ttl_s) {
        return Err(ApiError::validation(format!(
            "`ttl_s` must be {MIN_TTL_S} to {MAX_TTL_S} seconds"
        )));
    }
    Ok((capabilities, ttl_s))
}

pub async fn mint(
    co: &Co,
    sealer: &Sealer,
    rng: &mut dyn Entropy,
    tenant: &str,
    url: &str,
    body: Option<Value>,
) -> Result<HttpResponse, ApiError> {
    let (capabilities, ttl_s) = asked(body)?;
    let t: TenantConfig = co
        .config_fresh(&RecordKind::Tenant.kv_key(tenant, None))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("tenant `{tenant}` does not exist")))?;
    let mut nonce = [0u8; 16];
    rng.fill(&mut nonce);
    let link = Link {
        tenant: tenant.to_string(),
        incarnation: t.incarnation().to_string(),
        capabilities,
        nonce: hex::encode(nonce),
        expires_at: co.now() / 1000 + ttl_s,
    };
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("link", &link.sign(sealer.id_key()))
        .finish();
    let to = format!("{}/portal?{query}", url_origin(url));
    let answer =
        json!({"url": to, "expires_at": link.expires_at, "capabilities": link.capabilities});
    // The link is a credential until it is spent: no cache keeps it.
    Ok(HttpResponse::json(201, &answer)?.header("cache-control", "no-store"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_link_is_asked_with_known_capabilities_and_a_bounded_lifetime() {
        let ok = asked(Some(json!({"capabilities": ["events", "usage"]}))).unwrap();
        assert_eq!(ok, (vec![Capability::Events, Capability::Usage], 900));
        let ttl = |t: u64| asked(Some(json!({"capabilities": ["keys"], "ttl_s": t})));
        assert_eq!(ttl(60).unwrap().1, 60);
        assert_eq!(ttl(3600).unwrap().1, 3600);
        for bad in [59, 3601, 0] {
            assert_eq!(ttl(bad).unwrap_err().status(), 422, "{bad}");
        }
        for body in [
            None,
            Some(json!({})),
            Some(json!({"capabilities": []})),
            Some(json!({"capabilities": ["events", "events"]})),
            Some(json!({"capabilities": ["root"]})),
            Some(json!({"capabilities": ["events"], "tenant": "other"})),
            Some(json!({"capabilities": "events"})),
            Some(json!({"capabilities": ["events"], "ttl_s": -5})),
        ] {
            let e = asked(body.clone()).unwrap_err();
            assert_eq!(e.status(), 422, "{body:?}: {}", e.message);
        }
    }
}
