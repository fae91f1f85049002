//! The portal's pages: `GET /portal?link=...`, the console's page in portal mode, framed only by
//! the tenant's own `allowed_origins`; and `GET /portal/connected`, where a connect started
//! from the portal comes back, saying how it went.

use super::token::{Link, Signed};
use crate::core::config::seal::Sealer;
use crate::core::console;
use crate::core::error::ApiError;
use crate::core::flow::Co;
use crate::core::http::{query_param, valid_id, HttpResponse};
use crate::core::platform::RecordKind;
use crate::core::tenant::model::{is_origin, TenantConfig};

/// The `frame-ancestors` sources: the tenant's origins (each one an exact origin; anything else
/// stored is left out), or `'none'` when there are none.
pub fn frame_ancestors(allowed_origins: &[String]) -> String {
    let origins: Vec<&str> = allowed_origins
        .iter()
        .map(String::as_str)
        .filter(|o| is_origin(o))
        .collect();
    match origins.is_empty() {
        true => "'none'".into(),
        false => origins.join(" "),
    }
}

/// The policy the portal's page runs under: the console's, framed by the tenant's origins only.
pub fn content_security_policy(allowed_origins: &[String]) -> String {
    console::policy(&frame_ancestors(allowed_origins))
}

/// The console's page as the portal serves it: its files from `/portal/`, which are served
/// wherever the portal is (the console itself may be off).
pub fn portal_page() -> String {
    let page = console::find(None, false)
        .map(|a| a.body)
        .unwrap_or_default();
    page.replace("\"/console/", "\"/portal/")
}

/// `GET /portal?link=`: the page, if the link is ours, alive and of the tenant as it is now,
/// framed by that tenant's origins. The link is not spent here (the page spends it, once, for its
/// session). Without a link (the page reloaded after it dropped the link from its address) the
/// page is served framed by no one: it then has no session to show, and says so.
pub async fn page(co: &Co, sealer: &Sealer, url: &str) -> Result<HttpResponse, ApiError> {
    let refused = || {
        ApiError::unauthorized(
            "this portal link is not valid (expired, changed, or not this gateway's): ask for a new one",
        )
    };
    let origins = match query_param(url, "link") {
        None => vec![],
        Some(raw) => {
            let link =
                Link::open(sealer.id_keys(), &raw, co.now() / 1000).map_err(|_| refused())?;
            let t: Option<TenantConfig> = co
                .config_fresh(&RecordKind::Tenant.kv_key(&link.tenant, None))
                .await?;
            t.filter(|t| t.incarnation() == link.incarnation)
                .ok_or_else(refused)?
                .allowed_origins
        }
    };
    let html = portal_page();
    Ok(
        HttpResponse::bytes(200, "text/html; charset=utf-8", html.into_bytes())
            .header("content-security-policy", content_security_policy(&origins))
            // The address holds the link: nothing keeps it or passes it on.
            .header("cache-control", "no-store")
            .header("referrer-policy", "no-referrer")
            .header("x-content-type-options", "nosniff"),
    )
}

/// What a connect's outcome (`connect::exchange::outcome_url`) says to the person who made it.
fn outcome(connect: Option<&str>, reason: Option<&str>) -> (&'static str, &'static str) {
    match (connect, reason) {
        (Some("connected"), _) => ("Connected", "is connected."),
        (Some("failed"), Some("denied")) => (
            "Not connected",
            "was not connected: access was not granted.",
        ),
        (Some("failed"), Some("expired")) => (
            "Not connected",
            "was not connected: the connect took too long; start it again.",
        ),
        (Some("failed"), Some("replayed")) => (
            "Not connected",
            "was not connected: this connect was finished already.",
        ),
        (Some("failed"), Some("no_app")) => (
            "Not connected",
            "was not connected: no app is registered for this provider; ask the operator.",
        ),
        (Some("failed"), _) => (
            "Not connected",
            "was not connected: the provider's answer did not go through; try again.",
        ),
        _ => ("Connect", "has no connect outcome to show."),
    }
}

