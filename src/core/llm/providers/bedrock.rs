//! Amazon Bedrock: the invoke envelope around Anthropic's Messages format, and AWS's error answers
//! read as the attempt loop understands errors.

use crate::core::cloud::aws::error_name;
use crate::core::llm::errors::sanitized_code;
use serde_json::{json, Value};

/// Bedrock's own version of the Messages API, required in every invoke body.
const ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

/// Fields of an Anthropic body that Bedrock's Claude request reference
/// (model-parameters-anthropic-claude-messages-request-response) does not list, and that name
/// Anthropic's own platform: `metadata` (abuse tracking by Anthropic), `service_tier` (Anthropic's
/// capacity tiers), `container` (Anthropic-hosted code execution) and `mcp_servers` (Anthropic's
/// MCP connector). `model` and `stream` are refused outright ("extraneous key"): the URL and the
/// operation carry them.
const NOT_ON_BEDROCK: [&str; 6] = [
    "model",
    "stream",
    "metadata",
    "service_tier",
    "container",
    "mcp_servers",
];

/// The body of `invoke` / `invoke-with-response-stream` for an Anthropic Messages body: Claude's
/// own format without `model` and `stream` (Bedrock refuses them), with `anthropic_version`
/// and the client's beta flags moved into the body.
pub fn invoke_body(anthropic: &Value, beta: &[String]) -> Value {
    let mut body = match anthropic {
        Value::Object(o) => o.clone(),
        _ => serde_json::Map::new(),
    };
    for key in NOT_ON_BEDROCK {
        body.remove(key);
    }
    // Beta flags come from the client's header only, as the gateway read them (its window and
    // cache key follow them), never from a body field the gateway does not read.
    body.remove("anthropic_beta");
    body.insert("anthropic_version".into(), json!(ANTHROPIC_VERSION));
    if !beta.is_empty() {
        body.insert("anthropic_beta".into(), json!(beta));
    }
    Value::Object(body)
}

/// Whether a Bedrock model id (or an ARN naming one) is one of Anthropic's Claude models:
/// `anthropic.…`, a cross-region profile `{geo}.anthropic.…`, or the ARN of a foundation model
/// or a system inference profile naming one. An application inference profile's ARN hides its
/// model: false.
pub fn is_anthropic_model(model_id: &str) -> bool {
    let id = match model_id.strip_prefix("arn:") {
        // arn:{partition}:bedrock:{region}:{account}:{type}/{id}
        Some(arn) => match arn.splitn(5, ':').nth(4).and_then(|r| r.split_once('/')) {
            Some(("foundation-model" | "inference-profile", id)) => id,
            _ => return false,
        },
        None => model_id,
    };
    if id.starts_with("anthropic.") {
        return true;
    }
    match id.split_once('.') {
        Some((geo, rest)) => {
            (2..=8).contains(&geo.len())
                && geo.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
                && rest.starts_with("anthropic.")
        }
        None => false,
    }
}

