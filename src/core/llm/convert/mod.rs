//! Request and (non-streamed) response translation between the dialects, and the small edits a
//! same-dialect request needs (the target's model name, asking for usage).

pub mod passthrough;
pub mod responses;
pub mod to_anthropic;
pub mod to_converse;
pub mod to_gemini;
pub mod to_openai;

use super::request::ClientRequest;
use super::Dialect;
use crate::core::error::ApiError;
use serde_json::{json, Value};

/// The body to send to an upstream speaking `upstream`, for the target `model`.
pub fn upstream_body(
    req: &ClientRequest,
    upstream: Dialect,
    model: &str,
    max_completion_tokens: bool,
) -> Result<Value, ApiError> {
    if req.dialect == Dialect::Embeddings {
        return match upstream {
            Dialect::Gemini => super::embeddings::to_gemini(req, model),
            Dialect::Anthropic => Err(ApiError::bad_request(
                "Anthropic has no embeddings API: route embeddings to an OpenAI-style or Gemini target",
            )),
            _ => {
                let mut body = Value::Object(req.body.clone());
                body["model"] = json!(model);
                Ok(body)
            }
        };
    }
    if req.dialect == Dialect::Responses && upstream != Dialect::Responses {
        let chat = responses::to_chat(req)?;
        return upstream_body(&chat, upstream, model, max_completion_tokens);
    }
    if upstream == Dialect::Gemini {
        // Through Chat Completions; the model is in the URL.
        if req.dialect == Dialect::Anthropic {
            let Value::Object(chat) = to_openai::request(req, false) else {
                return Err(ApiError::internal("chat translation is not an object"));
            };
            return to_gemini::request(&req.as_dialect(Dialect::OpenAi, chat));
        }
        return to_gemini::request(req);
    }
    if upstream == Dialect::Responses {
        let mut body = Value::Object(req.body.clone());
        body["model"] = json!(model);
        if body.get("max_output_tokens").is_none_or(Value::is_null) {
            // An uncapped request gets the ceiling it was charged for.
            body["max_output_tokens"] = json!(req.output_cap);
        }
        return Ok(body);
    }
    let mut body = match (req.dialect, upstream) {
        (Dialect::OpenAi, Dialect::Anthropic) => to_anthropic::request(req)?,
        (Dialect::Anthropic, Dialect::OpenAi) => to_openai::request(req, max_completion_tokens),
        _ => Value::Object(req.body.clone()),
    };
    body["model"] = json!(model);
    if upstream == Dialect::OpenAi
        && body.get("max_tokens").is_none()
        && body.get("max_completion_tokens").is_none()
    {
        // An uncapped request gets the ceiling it was charged for.
        let key = if max_completion_tokens {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        body[key] = json!(req.output_cap);
    }
    if upstream == Dialect::OpenAi && req.stream {
        // The gateway accounts every stream, so it always asks for the final usage chunk.
        body["stream_options"]["include_usage"] = json!(true);
    }
    Ok(body)
}

/// The client's answer to a provider's non-streamed answer, and its usage (as the provider
/// counted it: `Usage::or_estimated` fills in a missing count); `None` when the dialects match
/// (the provider's bytes go through unchanged). A body of the wrong shape is refused rather
/// than translated into an empty answer.
pub fn client_response(
    req: &ClientRequest,
    upstream: Dialect,
    body: &Value,
    now_s: u64,
) -> Result<(Option<Value>, super::Usage), String> {
    if req.dialect == Dialect::Embeddings {
        return embeddings_response(req, upstream, body);
    }
    check_shape(upstream, body)?;
    if upstream == Dialect::Gemini {
        let chat = to_gemini::response(body, now_s, req.thinking);
        // The provider's own count: the chat usage has no name for every class.
        let usage = super::Usage::from_gemini(&body["usageMetadata"]).unwrap_or_default();
        let client = match req.dialect {
            Dialect::Anthropic => to_openai::response(&chat, req.thinking),
            Dialect::Responses => responses::from_chat(req, &chat, now_s),
            _ => chat,
        };
        return Ok((Some(client), usage));
    }
    if req.dialect == Dialect::Responses && upstream != Dialect::Responses {
        // Through Chat Completions, the format every upstream is translated to.
        let (chat, usage) = match upstream {
            Dialect::Anthropic => (
                to_anthropic::response(body, now_s, req.thinking),
                super::Usage::from_anthropic(&body["usage"]).unwrap_or_default(),
            ),
            _ => (
                body.clone(),
                super::Usage::from_openai(&body["usage"]).unwrap_or_default(),
            ),
        };
        return Ok((Some(responses::from_chat(req, &chat, now_s)), usage));
    }
    Ok(match (upstream, req.dialect) {
        (Dialect::Anthropic, Dialect::OpenAi) => (
            Some(to_anthropic::response(body, now_s, req.thinking)),
            super::Usage::from_anthropic(&body["usage"]).unwrap_or_default(),
        ),
        (Dialect::OpenAi, Dialect::Anthropic) => (
            Some(to_openai::response(body, req.thinking)),
            super::Usage::from_openai(&body["usage"]).unwrap_or_default(),
        ),
        (Dialect::Anthropic, _) => (
            None,
            super::Usage::from_anthropic(&body["usage"]).unwrap_or_default(),
        ),
        (Dialect::Responses, _) => (
            None,
            super::Usage::from_responses(&body["usage"]).unwrap_or_default(),
        ),
        (Dialect::OpenAi | Dialect::Gemini | Dialect::Embeddings, _) => (
            None,
            super::Usage::from_openai(&body["usage"]).unwrap_or_default(),
        ),
    })
}

/// An embeddings answer: OpenAI's list as it came (its usage, else an estimate), or Gemini's
/// vectors in that shape.
fn embeddings_response(
    req: &ClientRequest,
    upstream: Dialect,
    body: &Value,
) -> Result<(Option<Value>, super::Usage), String> {
    let (items, field) = match upstream {
        Dialect::Gemini => (&body["embeddings"], "values"),
        _ => (&body["data"], "embedding"),
    };
    let ok = items
        .as_array()
        .is_some_and(|es| es.iter().all(|e| e.get(field).is_some()));
    if !ok {
        return Err("the provider's answer is not an embeddings list".into());
    }
    Ok(match upstream {
        Dialect::Gemini => {
            let (client, usage) = super::embeddings::from_gemini(req, body, &req.model);
            (Some(client), usage)
        }
        _ => (
            None,
            super::Usage::from_openai(&body["usage"])
                .unwrap_or_else(|| super::embeddings::estimated_usage(req)),
        ),
    })
}

/// The least a provider's answer must be for a client to read it: OpenAI `choices[].message`
/// objects; Anthropic `type: "message"` with a list of typed content blocks; a response with a
/// list of typed output items.
pub fn check_shape(upstream: Dialect, body: &Value) -> Result<(), String> {
    let ok = match upstream {
        Dialect::OpenAi => body["choices"]
            .as_array()
            .is_some_and(|cs| !cs.is_empty() && cs.iter().all(|c| c["message"].is_object())),
        Dialect::Anthropic => {
            body["type"] == "message"
                && body["content"]
                    .as_array()
                    .is_some_and(|bs| bs.iter().all(|b| b["type"].is_string()))
        }
        Dialect::Responses => {
            body["object"] == "response"
                && body["output"]
                    .as_array()
                    .is_some_and(|os| os.iter().all(|o| o["type"].is_string()))
        }
        Dialect::Embeddings => body["data"].is_array(),
        Dialect::Gemini => match body["candidates"].as_array() {
            Some(cs) => !cs.is_empty() && cs.iter().all(Value::is_object),
            None => body.pointer("/promptFeedback/blockReason").is_some(),
        },
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the provider's answer is not a {} response",
            match upstream {
                Dialect::OpenAi => "chat completion",
                Dialect::Anthropic => "Messages API",
                Dialect::Responses => "Responses API",
                Dialect::Gemini => "generateContent",
                Dialect::Embeddings => "embeddings list",
            }
        ))
    }
}

