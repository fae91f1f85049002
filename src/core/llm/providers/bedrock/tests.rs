use super::*;
use crate::core::llm::errors::{context_exceeded, refused_attempt, upstream_error, AttemptOutcome};
use crate::core::llm::routing::{after, AfterAttempt};
use serde_json::json;

#[test]
fn the_invoke_body_is_claudes_own_without_model_or_stream_with_the_bedrock_version() {
    let anthropic = json!({
        "model": "claude-sonnet-4-5", "stream": true, "max_tokens": 100,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "auto"}, "temperature": 0.5, "top_k": 5,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "metadata": {"user_id": "u-1"}, "service_tier": "auto",
        "container": "c_1", "mcp_servers": [{"type": "url", "url": "https://m.example", "name": "m"}]
    });
    let body = invoke_body(&anthropic, &[]);
    assert_eq!(
        body,
        json!({
            "anthropic_version": "bedrock-2023-05-31", "max_tokens": 100,
            "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"name": "f", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "auto"}, "temperature": 0.5, "top_k": 5,
            "thinking": {"type": "enabled", "budget_tokens": 1024}
        })
    );
    let beta = [
        "interleaved-thinking-2025-05-14".to_string(),
        "context-1m-2025-08-07".to_string(),
    ];
    assert_eq!(
        invoke_body(&anthropic, &beta)["anthropic_beta"],
        json!(["interleaved-thinking-2025-05-14", "context-1m-2025-08-07"])
    );
}

#[test]
fn anthropic_models_are_known_by_id_geo_prefix_or_the_arn_naming_one() {
    for id in [
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
        "anthropic.claude-3-haiku-20240307-v1:0",
        "us.anthropic.claude-sonnet-4-20250514-v1:0",
        "eu.anthropic.claude-3-7-sonnet-20250219-v1:0",
        "apac.anthropic.claude-3-5-sonnet-20240620-v1:0",
        "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "us-gov.anthropic.claude-3-haiku-20240307-v1:0",
        "jp.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "au.anthropic.claude-haiku-4-5-20251001-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0",
        "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
        "arn:aws-us-gov:bedrock:us-gov-west-1:123456789012:inference-profile/us-gov.anthropic.claude-3-haiku-20240307-v1:0",
    ] {
        assert!(is_anthropic_model(id), "{id}");
    }
    for id in [
        "amazon.nova-pro-v1:0",
        "us.amazon.nova-pro-v1:0",
        "meta.llama3-70b-instruct-v1:0",
        "us.meta.llama3-2-90b-instruct-v1:0",
        "mistral.mistral-large-2407-v1:0",
        "claude-sonnet-4-5",
        "anthropic",
        "xanthropic.claude",
        "us.east.anthropic.claude",
        "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5",
        "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/anthropic.claude",
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0",
        "",
    ] {
        assert!(!is_anthropic_model(id), "{id}");
    }
}

const HTTP: &str = ":http://internal.amazon.com/coral/com.amazon.bedrock/";

fn aws(status: u16, kind: &str, message: &str) -> (u16, Value) {
    refusal(
        status,
        Some(&format!("{kind}{HTTP}")),
        &json!({"message": message}).to_string(),
    )
    .unwrap_or_else(|| panic!("{kind} is read"))
}

