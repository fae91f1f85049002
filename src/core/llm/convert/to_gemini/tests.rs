use super::*;
use crate::core::llm::convert::{client_response, upstream_body};
use crate::core::llm::request::parse;
use crate::core::llm::Dialect;

fn req(d: Dialect, body: Value) -> ClientRequest {
    parse(d, body.to_string().as_bytes()).unwrap()
}

#[test]
fn a_chat_conversation_becomes_contents() {
    let r = req(
        Dialect::OpenAi,
        json!({"model": "g", "max_tokens": 200, "temperature": 0.3, "stop": "END",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://x.example/a.webp?s=1"}}]},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 4}"},
            {"role": "tool", "tool_call_id": "call_2", "content": "noon"},
            {"role": "user", "content": "And tomorrow?"}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "additionalProperties": false}}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}},
        "reasoning_effort": "low"}),
    );
    let g = upstream_body(&r, Dialect::Gemini, "gemini-2.5-flash", false).unwrap();
    assert_eq!(
        g["systemInstruction"],
        json!({"parts": [{"text": "Be brief."}]})
    );
    assert_eq!(
        g["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Look"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                {"fileData": {"mimeType": "image/webp", "fileUri": "https://x.example/a.webp?s=1"}}]},
            {"role": "model", "parts": [{"text": "Checking."},
                {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
                {"functionCall": {"name": "get_time", "args": {}}}]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp": 4}}},
                {"functionResponse": {"name": "get_time", "response": {"content": "noon"}}},
                {"text": "And tomorrow?"}]}
        ])
    );
    let c = &g["generationConfig"];
    assert_eq!(c["maxOutputTokens"], 200);
    assert_eq!(c["temperature"], 0.3);
    assert_eq!(c["stopSequences"], json!(["END"]));
    assert_eq!(c["responseMimeType"], "application/json");
    assert_eq!(c["responseJsonSchema"], json!({"type": "object"}));
    assert_eq!(c["thinkingConfig"]["thinkingBudget"], 1024);
    assert_eq!(
        g["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"]["additionalProperties"],
        false
    );
    assert_eq!(
        g["toolConfig"]["functionCallingConfig"],
        json!({"mode": "ANY", "allowedFunctionNames": ["get_weather"]})
    );
    assert!(g.get("model").is_none(), "the model is in the URL");
}

