//! Amazon Bedrock: the invoke envelope around Anthropic's Messages format, and AWS's error answers
//! read as the attempt loop understands errors. Not yet: #41 A1.

use serde_json::Value;

/// The body of `invoke` / `invoke-with-response-stream` for an Anthropic Messages body: Claude's
/// own format without `model` and `stream` (Bedrock refuses them), with `anthropic_version`
/// and the client's beta flags moved into the body.
pub fn invoke_body(anthropic: &Value, beta: &[String]) -> Value {
    let _ = beta;
    anthropic.clone()
}

/// An AWS error answer (`x-amzn-errortype` header, `{"message"}` body) rewritten as
/// `(status, {"error":{"type","code","message"}})` with a status the attempt loop acts on
/// (plan-41 §1 decision 8); `None` when it is not AWS-shaped.
pub fn refusal(status: u16, error_type: Option<&str>, body: &str) -> Option<(u16, Value)> {
    let _ = (status, error_type, body);
    None
}

/// Whether a Bedrock model id (or inference-profile ARN) names a Claude model: `anthropic.…`,
/// a cross-region profile `{geo}.anthropic.…`, or an ARN whose resource is one of those.
pub fn is_anthropic_model(model: &str) -> bool {
    let id = match model.starts_with("arn:") {
        true => model.rsplit_once('/').map_or("", |(_, id)| id),
        false => model,
    };
    id.starts_with("anthropic.")
        || id
            .split_once('.')
            .is_some_and(|(geo, rest)| geo.len() <= 7 && rest.starts_with("anthropic."))
}
