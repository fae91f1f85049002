//! How much input a request may cost before the provider says: its JSON at about four bytes a
//! token, except what the bytes do not measure. An image costs what its provider's image rules
//! allow at most, whatever its URL or encoding; input passed by reference (a stored response or
//! conversation, a stored prompt, a file by id or URL) cannot be sized, so it may fill the
//! model's context window. Budgets and token limits reserve this bound, so that concurrent
//! requests cannot overshoot them by more than one request's bound.

use super::catalog::ModelEntry;
use crate::core::llm::config::ProviderKind;
use serde_json::{Map, Value};

/// How long a request asks its provider to keep what it writes to the prompt cache (Anthropic's
/// `cache_control`), which sets the rate the written input is billed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CacheWrite {
    FiveMinutes,
    OneHour,
}

/// The longest cache write `body` asks for anywhere (a `cache_control` on the request, a system
/// block, a tool or a content part); `None`: it writes nothing to a prompt cache.
pub fn cache_write(body: &Map<String, Value>) -> Option<CacheWrite> {
    fn object(o: &Map<String, Value>, longest: &mut Option<CacheWrite>) {
        // Anthropic's one kind of cache control; a schema's property of that name is not one.
        if let Some(c) = o.get("cache_control").filter(|c| c["type"] == "ephemeral") {
            let ttl = match c.get("ttl").and_then(Value::as_str) {
                Some("1h") => CacheWrite::OneHour,
                _ => CacheWrite::FiveMinutes,
            };
            *longest = (*longest).max(Some(ttl));
        }
        o.values().for_each(|v| value(v, longest));
    }
    fn value(v: &Value, longest: &mut Option<CacheWrite>) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| value(i, longest)),
            Value::Object(o) => object(o, longest),
            _ => {}
        }
    }
    let mut longest = None;
    object(body, &mut longest);
    longest
}

/// What a request's body holds that its bytes do not measure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sizing {
    /// Image parts, each charged by its provider's rules rather than its bytes.
    pub images: u64,
    /// The bytes of images sent inline (base64), which the image rules replace.
    pub inline_image_bytes: u64,
    /// The first part the bytes cannot size: input by reference (`previous_response_id`, a file
    /// id...), a file or a document other than text, media other than an image in an image's
    /// place.
    pub unmeasured: Option<&'static str>,
}

/// The most input tokens one image costs on a provider of `kind`, from each provider's published
/// image rules: OpenAI's patch models cap an image at 1,536 patches times a model multiplier of at
/// most 2.46 (its tile models stay under 1,445); Anthropic resizes to about 1.15 megapixels,
/// about 1,600 tokens; Gemini counts 258 per 768-pixel tile, 16 tiles for a 3,072-pixel image.
pub fn image_tokens(kind: ProviderKind) -> u64 {
    match kind {
        ProviderKind::Anthropic => 1_600,
        ProviderKind::Gemini => 16 * 258,
        // OpenAI's rule, the dearest, bounds every model of another family (`providers::family`).
        ProviderKind::Openai
        | ProviderKind::OpenaiCompatible
        | ProviderKind::AzureOpenai
        | ProviderKind::Mock
        | ProviderKind::Bedrock
        | ProviderKind::Vertex
        | ProviderKind::Mistral
        | ProviderKind::Groq
        | ProviderKind::Deepseek
        | ProviderKind::Xai
        | ProviderKind::Together
        | ProviderKind::Fireworks
        | ProviderKind::Openrouter
        | ProviderKind::Perplexity
        | ProviderKind::Ollama
        | ProviderKind::Vllm => 3_800,
    }
}

/// The largest of the providers' `image_tokens`: the bound before a target is known (a model's
/// own, from its pricing record, may be larger and applies once the target is).
pub const MAX_IMAGE_TOKENS: u64 = 16 * 258;

/// The context window assumed for a model whose pricing record names none: the largest of the
/// common models' (1 Mi tokens). A model's own `context_window` in its pricing record reserves
/// less.
pub const DEFAULT_CONTEXT_WINDOW: u64 = 1_048_576;

/// What `body` holds that its bytes do not measure.
pub fn sizing(body: &Map<String, Value>) -> Sizing {
    let mut s = Sizing::default();
    for field in ["previous_response_id", "conversation", "prompt"] {
        if body.get(field).is_some_and(|v| !v.is_null()) {
            s.unmeasured.get_or_insert(field);
        }
    }
    for v in body.values() {
        walk(v, &mut s);
    }
    s
}

fn walk(v: &Value, s: &mut Sizing) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| walk(i, s)),
        Value::Object(o) => {
            part(o, s);
            o.values().for_each(|i| walk(i, s));
        }
        _ => {}
    }
}

/// The string at `path` (`a/b`) in `o`.
fn str_at<'a>(o: &'a Map<String, Value>, path: &str) -> Option<&'a str> {
    let mut keys = path.split('/');
    let first = o.get(keys.next()?)?;
    keys.try_fold(first, |v, k| v.get(k))?.as_str()
}

