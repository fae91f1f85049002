//! A webhook destination, `destination:{t}:{d}`: an endpoint a tenant's events fan out to, which
//! of them it takes, how they are signed and shaped, and how hard to try. The tenant's own
//! `destination` is the destination record named `default`.

use crate::core::config::document::{kept_secret, redact, Named, Secret};
use crate::core::integration::mapping::ResponseMapping;
use crate::core::limits::breaker::Policy;
use crate::core::limits::gate::Limits;
use crate::core::time::seconds_of;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const SECRET_PATHS: &[&str] = &[
    "/secret",
    "/previous_secrets/*/secret",
    "/aws/secret_access_key",
    "/aws/session_token",
    "/google/service_account/private_key",
    "/kafka/auth/password",
    "/kafka/auth/token",
];

/// A stored destination as GET shows it, to send back through `put_record` with some fields
/// changed: each stored secret a keep marker, which `put_record` resolves from the stored record
/// (as it would from a client), so a sealed value is never taken as input.
pub fn as_sent_back(stored: Value) -> Value {
    redact(stored, SECRET_PATHS, None)
}

/// The secrets that authenticate the gateway to a bus: kept (`{"set": true}`) only while the
/// destination stays where they were given for (`kept_credentials`).
pub const CREDENTIAL_PATHS: &[&str] = &[
    "/aws/secret_access_key",
    "/aws/session_token",
    "/google/service_account/private_key",
    "/kafka/auth/password",
    "/kafka/auth/token",
];

/// Why `doc`, a destination about to replace `old`, may not keep a stored bus credential: a
/// credential given for one place is not sent, nor a token minted with it, to another. Keeping
/// one (`{"set": true}`) is refused when the kind, the url's origin or the service account's
/// token URL changed: the client sends it again.
pub fn kept_credentials(doc: &Value, old: Option<&Value>) -> Result<(), String> {
    let Some(old) = old else {
        return Ok(());
    };
    let kind = |d: &Value| {
        d.get("kind")
            .and_then(Value::as_str)
            .unwrap_or("https")
            .to_string()
    };
    let origin = |d: &Value| {
        let url = d.get("url").and_then(Value::as_str).unwrap_or_default();
        crate::core::http::url_origin(url).to_ascii_lowercase()
    };
    let token_uri = |d: &Value| d.pointer("/google/service_account/token_uri").cloned();
    let changed = if kind(doc) != kind(old) {
        "the kind changed"
    } else if origin(doc) != origin(old) {
        "the url's origin changed"
    } else if token_uri(doc) != token_uri(old) {
        "the token_uri changed"
    } else {
        return Ok(());
    };
    match kept_secret(doc, CREDENTIAL_PATHS) {
        Some(field) => Err(format!(
            "`{field}` cannot be kept ({{\"set\": true}}): {changed}; send it again"
        )),
        None => Ok(()),
    }
}

/// The tenant's own destination: a record like the others, that a tenant document's
/// `destination` writes (`webhook::default_destination`).
pub const DEFAULT: &str = "default";

/// Secrets that go on signing after a rotation, besides the current one.
pub const MAX_PREVIOUS_SECRETS: usize = 3;

/// How long every attempt may fail before a destination is disabled, unless it says
/// (`disable_after_seconds`; `webhook::health` disables).
pub const DEFAULT_DISABLE_AFTER_S: u32 = 3 * 86_400;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DestinationConfig {
    /// What `url` is: a webhook endpoint (`https`, the default), or a queue or bus the event is
    /// published to as a message (`webhook::bus`).
    #[serde(default)]
    pub kind: DestinationKind,
    /// The webhook endpoint; for a bus, its endpoint (`webhook::bus::check` says which).
    pub url: String,
    /// `whsec_` + base64: signs every delivery.
    pub secret: Secret,
    /// Secrets from before a rotation: each signs too, next to `secret`, until it expires, so a
    /// receiver can move to the new secret at its own pace (Standard Webhooks lists several
    /// signatures in one header).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_secrets: Vec<PreviousSecret>,
    pub timeout_ms: Option<u32>,
    /// Deliveries a second at most (retries and replays included); one over waits its turn.
    pub rate_limit_per_second: Option<u32>,
    /// Attempts per delivery before it is dead-lettered (else the tenant's
    /// `limits.max_delivery_attempts`).
    pub max_attempts: Option<u32>,
    /// Nothing is delivered while paused; deliveries wait and go out when it resumes.
    #[serde(default)]
    pub paused: bool,
    /// Events with one ordering key go one at a time, in the order they arrived; a failing one
    /// holds the events behind it on its key only (`objects::sequencer`).
    #[serde(default)]
    pub ordered: bool,
    /// Set by the gateway when every attempt failed for `disable_after_seconds`: deliveries wait
    /// as when paused. Saving the destination without it enables it again.
    pub disabled: Option<Disabled>,
    /// How long every attempt may fail before the destination is disabled (default 3 days).
    pub disable_after_seconds: Option<u32>,
    #[serde(default)]
    pub filter: EventFilter,
    /// The delivered `data`, reshaped: fields out from JMESPath over the event's `data`.
    pub transform: Option<Shape>,
    pub description: Option<String>,
    /// SQS and EventBridge: the region and the access key requests are signed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<BusAws>,
    /// EventBridge: the event bus, and the `Source` its entries carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eventbridge: Option<BusEventBridge>,
    /// Pub/Sub: the service account publishing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google: Option<BusGoogle>,
    /// Kafka REST: which API the proxy speaks, and its credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<BusKafka>,
}

