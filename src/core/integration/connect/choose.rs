//! What a connect's start decides before anything is kept: where the user comes back, and which
//! template the integration is connected from.

use crate::core::error::{ApiError, ErrorKind};

/// Where the user comes back: a URL the tenant registered (its only one when none is asked);
/// from the portal, the portal's own page (`portal_page`) unless a registered URL is asked.
pub fn return_url(
    asked: Option<String>,
    registered: &[String],
    portal_page: Option<&str>,
) -> Result<String, ApiError> {
    match (asked, registered, portal_page) {
        (None, _, Some(page)) => Ok(page.to_string()),
        (Some(u), _, Some(page)) if u == page => Ok(u),
        (Some(u), urls, _) if urls.contains(&u) => Ok(u),
        (None, [only], None) => Ok(only.clone()),
        _ => Err(ApiError::validation(
            "`return_url` must be one of the tenant's `connect_return_urls` (the operator registers them on the tenant)",
        )),
    }
}

/// The template integration `id` is connected from: the one it was installed from (asking
/// another is a conflict), or for one not installed, the one asked.
pub fn template(
    id: &str,
    installed_from: Option<Option<&str>>,
    asked: Option<String>,
) -> Result<String, ApiError> {
    match (installed_from, asked) {
        (None, Some(t)) => Ok(t),
        (None, None) => Err(ApiError::validation(format!(
            "integration `{id}` is not installed: name the `template` to connect"
        ))),
        (Some(theirs), asked) => {
            let theirs = theirs.unwrap_or_default();
            if asked.as_deref().is_some_and(|a| a != theirs) {
                let why = format!("integration `{id}` is installed from template `{theirs}`: delete it first to connect another");
                return Err(ApiError::new(ErrorKind::Conflict, why));
            }
            Ok(theirs.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_comes_back_only_where_the_tenant_said() {
        let registered = ["https://app.acme.example/done".to_string()];
        let back = |asked: Option<&str>, urls: &[String], portal| {
            return_url(asked.map(String::from), urls, portal).map_err(|e| e.status())
        };
        assert_eq!(back(None, &registered, None).unwrap(), registered[0]);
        assert_eq!(
            back(Some("https://app.acme.example/done"), &registered, None).unwrap(),
            registered[0]
        );
        assert_eq!(
            back(Some("https://evil.example/"), &registered, None),
            Err(422)
        );
        assert_eq!(
            back(Some("https://app.acme.example/done?x=1"), &registered, None),
            Err(422),
            "exact"
        );
        let two = [
            registered[0].clone(),
            "https://app.acme.example/other".to_string(),
        ];
        assert_eq!(back(None, &two, None), Err(422), "which one is not said");
        assert_eq!(back(None, &[], None), Err(422));
        let portal = "https://gw.example/portal/connected";
        let page = Some(portal);
        assert_eq!(back(None, &[], page).unwrap(), portal);
        assert_eq!(
            back(Some("https://app.acme.example/done"), &registered, page).unwrap(),
            registered[0]
        );
        assert_eq!(
            back(Some("https://evil.example/"), &registered, page),
            Err(422)
        );
    }

    #[test]
    fn a_connect_keeps_to_the_template_an_integration_was_installed_from() {
        let pick = |installed: Option<Option<&str>>, asked: Option<&str>| {
            template("crm", installed, asked.map(String::from)).map_err(|e| e.status())
        };
        assert_eq!(pick(None, Some("salesforce")).unwrap(), "salesforce");
        assert_eq!(pick(None, None), Err(422));
        assert_eq!(
            pick(Some(Some("hubspot")), None).unwrap(),
            "hubspot",
            "a reconnect"
        );
        assert_eq!(
            pick(Some(Some("hubspot")), Some("hubspot")).unwrap(),
            "hubspot"
        );
        assert_eq!(pick(Some(Some("hubspot")), Some("salesforce")), Err(409));
    }
}
