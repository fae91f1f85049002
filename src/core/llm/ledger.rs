//! The ledger's token classes: each provider's usage object read into one `Usage` (every
//! prompt token in `input_tokens`, every output token in `output_tokens`, the classes priced
//! apart as parts of those), and written back in each client's dialect.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Token counts of one request, as the upstream reported them. `input_tokens` counts every
/// prompt token (cached ones too, as OpenAI's `prompt_tokens` does) and `output_tokens` every
/// output token (reasoning too); the other counts are parts of those, priced at their own rates
/// (`classes`, `pricing::cost_nanos`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Input read from the provider's prompt cache.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_read_tokens: u64,
    /// Input written to the prompt cache, at any TTL.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write_tokens: u64,
    /// The part of `cache_write_tokens` written for an hour.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write_1h_tokens: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reasoning_tokens: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub audio_input_tokens: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub audio_output_tokens: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub image_input_tokens: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub image_output_tokens: u64,
    /// Server-side web searches the provider ran (and bills per search).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub web_search_requests: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Whether a chat model searches the web on every call, billed per call whatever its usage
/// says (OpenAI's `gpt-4o-search-preview`, `gpt-5-search-api`, ...), by its catalog name.
pub fn searches_every_call(catalog: &str) -> bool {
    catalog.contains("-search-")
}

/// The server-side web searches among a Responses answer's `output` items: its usage does not
/// count them.
pub fn web_search_calls(output: &Value) -> u64 {
    let items = output.as_array().map_or(&[][..], Vec::as_slice);
    items
        .iter()
        .filter(|i| i["type"] == "web_search_call")
        .count() as u64
}

/// `web_search_calls` of a whole Responses answer's bytes, reading no more of it than the
/// items' types (0 if it is not one).
pub fn web_search_calls_in(answer: &[u8]) -> u64 {
    #[derive(Deserialize)]
    struct Item {
        #[serde(rename = "type", default)]
        kind: String,
    }
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        output: Vec<Item>,
    }
    serde_json::from_slice::<Answer>(answer).map_or(0, |a| {
        a.output
            .iter()
            .filter(|i| i.kind == "web_search_call")
            .count() as u64
    })
}

/// A usage split into the classes the ledger prices, which add up to its tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Classes {
    pub fresh_input: u64,
    pub cache_read: u64,
    pub cache_write_5m: u64,
    pub cache_write_1h: u64,
    pub audio_input: u64,
    pub image_input: u64,
    pub output_text: u64,
    pub reasoning: u64,
    pub audio_output: u64,
    pub image_output: u64,
}

impl Usage {
    /// A usage of plain input and output tokens.
    pub fn tokens(input_tokens: u64, output_tokens: u64) -> Usage {
        Usage {
            input_tokens,
            output_tokens,
            ..Usage::default()
        }
    }

    /// The priced classes. A provider whose parts add up to more than its total (which none
    /// should) is charged the parts: the fresh remainder is never negative.
    pub fn classes(&self) -> Classes {
        let cache_write_1h = self.cache_write_1h_tokens.min(self.cache_write_tokens);
        Classes {
            fresh_input: self
                .input_tokens
                .saturating_sub(self.cache_read_tokens)
                .saturating_sub(self.cache_write_tokens)
                .saturating_sub(self.audio_input_tokens)
                .saturating_sub(self.image_input_tokens),
            cache_read: self.cache_read_tokens,
            cache_write_5m: self.cache_write_tokens - cache_write_1h,
            cache_write_1h,
            audio_input: self.audio_input_tokens,
            image_input: self.image_input_tokens,
            output_text: self
                .output_tokens
                .saturating_sub(self.reasoning_tokens)
                .saturating_sub(self.audio_output_tokens)
                .saturating_sub(self.image_output_tokens),
            reasoning: self.reasoning_tokens,
            audio_output: self.audio_output_tokens,
            image_output: self.image_output_tokens,
        }
    }