/// One content part, in any dialect's words.
fn part(o: &Map<String, Value>, s: &mut Sizing) {
    match o.get("type").and_then(Value::as_str) {
        // OpenAI chat: {"type":"image_url","image_url":{"url": https or data:}}.
        Some("image_url") => media(s, str_at(o, "image_url/url")),
        // Responses: {"type":"input_image","image_url": ... | "file_id": ...}.
        Some("input_image") => media(s, str_at(o, "image_url")),
        // Anthropic: {"type":"image","source":{"type":"base64","media_type","data"} | url | file}.
        Some("image") => match str_at(o, "source/data") {
            Some(data) => inline(s, str_at(o, "source/media_type"), data),
            None => image(s, 0),
        },
        // Files and documents are paged and priced by their provider, whatever their bytes:
        // by id, by URL or inline, their size is the provider's to know.
        Some("file") if o.get("file").is_some() => referenced(s, "file"),
        Some("input_file") => referenced(s, "input_file"),
        // A text document is its text; any other is paged by its provider.
        Some("document") if str_at(o, "source/type") == Some("text") => {}
        Some("document") => referenced(s, "document"),
        Some("item_reference") => referenced(s, "item_reference"),
        _ => {}
    }
    // Gemini parts: {"inlineData":{"mimeType","data"}} and {"fileData":{"mimeType","fileUri"}}.

    if let Some(d) = o.get("inlineData").or(o.get("inline_data")) {
        if let Some(data) = d.get("data").and_then(Value::as_str) {
            inline(s, mime(d), data);
        }
    }
    if let Some(d) = o
        .get("fileData")
        .or(o.get("file_data"))
        .filter(|d| d.is_object())
    {
        match mime(d).is_some_and(|m| m.starts_with("image/")) {
            true => image(s, 0),
            false => referenced(s, "fileData"),
        }
    }
}

/// A Gemini part's media type.
fn mime(d: &Value) -> Option<&str> {
    d.get("mimeType")
        .or(d.get("mime_type"))
        .and_then(Value::as_str)
}

/// An image part's URL: an image's bound replaces the bytes of an inline image; inline data of
/// another type (a video or a PDF in an image's place) is sized by its provider: unmeasured.
fn media(s: &mut Sizing, url: Option<&str>) {
    match url.and_then(|u| u.strip_prefix("data:")) {
        Some(rest) => {
            let kind = rest.split([';', ',']).next();
            match kind.is_some_and(|k| k.starts_with("image/")) {
                true => image(s, url.map_or(0, |u| u.len() as u64)),
                false => referenced(s, "data"),
            }
        }
        None => image(s, 0),
    }
}

/// Inline data of media type `mime`: an image at its bound, anything else unmeasured.
fn inline(s: &mut Sizing, mime: Option<&str>, data: &str) {
    match mime.is_some_and(|m| m.starts_with("image/")) {
        true => image(s, data.len() as u64),
        false => referenced(s, "data"),
    }
}

fn image(s: &mut Sizing, inline_bytes: u64) {
    s.images += 1;
    s.inline_image_bytes += inline_bytes;
}

fn referenced(s: &mut Sizing, field: &'static str) {
    s.unmeasured.get_or_insert(field);
}

