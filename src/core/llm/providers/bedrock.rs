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