/// `GET /portal/connected?connect=...&integration=...`: a static page, no script, never framed.
/// It shows only fixed text and an integration id of the id alphabet, nothing else from the URL.
pub fn connected(url: &str) -> HttpResponse {
    let integration = query_param(url, "integration")
        .filter(|i| valid_id(i))
        .unwrap_or_else(|| "The integration".into());
    let connect = query_param(url, "connect");
    let reason = query_param(url, "reason");
    let (title, said) = outcome(connect.as_deref(), reason.as_deref());
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{title}</title></head>\
<body><h1>{title}</h1><p><code>{integration}</code> {said}</p><p>You can close this window and go back to the portal.</p></body></html>"
    );
    HttpResponse::bytes(200, "text/html; charset=utf-8", html.into_bytes())
        .header(
            "content-security-policy",
            "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        )
        .header("cache-control", "no-store")
        .header("referrer-policy", "no-referrer")
        .header("x-frame-options", "DENY")
        .header("x-content-type-options", "nosniff")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_framed_only_by_the_tenants_own_origins() {
        let o = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let csp =
            content_security_policy(&o(&["https://app.acme.example", "http://localhost:3000"]));
        assert!(
            csp.ends_with("; frame-ancestors https://app.acme.example http://localhost:3000"),
            "{csp}"
        );
        assert!(
            csp.starts_with("default-src 'none'; script-src 'self';"),
            "{csp}"
        );
        assert_eq!(frame_ancestors(&[]), "'none'");
        // Whatever is not an exact origin stays out: a policy cannot be widened or broken.
        let hostile = o(&[
            "*",
            "https://a.example; script-src *",
            "https://b.example/path",
            "'unsafe-inline'",
            "https://*.example",
            "data:",
        ]);
        assert_eq!(frame_ancestors(&hostile), "'none'");
        let mixed = o(&["https://ok.example", "https://x.example 'self'"]);
        assert_eq!(frame_ancestors(&mixed), "https://ok.example");
    }

    /// The page's `frame-ancestors` for `url`, with tenant `t1` (incarnation `i1`, one origin)
    /// stored, or the error's status.
    fn served(url: &str) -> Result<String, u16> {
        use crate::core::flow::{drive, Flow, Outcome};
        use crate::core::testing::{sealer, Kv};
        let doc = serde_json::json!({"name": "T1", "incarnation": "i1", "allowed_origins": ["https://t1.example"]});
        let kv = Kv::with(&[(RecordKind::Tenant.kv_key("t1", None), doc)]);
        let sealer = sealer();
        let url = url.to_string();
        let flow = Flow::new(|co| async move { page(&co, &sealer, &url).await });
        let (out, _) = drive(flow, 1_000_000, |e| {
            Ok(kv.answer(e).unwrap_or(Outcome::Doc(None)))
        });
        let r = out.map_err(|e| e.status())?;
        let csp = r
            .headers
            .iter()
            .find(|(k, _)| *k == "content-security-policy");
        Ok(csp
            .unwrap()
            .1
            .rsplit("frame-ancestors ")
            .next()
            .unwrap()
            .to_string())
    }

    fn link_for(tenant: &str, incarnation: &str, expires_at: u64) -> String {
        let link = Link {
            tenant: tenant.into(),
            incarnation: incarnation.into(),
            capabilities: vec![super::super::capability::Capability::Usage],
            nonce: "00".repeat(16),
            expires_at,
        };
        let token = link.sign(&crate::core::testing::sealer().id_keys()[0]);
        format!("https://gw.example/portal?link={token}")
    }

    #[test]
    fn the_page_is_served_for_a_live_link_of_the_tenant_as_it_is() {
        assert_eq!(
            served(&link_for("t1", "i1", 2_000)),
            Ok("https://t1.example".into())
        );
        assert_eq!(
            served(&link_for("t1", "i0", 2_000)),
            Err(401),
            "another incarnation"
        );
        assert_eq!(
            served(&link_for("t2", "i1", 2_000)),
            Err(401),
            "no such tenant"
        );
        assert_eq!(served(&link_for("t1", "i1", 1_000)), Err(401), "expired");
        let forged = link_for("t1", "i1", 2_000).replace(".", ".0");
        assert_eq!(served(&forged), Err(401));
        assert_eq!(served("https://gw.example/portal?link="), Err(401));
        assert_eq!(
            served("https://gw.example/portal"),
            Ok("'none'".into()),
            "no link: no framing"
        );
    }

    #[test]
    fn the_portal_page_loads_its_files_from_the_portal() {
        let page = portal_page();
        assert!(!page.contains("\"/console/"), "{page}");
        assert!(page.contains("\"/portal/app.js\""));
        // Every file it names is one the portal serves.
        for part in page.split("\"/portal/").skip(1) {
            let file = &part[..part.find('"').unwrap()];
            assert!(console::find(Some(file), true).is_ok(), "{file}");
        }
    }

    #[test]
    fn the_connected_page_says_the_outcome_and_echoes_nothing_else() {
        let body = |url: &str| String::from_utf8(connected(url).body.unwrap()).unwrap();
        let ok = body("https://gw/portal/connected?connect=connected&integration=crm");
        assert!(ok.contains("<code>crm</code> is connected."), "{ok}");
        let denied =
            body("https://gw/portal/connected?connect=failed&reason=denied&integration=crm");
        assert!(denied.contains("access was not granted"), "{denied}");
        let hostile = body("https://gw/portal/connected?connect=failed&reason=%3Cscript%3E&integration=%3Cimg%20src%3Dx%3E");
        assert!(
            !hostile.contains('<') || !hostile.contains("<img"),
            "{hostile}"
        );
        assert!(!hostile.contains("script>"), "{hostile}");
        assert!(hostile.contains("The integration"));
        let r = connected("https://gw/portal/connected");
        let csp = r
            .headers
            .iter()
            .find(|(k, _)| *k == "content-security-policy")
            .unwrap();
        assert!(csp.1.contains("default-src 'none'") && csp.1.contains("frame-ancestors 'none'"));
    }
}
