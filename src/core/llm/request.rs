//! A client's request on `/v1/chat/completions` or `/v1/messages`: parsed, checked for what the
//! gateway needs to route it, and sized for the token limit. Everything else in the body passes
//! through untouched to a same-dialect upstream.

use super::catalog::ModelEntry;
use super::sizing::{input_bound, sizing, Sizing};
use super::Dialect;
use crate::core::error::ApiError;
use crate::core::http::is_http_url;
use crate::core::llm::config::ProviderKind;
use serde_json::{Map, Value};

#[derive(Debug, Clone)]
pub struct ClientRequest {
    pub dialect: Dialect,
    pub body: Map<String, Value>,
    pub model: String,
    pub stream: bool,
    /// OpenAI clients get a final usage chunk only if they asked for it.
    pub include_usage: bool,
    /// Whether thinking/reasoning content is passed to the client (else dropped).
    pub thinking: bool,
    /// Charged against the tokens-per-minute limit up front; corrected with real usage later.
    /// It holds the most the target may produce, so concurrent requests cannot overshoot.
    pub estimated_tokens: u64,
    /// The client's own output maximum (`max_tokens` / `max_completion_tokens`), if it set one.
    pub client_max_output: Option<u64>,
    /// The output maximum every upstream is sent: the client's, else the tenant's ceiling.
    pub output_cap: u64,
    /// What the body holds that its bytes do not measure (images, input by reference).
    pub sizing: super::sizing::Sizing,
    body_bytes: u64,
    input_estimate: u64,
}

/// Bytes a token when a request is fitted to context windows. The limits count four (an upper
/// estimate); here a target is skipped only when the request surely does not fit it, so the
/// count must err low: English runs four to five bytes a token on current tokenizers, and the
/// JSON around the text is bytes that are no tokens. At five, text is undercounted by a tenth
/// or two; within that margin the request is sent, and a provider's context-length refusal
/// moves it on to a larger window at the cost of one refused call. (Text that tokenizes denser,
/// such as CJK, is undercounted more: the same refusal covers it.)
pub const FIT_BYTES_PER_TOKEN: u64 = 5;

/// The output ceiling of a request that sets no maximum (OpenAI's is optional, Anthropic's is
/// required), when the tenant configures none: sent upstream as the maximum, and charged.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

impl ClientRequest {
    /// Applies the tenant's output ceiling to a request that set no maximum of its own.
    pub fn with_output_ceiling(mut self, ceiling: u64) -> Self {
        self.output_cap = match self.dialect {
            // An embedding produces no tokens.
            Dialect::Embeddings => 0,
            _ => self.client_max_output.unwrap_or(ceiling),
        };
        self.estimated_tokens = self.input_estimate + self.output_cap;
        self
    }

    /// The same request in another dialect's words (`body`), sized as the client sent it.
    pub fn as_dialect(&self, dialect: Dialect, body: Map<String, Value>) -> ClientRequest {
        ClientRequest {
            dialect,
            body,
            model: self.model.clone(),
            ..*self
        }
    }

    /// The usage the request is expected to reach at most: its input, and its output maximum
    /// (before a target is known: under the largest image rules).
    pub fn estimated_usage(&self) -> super::Usage {
        super::Usage {
            input_tokens: self.input_estimate,
            output_tokens: self.output_cap,
            ..Default::default()
        }
    }

    /// The same on a target of `kind` with pricing record `price` (its image rules and context
    /// window).
    pub fn estimated_usage_on(
        &self,
        kind: ProviderKind,
        price: Option<&ModelEntry>,
    ) -> super::Usage {
        super::Usage {
            input_tokens: input_bound(self.body_bytes, &self.sizing, Some((kind, price))),
            output_tokens: self.output_cap,
            ..Default::default()
        }
    }

