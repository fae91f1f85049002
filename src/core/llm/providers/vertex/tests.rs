use super::*;
use crate::core::config::document::{redact, validate};
use crate::core::integration::config::OauthGrant;
use crate::core::llm::config::{LlmConfig, ProviderKind, SECRET_PATHS};
use crate::core::llm::providers::{Credentials, Envelope};
use crate::core::llm::request::parse;
use crate::core::llm::routing::{plan, resolve};
use crate::core::llm::Dialect;
use crate::core::platform::RecordKind;
use crate::core::upstream::OutboundRequest;
use serde_json::{json, Value};

const PEM: &str = include_str!("../../../sign/testdata/sa_test_key.pem");
const SHORT_PEM: &str = include_str!("../../../sign/testdata/short_1024_key.pem");

/// A key file as Google's console downloads it.
fn key_file() -> Value {
    json!({
        "type": "service_account",
        "project_id": "acme-prod",
        "private_key_id": "0123456789abcdef",
        "private_key": PEM,
        "client_email": "gateway@acme-prod.iam.gserviceaccount.com",
        "client_id": "104857600000000000000",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/gateway%40acme-prod.iam.gserviceaccount.com",
        "universe_domain": "googleapis.com"
    })
}

fn vertex(location: &str) -> Value {
    json!({"kind": "vertex", "location": location, "service_account": key_file()})
}

fn refused(providers: Value) -> String {
    match validate::<LlmConfig>(&json!({ "providers": providers })) {
        Ok(_) => String::new(),
        Err(e) => e.message,
    }
}

fn cfg(providers: Value) -> LlmConfig {
    validate(&json!({ "providers": providers })).unwrap()
}

fn planned(cfg: &LlmConfig, model: &str, dialect: Dialect, body: Value) -> OutboundRequest {
    planned_with(cfg, model, dialect, body, None)
}

fn planned_with(
    cfg: &LlmConfig,
    model: &str,
    dialect: Dialect,
    body: Value,
    beta: Option<&str>,
) -> OutboundRequest {
    let req = parse(dialect, body.to_string().as_bytes()).unwrap();
    let t = &resolve(model, cfg).unwrap().targets[0];
    plan(&req, t, &Credentials::Bearer("ya29.token".into()), beta, 0).unwrap()
}

fn chat(stream: bool) -> Value {
    json!({"model": "x", "messages": [{"role": "user", "content": "hi"}], "stream": stream})
}

fn body(r: &OutboundRequest) -> Value {
    serde_json::from_str(r.body_text().unwrap()).unwrap()
}

fn header<'a>(r: &'a OutboundRequest, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn regional_and_global_addresses_for_claude_and_gemini_streamed_or_not() {
    let c = cfg(json!({"us": vertex("us-east5"), "gl": vertex("global")}));
    let cases = [
        ("us/claude-sonnet-4-5@20250929", false, "https://us-east5-aiplatform.googleapis.com/v1/projects/acme-prod/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict"),
        ("us/claude-sonnet-4-5@20250929", true, "https://us-east5-aiplatform.googleapis.com/v1/projects/acme-prod/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict"),
        ("gl/claude-opus-4-6", true, "https://aiplatform.googleapis.com/v1/projects/acme-prod/locations/global/publishers/anthropic/models/claude-opus-4-6:streamRawPredict"),
        ("us/gemini-2.5-flash", false, "https://us-east5-aiplatform.googleapis.com/v1/projects/acme-prod/locations/us-east5/publishers/google/models/gemini-2.5-flash:generateContent"),
        ("gl/gemini-2.5-flash", true, "https://aiplatform.googleapis.com/v1/projects/acme-prod/locations/global/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"),
    ];
    for (model, stream, url) in cases {
        let r = planned(&c, model, Dialect::OpenAi, chat(stream));
        assert_eq!(r.url, url, "{model} {stream}");
        assert_eq!(header(&r, "authorization"), Some("Bearer ya29.token"));
        for key_header in ["x-api-key", "x-goog-api-key", "api-key"] {
            assert_eq!(header(&r, key_header), None, "{key_header}");
        }
        assert_eq!(
            header(&r, "accept"),
            stream.then_some("text/event-stream"),
            "streams are SSE"
        );
    }
    // `@` literal; every other character still encoded. `base_url` replaces scheme and host.
    let mut own = vertex("europe-west1");
    own["base_url"] = json!("http://127.0.0.1:9999/");
    own["project"] = json!("other-proj");
    let c = cfg(json!({"vx": own}));
    let r = planned(&c, "vx/claude 4/x@2025", Dialect::OpenAi, chat(false));
    assert_eq!(
        r.url,
        "http://127.0.0.1:9999/v1/projects/other-proj/locations/europe-west1/publishers/anthropic/models/claude%204%2Fx@2025:rawPredict"
    );
    assert_eq!(address(None, "p", "us-east5", "a%40b", false), "https://us-east5-aiplatform.googleapis.com/v1/projects/p/locations/us-east5/publishers/google/models/a%2540b:generateContent");
}

