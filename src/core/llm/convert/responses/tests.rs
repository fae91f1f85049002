use super::*;
use crate::core::llm::convert::{client_response, upstream_body};
use crate::core::llm::request::parse;
use serde_json::json;

fn req(body: Value) -> ClientRequest {
    parse(Dialect::Responses, body.to_string().as_bytes()).unwrap()
}

/// A conversation as the SDKs send it back after a tool call: history, the model's call, the
/// tool's output, an image.
fn conversation() -> Value {
    json!({
        "model": "claude",
        "instructions": "Be brief.",
        "input": [
            {"role": "user", "content": [
                {"type": "input_text", "text": "Weather here?"},
                {"type": "input_image", "image_url": "https://x.example/sky.png", "detail": "low"}
            ]},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"SF\"}"},
            {"type": "function_call", "call_id": "call_2", "name": "get_time", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
            {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "noon"}]}
        ],
        "tools": [{"type": "function", "name": "get_weather", "description": "Weather", "parameters": {"type": "object"}, "strict": true}],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "max_output_tokens": 300,
        "temperature": 0.2,
        "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": true}},
        "reasoning": {"effort": "high"},
        "stream": true
    })
}

#[test]
fn a_conversation_becomes_chat_messages() {
    let r = req(conversation());
    assert!(r.stream && r.thinking && r.include_usage);
    assert_eq!(r.client_max_output, Some(300));
    let chat = to_chat(&r).unwrap();
    let b = Value::Object(chat.body.clone());
    assert_eq!(chat.dialect, Dialect::OpenAi);
    assert_eq!(
        b["messages"],
        json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "Weather here?"},
                {"type": "image_url", "image_url": {"url": "https://x.example/sky.png", "detail": "low"}}
            ]},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"SF\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_2", "content": "noon"}
        ])
    );
    assert_eq!(
        b["tools"],
        json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object"}, "strict": true}}])
    );
    assert_eq!(
        b["tool_choice"],
        json!({"type": "function", "function": {"name": "get_weather"}})
    );
    assert_eq!(b["max_tokens"], 300);
    assert_eq!(b["reasoning_effort"], "high");
    assert_eq!(b["response_format"]["json_schema"]["name"], "w");
    assert_eq!(b["response_format"]["json_schema"]["strict"], true);
}

#[test]
fn through_chat_to_anthropic_and_back() {
    let r = req(conversation());
    let sent = upstream_body(&r, Dialect::Anthropic, "claude-x", false).unwrap();
    assert_eq!(sent["model"], "claude-x");
    assert_eq!(sent["system"], "Be brief.");
    assert_eq!(sent["max_tokens"], 300);
    let roles: Vec<&str> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user"]);
    let uses = &sent["messages"][1]["content"];
    assert_eq!(uses[1]["type"], "tool_use");
    assert_eq!(uses[1]["input"], json!({"city": "SF"}));
    // Chat-only upstreams: usage always asked for on a stream.
    let sent = upstream_body(&r, Dialect::OpenAi, "llama", false).unwrap();
    assert_eq!(sent["stream_options"]["include_usage"], true);
    // OpenAI itself gets the request as sent, with the ceiling it was charged for.
    let plain = req(json!({"model": "m", "input": "hi"}));
    let sent = upstream_body(&plain, Dialect::Responses, "gpt-4.1", false).unwrap();
    assert_eq!(
        sent,
        json!({"model": "gpt-4.1", "input": "hi", "max_output_tokens": 4096})
    );

    let answer = json!({"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "text", "text": "Sunny."},
                    {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "SF"}}],
        "stop_reason": "tool_use", "usage": {"input_tokens": 30, "output_tokens": 9}});
    let (client, usage) = client_response(&r, Dialect::Anthropic, &answer, 5).unwrap();
    let c = client.unwrap();
    assert_eq!((usage.input_tokens, usage.output_tokens), (30, 9));
    assert_eq!(c["object"], "response");
    assert_eq!(c["status"], "completed");
    assert_eq!(c["output"][0]["type"], "message");
    assert_eq!(c["output"][0]["content"][0]["text"], "Sunny.");
    assert_eq!(c["output"][1]["type"], "function_call");
    assert_eq!(c["output"][1]["call_id"], "toolu_9");
    assert_eq!(
        serde_json::from_str::<Value>(c["output"][1]["arguments"].as_str().unwrap()).unwrap(),
        json!({"city": "SF"})
    );
    assert_eq!(c["output_text"], "Sunny.");
    assert_eq!(c["usage"]["total_tokens"], 39);
    assert_eq!(c["instructions"], "Be brief.");
    assert_eq!(c["store"], false);
}