    /// The input a target's context window must hold at least (`routing::fit`): what the bytes
    /// measure, written compactly (whitespace between JSON tokens is no input, and would let
    /// padding push a small prompt to a dearer window), not images, not input by reference
    /// (which may be small), at `FIT_BYTES_PER_TOKEN`.
    /// An embedding model's window bounds each of a request's inputs, not their sum: nothing.
    /// Counted when asked (it writes the body once), only where a window is known.
    pub fn input_floor(&self) -> u64 {
        if self.dialect == Dialect::Embeddings {
            return 0;
        }
        let measured = compact_len(&self.body).saturating_sub(self.sizing.inline_image_bytes);
        measured / FIT_BYTES_PER_TOKEN
    }

    /// Whether the input holds anything its bytes do not measure, so that a target's own
    /// bounds matter.
    pub fn has_unmeasured_input(&self) -> bool {
        self.sizing != Sizing::default()
    }

    /// The end user the client named (OpenAI's `user`, Anthropic's `metadata.user_id`): a
    /// conversation's key for sticky routing when no `x-gateway-session` is sent.
    pub fn end_user(&self) -> Option<&str> {
        let v = match self.dialect {
            Dialect::OpenAi | Dialect::Gemini | Dialect::Embeddings => self.body.get("user"),
            Dialect::Responses => self.body.get("safety_identifier").or(self.body.get("user")),
            Dialect::Anthropic => self.body.get("metadata").and_then(|m| m.get("user_id")),
        };
        v.and_then(Value::as_str).filter(|s| !s.is_empty())
    }
}

/// A payer with a budget is charged the catalog's standard rates, so it may not ask a provider
/// for a dearer tier: OpenAI's `service_tier` `priority` or `scale`, Anthropic's `speed: "fast"`
/// or `inference_geo` pinned to a region (each billed at a premium). `auto` passes: it is
/// billed at priority only on a project whose default tier is priority, which the gateway
/// cannot see (README). Without a budget anything passes, as the provider bills it.
pub fn check_standard_tier(req: &ClientRequest, budget: bool) -> Result<(), ApiError> {
    let allowed: &[(&str, &[&str])] = match req.dialect {
        Dialect::Anthropic => &[
            ("speed", &["standard"]),
            ("inference_geo", &["global"]),
            ("service_tier", &["auto", "standard_only"]),
        ],
        _ => &[("service_tier", &["auto", "default", "flex"])],
    };
    for (field, ok) in allowed {
        let standard = match req.body.get(*field) {
            None | Some(Value::Null) => true,
            Some(v) => v.as_str().is_some_and(|s| ok.contains(&s)),
        };
        if budget && !standard {
            return Err(bad(format!(
                "`{field}` may only be {} under a budget: this gateway prices a model's standard rates only, so a budgeted tenant or key cannot ask for a premium tier; send the request without `{field}`",
                ok.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
            )));
        }
    }
    Ok(())
}