#[test]
fn claude_on_vertex_gets_anthropics_body_without_model_with_vertexs_version() {
    let c = cfg(json!({"vx": vertex("us-east5")}));
    for stream in [false, true] {
        let b = body(&planned(
            &c,
            "vx/claude-sonnet-4-5@20250929",
            Dialect::OpenAi,
            chat(stream),
        ));
        assert_eq!(b.get("model"), None, "the URL names the model");
        assert_eq!(b["anthropic_version"], "vertex-2023-10-16");
        assert_eq!(b["messages"][0]["content"][0]["text"], "hi");
        assert_eq!(b["max_tokens"], 4096);
        assert_eq!(b.get("stream"), stream.then_some(&json!(true)));
    }
    // An Anthropic client's beta flags go as the header Vertex reads, not into the body.
    let ant = json!({"model": "x", "max_tokens": 50, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let r = planned_with(
        &c,
        "vx/claude-opus-4-6",
        Dialect::Anthropic,
        ant,
        Some("context-1m-2025-08-07"),
    );
    assert_eq!(header(&r, "anthropic-beta"), Some("context-1m-2025-08-07"));
    assert_eq!(header(&r, "anthropic-version"), None);
    let b = body(&r);
    assert_eq!((b.get("anthropic_beta"), b.get("model")), (None, None));
    assert_eq!(
        (b["max_tokens"].clone(), b["stream"].clone()),
        (json!(50), json!(true))
    );
}

#[test]
fn gemini_on_vertex_gets_geminis_own_body() {
    let c = cfg(json!({"vx": vertex("global")}));
    let ask = json!({"model": "x", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}], "max_tokens": 50});
    let b = body(&planned(&c, "vx/gemini-2.5-flash", Dialect::OpenAi, ask));
    assert_eq!(b["contents"][0]["parts"][0]["text"], "hi");
    assert_eq!(b["systemInstruction"]["parts"][0]["text"], "Be brief.");
    assert_eq!(b["generationConfig"]["maxOutputTokens"], 50);
    assert_eq!((b.get("model"), b.get("anthropic_version")), (None, None));
    // Anthropic clients too, through the same translation as the Gemini API's.
    let ant =
        json!({"model": "x", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]});
    let b = body(&planned(&c, "vx/gemini-2.5-flash", Dialect::Anthropic, ant));
    assert_eq!(b["generationConfig"]["maxOutputTokens"], 20);
}

