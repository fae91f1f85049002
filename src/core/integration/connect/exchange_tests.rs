use super::*;
use crate::core::integration::config::FieldRule;
use crate::core::integration::connect::spec::tests::template;
use crate::core::integration::connect::spec::Told;
use crate::core::upstream::HttpMethod;

fn pairs(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

fn named(pairs: &[(&str, &str)]) -> Named<String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Shopify's own example of a signed callback (its OAuth docs): the secret `hush`.
#[test]
fn a_shopify_callback_is_taken_only_with_its_hmac_over_the_other_parameters() {
    let q = "code=0907a61c0c8d55e99db179b68161bc00&hmac=700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf&shop=some-shop.myshopify.com&state=0.6784241404160823&timestamp=1337178173";
    let kind = SignedCallback::Shopify;
    assert!(signature_holds(kind, &pairs(q), "hush"));
    assert!(!signature_holds(kind, &pairs(q), "hash"), "another secret");
    let moved = q.replace("some-shop", "other-shop");
    assert!(
        !signature_holds(kind, &pairs(&moved), "hush"),
        "another shop"
    );
    let unsigned = q.replace("hmac=", "hmax=");
    assert!(!signature_holds(kind, &pairs(&unsigned), "hush"));
}

#[test]
fn the_provider_answering_with_an_error_or_no_code_is_a_failure_named_for_the_user() {
    let f = |q: &str| match returned(&pairs(q)) {
        Returned::Error(f) => Some(f),
        Returned::Code(_) => None,
    };
    assert_eq!(f("error=access_denied&state=s"), Some(Failure::Denied));
    assert_eq!(f("error=server_error&state=s"), Some(Failure::Refused));
    assert_eq!(f("state=s"), Some(Failure::Refused));
    assert_eq!(f("code=&state=s"), Some(Failure::Refused));
    assert_eq!(f("code=abc&state=s"), None);
    let back = outcome_url(
        "https://app.acme.example/done?tab=crm",
        "crm",
        Err(Failure::Denied),
    );
    assert_eq!(
        back,
        "https://app.acme.example/done?tab=crm&connect=failed&reason=denied&integration=crm"
    );
    let ok = outcome_url("https://app.acme.example/done", "crm", Ok(()));
    assert_eq!(
        ok,
        "https://app.acme.example/done?connect=connected&integration=crm"
    );
}

#[test]
fn the_authorization_url_asks_for_a_code_with_pkce_and_the_providers_own_parameters() {
    let t = template("zoho-crm");
    let spec = t.connect.unwrap();
    let url = authorization_url(
        &spec,
        &Named::new(),
        "1000.X",
        "https://gw.example/v1/connect/callback",
        &spec.scopes,
        "st",
        None,
    )
    .unwrap();
    let (base, q) = url.split_once('?').unwrap();
    assert_eq!(base, "https://accounts.zoho.com/oauth/v2/auth");
    let q = pairs(q);
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("response_type"), Some("code"));
    assert_eq!(get("access_type"), Some("offline"));
    assert_eq!(
        get("scope"),
        Some("ZohoCRM.modules.contacts.READ,ZohoCRM.modules.leads.CREATE,ZohoCRM.users.READ")
    );
    assert_eq!(get("code_challenge"), None);
    let sf = template("salesforce").connect.unwrap();
    let settings = named(&[("login_url", "https://test.salesforce.com")]);
    let url = authorization_url(
        &sf,
        &settings,
        "3MVG9",
        "https://gw.example/v1/connect/callback",
        &sf.scopes,
        "st",
        Some("E9Mel"),
    )
    .unwrap();
    assert!(url.starts_with("https://test.salesforce.com/services/oauth2/authorize?"));
    assert!(url.contains("code_challenge=E9Mel&code_challenge_method=S256"));
    assert!(url.contains("scope=api+refresh_token"));
    assert!(
        authorization_url(&sf, &Named::new(), "c", "r", &[], "s", None).is_err(),
        "a setting it needs is missing"
    );
}

#[test]
fn the_code_is_exchanged_with_the_verifier_as_a_form_or_as_json() {
    let client = Client {
        id: "cid",
        secret: "csecret",
        redirect_uri: "https://gw.example/v1/connect/callback",
    };
    let sf = template("salesforce").connect.unwrap();
    let settings = named(&[("login_url", "https://login.salesforce.com")]);
    let req = code_request(&sf, &settings, &client, "c0de", Some("v3rifier")).unwrap();
    assert_eq!(
        req.url,
        "https://login.salesforce.com/services/oauth2/token"
    );
    let form = pairs(req.body_text().unwrap());
    for (k, v) in [
        ("grant_type", "authorization_code"),
        ("code", "c0de"),
        ("code_verifier", "v3rifier"),
        ("client_secret", "csecret"),
        ("redirect_uri", "https://gw.example/v1/connect/callback"),
    ] {
        assert!(form.contains(&(k.into(), v.into())), "{k}");
    }
    let jira = template("jira").connect.unwrap();
    let req = code_request(&jira, &Named::new(), &client, "c0de", None).unwrap();
    let body: Value = serde_json::from_str(req.body_text().unwrap()).unwrap();
    assert_eq!(body["grant_type"], "authorization_code");
    assert!(body.get("code_verifier").is_none());
    assert!(req
        .headers
        .contains(&("content-type".into(), "application/json".into())));
    let zoho = template("zoho-crm").connect.unwrap();
    let told = named(&[("data_centre", "eu")]);
    let req = code_request(&zoho, &told, &client, "c", None).unwrap();
    assert_eq!(
        req.url, "https://accounts.zoho.eu/oauth/v2/token",
        "the data centre the callback told"
    );
    let revoke = revoke_request(&zoho, &told, &client, "rt", "refresh_token")
        .unwrap()
        .unwrap();
    assert_eq!(revoke.url, "https://accounts.zoho.eu/oauth/v2/token/revoke");
    assert!(revoke_request(&jira, &Named::new(), &client, "rt", "refresh_token").is_none());
    let look = lookup_request(&jira, &Named::new(), "at").unwrap().unwrap();
    assert_eq!(look.method, HttpMethod::Get);
    assert!(look
        .headers
        .contains(&("authorization".into(), "Bearer at".into())));
}