#[test]
fn each_aws_error_gets_the_status_the_attempt_loop_acts_on() {
    for (status, kind, message, want, code) in [
        (429, "ThrottlingException", "Too many requests, please wait before trying again.", 429, "throttlingexception"),
        (429, "ModelNotReadyException", "Model is not ready to serve inference requests.", 429, "modelnotreadyexception"),
        (400, "ServiceQuotaExceededException", "Your request rate is too high.", 429, "servicequotaexceededexception"),
        (503, "ServiceUnavailableException", "Bedrock is unable to process your request.", 502, "serviceunavailableexception"),
        (500, "InternalServerException", "Internal server error", 502, "internalserverexception"),
        (424, "ModelErrorException", "The model failed to process the request.", 502, "modelerrorexception"),
        (408, "ModelTimeoutException", "Model has timed out in processing the request.", 408, "modeltimeoutexception"),
        (400, "ValidationException", "Input is too long for requested model.", 400, "context_length_exceeded"),
        (400, "ValidationException", "The model returned the following errors: prompt is too long: 903884 tokens > 200000 maximum", 400, "context_length_exceeded"),
        (400, "ValidationException", "Too many input tokens. Max input tokens: 8192, request input token count: 9001", 400, "context_length_exceeded"),
        (400, "ValidationException", "The input token count (1200000) exceeds the maximum number of tokens allowed (1000000).", 400, "context_length_exceeded"),
        (400, "ValidationException", "Malformed input request: #: extraneous key [stream] is not permitted", 400, "validationexception"),
        (403, "AccessDeniedException", "You don't have access to the model with the specified model ID.", 403, "accessdeniedexception"),
        (403, "UnrecognizedClientException", "The security token included in the request is invalid.", 403, "unrecognizedclientexception"),
        (403, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided.", 403, "invalidsignatureexception"),
        (403, "SignatureDoesNotMatch", "Signature expired", 403, "signaturedoesnotmatch"),
        (400, "IncompleteSignatureException", "Authorization header requires 'Credential' parameter. Authorization=AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE", 403, "incompletesignatureexception"),
        (400, "RequestExpired", "Request has expired.", 403, "requestexpired"),
        (403, "ExpiredTokenException", "The security token included in the request is expired", 403, "expiredtokenexception"),
        (404, "ResourceNotFoundException", "Could not resolve the foundation model from the provided model identifier.", 404, "resourcenotfoundexception"),
    ] {
        let (s, body) = aws(status, kind, message);
        assert_eq!(s, want, "{kind}: {message}");
        assert_eq!(body["error"]["code"], code, "{kind}: {message}");
        assert!(body["error"]["type"].is_string(), "{body}");
    }
}

#[test]
fn aws_words_are_kept_only_where_they_may_reach_the_client() {
    // The client's own request refused: AWS's words.
    let (_, body) = aws(
        400,
        "ValidationException",
        "messages.0.content: field required",
    );
    assert_eq!(
        body["error"]["message"],
        "messages.0.content: field required"
    );
    // A credentials refusal can quote the signature's inputs: never kept.
    let (_, body) = aws(
        400,
        "IncompleteSignatureException",
        "Authorization=AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20250101/us-east-1/bedrock",
    );
    assert!(!body.to_string().contains("AKIA"), "{body}");
    let (_, body) = aws(
        503,
        "ServiceUnavailableException",
        "prompt was: my card 4111",
    );
    assert!(!body.to_string().contains("4111"), "{body}");
}

#[test]
fn the_type_comes_from_the_header_else_the_body_else_the_status() {
    // The header's name part, whatever follows it.
    let (s, body) = refusal(
        429,
        Some("ThrottlingException"),
        r#"{"message":"slow down"}"#,
    )
    .unwrap();
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (429, Some("throttlingexception"))
    );
    // `__type` in the body (awsJson-style answers).
    let (s, body) = refusal(
        400,
        None,
        r#"{"__type":"com.amazon.coral.validate#ValidationException","message":"Input is too long for requested model."}"#,
    )
    .unwrap();
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (400, Some("context_length_exceeded"))
    );
    // A bare `{"message"}` body: read by its status.
    let (s, _) = refusal(503, None, r#"{"message":"unavailable"}"#).unwrap();
    assert_eq!(s, 502);
    let (s, _) = refusal(429, None, r#"{"Message":"slow"}"#).unwrap();
    assert_eq!(s, 429);
    // A code is only ever `[a-z0-9_.-]`, and bounded.
    let (_, body) = refusal(500, Some("Weird Name<script>\n:http://x"), "{}").unwrap();
    let code = body["error"]["code"].as_str().unwrap();
    assert!(
        code.len() <= 64
            && code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)),
        "{code}"
    );
    // Not AWS-shaped: left to the generic reading.
    assert_eq!(refusal(500, None, "<html>oops</html>"), None);
    assert_eq!(refusal(400, None, r#"{"error":{"message":"x"}}"#), None);
    assert_eq!(refusal(400, None, r#"{"message": 7}"#), None);
}

/// The attempt loop's decision for an AWS answer, through its own functions.
fn decision(
    status: u16,
    kind: &str,
    message: &str,
) -> (AttemptOutcome, AfterAttempt, AfterAttempt, u16) {
    let (s, body) = aws(status, kind, message);
    let (outcome, e, code) = refused_attempt("bedrock/claude", s, None, &body.to_string());
    assert!(code.is_some(), "the log gets AWS's type");
    (
        outcome,
        after(outcome, 0, 1),
        after(outcome, 1, 1),
        e.status(),
    )
}

#[test]
fn through_the_attempt_loop_throttling_retries_failures_fall_over_and_long_inputs_move_on() {
    // Throttled: retried, then the next target, and never a breaker failure.
    for kind in [
        "ThrottlingException",
        "ModelNotReadyException",
        "ServiceQuotaExceededException",
    ] {
        let (outcome, first, last, client) = decision(429, kind, "slow down");
        assert!(!outcome.is_failure(), "{kind}");
        assert!(matches!(first, AfterAttempt::Retry { .. }), "{kind}");
        assert_eq!((last, client), (AfterAttempt::NextTarget, 429), "{kind}");
    }
    // The service or the model failed: a breaker failure, retried then fallen over.
    for (status, kind) in [
        (503, "ServiceUnavailableException"),
        (500, "InternalServerException"),
        (424, "ModelErrorException"),
    ] {
        let (outcome, first, last, _) = decision(status, kind, "x");
        assert!(outcome.is_failure(), "{kind}");
        assert!(matches!(first, AfterAttempt::Retry { .. }), "{kind}");
        assert_eq!(last, AfterAttempt::NextTarget, "{kind}");
    }
    // A model timeout: retried, not the service's failure; the client hears of a timeout.
    let (outcome, first, last, client) = decision(408, "ModelTimeoutException", "timed out");
    assert!(!outcome.is_failure());
    assert!(matches!(first, AfterAttempt::Retry { .. }));
    assert_eq!((last, client), (AfterAttempt::NextTarget, 504));
    // Too long: context fallbacks move on (TooLong), as for every other provider.
    for message in [
        "Input is too long for requested model.",
        "prompt is too long: 208310 tokens > 200000 maximum",
    ] {
        let (s, body) = aws(400, "ValidationException", message);
        assert!(context_exceeded(s, &body.to_string()), "{message}");
        let (outcome, ..) = decision(400, "ValidationException", message);
        assert_eq!(outcome, AttemptOutcome::TooLong, "{message}");
    }
    // Too long only where Bedrock puts the words, never in a quote of the client's text.
    let (outcome, ..) = decision(
        400,
        "ValidationException",
        "messages.0.content.0.text: 'Input is too long for requested model' is not allowed",
    );
    assert_eq!(outcome, AttemptOutcome::Status(400, None));
    // Another refusal of the client's request: given up, with AWS's words for the client.
    let (s, body) = aws(400, "ValidationException", "max_tokens: 300000 > 64000");
    let (outcome, e, _) = refused_attempt("bedrock/claude", s, None, &body.to_string());
    assert_eq!(after(outcome, 0, 3), AfterAttempt::GiveUp);
    assert_eq!(
        e.message,
        "bedrock/claude answered 400: max_tokens: 300000 > 64000"
    );
    assert_eq!(
        upstream_error(s, &body.to_string()).client_message,
        "max_tokens: 300000 > 64000"
    );
    // Credentials refused: a 502 the next target answers, never AWS's words.
    for (status, kind) in [
        (403, "InvalidSignatureException"),
        (403, "UnrecognizedClientException"),
        (403, "AccessDeniedException"),
        (400, "IncompleteSignatureException"),
        (400, "RequestExpired"),
        (403, "ExpiredTokenException"),
    ] {
        let (s, body) = aws(status, kind, "Credential=AKIAIOSFODNN7EXAMPLE/20250101");
        let (outcome, e, _) = refused_attempt("bedrock/claude", s, None, &body.to_string());
        assert_eq!(outcome, AttemptOutcome::Status(502, None), "{kind}");
        assert_eq!(after(outcome, 0, 0), AfterAttempt::NextTarget, "{kind}");
        assert_eq!(
            e.message,
            "bedrock/claude answered 403: the provider refused this gateway's credentials",
            "{kind}"
        );
    }
    // An unknown model: the client's mistake in the route, told as a 404.
    let (outcome, _, _, client) = decision(
        404,
        "ResourceNotFoundException",
        "Could not resolve the model",
    );
    assert_eq!((outcome, client), (AttemptOutcome::Status(404, None), 404));
}

#[test]
fn a_model_refusing_the_request_itself_is_the_clients_400_not_a_failure() {
    let body = json!({"message": "Received client error (400) from model", "originalStatusCode": 400,
        "resourceName": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/x"});
    let (status, error) = refusal(424, Some("ModelErrorException"), &body.to_string()).unwrap();
    assert_eq!(
        status, 400,
        "the client's own request: neither the breaker nor another target"
    );
    let (outcome, _, _) = refused_attempt("b/m", status, None, &error.to_string());
    assert_eq!(after(outcome, 0, 1), AfterAttempt::GiveUp);
    // The model's own failure still falls over.
    let failed =
        json!({"message": "Received server error (500) from model", "originalStatusCode": 500});
    assert_eq!(
        refusal(424, Some("ModelErrorException"), &failed.to_string())
            .unwrap()
            .0,
        502
    );
}

#[test]
fn the_tenants_aws_account_is_not_quoted_to_its_clients() {
    let (_, body) = aws(
        400,
        "ValidationException",
        "Model arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.x is not valid for account 123456789012.",
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        !message.contains("123456789012") && !message.contains("arn:aws"),
        "{message}"
    );
    assert!(
        message.starts_with("Model [aws resource] is not valid"),
        "{message}"
    );
}

#[test]
fn a_clients_beta_flags_reach_bedrock_only_as_the_gateway_read_them() {
    let anthropic = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}],
        "anthropic_beta": ["context-1m-2025-08-07"]});
    assert_eq!(invoke_body(&anthropic, &[]).get("anthropic_beta"), None);
    let beta = ["interleaved-thinking-2025-05-14".to_string()];
    assert_eq!(
        invoke_body(&anthropic, &beta)["anthropic_beta"],
        json!(["interleaved-thinking-2025-05-14"])
    );
}