/// The most input tokens a request of `body_bytes` bytes with `sizing` may cost on a target of
/// `kind` whose pricing record is `price` (`None`: before a target is known, the largest bounds).
pub fn input_bound(
    body_bytes: u64,
    sizing: &Sizing,
    target: Option<(ProviderKind, Option<&ModelEntry>)>,
) -> u64 {
    let per_image = match target {
        None => MAX_IMAGE_TOKENS,
        Some((kind, price)) => price
            .and_then(|p| p.image_tokens)
            .unwrap_or(image_tokens(kind)),
    };
    let measured = body_bytes.saturating_sub(sizing.inline_image_bytes) / 4;
    let bound = measured + sizing.images * per_image;
    match sizing.unmeasured {
        None => bound,
        Some(_) => {
            let window = target
                .and_then(|(_, p)| p?.context_window)
                .unwrap_or(DEFAULT_CONTEXT_WINDOW);
            bound.max(window)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn of(v: Value) -> Sizing {
        sizing(v.as_object().unwrap())
    }

    #[test]
    fn images_are_counted_in_every_dialect_and_inline_bytes_set_aside() {
        let chat = of(json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}));
        assert_eq!((chat.images, chat.inline_image_bytes), (2, 26));
        assert_eq!(chat.unmeasured, None);
        let anthropic = of(json!({"messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "QUJD"}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/b.png"}}]}]}));
        assert_eq!((anthropic.images, anthropic.inline_image_bytes), (2, 4));
        let responses = of(json!({"input": [{"role": "user", "content": [
            {"type": "input_image", "image_url": "https://example.com/c.png"},
            {"type": "input_image", "file_id": "file-abc"}]}]}));
        assert_eq!(responses.images, 2);
        let gemini = of(json!({"contents": [{"role": "user", "parts": [
            {"inlineData": {"mimeType": "image/jpeg", "data": "QUJDRA=="}},
            {"fileData": {"mimeType": "image/png", "fileUri": "gs://b/x.png"}}]}]}));
        assert_eq!((gemini.images, gemini.inline_image_bytes), (2, 8));
    }

    #[test]
    fn input_unsized_is_named() {
        for (body, field) in [
            (
                json!({"input": "hi", "previous_response_id": "resp_1"}),
                "previous_response_id",
            ),
            (
                json!({"input": "hi", "conversation": "conv_1"}),
                "conversation",
            ),
            (json!({"prompt": {"id": "pmpt_1"}}), "prompt"),
            (
                json!({"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}]}),
                "file",
            ),
            (
                json!({"input": [{"role": "user", "content": [{"type": "input_file", "file_url": "https://x/y.pdf"}]}]}),
                "input_file",
            ),
            (
                json!({"input": [{"type": "item_reference", "id": "msg_1"}]}),
                "item_reference",
            ),
            (
                json!({"messages": [{"role": "user", "content": [{"type": "document", "source": {"type": "url", "url": "https://x/y.pdf"}}]}]}),
                "document",
            ),
            (
                json!({"contents": [{"parts": [{"fileData": {"mimeType": "application/pdf", "fileUri": "gs://b/y.pdf"}}]}]}),
                "fileData",
            ),
        ] {
            assert_eq!(of(body.clone()).unmeasured, Some(field), "{body}");
        }
        assert_eq!(of(json!({"previous_response_id": null})).unmeasured, None);
    }

    #[test]
    fn inline_documents_and_media_other_than_images_are_not_sized_by_their_bytes() {
        // A PDF is paged by its provider: a few blank kilobytes can be hundreds of pages.
        for body in [
            json!({"messages": [{"role": "user", "content": [{"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}]}]}),
            json!({"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}}]}]}),
            json!({"input": [{"role": "user", "content": [{"type": "input_file", "file_data": "data:application/pdf;base64,JVBERi0="}]}]}),
            json!({"contents": [{"parts": [{"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}}]}]}),
            // A video in an image's place is not an image.
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:video/mp4;base64,AAAA"}}]}]}),
            json!({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "video/mp4", "data": "AAAA"}}]}]}),
        ] {
            let s = of(body.clone());
            assert!(s.unmeasured.is_some(), "{body}");
            assert_eq!((s.images, s.inline_image_bytes), (0, 0), "{body}");
        }
        // A text document is measured like any text.
        let text = json!({"messages": [{"role": "user", "content": [{"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "hello"}}]}]});
        assert_eq!(of(text).unmeasured, None);
    }

    #[test]
    fn a_cache_write_is_found_wherever_it_is_asked_for_with_its_longest_ttl() {
        let none = json!({"messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(cache_write(none.as_object().unwrap()), None);
        let top = json!({"cache_control": {"type": "ephemeral"}, "messages": []});
        assert_eq!(
            cache_write(top.as_object().unwrap()),
            Some(CacheWrite::FiveMinutes)
        );
        let both = json!({
            "system": [{"type": "text", "text": "a long brief", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}]
        });
        assert_eq!(
            cache_write(both.as_object().unwrap()),
            Some(CacheWrite::OneHour)
        );
        // A field of that name that is no cache control (a tool's schema property) asks nothing.
        let schema = json!({"tools": [{"name": "t", "input_schema": {"properties": {"cache_control": {"type": "string"}}}}]});
        assert_eq!(cache_write(schema.as_object().unwrap()), None);
    }

    #[test]
    fn the_bound_follows_the_targets_image_rules_and_context_window() {
        let s = Sizing {
            images: 20,
            inline_image_bytes: 4_000,
            unmeasured: None,
        };
        // 8,000 bytes of which 4,000 are inline images: 1,000 tokens of JSON, plus the images.
        let openai = input_bound(8_000, &s, Some((ProviderKind::Openai, None)));
        assert_eq!(openai, 1_000 + 20 * 3_800);
        let claude = input_bound(8_000, &s, Some((ProviderKind::Anthropic, None)));
        assert_eq!(claude, 1_000 + 20 * 1_600);
        assert_eq!(input_bound(8_000, &s, None), 1_000 + 20 * MAX_IMAGE_TOKENS);
        // A model's own image rule (gpt-4o-mini bills an image at up to 48,169 tokens).
        let mini = ModelEntry {
            input_per_mtok: Some(0.15),
            output_per_mtok: Some(0.6),
            image_tokens: Some(48_169),
            ..Default::default()
        };
        assert_eq!(
            input_bound(8_000, &s, Some((ProviderKind::Openai, Some(&mini)))),
            1_000 + 20 * 48_169
        );
        let stored = Sizing {
            unmeasured: Some("previous_response_id"),
            ..Sizing::default()
        };
        let priced = ModelEntry {
            input_per_mtok: Some(1.0),
            output_per_mtok: Some(1.0),
            context_window: Some(128_000),
            ..Default::default()
        };
        assert_eq!(
            input_bound(400, &stored, Some((ProviderKind::Openai, Some(&priced)))),
            128_000
        );
        assert_eq!(
            input_bound(400, &stored, Some((ProviderKind::Openai, None))),
            DEFAULT_CONTEXT_WINDOW
        );
        assert_eq!(input_bound(400, &Sizing::default(), None), 100);
    }
}
