//! A provider's whole answer in the client's own dialect goes to the client as the bytes it
//! came in. The gateway reads it only for what it needs (that it is an answer the client can
//! read, `check_shape`'s rule, and its usage), without building the document: the answer's
//! fields are skipped as they are read, and only the small `usage` object is kept.

use super::super::{Dialect, Usage};
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::fmt;

/// Any JSON object, its fields skipped.
struct AnObject;

impl<'de> Deserialize<'de> for AnObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Skip;
        impl<'de> Visitor<'de> for Skip {
            type Value = AnObject;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<AnObject, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(AnObject)
            }
        }
        d.deserialize_map(Skip)
    }
}

/// An object with a string `type`.
#[derive(Deserialize)]
struct Typed {
    #[serde(rename = "type")]
    _kind: String,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(rename = "message")]
    _message: AnObject,
}

#[derive(Deserialize)]
struct Chat {
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Value,
}

#[derive(Deserialize)]
struct Message {
    #[serde(rename = "type")]
    kind: String,
    #[serde(rename = "content")]
    _content: Vec<Typed>,
    #[serde(default)]
    usage: Value,
}

#[derive(Deserialize)]
struct Response {
    object: String,
    #[serde(rename = "output")]
    _output: Vec<Typed>,
    #[serde(default)]
    usage: Value,
}

/// The usage of a whole answer in `dialect`, if it is one a client of that dialect can read
/// (`Err`: it is not); `None` for a dialect read whole (`convert::client_response`).
pub fn usage(dialect: Dialect, bytes: &[u8]) -> Option<Result<Usage, String>> {
    let not = |what: &str| Err(format!("the provider's answer is not a {what} response"));
    // A struct would also be read from an array, which no provider answers with.
    let object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    Some(match dialect {
        Dialect::OpenAi => match serde_json::from_slice::<Chat>(bytes) {
            Ok(a) if object && !a.choices.is_empty() => {
                Ok(Usage::from_openai(&a.usage).unwrap_or_default())
            }
            _ => not("chat completion"),
        },
        Dialect::Anthropic => match serde_json::from_slice::<Message>(bytes) {
            Ok(a) if object && a.kind == "message" => {
                Ok(Usage::from_anthropic(&a.usage).unwrap_or_default())
            }
            _ => not("Messages API"),
        },
        Dialect::Responses => match serde_json::from_slice::<Response>(bytes) {
            Ok(a) if object && a.object == "response" => {
                Ok(Usage::from_responses(&a.usage).unwrap_or_default())
            }
            _ => not("Responses API"),
        },
        Dialect::Gemini | Dialect::Embeddings => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::llm::convert::check_shape;
    use serde_json::json;

    /// What the whole-document path says of `answer`: its shape's verdict and its usage.
    fn whole(dialect: Dialect, answer: &Value) -> Result<Usage, ()> {
        check_shape(dialect, answer).map_err(drop)?;
        Ok(match dialect {
            Dialect::Anthropic => Usage::from_anthropic(&answer["usage"]).unwrap_or_default(),
            Dialect::Responses => Usage::from_responses(&answer["usage"]).unwrap_or_default(),
            _ => Usage::from_openai(&answer["usage"]).unwrap_or_default(),
        })
    }

    #[test]
    fn an_answer_read_in_passing_says_what_the_whole_document_says() {
        let answers = [
            (
                Dialect::OpenAi,
                json!({"id": "c", "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi", "tool_calls": [{"id": "t", "function": {"name": "f", "arguments": "{\"a\":[1,{}]}"}}]}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15, "prompt_tokens_details": {"cached_tokens": 0}}}),
            ),
            (
                Dialect::OpenAi,
                json!({"choices": [{"message": {"content": null}}], "usage": null}),
            ),
            (Dialect::OpenAi, json!({"choices": [{"message": {}}]})),
            (
                Dialect::OpenAi,
                json!({"choices": [{"message": {}}], "usage": {"prompt_tokens": "many"}}),
            ),
            (Dialect::OpenAi, json!({"choices": []})),
            (Dialect::OpenAi, json!({"choices": [{"message": "text"}]})),
            (Dialect::OpenAi, json!({"error": {"message": "nope"}})),
            (
                Dialect::Anthropic,
                json!({"id": "m", "type": "message", "role": "assistant", "content": [{"type": "text", "text": "hi"}, {"type": "tool_use", "id": "t", "name": "f", "input": {"q": [1, 2]}}], "usage": {"input_tokens": 10, "cache_read_input_tokens": 5, "output_tokens": 4}}),
            ),
            (
                Dialect::Anthropic,
                json!({"type": "message", "content": [], "usage": {"input_tokens": 50, "cache_creation_input_tokens": 3000, "cache_read_input_tokens": 10000, "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000}, "output_tokens": 400, "server_tool_use": {"web_search_requests": 1}}}),
            ),
            (
                Dialect::OpenAi,
                json!({"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": 2006, "completion_tokens": 300, "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 64, "audio_tokens": 0}}}),
            ),
            (
                Dialect::Responses,
                json!({"object": "response", "output": [], "usage": {"input_tokens": 5000, "input_tokens_details": {"cached_tokens": 4096}, "output_tokens": 800, "output_tokens_details": {"reasoning_tokens": 640}}}),
            ),
            (
                Dialect::Anthropic,
                json!({"type": "message", "content": []}),
            ),
            (Dialect::Anthropic, json!({"type": "error", "content": []})),
            (
                Dialect::Anthropic,
                json!({"type": "message", "content": [{"text": "untyped"}]}),
            ),
            (
                Dialect::Responses,
                json!({"id": "r", "object": "response", "output": [{"type": "message", "content": [{"type": "output_text", "text": "hi"}]}], "usage": {"input_tokens": 7, "output_tokens": 2}}),
            ),
            (
                Dialect::Responses,
                json!({"object": "response", "output": [{"id": "untyped"}]}),
            ),
            (Dialect::Responses, json!({"object": "list", "output": []})),
        ];
        for (dialect, answer) in answers {
            let bytes = serde_json::to_vec(&answer).unwrap();
            let passing = usage(dialect, &bytes).unwrap().map_err(drop);
            assert_eq!(passing, whole(dialect, &answer), "{dialect:?} {answer}");
        }
    }

    #[test]
    fn an_answer_that_is_not_an_object_is_refused() {
        assert!(usage(Dialect::OpenAi, br#"[[{"message": {}}]]"#)
            .unwrap()
            .is_err());
        assert!(usage(Dialect::OpenAi, b"not json").unwrap().is_err());
        assert!(usage(Dialect::Gemini, b"{}").is_none());
    }
}