/// Where a destination's deliveries go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DestinationKind {
    /// A Standard Webhooks POST to `url`.
    #[default]
    Https,
    /// Amazon SQS `SendMessage` to the queue at `url` (FIFO queues included).
    Sqs,
    /// Amazon EventBridge `PutEvents` at `url` to `eventbridge.event_bus`.
    Eventbridge,
    /// Google Cloud Pub/Sub `publish` to the topic at `url`.
    Pubsub,
    /// A Kafka REST proxy's produce to the topic at `url` (Confluent v3, or v2).
    Kafka,
}

impl DestinationKind {
    pub fn is_https(&self) -> bool {
        *self == DestinationKind::Https
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DestinationKind::Https => "https",
            DestinationKind::Sqs => "sqs",
            DestinationKind::Eventbridge => "eventbridge",
            DestinationKind::Pubsub => "pubsub",
            DestinationKind::Kafka => "kafka",
        }
    }
}

/// The region requests go to, and an AWS access key (as a Bedrock provider's: its fields beside
/// `region` in one block).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BusAws {
    pub region: String,
    #[serde(flatten)]
    pub keys: crate::core::cloud::aws::AwsKeys,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BusEventBridge {
    /// The event bus's name or ARN (`default` is the account's default bus).
    pub event_bus: String,
    /// The entries' `Source` (default `edge-gateway`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BusGoogle {
    /// The service account's JSON key file, as it is (its private key sealed).
    pub service_account: crate::core::cloud::google::ServiceAccount,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BusKafka {
    #[serde(default)]
    pub api: KafkaApi,
    /// Basic (`username` and `password`) or bearer (`token`); none for a proxy that asks none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<KafkaAuth>,
}

/// Which produce API a Kafka REST proxy speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KafkaApi {
    /// Confluent REST Proxy v3: `POST …/kafka/v3/clusters/{c}/topics/{t}/records`.
    #[default]
    V3,
    /// REST Proxy v2, as Redpanda's pandaproxy speaks it: `POST …/topics/{t}`, no headers.
    V2,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KafkaAuth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disabled {
    /// Unix seconds (epoch ms in records disabled by earlier versions: `shown` reads either).
    pub at: u64,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreviousSecret {
    pub secret: Secret,
    /// Unix seconds after which it no longer signs.
    pub expires_at: u64,
}

/// Which events a destination takes: all, unless it lists types or sets a condition.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EventFilter {
    /// Event types; `*` stands for any run of characters (`message.*`, `stripe.invoice.*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    /// JMESPath over the event (`id`, `type`, `source`, `source_kind`, `data`...): delivered
    /// when truthy.
    pub condition: Option<String>,
}

/// Payload shaping: the integration engine's field mappings, transforms and defaults, from the
/// event's `data` (or the part of it at `data_path`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shape {
    pub data_path: Option<String>,
    #[serde(default)]
    pub field_mappings: Named<String>,
    #[serde(default)]
    pub transforms: Named<Vec<Value>>,
    #[serde(default)]
    pub defaults: Named<Value>,
}

impl DestinationConfig {
    /// How long every attempt may fail before it is disabled, in ms.
    pub fn disable_after_ms(&self) -> u64 {
        let s = self
            .disable_after_seconds
            .unwrap_or(DEFAULT_DISABLE_AFTER_S);
        u64::from(s) * 1000
    }

    /// Why its deliveries wait, if they do.
    pub fn holding(&self) -> Option<&'static str> {
        match (self.paused, &self.disabled) {
            (true, _) => Some("paused"),
            (false, Some(_)) => Some("disabled"),
            (false, None) => None,
        }
    }
}

impl DestinationConfig {
    /// What its gate admits a delivery under: its rate, and a breaker that never opens (its
    /// failures are counted by the event log, which disables it).
    pub fn gate_limits(&self) -> Option<Limits> {
        let per_second = self.rate_limit_per_second?;
        Some(Limits {
            per_second: Some(u64::from(per_second)),
            per_minute: u64::MAX,
            per_day: None,
            breaker: Policy {
                minimum_calls: u32::MAX,
                failure_rate: 1.0,
                window_ms: 60_000,
                open_ms: 1_000,
                half_open_probes: 1,
            },
        })
    }
}

impl Shape {
    /// As the mapping engine takes it: a mapping with no success or error path.
    pub fn mapping(&self) -> ResponseMapping {
        ResponseMapping {
            success_path: None,
            data_path: self.data_path.clone(),
            error_path: None,
            field_mappings: self.field_mappings.clone(),
            transforms: self.transforms.clone(),
            defaults: self.defaults.clone(),
        }
    }
}

/// A destination record as the admin API shows it: `disabled.at` in Unix seconds, also when an
/// earlier version stored it in epoch ms.
pub fn shown(mut doc: Value) -> Value {
    if let Some(at) = doc.pointer_mut("/disabled/at") {
        if let Some(t) = at.as_u64() {
            *at = seconds_of(t).into();
        }
    }
    doc
}