fn bad(m: String) -> ApiError {
    ApiError::bad_request(m)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn expect(
    body: &Map<String, Value>,
    key: &str,
    want: &str,
    ok: fn(&Value) -> bool,
) -> Result<(), ApiError> {
    match body.get(key) {
        Some(v) if !v.is_null() && !ok(v) => {
            Err(bad(format!("`{key}` must be {want}, got {}", type_name(v))))
        }
        _ => Ok(()),
    }
}

fn positive_int(v: &Value) -> bool {
    v.as_u64().is_some_and(|n| n > 0)
}

pub fn parse(dialect: Dialect, bytes: &[u8]) -> Result<ClientRequest, ApiError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        bad(format!(
            "request body is not valid JSON: {e} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let Value::Object(body) = value else {
        return Err(bad(format!(
            "request body must be a JSON object, got {}",
            type_name(&value)
        )));
    };
    let model = match body.get("model") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(bad("`model` is required".into()))
        }
        Some(v) => {
            return Err(bad(format!(
                "`model` must be a string, got {}",
                type_name(v)
            )))
        }
    };
    match dialect {
        Dialect::Responses => check_input(&body)?,
        Dialect::Embeddings => check_embeddings(&body)?,
        _ => check_messages(dialect, &body)?,
    }
    expect(&body, "stream", "a boolean", Value::is_boolean)?;
    expect(&body, "temperature", "a number", Value::is_number)?;
    expect(&body, "top_p", "a number", Value::is_number)?;
    expect(&body, "max_tokens", "a positive integer", positive_int)?;
    expect(
        &body,
        "max_completion_tokens",
        "a positive integer",
        positive_int,
    )?;
    expect(&body, "tools", "an array", Value::is_array)?;
    expect(&body, "stream_options", "an object", Value::is_object)?;
    expect(&body, "metadata", "an object", Value::is_object)?;
    expect(
        &body,
        "max_output_tokens",
        "a positive integer",
        positive_int,
    )?;
    expect(&body, "reasoning", "an object", Value::is_object)?;
    expect(&body, "text", "an object", Value::is_object)?;
    if let Some(Value::Array(tools)) = body.get("tools") {
        for (i, t) in tools.iter().enumerate() {
            let (name, field) = match dialect {
                Dialect::OpenAi | Dialect::Gemini | Dialect::Embeddings => {
                    (t.pointer("/function/name"), "function.name")
                }
                Dialect::Anthropic => (t.get("name"), "name"),
                // Built-in tools (`web_search`, ...) have no name.
                Dialect::Responses if t["type"] != "function" => continue,
                Dialect::Responses => (t.get("name"), "name"),
            };
            if !name.is_some_and(Value::is_string) {
                return Err(bad(format!("`tools[{i}].{field}` must be a string")));
            }
        }
    }
    let max_out = ["max_completion_tokens", "max_tokens", "max_output_tokens"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_u64));
    if dialect == Dialect::Anthropic && max_out.is_none() {
        return Err(bad("`max_tokens` is required".into()));
    }
    if body
        .get("n")
        .and_then(Value::as_u64)
        .is_some_and(|n| n != 1)
    {
        return Err(bad(
            "`n` other than 1 is not supported by this gateway".into()
        ));
    }
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage = match dialect {
        Dialect::OpenAi | Dialect::Gemini | Dialect::Embeddings => body
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        Dialect::Anthropic | Dialect::Responses => true,
    };
    let thinking = body.get("thinking").is_some_and(|t| !t.is_null())
        || body.get("reasoning_effort").is_some_and(Value::is_string)
        || body
            .get("reasoning")
            .and_then(|r| r.get("effort"))
            .is_some_and(|e| e.is_string() && e != "none");
    // About four bytes of JSON per token, images and input by reference at their bounds: an
    // estimate for the limits, corrected by real usage.
    let sizing = sizing(&body);
    let body_bytes = bytes.len() as u64;
    let input_estimate = input_bound(body_bytes, &sizing, None);
    Ok(ClientRequest {
        dialect,
        body,
        model,
        stream,
        include_usage,
        thinking,
        estimated_tokens: 0,
        client_max_output: max_out,
        output_cap: 0,
        sizing,
        body_bytes,
        input_estimate,
    }
    .with_output_ceiling(DEFAULT_MAX_TOKENS))
}

/// The length of `body` serialized without whitespace, counted as it is written.
fn compact_len(body: &Map<String, Value>) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len() as u64;
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut n = Count(0);
    // Writing a parsed value to a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut n, body);
    n.0
}

fn check_messages(dialect: Dialect, body: &Map<String, Value>) -> Result<(), ApiError> {
    let messages = match body.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => m,
        Some(Value::Array(_)) => return Err(bad("`messages` must not be empty".into())),
        None | Some(Value::Null) => return Err(bad("`messages` is required".into())),
        Some(v) => {
            return Err(bad(format!(
                "`messages` must be an array, got {}",
                type_name(v)
            )))
        }
    };
    let roles: &[&str] = match dialect {
        Dialect::OpenAi => &[
            "system",
            "developer",
            "user",
            "assistant",
            "tool",
            "function",
        ],
        _ => &["user", "assistant"],
    };
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str);
        match role {
            Some(r) if roles.contains(&r) => {}
            Some(r) => {
                return Err(bad(format!(
                    "`messages[{i}].role` must be one of {}, got `{}`",
                    roles.join(", "),
                    r.chars().take(40).collect::<String>()
                )))
            }
            None if !m.is_object() => {
                return Err(bad(format!(
                    "`messages[{i}]` must be an object, got {}",
                    type_name(m)
                )))
            }
            None => return Err(bad(format!("`messages[{i}].role` is required"))),
        }
        match m.get("content") {
            None | Some(Value::Null) if dialect == Dialect::OpenAi => {}
            Some(Value::String(_)) => {}
            Some(Value::Array(parts)) => check_image_urls(i, parts)?,
            None | Some(Value::Null) => {
                return Err(bad(format!("`messages[{i}].content` is required")))
            }
            Some(v) => {
                return Err(bad(format!(
                    "`messages[{i}].content` must be a string or an array, got {}",
                    type_name(v)
                )))
            }
        }
    }
    Ok(())
}

