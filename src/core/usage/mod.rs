//! Usage counted by the gateway itself: per tenant, hour and dimensions (route family, key,
//! provider, model, and the source, channel or integration), requests, errors, a latency
//! histogram, LLM tokens, cache hits and cost. An isolate tallies what its requests did
//! (`Tally`) and sends it to the tenant's `Usage` object in batches; the object adds batches up
//! (`Counters::add`) and answers queries (`query`).

pub mod point;
pub mod query;

use crate::core::error::ApiError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const HOUR_MS: u64 = 3_600_000;

/// What kind of request a count is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Llm,
    Webhook,
    Channel,
    Integration,
    /// The MCP endpoint; its subject is the tool a call named.
    Mcp,
    Widget,
    Admin,
    System,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Llm => "llm",
            Family::Webhook => "webhook",
            Family::Channel => "channel",
            Family::Integration => "integration",
            Family::Mcp => "mcp",
            Family::Widget => "widget",
            Family::Admin => "admin",
            Family::System => "system",
        }
    }
}

/// What a request counts as in its tenant's usage, known from its route before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    pub family: Family,
    /// The webhook source, channel or integration.
    pub subject: Option<String>,
    /// The tenant is named by the path and proven only by a successful answer (a webhook whose
    /// signature verified): any other answer is not the tenant's usage.
    pub proven_by_answer: bool,
}

impl Counted {
    /// Whether a request answered `status` counts.
    pub fn counts(&self, status: u16) -> bool {
        !self.proven_by_answer || status < 300
    }
}

/// The dimensions a count is kept under (one row per hour and combination).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dims {
    /// The hour's start (Unix ms).
    pub hour: u64,
    pub family: Family,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The webhook source, channel or integration the count is of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// Latency buckets (ms upper bounds); one more counts everything slower.
pub const LATENCY_BOUNDS_MS: [u64; 16] = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 60_000, 300_000,
];

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    #[serde(default)]
    pub requests: u64,
    /// Answered 4xx.
    #[serde(default)]
    pub client_errors: u64,
    /// Answered 5xx.
    #[serde(default)]
    pub server_errors: u64,
    /// Requests per latency bucket (`LATENCY_BOUNDS_MS`, then the rest).
    #[serde(default)]
    pub latency: Vec<u64>,
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    /// LLM answers from the response cache.
    #[serde(default)]
    pub cached: u64,
    /// Nano-USD.
    #[serde(default)]
    pub cost_nanos: u64,
    /// Webhook events and queued channel sends delivered, failed (an attempt), dead-lettered.
    #[serde(default)]
    pub delivered: u64,
    #[serde(default)]
    pub failed: u64,
    #[serde(default)]
    pub dead_lettered: u64,
    /// The LLM input tokens by the provider's prompt cache: neither read from nor written to it
    /// (fresh), read, written (they add up to `input_tokens`); the output's reasoning; audio and
    /// image tokens either way (parts of the input and output tokens).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fresh_input_tokens: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_read_tokens: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write_tokens: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reasoning_tokens: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub media_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Counters {
    pub fn add(&mut self, o: &Counters) {
        self.requests += o.requests;
        self.client_errors += o.client_errors;
        self.server_errors += o.server_errors;
        if self.latency.len() < o.latency.len() {
            self.latency.resize(o.latency.len(), 0);
        }
        for (a, b) in self.latency.iter_mut().zip(&o.latency) {
            *a += b;
        }
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.cached += o.cached;
        self.cost_nanos += o.cost_nanos;
        self.delivered += o.delivered;
        self.failed += o.failed;
        self.dead_lettered += o.dead_lettered;
        self.fresh_input_tokens += o.fresh_input_tokens;
        self.cache_read_tokens += o.cache_read_tokens;
        self.cache_write_tokens += o.cache_write_tokens;
        self.reasoning_tokens += o.reasoning_tokens;
        self.media_tokens += o.media_tokens;
    }

    /// One answered request: its status and latency.
    pub fn request(status: u16, latency_ms: u64) -> Self {
        let mut latency = vec![0; LATENCY_BOUNDS_MS.len() + 1];
        let bucket = LATENCY_BOUNDS_MS
            .iter()
            .position(|b| latency_ms <= *b)
            .unwrap_or(LATENCY_BOUNDS_MS.len());
        latency[bucket] = 1;
        Counters {
            requests: 1,
            client_errors: u64::from((400..500).contains(&status)),
            server_errors: u64::from(status >= 500),
            latency,
            ..Counters::default()
        }
    }

    /// The latency under which `share` of the requests fell: the upper bound of the bucket
    /// that holds that rank (`None`: no requests).
    pub fn percentile_ms(&self, share: f64) -> Option<u64> {
        let total: u64 = self.latency.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((total as f64) * share).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.latency.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(LATENCY_BOUNDS_MS.get(i).copied().unwrap_or(u64::MAX));
            }
        }
        None
    }
}

/// What one request or delivery adds: its dimensions (the hour is filled from its time) and
/// counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub dims: Dims,
    pub counters: Counters,
}

impl Sample {
    /// As a flow hands it to the shell (`core::flow::Effect::Count`).
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// What `encode` wrote.
    pub fn decode(text: &str) -> Result<Sample, ApiError> {
        serde_json::from_str(text)
            .map_err(|e| ApiError::internal(format!("a usage sample did not decode: {e}")))
    }
}

/// Rows on their way to a tenant's `Usage` object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub rows: Vec<(Dims, Counters)>,
}