#[test]
fn a_cut_answer_is_incomplete() {
    let r = req(json!({"model": "m", "input": "hi"}));
    let chat = json!({"id": "chatcmpl-7", "object": "chat.completion", "created": 9, "model": "llama",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hel"}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}});
    let (c, _) = client_response(&r, Dialect::OpenAi, &chat, 5).unwrap();
    let c = c.unwrap();
    assert_eq!(c["id"], "resp_7");
    assert_eq!(c["status"], "incomplete");
    assert_eq!(c["incomplete_details"]["reason"], "max_output_tokens");
    // OpenAI's own answer passes unchanged; its usage is read.
    let own = json!({"id": "resp_1", "object": "response", "status": "completed",
        "output": [{"type": "message", "content": []}], "usage": {"input_tokens": 4, "output_tokens": 2}});
    let (c, u) = client_response(&r, Dialect::Responses, &own, 5).unwrap();
    assert!(c.is_none());
    assert_eq!((u.input_tokens, u.output_tokens), (4, 2));
    assert!(client_response(&r, Dialect::Responses, &json!({"object": "response"}), 5).is_err());
}

#[test]
fn what_only_openai_keeps_or_runs_is_refused_by_name() {
    let cases = [
        (
            json!({"previous_response_id": "resp_1"}),
            "`previous_response_id`",
        ),
        (json!({"store": true}), "`store: true`"),
        (json!({"background": true}), "`background: true`"),
        (json!({"tools": [{"type": "web_search"}]}), "`web_search`"),
        (
            json!({"input": [{"type": "item_reference", "id": "msg_1"}]}),
            "`input[0]`",
        ),
        (
            json!({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}),
            "`input_file`",
        ),
        (
            json!({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]}),
            "`file_id`",
        ),
    ];
    for (extra, needle) in cases {
        let mut body = json!({"model": "m", "input": "hi"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let e = to_chat(&req(body.clone())).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.message.contains(needle), "{body}: {}", e.message);
        // OpenAI itself takes them.
        assert!(upstream_body(&req(body), Dialect::Responses, "gpt", false).is_ok());
    }
}

#[test]
fn bad_requests_say_what_and_where() {
    let msg = |v: Value| {
        parse(Dialect::Responses, v.to_string().as_bytes())
            .unwrap_err()
            .message
    };
    assert_eq!(msg(json!({"model": "m"})), "`input` is required");
    assert_eq!(
        msg(json!({"model": "m", "input": ""})),
        "`input` must not be empty"
    );
    assert!(msg(json!({"model": "m", "input": 5})).contains("string or an array"));
    assert!(msg(json!({"model": "m", "input": [7]})).contains("`input[0]` must be an object"));
    assert!(
        msg(json!({"model": "m", "input": [{"role": "robot", "content": "x"}]}))
            .contains("`input[0].role`")
    );
    assert!(
        msg(json!({"model": "m", "input": "x", "max_output_tokens": 0}))
            .contains("max_output_tokens")
    );
    assert!(
        msg(json!({"model": "m", "input": "x", "tools": [{"type": "function"}]}))
            .contains("`tools[0].name`")
    );
    let bad_image = json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "file:///etc/passwd"}]}]});
    assert!(msg(bad_image).contains("image URL"));
}