    pub fn total(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// The provider's count, with what it left out filled in: no input (an OpenAI-compatible
    /// server that leaves `usage` out, an Anthropic usage of searches alone), `estimate`'s
    /// input; no output (missing, or not an integer) where the request could have some, about
    /// four bytes of the answer per token as a stream is charged, at most its output maximum:
    /// an answer is never free.
    pub fn or_estimated(self, estimate: Usage, answer_bytes: usize) -> Usage {
        let mut u = self;
        if u.input_tokens == 0 {
            u.input_tokens = estimate.input_tokens;
        }
        if u.output_tokens == 0 {
            u.output_tokens = (answer_bytes as u64)
                .div_ceil(4)
                .min(estimate.output_tokens);
        }
        u
    }

    /// With at least `searches` web searches: those a provider bills that its usage leaves out.
    pub fn with_searches(self, searches: u64) -> Usage {
        Usage {
            web_search_requests: self.web_search_requests.max(searches),
            ..self
        }
    }

    /// From an OpenAI `usage` object (chat, Azure, embeddings, OpenAI-compatible servers):
    /// `prompt_tokens` counts the cached and audio tokens its details name, `completion_tokens`
    /// the reasoning and audio ones. Predicted tokens stay plain output, as they are billed.
    pub fn from_openai(u: &Value) -> Option<Usage> {
        let input_tokens = u.get("prompt_tokens")?.as_u64()?;
        let n = |path: &str| u.pointer(path).and_then(Value::as_u64);
        Some(Usage {
            input_tokens,
            output_tokens: n("/completion_tokens").unwrap_or(0),
            // DeepSeek's own name for the same count, where the details are absent.
            cache_read_tokens: n("/prompt_tokens_details/cached_tokens")
                .or(n("/prompt_cache_hit_tokens"))
                .unwrap_or(0),
            audio_input_tokens: n("/prompt_tokens_details/audio_tokens").unwrap_or(0),
            reasoning_tokens: n("/completion_tokens_details/reasoning_tokens").unwrap_or(0),
            audio_output_tokens: n("/completion_tokens_details/audio_tokens").unwrap_or(0),
            ..Usage::default()
        })
    }

    /// From a Responses `usage` object.
    pub fn from_responses(u: &Value) -> Option<Usage> {
        let input_tokens = u.get("input_tokens")?.as_u64()?;
        let n = |path: &str| u.pointer(path).and_then(Value::as_u64).unwrap_or(0);
        Some(Usage {
            input_tokens,
            output_tokens: n("/output_tokens"),
            cache_read_tokens: n("/input_tokens_details/cached_tokens"),
            reasoning_tokens: n("/output_tokens_details/reasoning_tokens"),
            ..Usage::default()
        })
    }

    /// From an Anthropic `usage` object, whose `input_tokens` are only the fresh ones: the input
    /// is those and the cache's reads and writes, as OpenAI counts it. A write is split by TTL
    /// where `cache_creation` says; a total alone is the default 5-minute write.
    pub fn from_anthropic(u: &Value) -> Option<Usage> {
        u.as_object()?;
        let n = |path: &str| u.pointer(path).and_then(Value::as_u64).unwrap_or(0);
        let split = n("/cache_creation/ephemeral_5m_input_tokens")
            .saturating_add(n("/cache_creation/ephemeral_1h_input_tokens"));
        let write = match n("/cache_creation_input_tokens") {
            0 => split,
            total => total,
        };
        let read = n("/cache_read_input_tokens");
        Some(Usage {
            input_tokens: n("/input_tokens")
                .saturating_add(write)
                .saturating_add(read),
            output_tokens: n("/output_tokens"),
            cache_read_tokens: read,
            cache_write_tokens: write,
            cache_write_1h_tokens: n("/cache_creation/ephemeral_1h_input_tokens").min(write),
            web_search_requests: n("/server_tool_use/web_search_requests"),
            ..Usage::default()
        })
    }

    /// From a Gemini `usageMetadata`: the prompt counts the cached content; a tool's prompt is
    /// input too, and the thoughts are output (reasoning). Audio and images are told apart by
    /// the modality lists; the cached part of an image is a cache read, but cached audio stays
    /// audio input: Gemini bills it at a cached audio rate the ledger has no class for, and the
    /// full audio rate is dearer, where the text cache read rate would be cheaper.
    pub fn from_gemini(u: &Value) -> Option<Usage> {
        let prompt = u.get("promptTokenCount")?.as_u64()?;
        let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
        let of = |list: &str, modality: &str| -> u64 {
            let items = u.get(list).and_then(Value::as_array);
            items
                .into_iter()
                .flatten()
                .filter(|d| d["modality"] == modality)
                .filter_map(|d| d["tokenCount"].as_u64())
                .fold(0, u64::saturating_add)
        };
        let prompted = |modality: &str| {
            of("promptTokensDetails", modality)
                .saturating_add(of("toolUsePromptTokensDetails", modality))
        };
        let cached_audio = of("cacheTokensDetails", "AUDIO");
        let input =
            |modality: &str| prompted(modality).saturating_sub(of("cacheTokensDetails", modality));
        let thoughts = n("thoughtsTokenCount");
        Some(Usage {
            input_tokens: prompt.saturating_add(n("toolUsePromptTokenCount")),
            output_tokens: n("candidatesTokenCount").saturating_add(thoughts),
            cache_read_tokens: n("cachedContentTokenCount").saturating_sub(cached_audio),
            reasoning_tokens: thoughts,
            // The prompt's audio counts its cached part; never less than that part.
            audio_input_tokens: prompted("AUDIO").max(cached_audio),
            image_input_tokens: input("IMAGE"),
            audio_output_tokens: of("candidatesTokensDetails", "AUDIO"),
            image_output_tokens: of("candidatesTokensDetails", "IMAGE"),
            ..Usage::default()
        })
    }

    /// All the input tokens of audio or images, and all such output.
    pub fn media_tokens(&self) -> u64 {
        [
            self.audio_input_tokens,
            self.image_input_tokens,
            self.audio_output_tokens,
            self.image_output_tokens,
        ]
        .into_iter()
        .fold(0, u64::saturating_add)
    }

    /// As an OpenAI `usage` object; the details OpenAI has a name for are there when not zero.
    pub fn openai_json(&self) -> Value {
        let mut v = json!({
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.total(),
        });
        if self.cache_read_tokens > 0 || self.audio_input_tokens > 0 {
            v["prompt_tokens_details"] = json!({"cached_tokens": self.cache_read_tokens,
                "audio_tokens": self.audio_input_tokens});
        }
        if self.reasoning_tokens > 0 || self.audio_output_tokens > 0 {
            v["completion_tokens_details"] = json!({"reasoning_tokens": self.reasoning_tokens,
                "audio_tokens": self.audio_output_tokens});
        }
        v
    }

    /// As an Anthropic `usage` object: `input_tokens` are the fresh ones, the cache's reads and
    /// writes (when there are any) beside them.
    pub fn anthropic_json(&self) -> Value {
        let mut v = json!({
            "input_tokens": self
                .input_tokens
                .saturating_sub(self.cache_read_tokens.saturating_add(self.cache_write_tokens)),
            "output_tokens": self.output_tokens,
        });
        if self.cache_read_tokens > 0 || self.cache_write_tokens > 0 {
            let hour = self.cache_write_1h_tokens.min(self.cache_write_tokens);
            v["cache_creation_input_tokens"] = json!(self.cache_write_tokens);
            v["cache_read_input_tokens"] = json!(self.cache_read_tokens);
            v["cache_creation"] = json!({
                "ephemeral_5m_input_tokens": self.cache_write_tokens - hour,
                "ephemeral_1h_input_tokens": hour,
            });
        }
        if self.web_search_requests > 0 {
            v["server_tool_use"] = json!({"web_search_requests": self.web_search_requests});
        }
        v
    }

    /// As a Responses `usage` object.
    pub fn responses_json(&self) -> Value {
        json!({
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": self.cache_read_tokens},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.total(),
        })
    }
}

#[cfg(test)]
mod tests;