/// A Responses request's `input`: a string, or a list of items (messages, function calls and
/// their outputs, ...) each an object with a known role where it has one.
fn check_input(body: &Map<String, Value>) -> Result<(), ApiError> {
    let items = match body.get("input") {
        Some(Value::String(s)) if !s.is_empty() => return Ok(()),
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(Value::String(_)) | Some(Value::Array(_)) => {
            return Err(bad("`input` must not be empty".into()))
        }
        None | Some(Value::Null) => return Err(bad("`input` is required".into())),
        Some(v) => {
            return Err(bad(format!(
                "`input` must be a string or an array, got {}",
                type_name(v)
            )))
        }
    };
    expect(body, "instructions", "a string", Value::is_string)?;
    for (i, item) in items.iter().enumerate() {
        if !item.is_object() {
            return Err(bad(format!(
                "`input[{i}]` must be an object, got {}",
                type_name(item)
            )));
        }
        let kind = item
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("message");
        if kind != "message" {
            continue;
        }
        let roles = ["user", "assistant", "system", "developer"];
        match item.get("role").and_then(Value::as_str) {
            Some(r) if roles.contains(&r) => {}
            _ => {
                return Err(bad(format!(
                    "`input[{i}].role` must be one of {}",
                    roles.join(", ")
                )))
            }
        }
        match item.get("content") {
            Some(Value::String(_)) => {}
            Some(Value::Array(parts)) => check_image_urls(i, parts)?,
            _ => {
                return Err(bad(format!(
                    "`input[{i}].content` must be a string or an array"
                )))
            }
        }
    }
    Ok(())
}

/// Image parts may only point at the web or carry their bytes (`data:`): anything else would
/// be fetched by the provider on the tenant's behalf, or is a mistake.
fn check_image_urls(i: usize, parts: &[Value]) -> Result<(), ApiError> {
    for (j, p) in parts.iter().enumerate() {
        let url = p
            .pointer("/image_url/url")
            .or_else(|| p.pointer("/source/url"))
            .or_else(|| p.get("image_url"))
            .and_then(Value::as_str);
        if let Some(url) = url {
            let data = url
                .get(..5)
                .is_some_and(|h| h.eq_ignore_ascii_case("data:"));
            if !(data || is_http_url(url)) {
                return Err(bad(format!(
                    "`messages[{i}].content[{j}]` image URL must be http(s) or a data: URL"
                )));
            }
        }
    }
    Ok(())
}

/// Most inputs in one request, as OpenAI allows.
pub const MAX_INPUTS: usize = 2048;