/// A `data:` URL's media type, its data, and whether the data is base64.
pub(crate) fn data_url(url: &str) -> Option<(&str, &str, bool)> {
    let (meta, data) = url.strip_prefix("data:")?.split_once(',')?;
    let media = meta.strip_suffix(";base64");
    Some((media.unwrap_or(meta), data, media.is_some()))
}

/// Text of a content value that is a string or an array of text parts (either dialect).
pub(crate) fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_of_the_wrong_shape_are_refused_not_translated_into_nothing() {
        for bad in [
            json!({"choices": [{"message": 7}]}),
            json!({"choices": []}),
            json!({}),
            json!([1]),
        ] {
            assert!(check_shape(Dialect::OpenAi, &bad).is_err(), "{bad}");
        }
        for bad in [
            json!({"type": "message", "content": "nope"}),
            json!({"type": "error"}),
            json!({"type": "message", "content": [{"text": "x"}]}),
        ] {
            assert!(check_shape(Dialect::Anthropic, &bad).is_err(), "{bad}");
        }
        assert!(check_shape(
            Dialect::OpenAi,
            &json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": null}}]})
        )
        .is_ok());
        assert!(check_shape(
            Dialect::Anthropic,
            &json!({"type": "message", "content": []})
        )
        .is_ok());
    }
}
