//! The hosted connect page (`GET /v1/connect/start?state=...`): what the tenant's user is about
//! to share, with whom, and a link on to the provider's consent page. Served by the gateway
//! under a policy that runs no script and cannot be framed; a tenant's app may open it in a
//! popup. A cancel goes through the callback as a denial, so the attempt is spent either way.

use crate::core::http::HttpResponse;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// What the page says.
pub struct Page<'a> {
    /// Whose assistant asks (the tenant's name): an operator's app is shared by every tenant,
    /// so the provider's own page names the operator's app, not the tenant.
    pub tenant: &'a str,
    /// Where the user comes back to (the return URL's origin).
    pub returns_to: &'a str,
    /// The template's name (`Salesforce`).
    pub provider: &'a str,
    pub integration: &'a str,
    pub scopes: &'a [String],
    /// The provider's consent page.
    pub authorization_url: &'a str,
    /// The callback as a denial.
    pub cancel_url: &'a str,
}

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#1d2330}\
h1{font-size:1.3rem}ul{padding-left:1.2rem}code{background:#f0f2f5;padding:0 .25rem;border-radius:3px}\
.go{display:inline-block;background:#2457d6;color:#fff;padding:.6rem 1.1rem;border-radius:6px;text-decoration:none;margin-right:1rem}\
.cancel{color:#4a5568}";

/// The page, with headers that keep it from running script, being framed or leaking its URL.
pub fn render(p: &Page) -> HttpResponse {
    let scopes: String = if p.scopes.is_empty() {
        "<li>the access its app is registered for</li>".into()
    } else {
        p.scopes
            .iter()
            .map(|s| format!("<li><code>{}</code></li>", escape(s)))
            .collect()
    };
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>Connect {provider}</title><style>{STYLE}</style></head><body>\
<h1>Connect {provider}</h1>\
<p><strong>{tenant}</strong> asks to use your {provider} account as its integration <code>{integration}</code>. \
{provider} will ask you to sign in and to grant:</p><ul>{scopes}</ul>\
<p>Your password stays with {provider}; the gateway keeps only the tokens {provider} issues, sealed, and you can disconnect at any time. \
Afterwards you return to <code>{returns_to}</code>.</p>\
<p><a class=\"go\" href=\"{go}\" rel=\"noreferrer\">Continue to {provider}</a>\
<a class=\"cancel\" href=\"{cancel}\" rel=\"noreferrer\">Cancel</a></p></body></html>",
        provider = escape(p.provider),
        tenant = escape(p.tenant),
        returns_to = escape(p.returns_to),
        integration = escape(p.integration),
        go = escape(p.authorization_url),
        cancel = escape(p.cancel_url),
    );
    let style_hash = STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    let csp = format!(
        "default-src 'none'; style-src 'sha256-{style_hash}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    );
    HttpResponse::bytes(200, "text/html; charset=utf-8", html.into_bytes())
        .header("content-security-policy", csp)
        .header("cache-control", "no-store")
        .header("referrer-policy", "no-referrer")
        .header("x-frame-options", "DENY")
        .header("x-content-type-options", "nosniff")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_escapes_what_it_shows_and_runs_no_script() {
        let scopes = ["api".to_string(), "<script>x</script>".to_string()];
        let r = render(&Page {
            tenant: "Acme <Shop>",
            returns_to: "https://app.acme.example",
            provider: "Sales\"force",
            integration: "crm",
            scopes: &scopes,
            authorization_url: "https://login.salesforce.com/services/oauth2/authorize?a=1&b=\"2\"",
            cancel_url: "/v1/connect/callback?error=access_denied&state=s",
        });
        let html = String::from_utf8(r.body.clone().unwrap()).unwrap();
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("authorize?a=1&amp;b=&quot;2&quot;"));
        assert!(html.contains("Sales&quot;force"));
        assert!(html.contains("<strong>Acme &lt;Shop&gt;</strong> asks"));
        assert!(html.contains("return to <code>https://app.acme.example</code>"));
        let csp = r
            .headers
            .iter()
            .find(|(k, _)| *k == "content-security-policy")
            .unwrap();
        assert!(csp.1.starts_with("default-src 'none'; style-src 'sha256-"));
        assert!(csp.1.contains("frame-ancestors 'none'"));
    }
}