/// The texts to embed: a string or a list of them; a list of token ids (or of lists of them)
/// is read only by OpenAI-style targets.
fn check_embeddings(body: &Map<String, Value>) -> Result<(), ApiError> {
    let is_tokens = |v: &Value| {
        v.as_array()
            .is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_u64))
    };
    match body.get("input") {
        Some(Value::String(s)) if !s.is_empty() => {}
        Some(Value::Array(items)) if !items.is_empty() => {
            if items.len() > MAX_INPUTS {
                return Err(ApiError::bad_request(format!(
                    "`input` may hold at most {MAX_INPUTS} items"
                )));
            }
            let all_tokens = items.iter().all(Value::is_u64);
            for (i, item) in items.iter().enumerate() {
                let ok = match item {
                    Value::String(s) => !s.is_empty(),
                    v => all_tokens || is_tokens(v),
                };
                if !ok {
                    return Err(ApiError::bad_request(format!(
                        "`input[{i}]` must be a non-empty string (or token ids)"
                    )));
                }
            }
        }
        None | Some(Value::Null) => return Err(ApiError::bad_request("`input` is required")),
        _ => {
            return Err(bad(
                "`input` must be a non-empty string or array of strings".into(),
            ))
        }
    }
    match body.get("encoding_format") {
        None | Some(Value::Null) => {}
        Some(Value::String(f)) if f == "float" || f == "base64" => {}
        _ => {
            return Err(ApiError::bad_request(
                "`encoding_format` must be `float` or `base64`",
            ))
        }
    }
    match body.get("dimensions") {
        None | Some(Value::Null) => {}
        Some(d) if d.as_u64().is_some_and(|n| n > 0) => {}
        _ => {
            return Err(ApiError::bad_request(
                "`dimensions` must be a positive integer",
            ))
        }
    }
    if body.get("stream").is_some_and(|s| s != &Value::Bool(false)) {
        return Err(ApiError::bad_request("embeddings are not streamed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(d: Dialect, v: Value) -> String {
        parse(d, v.to_string().as_bytes()).unwrap_err().message
    }

    #[test]
    fn the_fit_floor_counts_what_the_bytes_measure_low_and_never_input_by_reference() {
        let text = "word ".repeat(2_000);
        let body = json!({"model": "m", "messages": [{"role": "user", "content": text}]});
        let r = parse(Dialect::OpenAi, body.to_string().as_bytes()).unwrap();
        let bytes = body.to_string().len() as u64;
        assert_eq!(r.input_floor(), bytes / 5);
        assert!(
            r.input_floor() < r.estimated_usage().input_tokens,
            "lower than the limits' count"
        );
        // A stored response may be any size: the floor does not guess it.
        let by_reference = json!({"model": "m", "input": "hi", "previous_response_id": "resp_1"});
        let r = parse(Dialect::Responses, by_reference.to_string().as_bytes()).unwrap();
        assert!(r.has_unmeasured_input());
        assert!(r.input_floor() < 100, "{}", r.input_floor());
        // An inline image's base64 is not text: it is left out.
        let data = format!("data:image/png;base64,{}", "A".repeat(40_000));
        let image = json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": data}}]}]});
        let r = parse(Dialect::OpenAi, image.to_string().as_bytes()).unwrap();
        assert!(r.input_floor() < 100, "{}", r.input_floor());
        // A batch of embeddings is held input by input, whatever their sum.
        let batch = json!({"model": "m", "input": vec!["word ".repeat(1_000); 50]});
        let r = parse(Dialect::Embeddings, batch.to_string().as_bytes()).unwrap();
        assert_eq!(r.input_floor(), 0);
    }

    #[test]
    fn a_premium_service_tier_is_refused_under_a_budget_and_passes_without_one() {
        let chat = |extra: Value| {
            let mut b = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
            b.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            parse(Dialect::OpenAi, b.to_string().as_bytes()).unwrap()
        };
        let claude = |extra: Value| {
            let mut b = json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
            b.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            parse(Dialect::Anthropic, b.to_string().as_bytes()).unwrap()
        };
        let premium = [
            chat(json!({"service_tier": "priority"})),
            chat(json!({"service_tier": "scale"})),
            chat(json!({"service_tier": 5})),
            claude(json!({"speed": "fast"})),
            claude(json!({"inference_geo": "us"})),
        ];
        for r in &premium {
            let e = check_standard_tier(r, true).unwrap_err();
            assert_eq!((e.status(), e.kind.type_name()), (400, "invalid_request"));
            assert!(e.message.contains("standard rates"), "{}", e.message);
            assert!(check_standard_tier(r, false).is_ok(), "no budget: passes");
        }
        let standard = [
            chat(json!({})),
            chat(json!({"service_tier": "auto"})),
            chat(json!({"service_tier": "default"})),
            chat(json!({"service_tier": "flex"})),
            chat(json!({"service_tier": null})),
            claude(json!({"speed": "standard", "inference_geo": "global"})),
        ];
        for r in &standard {
            assert!(check_standard_tier(r, true).is_ok(), "{:?}", r.body);
        }
    }

    #[test]
    fn json_whitespace_is_no_input_for_the_fit_floor() {
        let compact =
            r#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#;
        let padded = format!(
            r#"{{ "model": "m", "max_tokens": 10,{}"messages":[{{"role":"user","content":"hi"}}]}}"#,
            " \n\t".repeat(300_000)
        );
        let floor = |raw: &str| {
            parse(Dialect::OpenAi, raw.as_bytes())
                .unwrap()
                .input_floor()
        };
        assert_eq!(floor(&padded), floor(compact));
        assert_eq!(floor(compact), compact.len() as u64 / FIT_BYTES_PER_TOKEN);
    }

    #[test]
    fn a_valid_openai_request() {
        let r = parse(
            Dialect::OpenAi,
            br#"{"model":"default","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true},"max_tokens":100}"#,
        )
        .unwrap();
        assert_eq!(r.model, "default");
        assert!(r.stream && r.include_usage && !r.thinking);
        assert!(r.estimated_tokens >= 100);
        assert_eq!(r.output_cap, 100);
        // No maximum: the ceiling is both sent and charged.
        let r = parse(
            Dialect::OpenAi,
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
        )
        .unwrap();
        assert_eq!(
            (r.client_max_output, r.output_cap),
            (None, DEFAULT_MAX_TOKENS)
        );
        assert!(r.estimated_tokens > DEFAULT_MAX_TOKENS);
        let r = r.with_output_ceiling(300);
        assert_eq!(r.output_cap, 300);
        assert!(r.estimated_tokens > 300 && r.estimated_tokens < 400);
    }

    #[test]
    fn bad_input_says_what_and_where() {
        let o = Dialect::OpenAi;
        assert!(parse(o, b"{\"model\":")
            .unwrap_err()
            .message
            .contains("not valid JSON"));
        assert!(msg(o, json!([1])).contains("must be a JSON object"));
        assert_eq!(msg(o, json!({"messages": []})), "`model` is required");
        assert!(msg(o, json!({"model": 5, "messages": []})).contains("`model` must be a string"));
        assert_eq!(msg(o, json!({"model": "m"})), "`messages` is required");
        assert!(msg(o, json!({"model": "m", "messages": "hi"})).contains("must be an array"));
        assert!(msg(
            o,
            json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]})
        )
        .contains("messages[0].role"));
        assert!(msg(
            o,
            json!({"model": "m", "messages": [{"role": "user", "content": 1}]})
        )
        .contains("messages[0].content"));
        assert!(msg(
            o,
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"})
        )
        .contains("`stream` must be a boolean"));
        assert!(msg(
            o,
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": -1})
        )
        .contains("max_tokens"));
        assert!(msg(o, json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}))
            .contains("tools[0].function.name"));
        assert!(msg(
            o,
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 3})
        )
        .contains("`n`"));
    }

    #[test]
    fn image_urls_must_be_web_or_data_urls() {
        let bad_o = json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}]});
        assert!(msg(Dialect::OpenAi, bad_o).contains("messages[0].content[0]"));
        let bad_a = json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "image", "source": {"type": "url", "url": "gopher://x"}}]}]});
        assert!(msg(Dialect::Anthropic, bad_a).contains("messages[0].content[1]"));
        for url in [
            "https://x.example/a.png",
            "data:image/png;base64,iVBORw0KGgo=",
        ] {
            let ok = json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]});
            assert!(
                parse(Dialect::OpenAi, ok.to_string().as_bytes()).is_ok(),
                "{url}"
            );
        }
    }

    #[test]
    fn anthropic_needs_max_tokens_and_its_own_roles() {
        let a = Dialect::Anthropic;
        assert_eq!(
            msg(
                a,
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}]})
            ),
            "`max_tokens` is required"
        );
        assert!(msg(
            a,
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]})
        )
        .contains("must be one of user, assistant"));
        let r = parse(a, br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"thinking":{"type":"enabled","budget_tokens":1024}}"#).unwrap();
        assert!(r.include_usage && r.thinking && !r.stream);
    }
}