#[test]
fn a_vertex_target_speaks_its_models_dialect_and_is_priced_under_vertex_ai() {
    let c = cfg(json!({"vx": vertex("us-east5")}));
    let claude = &resolve("vx/claude-sonnet-4-5@20250929", &c)
        .unwrap()
        .targets[0];
    let gemini = &resolve("vx/gemini-2.5-flash", &c).unwrap().targets[0];
    assert_eq!(claude.wire(Dialect::OpenAi), Dialect::Anthropic);
    assert_eq!(claude.envelope(Dialect::OpenAi), Envelope::VertexAnthropic);
    assert_eq!(claude.family, ProviderKind::Anthropic);
    assert_eq!(claude.catalog, "vertex_ai/claude-sonnet-4-5@20250929");
    assert_eq!(gemini.wire(Dialect::Responses), Dialect::Gemini);
    assert_eq!(gemini.envelope(Dialect::Anthropic), Envelope::VertexGemini);
    assert_eq!(gemini.family, ProviderKind::Gemini);
    assert_eq!(gemini.catalog, "vertex_ai/gemini-2.5-flash");
    assert!(!Envelope::VertexAnthropic.framed() && !Envelope::VertexGemini.framed());
    // Embeddings: a 400 saying where to send them.
    let req = parse(Dialect::Embeddings, br#"{"model":"x","input":"hi"}"#).unwrap();
    let e = plan(&req, gemini, &Credentials::Bearer("t".into()), None, 0).unwrap_err();
    assert_eq!(e.status(), 400);
    assert!(
        e.message.contains("route embeddings to a gemini"),
        "{}",
        e.message
    );
}

#[test]
fn a_key_file_pastes_as_it_is_and_what_vertex_needs_is_checked() {
    assert_eq!(refused(json!({"vx": vertex("us-east5")})), "");
    assert_eq!(refused(json!({"vx": vertex("global")})), "");
    // The project may be the provider's own instead of the key file's.
    let mut sa = key_file();
    sa.as_object_mut().unwrap().remove("project_id");
    let mut own = json!({"kind": "vertex", "location": "us-east5", "service_account": sa});
    assert!(refused(json!({"vx": own.clone()})).contains(
        "`providers.vx.project` is required for vertex (or the service account's `project_id`)"
    ));
    own["project"] = json!("my-project-123");
    assert_eq!(refused(json!({"vx": own})), "");
    let with = |path: &str, v: Value| {
        let mut p = vertex("us-east5");
        *p.pointer_mut(path).unwrap_or_else(|| panic!("{path}")) = v;
        refused(json!({ "vx": p }))
    };
    let cases = [
        (
            "/location",
            json!("Mars 1"),
            "`providers.vx.location` must be a Vertex AI region such as us-east5, or global",
        ),
        (
            "/location",
            json!("us"),
            "`providers.vx.location` must be a Vertex AI region",
        ),
        (
            "/service_account/client_email",
            json!("nobody"),
            "`providers.vx.service_account.client_email` is required",
        ),
        (
            "/service_account/type",
            json!("authorized_user"),
            "`providers.vx.service_account.type` must be \"service_account\"",
        ),
        (
            "/service_account/token_uri",
            json!("ftp://x"),
            "`providers.vx.service_account.token_uri` must be an http(s) URL",
        ),
        (
            "/service_account/universe_domain",
            json!("example.eu"),
            "must be googleapis.com",
        ),
        (
            "/service_account/project_id",
            json!("Bad Project"),
            "`providers.vx.project` must be a Google Cloud project id",
        ),
        (
            "/service_account/private_key",
            json!("-----BEGIN PRIVATE KEY-----\nMIIBroken\n-----END PRIVATE KEY-----\n"),
            "`providers.vx.service_account.private_key`: private_key is not a PEM RSA key",
        ),
        (
            "/service_account/private_key",
            json!(SHORT_PEM),
            "private_key is too short",
        ),
    ];
    for (path, v, want) in cases {
        let e = with(path, v);
        assert!(e.contains(want), "{path}: {e}");
        assert!(
            !e.contains("MIIBroken") && !e.contains("MII"),
            "the key is never quoted: {e}"
        );
    }
    let mut p = vertex("us-east5");
    p.as_object_mut().unwrap().remove("location");
    assert!(refused(json!({ "vx": p })).contains("`providers.vx.location` is required for vertex"));
    let mut p = vertex("us-east5");
    p["service_account"]
        .as_object_mut()
        .unwrap()
        .remove("private_key");
    assert!(refused(json!({ "vx": p }))
        .contains("`providers.vx.service_account.private_key` is required"));
    assert!(refused(
        json!({"vx": {"kind": "vertex", "project": "acme-prod", "location": "us-east5"}})
    )
    .contains("`providers.vx.service_account` is required for vertex"));
    let mut p = vertex("us-east5");
    p["api_key"] = json!("k");
    assert!(refused(json!({ "vx": p })).contains("`providers.vx.api_key` does not apply to vertex"));
    // A misspelt field of the key file is refused like any other.
    let mut p = vertex("us-east5");
    p["service_account"]["client_emial"] = json!("x@y");
    assert!(refused(json!({ "vx": p })).contains("providers.vx.service_account.client_emial"));
    // Vertex's fields belong to vertex providers.
    let e = refused(
        json!({"o": {"kind": "openai", "project": "p", "location": "us-east5", "service_account": key_file()}}),
    );
    for f in ["project", "location", "service_account"] {
        assert!(
            e.contains(&format!(
                "`providers.o.{f}` applies to vertex providers only"
            )),
            "{e}"
        );
    }
}

#[test]
fn the_private_key_is_sealed_and_shown_only_as_set() {
    let doc = json!({"providers": {"vx": vertex("us-east5")}});
    let stored = crate::core::testing::stored(RecordKind::Llm, "acme", None, doc);
    let key = &stored["providers"]["vx"]["service_account"]["private_key"];
    assert!(key.get("$sealed").is_some(), "{key}");
    assert!(!stored.to_string().contains("PRIVATE KEY"));
    let shown = redact(stored, SECRET_PATHS, None);
    let sa = &shown["providers"]["vx"]["service_account"];
    assert_eq!(sa["private_key"], json!({"set": true}));
    assert_eq!(
        sa["client_email"],
        "gateway@acme-prod.iam.gserviceaccount.com"
    );
    assert_eq!(sa["private_key_id"], "0123456789abcdef");
}

#[test]
fn a_service_accounts_tokens_are_fetched_with_its_jwt_for_the_cloud_platform_scope() {
    let c = cfg(json!({"vx": vertex("us-east5")}));
    let sa = c.providers["vx"].service_account.as_ref().unwrap();
    let a = token_auth(sa);
    assert_eq!(a.grant, Some(OauthGrant::JwtBearer));
    assert_eq!(a.token_url.as_deref(), Some(GOOGLE_TOKEN_URI));
    assert_eq!(
        a.client_id.as_deref(),
        Some("gateway@acme-prod.iam.gserviceaccount.com")
    );
    assert_eq!(a.key_id.as_deref(), Some("0123456789abcdef"));
    assert_eq!(a.scopes, Some(vec![CLOUD_PLATFORM.to_string()]));
    let mut own = sa.clone();
    own.token_uri = Some("http://127.0.0.1:9/token".into());
    assert_eq!(
        token_auth(&own).token_url.as_deref(),
        Some("http://127.0.0.1:9/token")
    );
    own.token_uri = None;
    assert_eq!(
        token_auth(&own).token_url.as_deref(),
        Some(GOOGLE_TOKEN_URI)
    );
}

#[test]
fn a_location_is_a_google_cloud_region_or_global() {
    for ok in [
        "us-east5",
        "europe-west4",
        "northamerica-northeast1",
        "asia-southeast1",
        "me-central2",
        "global",
    ] {
        assert!(super::valid_location(ok), "{ok}");
    }
    for bad in [
        "us-east",
        "us",
        "eu",
        "US-EAST5",
        "us-east5.evil",
        "us-east-5",
        "us-east123",
        "",
        "global1",
    ] {
        assert!(!super::valid_location(bad), "{bad}");
    }
}

#[test]
fn a_key_file_pasted_as_a_string_is_refused_without_echoing_it() {
    let pem = "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\\n-----END PRIVATE KEY-----";
    let doc = json!({"providers": {"vx": {"kind": "vertex", "location": "global",
        "service_account": format!("{{\"type\": \"service_account\", \"private_key\": \"{pem}\"}}")}}});
    let e = crate::core::config::document::validate::<crate::core::llm::config::LlmConfig>(&doc)
        .unwrap_err();
    assert!(
        !e.message
            .contains("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"),
        "{}",
        e.message
    );
    assert!(e.message.contains("service_account"), "{}", e.message);
}
