//! The operator's console (`/console`): a page and its modules, bundled into the worker so that
//! a deploy ships it with the API it calls. It holds nothing secret: the admin token is typed
//! into the page, kept in the tab's `sessionStorage` and sent as a bearer header to the admin
//! API, which is what guards the data. Served in development and tests, and in production only
//! when the deployment turns it on (`CONSOLE = "on"`).

use crate::core::error::ApiError;
use crate::core::http::{content_etag, HttpResponse};

/// One of the console's files.
#[derive(Debug)]
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
}

macro_rules! asset {
    ($name:literal, $ct:literal) => {
        Asset {
            name: $name,
            content_type: $ct,
            body: include_str!(concat!("../../console/", $name)),
        }
    };
}

const PAGE: &str = "index.html";

pub const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("ui.js", "text/javascript; charset=utf-8"),
    asset!("chart.js", "text/javascript; charset=utf-8"),
    asset!("tenants.js", "text/javascript; charset=utf-8"),
    asset!("keys.js", "text/javascript; charset=utf-8"),
    asset!("records.js", "text/javascript; charset=utf-8"),
    asset!("integrations.js", "text/javascript; charset=utf-8"),
    asset!("events.js", "text/javascript; charset=utf-8"),
    asset!("usage.js", "text/javascript; charset=utf-8"),
    asset!("event-types.js", "text/javascript; charset=utf-8"),
    asset!("sections.js", "text/javascript; charset=utf-8"),
    asset!("portal-session.js", "text/javascript; charset=utf-8"),
    asset!("portal.js", "text/javascript; charset=utf-8"),
    asset!("connect.js", "text/javascript; charset=utf-8"),
];

/// Whether this deployment serves the console: `CONSOLE` (`on` or `off`) decides where it is
/// set; otherwise only development and test deployments do.
pub fn served(gateway_env: Option<&str>, console: Option<&str>) -> Result<(), ApiError> {
    let on = match console.map(str::trim) {
        Some(v) if v.eq_ignore_ascii_case("on") => true,
        Some(v) if v.eq_ignore_ascii_case("off") => false,
        _ => matches!(gateway_env, Some("development" | "test")),
    };
    match on {
        true => Ok(()),
        false => Err(ApiError::not_found(
            "the console is off in this deployment; set the variable CONSOLE = \"on\" to serve it",
        )),
    }
}

/// The file a `/console/...` path names: the page for `/console` itself. Under `/portal/` the
/// page is not one of the files: the portal's page is served only with its link, framed by the
/// tenant's origins (`core::portal::page`), never the operator's console.
pub fn find(file: Option<&str>, portal: bool) -> Result<&'static Asset, ApiError> {
    let name = file.filter(|f| !f.is_empty()).unwrap_or(PAGE);
    ASSETS
        .iter()
        .find(|a| a.name == name && !(portal && a.name == PAGE))
        .ok_or_else(|| ApiError::not_found("the console has no such file"))
}

/// The policy the page runs under: its own scripts and styles, calls to its own origin, and
/// nothing else (no inline script, no form posts elsewhere), framed only by `frame_ancestors`
/// (`'none'` for the console; the tenant's own origins for the portal, `core::portal::page`).
pub fn policy(frame_ancestors: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
         img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors {frame_ancestors}"
    )
}

/// The answer's headers, and whether the client's `If-None-Match` already has this version
/// (a 304). Revalidated on every load, so a deploy shows at once.
pub fn headers(asset: &Asset, if_none_match: Option<&str>) -> (Vec<(&'static str, String)>, bool) {
    let (etag, current) = content_etag(asset.body.as_bytes(), if_none_match);
    let headers = vec![
        ("etag", etag),
        ("cache-control", "no-cache".into()),
        ("content-security-policy", policy("'none'")),
        ("x-content-type-options", "nosniff".into()),
        ("referrer-policy", "no-referrer".into()),
        ("x-frame-options", "DENY".into()),
    ];
    (headers, current)
}

/// A file's answer: the file, or a bodiless 304 when the client has this version.
pub fn answer(asset: &Asset, if_none_match: Option<&str>) -> HttpResponse {
    let (headers, current) = headers(asset, if_none_match);
    let mut r = match current {
        true => HttpResponse::empty(304),
        false => HttpResponse::bytes(200, asset.content_type, asset.body.as_bytes().to_vec()),
    };
    r.headers.extend(headers);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_in_development_and_tests_and_in_production_only_when_asked() {
        assert!(served(Some("development"), None).is_ok());
        assert!(served(Some("test"), None).is_ok());
        assert_eq!(served(Some("production"), None).unwrap_err().status(), 404);
        assert_eq!(served(None, None).unwrap_err().status(), 404);
        assert!(served(Some("production"), Some("on")).is_ok());
        assert!(served(Some("production"), Some(" ON ")).is_ok());
        assert!(served(Some("development"), Some("off")).is_err());
        assert!(served(Some("production"), Some("yes please")).is_err());
    }

    #[test]
    fn the_page_and_its_files_are_found_and_nothing_else() {
        assert_eq!(find(None, false).unwrap().name, "index.html");
        // The console's page is no portal file: /portal/ serves it only with a link.
        assert_eq!(find(Some("index.html"), true).unwrap_err().status(), 404);
        assert!(find(Some("app.js"), true).is_ok());
        assert_eq!(find(Some(""), false).unwrap().name, "index.html");
        assert_eq!(
            find(Some("app.js"), false).unwrap().content_type,
            "text/javascript; charset=utf-8"
        );
        for f in ["nope.js", "..", "index.html.bak", "APP.JS"] {
            assert_eq!(find(Some(f), false).unwrap_err().status(), 404, "{f}");
        }
    }

    /// Every file the page or a module loads (`src`, `href`, `import ... from "./x"`) is served.
    #[test]
    fn every_file_the_console_loads_is_one_it_serves() {
        let mut named = 0;
        for a in ASSETS {
            for (open, close) in [("\"/console/", "\""), ("from \"./", "\"")] {
                for part in a.body.split(open).skip(1) {
                    let file = &part[..part.find(close).unwrap()];
                    assert!(find(Some(file), false).is_ok(), "{} loads {file}", a.name);
                    named += 1;
                }
            }
        }
        assert!(
            named >= ASSETS.len() - 1,
            "each file but the page is loaded somewhere"
        );
        for a in ASSETS {
            assert!(
                !a.body.contains("innerHTML"),
                "{}: DOM built from text only",
                a.name
            );
        }
    }

    #[test]
    fn answers_revalidate_and_run_under_a_strict_policy() {
        let page = find(None, false).unwrap();
        let (h, current) = headers(page, None);
        assert!(!current);
        let get = |n: &str| {
            h.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(
            get("content-security-policy"),
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
             img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        );
        assert!(get("content-security-policy").contains("frame-ancestors 'none'"));
        assert_eq!(get("cache-control"), "no-cache");
        let (_, current) = headers(page, Some(&format!("W/\"x\", {}", get("etag"))));
        assert!(current);
        let (other, _) = headers(find(Some("app.js"), false).unwrap(), None);
        assert_ne!(other[0].1, get("etag"), "each file has its own version");
    }
}