#[test]
fn anthropic_and_responses_clients_reach_gemini_through_chat() {
    let a = req(
        Dialect::Anthropic,
        json!({"model": "g", "max_tokens": 99, "system": "Be brief.",
        "messages": [{"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"x": 1}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]}]}),
    );
    let g = upstream_body(&a, Dialect::Gemini, "gemini-2.5-pro", false).unwrap();
    assert_eq!(g["systemInstruction"]["parts"][0]["text"], "Be brief.");
    assert_eq!(g["generationConfig"]["maxOutputTokens"], 99);
    assert_eq!(
        g["contents"][1]["parts"][0]["functionCall"],
        json!({"name": "f", "args": {"x": 1}})
    );
    assert_eq!(
        g["contents"][2]["parts"][0]["functionResponse"]["name"],
        "f"
    );
    let r = req(
        Dialect::Responses,
        json!({"model": "g", "input": "hi", "instructions": "Hi."}),
    );
    let g = upstream_body(&r, Dialect::Gemini, "gemini-2.5-pro", false).unwrap();
    assert_eq!(
        g["contents"],
        json!([{"role": "user", "parts": [{"text": "hi"}]}])
    );
}

#[test]
fn a_tool_result_for_no_call_or_arguments_that_are_not_json_are_refused() {
    let orphan = req(
        Dialect::OpenAi,
        json!({"model": "g", "messages": [{"role": "tool", "tool_call_id": "call_9", "content": "x"}]}),
    );
    let e = upstream_body(&orphan, Dialect::Gemini, "m", false).unwrap_err();
    assert!(e.message.contains("call_9"), "{}", e.message);
    let broken = req(
        Dialect::OpenAi,
        json!({"model": "g", "messages": [{"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{nope"}}]}]}),
    );
    let e = upstream_body(&broken, Dialect::Gemini, "m", false).unwrap_err();
    assert!(e.message.contains("arguments"), "{}", e.message);
}

/// Gemini's answer (its recorded shape) to each client dialect.
#[test]
fn an_answer_with_calls_thoughts_and_usage_to_every_dialect() {
    let answer = json!({"candidates": [{"content": {"parts": [
            {"text": "Pondering.", "thought": true},
            {"text": "Checking both."},
            {"functionCall": {"name": "get_weather", "args": {"location": "SF"}}, "thoughtSignature": "Cik="},
            {"functionCall": {"name": "get_time", "args": {}}}], "role": "model"},
        "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 25, "candidatesTokenCount": 12, "thoughtsTokenCount": 3, "totalTokenCount": 40},
        "modelVersion": "gemini-2.5-flash", "responseId": "r1"});
    let o = req(
        Dialect::OpenAi,
        json!({"model": "g", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "low"}),
    );
    let (c, u) = client_response(&o, Dialect::Gemini, &answer, 7).unwrap();
    let c = c.unwrap();
    assert_eq!((u.input_tokens, u.output_tokens), (25, 15));
    let m = &c["choices"][0]["message"];
    assert_eq!(m["content"], "Checking both.");
    assert_eq!(m["reasoning_content"], "Pondering.");
    assert_eq!(m["tool_calls"][1]["id"], "call_r1_1");
    assert_eq!(
        m["tool_calls"][0]["function"]["arguments"],
        "{\"location\":\"SF\"}"
    );
    assert_eq!(c["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(c["model"], "gemini-2.5-flash");

    let a = req(
        Dialect::Anthropic,
        json!({"model": "g", "max_tokens": 9, "messages": [{"role": "user", "content": "x"}]}),
    );
    let c = client_response(&a, Dialect::Gemini, &answer, 7)
        .unwrap()
        .0
        .unwrap();
    assert_eq!(c["stop_reason"], "tool_use");
    assert_eq!(
        c["content"][1],
        json!({"type": "tool_use", "id": "call_r1_0", "name": "get_weather", "input": {"location": "SF"}})
    );
    let r = req(Dialect::Responses, json!({"model": "g", "input": "x"}));
    let c = client_response(&r, Dialect::Gemini, &answer, 7)
        .unwrap()
        .0
        .unwrap();
    assert_eq!(c["output"][1]["call_id"], "call_r1_0");
    assert_eq!(c["usage"]["output_tokens"], 15);
}

#[test]
fn safety_blocks_and_length_say_so_in_each_dialect() {
    let blocked = json!({"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []},
        "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8}, "modelVersion": "m", "responseId": "b"});
    let o = req(
        Dialect::OpenAi,
        json!({"model": "g", "messages": [{"role": "user", "content": "x"}]}),
    );
    let c = client_response(&o, Dialect::Gemini, &blocked, 1)
        .unwrap()
        .0
        .unwrap();
    assert_eq!(c["choices"][0]["finish_reason"], "content_filter");
    assert!(c["choices"][0]["message"]["content"].is_null());
    let a = req(
        Dialect::Anthropic,
        json!({"model": "g", "max_tokens": 9, "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(
        client_response(&a, Dialect::Gemini, &blocked, 1)
            .unwrap()
            .0
            .unwrap()["stop_reason"],
        "refusal"
    );
    let r = req(Dialect::Responses, json!({"model": "g", "input": "x"}));
    let c = client_response(&r, Dialect::Gemini, &blocked, 1)
        .unwrap()
        .0
        .unwrap();
    assert_eq!(c["incomplete_details"]["reason"], "content_filter");
    let cut = json!({"candidates": [{"content": {"parts": [{"text": "Hel"}], "role": "model"}, "finishReason": "MAX_TOKENS"}], "responseId": "c"});
    let c = client_response(&o, Dialect::Gemini, &cut, 1)
        .unwrap()
        .0
        .unwrap();
    assert_eq!(c["choices"][0]["finish_reason"], "length");
    for bad in [
        json!({}),
        json!({"candidates": []}),
        json!({"candidates": [1]}),
    ] {
        assert!(
            client_response(&o, Dialect::Gemini, &bad, 1).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn an_image_is_inline_bytes_or_a_web_address_never_a_cloud_storage_uri() {
    let with = |client: Dialect, url: &str| {
        let body = match client {
            Dialect::Anthropic => {
                json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "url", "url": url}}]}]})
            }
            Dialect::Responses => json!({"model": "m", "input": [{"role": "user", "content": [
                {"type": "input_image", "image_url": url}]}]}),
            _ => json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": url}}]}]}),
        };
        // Refused where the request is read, or where it is translated: a 400 either way.
        parse(client, body.to_string().as_bytes())
            .and_then(|r| upstream_body(&r, Dialect::Gemini, "m", false))
    };
    for client in [Dialect::OpenAi, Dialect::Anthropic, Dialect::Responses] {
        // On Vertex, Google reads a gs:// URI with the tenant's service account.
        for url in [
            "gs://acme-uploads/kyc/0001.jpg",
            "GS://acme/x.png",
            "s3://b/k.png",
            "file:///etc/passwd",
        ] {
            let e = with(client, url).unwrap_err();
            assert_eq!(e.status(), 400, "{client:?} {url}");
        }
        let ok = with(client, "https://cdn.example/cat.png").unwrap();
        assert_eq!(
            ok["contents"][0]["parts"][0]["fileData"]["fileUri"], "https://cdn.example/cat.png",
            "{client:?}"
        );
    }
}