/// An AWS error answer (`x-amzn-errortype` header, `{"message"}` body) rewritten as
/// `(status, {"error":{"type","code","message"}})` with the status `exception` counts it as;
/// `None` when it is not AWS-shaped.
///
/// - Throttled or not ready (ThrottlingException, ModelNotReadyException,
///   ServiceQuotaExceededException): 429, retried and then the next target, no breaker failure.
/// - The service or the model failed (ServiceUnavailable, InternalServer, ModelError,
///   ModelStreamError): 502, a breaker failure, fallen over.
/// - ModelTimeoutException: 408, retried, not the service's failure; the client hears a timeout.
/// - ValidationException saying the input is too long: 400 `context_length_exceeded`, which
///   moves to a context fallback; any other: 400 with AWS's words (the client's own request).
/// - Credentials or signature refused: 403, which the loop answers as a 502 "refused this
///   gateway's credentials" after trying the next target.
/// - ResourceNotFoundException: 404.
///
/// AWS's words are kept only for a 400 or 404, the statuses whose text may reach the client: a
/// signature error quotes the signature's inputs.
pub fn refusal(status: u16, error_type: Option<&str>, body: &str) -> Option<(u16, Value)> {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("message").or_else(|| v.get("Message")))
        .and_then(Value::as_str);
    let name = error_type
        .map(str::to_string)
        .or_else(|| parsed.as_ref()?.get("__type")?.as_str().map(str::to_string))
        .map(|t| error_name(&t).to_string())
        .filter(|t| !t.is_empty());
    if name.is_none() && message.is_none() {
        return None;
    }
    let message = message.unwrap_or_default();
    // A model's error is the model's failure, unless the model refused the request itself: AWS
    // gives the model's own status then, and a 4xx is the client's to hear (it must neither
    // trip the breaker nor move to another target).
    let original = parsed
        .as_ref()
        .and_then(|v| v.get("originalStatusCode"))
        .and_then(Value::as_u64);
    let model_refused = name
        .as_deref()
        .is_some_and(|n| n.eq_ignore_ascii_case("ModelErrorException"))
        && original.is_some_and(|s| (400..500).contains(&s));
    let (status, kind) = match name.as_deref().and_then(exception) {
        _ if model_refused => (400, "invalid_request_error"),
        Some(counted) => counted,
        // Unnamed, or a name not listed: read by the status AWS gave.
        None => match status {
            429 => (429, "rate_limit_error"),
            408 => (408, "timeout_error"),
            401 | 403 => (403, "authentication_error"),
            404 => (404, "not_found_error"),
            500..=599 => (502, "api_error"),
            s => (s, "invalid_request_error"),
        },
    };
    let code = if status == 400 && too_long(message) {
        "context_length_exceeded".to_string()
    } else {
        sanitized_code(name.as_deref().unwrap_or("aws_error"))
    };
    let message = match status {
        400 | 404 => without_account(&message.chars().take(500).collect::<String>()),
        _ => format!("Bedrock answered {code}"),
    };
    Some((
        status,
        json!({"error": {"type": kind, "code": code, "message": message}}),
    ))
}

/// How an AWS exception counts, by its name as an HTTP answer gives it (`ThrottlingException`) or
/// a stream's frame does (`throttlingException`): the status the attempt loop acts on, and the
/// error type a client is told. `None`: a name not listed.
pub fn exception(name: &str) -> Option<(u16, &'static str)> {
    let lower = name.to_ascii_lowercase();
    Some(match lower.strip_suffix("exception").unwrap_or(&lower) {
        "throttling" | "modelnotready" | "servicequotaexceeded" | "toomanyrequests" => {
            (429, "rate_limit_error")
        }
        "serviceunavailable" | "internalserver" | "internalfailure" | "modelerror"
        | "modelstreamerror" => (502, "api_error"),
        "modeltimeout" => (408, "timeout_error"),
        "accessdenied"
        | "unrecognizedclient"
        | "invalidsignature"
        | "signaturedoesnotmatch"
        | "incompletesignature"
        | "requestexpired"
        | "expiredtoken"
        | "invalidclienttokenid"
        | "missingauthenticationtoken" => (403, "authentication_error"),
        "resourcenotfound" => (404, "not_found_error"),
        "validation" => (400, "invalid_request_error"),
        _ => return None,
    })
}

/// Whether a ValidationException's message says the input is larger than the model's window,
/// in the words Bedrock's models use, where they put them: at its start, or after Converse's
/// "The model returned the following errors: ". Never a match elsewhere (a message quoting the
/// client's own text would move it to a dearer window).
fn too_long(message: &str) -> bool {
    pattern!(concat!(
        r"^(?i:The model returned the following errors: )?(?i:",
        r"Input is too long for requested model",
        r"|prompt is too long: \d+ tokens > \d+",
        r"|input length and `max_tokens` exceed context limit",
        r"|too many input tokens",
        r"|too many total text bytes",
        r"|(?:the )?input(?: token count| length)? \(?\d+\)? exceeds the maximum",
        r")"
    ))
    .is_match(message)
}

/// AWS's words with the ARNs and account ids they quote left out: the tenant's AWS account is
/// not its clients' business.
fn without_account(message: &str) -> String {
    pattern!(r"arn:aws[a-z-]*:[^\s,;'\x22)]*|\b\d{12}\b")
        .replace_all(message, "[aws resource]")
        .into_owned()
}

#[cfg(test)]
mod tests;
