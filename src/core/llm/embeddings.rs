//! Embeddings (`POST /v1/embeddings`, OpenAI's format): the request checked, sent as is to
//! OpenAI-style targets (OpenAI, Azure deployments, compatible servers) or as Gemini's
//! `batchEmbedContents`, and Gemini's answer written in OpenAI's shape (base64 when asked: the
//! little-endian `f32`s, as OpenAI encodes them, which the `openai` SDKs ask for by default).

use super::request::ClientRequest;
use super::Usage;
use crate::core::error::ApiError;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn bad(m: String) -> ApiError {
    ApiError::bad_request(m)
}

/// The request's texts, one per input (`None`: token ids, which only OpenAI-style targets read).
fn texts(req: &ClientRequest) -> Option<Vec<&str>> {
    match &req.body["input"] {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(items) => items.iter().map(Value::as_str).collect(),
        _ => None,
    }
}

/// A Gemini `batchEmbedContents` body for `model`.
pub fn to_gemini(req: &ClientRequest, model: &str) -> Result<Value, ApiError> {
    let texts = texts(req).ok_or_else(|| {
        bad("token ids as `input` need an OpenAI-style target; send text to Gemini".into())
    })?;
    let name = format!("models/{}", model.trim_start_matches("models/"));
    let dims = req.body.get("dimensions").and_then(Value::as_u64);
    let requests: Vec<Value> = texts
        .iter()
        .map(|t| {
            let mut r = json!({"model": name, "content": {"parts": [{"text": t}]}});
            if let Some(d) = dims {
                r["outputDimensionality"] = json!(d);
            }
            r
        })
        .collect();
    Ok(json!({"requests": requests}))
}

/// What a request is charged when the target reports no count: about four bytes a token.
pub fn estimated_usage(req: &ClientRequest) -> Usage {
    let bytes: usize = texts(req).map_or(0, |ts| ts.iter().map(|t| t.len()).sum());
    Usage {
        input_tokens: (bytes as u64).div_ceil(4).max(1),
        output_tokens: 0,
        ..Default::default()
    }
}

fn encoded(req: &ClientRequest, values: &[f64]) -> Value {
    if req.body.get("encoding_format").and_then(Value::as_str) != Some("base64") {
        return json!(values);
    }
    let bytes: Vec<u8> = values
        .iter()
        .flat_map(|v| (*v as f32).to_le_bytes())
        .collect();
    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The OpenAI list of vectors.
fn list(req: &ClientRequest, model: &str, vectors: &[Vec<f64>], usage: Usage) -> Value {
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": encoded(req, v)}))
        .collect();
    json!({"object": "list", "data": data, "model": model,
        "usage": {"prompt_tokens": usage.input_tokens, "total_tokens": usage.input_tokens}})
}

/// Gemini's answer in OpenAI's shape; its usage is estimated (Gemini reports none).
pub fn from_gemini(req: &ClientRequest, body: &Value, model: &str) -> (Value, Usage) {
    let vectors: Vec<Vec<f64>> = body["embeddings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_f64)
                .collect()
        })
        .collect();
    let usage = estimated_usage(req);
    (list(req, model, &vectors, usage), usage)
}