/// What the `Usage` object is asked: its rows of the hours in `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    pub from: u64,
    pub to: u64,
}

/// What an isolate counted and has not sent yet, per tenant. A lost isolate loses at most this.
#[derive(Debug, Default)]
pub struct Tally {
    tenants: BTreeMap<String, BTreeMap<Dims, Counters>>,
    samples: usize,
}

/// Samples after which an isolate sends what it counted without waiting for its timer.
pub const FLUSH_SAMPLES: usize = 1_000;
/// How long a count may wait in an isolate before it is sent.
pub const FLUSH_MS: u64 = 5_000;

impl Tally {
    /// Counts a sample of `tenant` at `now_ms`. Returns whether this tenant had nothing waiting
    /// (the caller schedules a send), and whether the tally is full (send everything now).
    pub fn count(&mut self, tenant: &str, mut sample: Sample, now_ms: u64) -> (bool, bool) {
        sample.dims.hour = now_ms - now_ms % HOUR_MS;
        let rows = self.tenants.entry(tenant.to_string()).or_default();
        let first = rows.is_empty();
        rows.entry(sample.dims).or_default().add(&sample.counters);
        self.samples += 1;
        (first, self.samples >= FLUSH_SAMPLES)
    }

    /// Everything waiting, per tenant, emptied.
    pub fn take_all(&mut self) -> Vec<(String, Batch)> {
        self.samples = 0;
        std::mem::take(&mut self.tenants)
            .into_iter()
            .map(|(t, rows)| {
                (
                    t,
                    Batch {
                        rows: rows.into_iter().collect(),
                    },
                )
            })
            .collect()
    }

    /// A batch that could not be sent, back in the tally (sent with the next).
    pub fn restore(&mut self, tenant: &str, batch: Batch) {
        let rows = self.tenants.entry(tenant.to_string()).or_default();
        for (dims, c) in batch.rows {
            rows.entry(dims).or_default().add(&c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_795_964_400_000; // 2026-11-29T14:00:00Z

    fn llm(model: &str, tokens: u64) -> Sample {
        let mut counters = Counters::request(200, 120);
        counters.input_tokens = tokens;
        Sample {
            dims: Dims {
                hour: 0,
                family: Family::Llm,
                key: Some("key_1".into()),
                provider: Some("oai".into()),
                model: Some(model.into()),
                subject: None,
            },
            counters,
        }
    }

    #[test]
    fn a_tally_adds_up_by_hour_and_dimensions_and_is_sent_whole() {
        let mut t = Tally::default();
        assert_eq!(t.count("a", llm("m1", 10), T0 + 5), (true, false));
        assert_eq!(t.count("a", llm("m1", 7), T0 + 6), (false, false));
        t.count("a", llm("m2", 1), T0 + 7);
        t.count("a", llm("m1", 1), T0 + HOUR_MS);
        t.count("b", llm("m1", 3), T0);
        let all = t.take_all();
        assert_eq!(all.len(), 2);
        let a = &all[0].1.rows;
        assert_eq!(a.len(), 3, "m1 and m2 this hour, m1 the next");
        let m1 = a
            .iter()
            .find(|(d, _)| d.hour == T0 && d.model.as_deref() == Some("m1"));
        let (_, c) = m1.unwrap();
        assert_eq!((c.requests, c.input_tokens), (2, 17));
        assert!(t.take_all().is_empty());
        // A batch that failed to go comes back and is added to.
        t.restore("a", all[0].1.clone());
        t.count("a", llm("m1", 3), T0 + 8);
        let again = t.take_all();
        let (_, c) = again[0]
            .1
            .rows
            .iter()
            .find(|(d, _)| d.hour == T0 && d.model.as_deref() == Some("m1"))
            .unwrap();
        assert_eq!((c.requests, c.input_tokens), (3, 20));
    }

    #[test]
    fn a_full_tally_asks_to_be_sent() {
        let mut t = Tally::default();
        for i in 0..FLUSH_SAMPLES - 1 {
            assert!(!t.count("a", llm("m", 1), T0 + i as u64).1);
        }
        assert!(t.count("a", llm("m", 1), T0).1);
    }

    #[test]
    fn errors_and_latency_percentiles() {
        let mut c = Counters::default();
        for (status, ms) in [(200, 3), (200, 4), (404, 15), (502, 900), (200, 4)] {
            c.add(&Counters::request(status, ms));
        }
        assert_eq!((c.requests, c.client_errors, c.server_errors), (5, 1, 1));
        assert_eq!(c.percentile_ms(0.5), Some(5));
        assert_eq!(c.percentile_ms(0.95), Some(1_000));
        assert_eq!(
            Counters::request(200, 400_000).percentile_ms(0.5),
            Some(u64::MAX)
        );
        assert_eq!(Counters::default().percentile_ms(0.5), None);
    }
    #[test]
    fn a_sample_reaches_the_shell_as_it_was_counted() {
        let mut sample = llm("m1", 10);
        sample.counters.cost_nanos = 42;
        assert_eq!(Sample::decode(&sample.encode()).unwrap(), sample);
        let bare = Sample {
            dims: Dims {
                key: None,
                provider: None,
                model: None,
                ..sample.dims
            },
            counters: Counters::default(),
        };
        assert_eq!(Sample::decode(&bare.encode()).unwrap(), bare);
        assert!(Sample::decode("{}").unwrap_err().is_internal());
    }
}