#[test]
fn a_token_answer_must_hold_what_the_connection_needs() {
    let sf = template("salesforce").connect.unwrap();
    let ok = br#"{"access_token":"00D!x","refresh_token":"5Aep","instance_url":"https://acme.my.salesforce.com","id":"https://login.salesforce.com/id/00D/005","scope":"api refresh_token"}"#;
    let g = granted(&sf, 200, ok).unwrap();
    assert_eq!(g.refresh_token.as_deref(), Some("5Aep"));
    assert_eq!(g.expires_in, None);
    let no_refresh = br#"{"access_token":"00D!x"}"#;
    assert_eq!(granted(&sf, 200, no_refresh), Err(Failure::NoRefreshToken));
    let refused = br#"{"error":"invalid_grant"}"#;
    assert_eq!(granted(&sf, 400, refused), Err(Failure::Exchange));
    assert_eq!(granted(&sf, 200, b"<html>"), Err(Failure::Unavailable));
    let shop = template("shopify").connect.unwrap();
    assert!(granted(
        &shop,
        200,
        br#"{"access_token":"shpat_0123456789abcdef","scope":"read_orders"}"#
    )
    .is_ok());
}

#[test]
fn a_told_value_is_taken_only_as_checked() {
    let sources = |callback: &[(String, String)], token: Option<&Value>| Sources {
        callback: callback.to_vec().leak(),
        token: token.map(|v| &*Box::leak(Box::new(v.clone()))),
        lookup: None,
    };
    let zoho = template("zoho-crm");
    let dc = &zoho.connect.as_ref().unwrap().told["data_centre"];
    let at = |q: &str| told_value(dc, None, &Named::new(), &sources(&pairs(q), None)).unwrap();
    assert_eq!(
        at("location=eu&accounts-server=https%3A%2F%2Faccounts.zoho.eu"),
        Ok("eu".into())
    );
    assert_eq!(at("location=us"), Ok("com".into()));
    assert_eq!(at("location=evil.example%2F"), Err(Failure::Unverified));
    assert_eq!(at("x=1"), Err(Failure::Unverified));
    let sf = template("salesforce");
    let iu = &sf.connect.as_ref().unwrap().told["instance_url"];
    let token = |url: &str| json!({"instance_url": url});
    let from = |v: Value| told_value(iu, None, &Named::new(), &sources(&[], Some(&v)));
    assert_eq!(
        from(token("https://acme.my.salesforce.com")).unwrap(),
        Ok("https://acme.my.salesforce.com".into())
    );
    assert_eq!(
        from(token("https://evil.example/x.salesforce.com")).unwrap(),
        Err(Failure::Unverified)
    );
    assert_eq!(
        told_value(iu, None, &Named::new(), &sources(&[], None)),
        None,
        "not in yet"
    );
    let shop = template("shopify");
    let sd = &shop.connect.as_ref().unwrap().told["shop_domain"];
    let mine = named(&[("shop", "acme")]);
    let check = |q: &str| told_value(sd, None, &mine, &sources(&pairs(q), None)).unwrap();
    assert_eq!(
        check("shop=acme.myshopify.com"),
        Ok("acme.myshopify.com".into())
    );
    assert_eq!(check("shop=other.myshopify.com"), Err(Failure::Unverified));
}

#[test]
fn a_told_value_with_only_an_enum_rule_is_taken_when_listed() {
    let told: Told = serde_json::from_value(json!({"from": "callback", "at": "region"})).unwrap();
    let rule: FieldRule =
        serde_json::from_value(json!({"type": "string", "enum": ["eu", "us"]})).unwrap();
    let at = |q: &str| {
        let params = pairs(q);
        let sources = Sources {
            callback: &params,
            token: None,
            lookup: None,
        };
        told_value(&told, Some(&rule), &Named::new(), &sources).unwrap()
    };
    assert_eq!(at("region=eu"), Ok("eu".into()));
    assert_eq!(at("region=evil"), Err(Failure::Unverified));
    assert_eq!(
        told_value(
            &told,
            None,
            &Named::new(),
            &Sources {
                callback: &pairs("region=eu"),
                token: None,
                lookup: None
            }
        )
        .unwrap(),
        Err(Failure::Unverified),
        "nothing checks it"
    );
}