/// The `mock` provider's vectors: unit length, made from a digest of each text, so the same
/// text always gets the same vector.
pub fn mock(req: &ClientRequest, model: &str) -> Value {
    let dims = req.body.get("dimensions").and_then(Value::as_u64);
    let dims = dims.unwrap_or(16).min(3072) as usize;
    let texts = texts(req).unwrap_or_default();
    let vectors: Vec<Vec<f64>> = texts
        .iter()
        .map(|t| {
            let mut v = Vec::with_capacity(dims);
            let mut block = 0u32;
            while v.len() < dims {
                let d = Sha256::new()
                    .chain_update(block.to_le_bytes())
                    .chain_update(t.as_bytes())
                    .finalize();
                v.extend(d.iter().map(|b| f64::from(*b) / 255.0 - 0.5));
                block += 1;
            }
            v.truncate(dims);
            let norm = v
                .iter()
                .map(|x| x * x)
                .sum::<f64>()
                .sqrt()
                .max(f64::EPSILON);
            v.iter().map(|x| x / norm).collect()
        })
        .collect();
    list(req, model, &vectors, estimated_usage(req))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::llm::convert::{client_response, upstream_body};
    use crate::core::llm::request::parse;
    use crate::core::llm::request::MAX_INPUTS;
    use crate::core::llm::Dialect;

    fn req(v: Value) -> ClientRequest {
        parse(Dialect::Embeddings, v.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn requests_are_checked_and_sized_by_their_input_only() {
        let r = req(json!({"model": "e", "input": ["a", "bb"], "dimensions": 8}));
        assert!(!r.stream);
        assert_eq!(r.output_cap, 0, "an embedding produces no output tokens");
        assert_eq!(r.estimated_tokens, r.estimated_usage().input_tokens);
        let msg = |v: Value| {
            parse(Dialect::Embeddings, v.to_string().as_bytes())
                .unwrap_err()
                .message
        };
        assert_eq!(msg(json!({"model": "e"})), "`input` is required");
        assert!(msg(json!({"model": "e", "input": []})).contains("non-empty"));
        assert!(msg(json!({"model": "e", "input": ["a", ""]})).contains("`input[1]`"));
        assert!(msg(json!({"model": "e", "input": ["a", 5]})).contains("`input[1]`"));
        assert!(
            msg(json!({"model": "e", "input": "a", "encoding_format": "hex"}))
                .contains("encoding_format")
        );
        assert!(msg(json!({"model": "e", "input": "a", "dimensions": 0})).contains("dimensions"));
        assert!(msg(json!({"model": "e", "input": "a", "stream": true})).contains("not streamed"));
        let many: Vec<&str> = vec!["x"; MAX_INPUTS + 1];
        assert!(msg(json!({"model": "e", "input": many})).contains("at most"));
        // Token ids, one list or several.
        assert!(parse(Dialect::Embeddings, br#"{"model":"e","input":[1,2,3]}"#).is_ok());
        assert!(parse(Dialect::Embeddings, br#"{"model":"e","input":[[1,2],[3]]}"#).is_ok());
    }

    #[test]
    fn to_gemini_and_back_in_openai_shape_float_and_base64() {
        let r = req(
            json!({"model": "e", "input": ["hello", "world"], "dimensions": 3, "encoding_format": "base64"}),
        );
        let g = upstream_body(&r, Dialect::Gemini, "text-embedding-004", false).unwrap();
        assert_eq!(
            g["requests"][1],
            json!({"model": "models/text-embedding-004", "content": {"parts": [{"text": "world"}]}, "outputDimensionality": 3})
        );
        let answer =
            json!({"embeddings": [{"values": [0.5, -0.25, 1.0]}, {"values": [0.0, 0.125, -1.0]}]});
        let (c, usage) = client_response(&r, Dialect::Gemini, &answer, 1).unwrap();
        let c = c.unwrap();
        assert_eq!(c["object"], "list");
        assert_eq!(c["data"][1]["index"], 1);
        let b = base64::engine::general_purpose::STANDARD
            .decode(c["data"][0]["embedding"].as_str().unwrap())
            .unwrap();
        let floats: Vec<f32> = b
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(floats, [0.5, -0.25, 1.0]);
        assert_eq!(usage.input_tokens, 3, "estimated: ten bytes");
        assert_eq!(c["usage"]["prompt_tokens"], 3);
        let f = req(json!({"model": "e", "input": "hello"}));
        let (c, _) = client_response(&f, Dialect::Gemini, &answer, 1).unwrap();
        assert_eq!(c.unwrap()["data"][0]["embedding"], json!([0.5, -0.25, 1.0]));
        // Token ids cannot go to Gemini; Anthropic has no embeddings.
        let tokens = req(json!({"model": "e", "input": [1, 2]}));
        assert!(upstream_body(&tokens, Dialect::Gemini, "m", false).is_err());
        assert!(upstream_body(&f, Dialect::Anthropic, "m", false)
            .unwrap_err()
            .message
            .contains("embeddings"));
        // OpenAI-style targets get the request as sent, and their answer passes through.
        let sent = upstream_body(&r, Dialect::Embeddings, "text-embedding-3-small", false).unwrap();
        assert_eq!(sent["model"], "text-embedding-3-small");
        assert_eq!(sent["encoding_format"], "base64");
        let own = json!({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": "AAAA"}], "usage": {"prompt_tokens": 2, "total_tokens": 2}});
        let (c, u) = client_response(&r, Dialect::Embeddings, &own, 1).unwrap();
        assert!(c.is_none());
        assert_eq!(u.input_tokens, 2);
        assert!(client_response(&r, Dialect::Embeddings, &json!({"data": [1]}), 1).is_err());
        assert!(client_response(&r, Dialect::Gemini, &json!({"embeddings": "x"}), 1).is_err());
    }

    #[test]
    fn mock_vectors_are_unit_length_and_repeatable() {
        let r = req(json!({"model": "e", "input": ["a", "b", "a"], "dimensions": 40}));
        let m = mock(&r, "mock-embed");
        let v = |i: usize| -> Vec<f64> {
            m["data"][i]["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        };
        assert_eq!(v(0).len(), 40);
        assert_eq!(v(0), v(2));
        assert_ne!(v(0), v(1));
        let norm: f64 = v(1).iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-9);
    }
}
