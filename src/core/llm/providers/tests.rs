use super::*;
use crate::core::config::document::validate;
use crate::core::llm::config::LlmConfig;
use crate::core::llm::request::parse;
use crate::core::llm::routing::{plan, resolve};
use serde_json::{json, Value};

fn refused(providers: Value) -> String {
    match validate::<LlmConfig>(&json!({ "providers": providers })) {
        Ok(_) => String::new(),
        Err(e) => e.message,
    }
}

fn chat(model: &str, stream: bool) -> crate::core::llm::request::ClientRequest {
    let body =
        json!({"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream});
    parse(Dialect::OpenAi, body.to_string().as_bytes()).unwrap()
}

#[test]
fn every_preset_is_called_at_its_own_address_never_openais() {
    for preset in presets::PRESETS {
        let kind = preset.name();
        let mut p = json!({"kind": kind, "api_key": "k"});
        if preset.base.is_none() {
            p["base_url"] = json!("http://10.0.0.5:8000/v1");
        }
        let cfg: LlmConfig = validate(&json!({"providers": {"p": p}})).unwrap();
        let t = &resolve("p/some-model", &cfg).unwrap().targets[0];
        let r = plan(
            &chat("p/some-model", false),
            t,
            &Credentials::Key("k".into()),
            None,
            0,
        )
        .unwrap();
        let base = preset.base.unwrap_or("http://10.0.0.5:8000/v1");
        assert_eq!(r.url, format!("{base}/chat/completions"), "{kind}");
        assert!(
            r.headers
                .contains(&("authorization".into(), "Bearer k".into())),
            "{kind}"
        );
        assert_eq!(t.family, ProviderKind::OpenaiCompatible, "{kind}");
    }
}

#[test]
fn presets_need_what_their_api_needs() {
    assert!(refused(json!({"g": {"kind": "groq"}}))
        .contains("`providers.g.api_key` is required for groq"));
    assert!(refused(json!({"o": {"kind": "ollama"}}))
        .contains("`providers.o.base_url` is required for ollama"));
    assert_eq!(
        refused(json!({"o": {"kind": "ollama", "base_url": "http://h:11434/v1"}})),
        ""
    );
    assert_eq!(refused(json!({"g": {"kind": "groq", "api_key": "k"}})), "");
    assert!(refused(
        json!({"g": {"kind": "groq", "api_key": "k", "site_url": "https://a.example"}})
    )
    .contains("`providers.g.site_url` applies to openrouter providers only"));
}

#[test]
fn openrouter_is_told_the_app_it_serves() {
    let cfg: LlmConfig = validate(&json!({"providers": {"or": {"kind": "openrouter", "api_key": "k", "site_url": "https://shop.example", "app_name": "Shop bot"}}})).unwrap();
    let t = &resolve("or/anthropic/claude-sonnet-4.5", &cfg)
        .unwrap()
        .targets[0];
    assert_eq!(t.model, "anthropic/claude-sonnet-4.5");
    let r = plan(&chat("x", true), t, &Credentials::Key("k".into()), None, 0).unwrap();
    assert_eq!(r.url, "https://openrouter.ai/api/v1/chat/completions");
    assert!(r
        .headers
        .contains(&("http-referer".into(), "https://shop.example".into())));
    assert!(r
        .headers
        .contains(&("x-openrouter-title".into(), "Shop bot".into())));
}

fn bedrock(extra: Value) -> Value {
    let mut p = json!({"kind": "bedrock", "region": "us-west-2", "aws": {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "s"}});
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

#[test]
fn a_bedrock_provider_needs_a_region_and_an_aws_key_and_nothing_else() {
    assert_eq!(refused(json!({"b": bedrock(json!({}))})), "");
    let missing = refused(json!({"b": {"kind": "bedrock"}}));
    assert!(
        missing.contains("`providers.b.region` is required for bedrock"),
        "{missing}"
    );
    assert!(
        missing.contains("`providers.b.aws` is required for bedrock"),
        "{missing}"
    );
    let bad = refused(json!({"b": bedrock(json!({"region": "US East", "api_key": "k"}))}));
    assert!(
        bad.contains("`providers.b.region` must be an AWS region"),
        "{bad}"
    );
    assert!(
        bad.contains("`providers.b.api_key` does not apply to bedrock"),
        "{bad}"
    );
    let short = refused(
        json!({"b": bedrock(json!({"aws": {"access_key_id": "AK", "secret_access_key": "s"}}))}),
    );
    assert!(
        short.contains("`providers.b.aws.access_key_id` must be an AWS access key id"),
        "{short}"
    );
    assert!(
        refused(json!({"o": {"kind": "openai", "region": "us-east-1"}}))
            .contains("`providers.o.region` applies to bedrock providers only")
    );
    let unknown = refused(
        json!({"b": bedrock(json!({"aws": {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "s", "role": "x"}}))}),
    );
    assert!(!unknown.is_empty(), "unknown fields are refused");
}

#[test]
fn bedrock_is_addressed_by_region_and_model_id_without_asking_for_sse() {
    let cfg: LlmConfig = validate(&json!({"providers": {
        "b": bedrock(json!({})),
        "vpc": bedrock(json!({"base_url": "https://vpce-1.bedrock-runtime.us-west-2.vpce.amazonaws.com/", "api": "converse"})),
    }}))
    .unwrap();
    let model = "b/anthropic.claude-sonnet-4-5-20250929-v1:0";
    let t = &resolve(model, &cfg).unwrap().targets[0];
    assert_eq!(
        t.family,
        ProviderKind::Anthropic,
        "Claude on Bedrock is sized as Claude"
    );
    let r = plan(&chat(model, true), t, &Credentials::None, None, 0).unwrap();
    assert_eq!(
        r.url,
        "https://bedrock-runtime.us-west-2.amazonaws.com/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream"
    );
    assert!(
        !r.headers.iter().any(|(k, _)| k == "accept"),
        "{:?}",
        r.headers
    );
    let vpc = &resolve("vpc/meta.llama3-70b-instruct-v1:0", &cfg)
        .unwrap()
        .targets[0];
    let r = plan(&chat("x", false), vpc, &Credentials::None, None, 0).unwrap();
    assert_eq!(
        r.url,
        "https://vpce-1.bedrock-runtime.us-west-2.vpce.amazonaws.com/model/meta.llama3-70b-instruct-v1%3A0/converse"
    );
}

#[test]
fn bedrock_envelopes_follow_the_api_setting_and_the_client() {
    use BedrockApi::*;
    let claude = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
    let b = ProviderKind::Bedrock;
    assert_eq!(
        envelope(b, Converse, claude, Dialect::Anthropic),
        Envelope::Converse
    );
    assert_eq!(
        envelope(b, Invoke, claude, Dialect::OpenAi),
        Envelope::BedrockInvoke
    );
    assert_eq!(
        envelope(b, Auto, claude, Dialect::OpenAi),
        Envelope::Converse
    );
    assert_eq!(
        envelope(b, Auto, "meta.llama3-70b-instruct-v1:0", Dialect::Anthropic),
        Envelope::Converse
    );
    assert_eq!(
        envelope(ProviderKind::Anthropic, Auto, claude, Dialect::Anthropic),
        Envelope::Plain
    );
    assert!(Envelope::Converse.framed() && !Envelope::Plain.framed());
}

#[test]
fn catalog_names_follow_the_catalogs_provider_prefixes() {
    use crate::core::llm::routing::catalog_name;
    let b = ProviderKind::Bedrock;
    assert_eq!(
        catalog_name(b, "us.anthropic.claude-sonnet-4-5-20250929-v1:0", None),
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    );
    assert_eq!(
        catalog_name(b, "arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.anthropic.claude-haiku-4-5-20251001-v1:0", None),
        "eu.anthropic.claude-haiku-4-5-20251001-v1:0"
    );
    assert_eq!(
        catalog_name(ProviderKind::Groq, "openai/gpt-oss-120b", None),
        "groq/openai/gpt-oss-120b"
    );
    assert_eq!(
        catalog_name(
            ProviderKind::Together,
            "meta-llama/Llama-3.3-70B-Instruct-Turbo",
            None
        ),
        "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo"
    );
    assert_eq!(catalog_name(ProviderKind::Groq, "x", Some("mine")), "mine");
}

#[test]
fn a_region_is_an_aws_region_and_nothing_that_makes_another_host() {
    for ok in [
        "us-east-1",
        "eu-central-2",
        "us-gov-west-1",
        "ap-southeast-7",
        "ca-central-1",
        "il-central-1",
    ] {
        assert!(valid_region(ok), "{ok}");
    }
    for bad in [
        "s3-external-1",
        "s3-us-west-2",
        "s3-accelerate",
        "us-east",
        "US-EAST-1",
        "us-east-1.evil",
        "-us-east-1",
        "us-east-123",
        "",
    ] {
        assert!(!valid_region(bad), "{bad}");
    }
}

#[test]
fn openrouters_headers_are_checked_when_saved() {
    let or = |extra: Value| {
        let mut p = json!({"kind": "openrouter", "api_key": "k"});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        refused(json!({"or": p}))
    };
    assert!(or(json!({"app_name": "Shop\r\nX-Evil: 1"}))
        .contains("`providers.or.app_name` must be 1 to 100 printable ASCII"));
    assert!(or(json!({"app_name": "Café"})).contains("app_name"));
    assert!(or(json!({"site_url": "javascript:alert(1)"}))
        .contains("`providers.or.site_url` must be an http(s) URL"));
    assert_eq!(
        or(json!({"site_url": "https://shop.example", "app_name": "Shop bot"})),
        ""
    );
}

#[test]
fn credentials_never_show_their_secret_in_debug_output() {
    let key = format!("{:?}", Credentials::Key("sk-very-secret".into()));
    let aws = format!(
        "{:?}",
        Credentials::Aws(AwsCredentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "aws-very-secret".into(),
            session_token: Some("session-very-secret".into()),
        })
    );
    assert!(
        !key.contains("very-secret") && !aws.contains("very-secret"),
        "{key} {aws}"
    );
}
