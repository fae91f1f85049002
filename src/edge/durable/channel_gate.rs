//! `ChannelGate`: everything a call to one tenant channel (or integration) must check first, in one round trip
//! (idempotency, the rate limit, the circuit breaker), and what it must record after
//! (the breaker's outcome, the idempotent result, the delivery's status).

use super::{answer, command, commands, purge, Object};
use crate::core::integration::oauth::{token_answer, token_request, TokenResponse};
use crate::core::limits::breaker::Policy;
use crate::core::limits::gate::{Admission, Gate, Limits};
use crate::core::objects::{self, ObjectClass};
use crate::core::upstream::Upstream;
use crate::edge::outbound::exchange;
use crate::edge::platform::now_ms;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cell::RefCell;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;
/// A claim whose request never finished (its isolate died before recording the result) is
/// abandoned after this long, so the client's retry is not refused for a day.
const CLAIM_TIMEOUT_MS: i64 = 60_000;

#[derive(Serialize, Deserialize)]
pub struct BeginCmd {
    pub idempotency_key: Option<String>,
    pub per_minute: u64,
    /// Integrations may also cap a day.
    #[serde(default)]
    pub per_day: Option<u64>,
    pub breaker: Policy,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Begin {
    Go {
        probe: bool,
    },
    /// The key's first request finished: its response, as it was.
    Replay {
        status: u16,
        body: Value,
    },
    /// The key's first request is still being processed.
    InProgress,
    RateLimited {
        retry_after_s: u64,
        limit: u64,
    },
    BreakerOpen {
        retry_after_s: u64,
    },
}

#[derive(Serialize, Deserialize)]
pub struct FinishCmd {
    pub idempotency_key: Option<String>,
    /// The breaker's policy and whether the provider call counts as a success for it (None:
    /// nothing to record, e.g. a delivery status update).
    pub outcome: Option<(Policy, bool)>,
    /// The call was admitted as a half-open probe (only probes decide a half-open breaker).
    #[serde(default)]
    pub probe: bool,
    pub status: u16,
    pub body: Value,
    pub delivery: Option<DeliveryRecord>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct DeliveryRecord {
    pub id: String,
    /// queued | sent | failed | dead_lettered
    pub status: String,
    pub provider_message_id: Option<String>,
    pub last_error: Option<String>,
    pub attempts: u32,
    pub updated_at: u64,
}

#[derive(Deserialize)]
struct Row {
    body: String,
}

/// `token`: an integration's OAuth2 access token. Only one fetch runs at a time for the
/// integration: the first caller blocks the object's other events while it fetches, so callers
/// that arrive meanwhile find the new token instead of fetching their own.
#[derive(Serialize, Deserialize)]
pub struct TokenCmd {
    /// What the token is for (`oauth::token_key`): a token held for another key is never
    /// handed out.
    pub key: String,
    pub auth: crate::core::config::integration::Auth,
    pub client_secret: String,
    pub refresh_token: Option<String>,
    /// The token the provider just refused, if any: never handed out again.
    pub rejected: Option<String>,
    /// Loop marks of the request that needs the token (its token fetch carries one more).
    #[serde(default)]
    pub hops: u32,
}

#[derive(Serialize, Deserialize)]
pub struct TokenAnswer {
    pub access_token: Option<String>,
    pub expires_in: u64,
    pub error: Option<String>,
}

/// `delivery`: a queued channel send's record.
#[derive(Serialize, Deserialize)]
pub struct DeliveryQuery {
    pub id: String,
}

/// What a gate takes.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateCmd {
    Begin(BeginCmd),
    Finish(FinishCmd),
    Delivery(DeliveryQuery),
    Token(TokenCmd),
    Purge,
}

commands!(ChannelGate: ObjectClass::ChannelGate => GateCmd {
    Begin(BeginCmd) -> Begin,
    Finish(FinishCmd) -> (),
    Delivery(DeliveryQuery) -> Option<DeliveryRecord>,
    Token(TokenCmd) -> TokenAnswer,
});

impl Object<ChannelGate> {
    /// The gate of a tenant's channel.
    pub fn channel(tenant: &str, channel: &str) -> Self {
        Object::named(objects::channel(tenant, channel))
    }

    /// The gate of a tenant's integration.
    pub fn integration(tenant: &str, id: &str) -> Self {
        Object::named(objects::integration(tenant, id))
    }
}

#[durable_object(fetch)]
pub struct ChannelGate {
    state: State,
    /// (token key, access token, expires at in seconds), shared with the fetch that fills it.
    token: std::rc::Rc<RefCell<Option<(String, String, u64)>>>,
    mem: RefCell<Option<Gate>>,
}

fn init(state: &State) {
    let sql = state.storage().sql();
    let _ = sql.exec("CREATE TABLE IF NOT EXISTS idempotency (key TEXT PRIMARY KEY, status INTEGER NOT NULL, body TEXT, expires_at INTEGER NOT NULL)", None);
    let _ = sql.exec("CREATE TABLE IF NOT EXISTS deliveries (id TEXT PRIMARY KEY, body TEXT NOT NULL, updated_at INTEGER NOT NULL)", None);
}

impl ChannelGate {
    async fn load(&self) -> Result<()> {
        if self.mem.borrow().is_none() {
            let storage = self.state.storage();
            let gate = Gate {
                minute: storage.get("window").await?.unwrap_or_default(),
                day: storage.get("day").await?.unwrap_or_default(),
                breaker: storage.get("breaker").await?.unwrap_or_default(),
            };
            *self.mem.borrow_mut() = Some(gate);
        }
        Ok(())
    }

    async fn save(&self) -> Result<()> {
        let g = self.mem.borrow().clone().unwrap_or_default();
        let storage = self.state.storage();
        storage.put("window", g.minute).await?;
        storage.put("day", g.day).await?;
        storage.put("breaker", g.breaker).await
    }

    /// The key's stored result (status 0: claimed, still in progress). A claim older than
    /// `CLAIM_TIMEOUT_MS` counts as abandoned.
    fn idempotent(&self, key: &str) -> Result<Option<(u16, Value)>> {
        #[derive(Deserialize)]
        struct Idem {
            status: i64,
            body: Option<String>,
            expires_at: i64,
        }
        let now = now_ms() as i64;
        let rows: Vec<Idem> = self
            .state
            .storage()
            .sql()
            .exec(
                "SELECT status, body, expires_at FROM idempotency WHERE key = ? AND expires_at > ?",
                Some(vec![key.into(), now.into()]),
            )?
            .to_array()?;
        let live = rows.into_iter().next().filter(|r| {
            r.status != 0 || now < r.expires_at - IDEMPOTENCY_TTL_MS + CLAIM_TIMEOUT_MS
        });
        Ok(live.map(|r| {
            let body = r
                .body
                .and_then(|b| serde_json::from_str(&b).ok())
                .unwrap_or(Value::Null);
            (r.status as u16, body)
        }))
    }
}

impl DurableObject for ChannelGate {
    fn new(state: State, _env: Env) -> Self {
        init(&state);
        ChannelGate {
            state,
            mem: RefCell::new(None),
            token: Default::default(),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let now = now_ms();
        match command::<Self>(req).await? {
            GateCmd::Purge => {
                purge(&self.state).await?;
                init(&self.state);
                *self.mem.borrow_mut() = None;
                *self.token.borrow_mut() = None;
                answer(&())
            }
            GateCmd::Begin(cmd) => {
                if let Some(key) = &cmd.idempotency_key {
                    match self.idempotent(key)? {
                        Some((0, _)) => return answer(&Begin::InProgress),
                        Some((status, body)) => return answer(&Begin::Replay { status, body }),
                        None => {}
                    }
                }
                self.load().await?;
                let limits = Limits {
                    per_minute: cmd.per_minute,
                    per_day: cmd.per_day,
                    breaker: cmd.breaker,
                };
                let admission = self
                    .mem
                    .borrow_mut()
                    .get_or_insert_with(Default::default)
                    .admit(now, &limits);
                let decision = match admission {
                    Admission::Go { probe } => Begin::Go { probe },
                    Admission::RateLimited {
                        retry_after_s,
                        limit,
                    } => Begin::RateLimited {
                        retry_after_s,
                        limit,
                    },
                    Admission::BreakerOpen { retry_after_s } => {
                        Begin::BreakerOpen { retry_after_s }
                    }
                };
                if let (Begin::Go { .. }, Some(key)) = (&decision, &cmd.idempotency_key) {
                    // Claim the key: a concurrent repeat sees "in progress" until finish.
                    self.state.storage().sql().exec(
                        "INSERT OR REPLACE INTO idempotency (key, status, body, expires_at) VALUES (?, 0, NULL, ?)",
                        Some(vec![key.clone().into(), (now as i64 + IDEMPOTENCY_TTL_MS).into()]),
                    )?;
                }
                self.save().await?;
                answer(&decision)
            }
            GateCmd::Finish(cmd) => {
                if let Some((policy, ok)) = &cmd.outcome {
                    self.load().await?;
                    if let Some(g) = self.mem.borrow_mut().as_mut() {
                        if let Some(t) = g.breaker.record(now, policy, *ok, cmd.probe) {
                            super::log_transition(&self.state, None, t);
                        }
                    }
                    self.save().await?;
                }
                let sql = self.state.storage().sql();
                if let Some(key) = &cmd.idempotency_key {
                    sql.exec(
                        "INSERT OR REPLACE INTO idempotency (key, status, body, expires_at) VALUES (?, ?, ?, ?)",
                        Some(vec![key.clone().into(), (cmd.status as i64).into(), cmd.body.to_string().into(), (now as i64 + IDEMPOTENCY_TTL_MS).into()]),
                    )?;
                }
                if let Some(d) = &cmd.delivery {
                    sql.exec(
                        "INSERT OR REPLACE INTO deliveries (id, body, updated_at) VALUES (?, ?, ?)",
                        Some(vec![
                            d.id.clone().into(),
                            serde_json::to_string(d)?.into(),
                            (now as i64).into(),
                        ]),
                    )?;
                }
                answer(&())
            }
            GateCmd::Delivery(DeliveryQuery { id }) => {
                let rows: Vec<Row> = self
                    .state
                    .storage()
                    .sql()
                    .exec(
                        "SELECT body FROM deliveries WHERE id = ?",
                        Some(vec![id.into()]),
                    )?
                    .to_array()?;
                let d: Option<DeliveryRecord> = rows
                    .first()
                    .and_then(|r| serde_json::from_str(&r.body).ok());
                answer(&d)
            }
            GateCmd::Token(cmd) => {
                let now_s = now / 1000;
                let cached = self.token.borrow().clone();
                if let Some((_, t, exp)) = cached.filter(|(key, t, exp)| {
                    *key == cmd.key && *exp > now_s + 60 && Some(t) != cmd.rejected.as_ref()
                }) {
                    return answer(&TokenAnswer {
                        access_token: Some(t),
                        expires_in: exp - now_s,
                        error: None,
                    });
                }
                let slot = self.token.clone();
                let key = cmd.key.clone();
                // Errors travel as values: an Err here would reset the object.
                let got = self
                    .state
                    .block_concurrency_while(async move {
                        let r = fetch_token(&cmd).await;
                        Ok(match r {
                            Ok(t) => {
                                let expires_in = t.expires_in.unwrap_or(3600);
                                *slot.borrow_mut() = Some((
                                    key,
                                    t.access_token.clone(),
                                    now_ms() / 1000 + expires_in,
                                ));
                                TokenAnswer {
                                    access_token: Some(t.access_token),
                                    expires_in,
                                    error: None,
                                }
                            }
                            Err(e) => TokenAnswer {
                                access_token: None,
                                expires_in: 0,
                                error: Some(e),
                            },
                        })
                    })
                    .await?;
                answer(&got)
            }
        }
    }
}

/// Fetches a token from the integration's token endpoint (the request and the reading of its
/// answer are core's: `core::integration::oauth`).
async fn fetch_token(cmd: &TokenCmd) -> std::result::Result<TokenResponse, String> {
    let req = token_request(&cmd.auth, &cmd.client_secret, cmd.refresh_token.as_deref())?;
    let answer = exchange(&req, cmd.hops, Upstream::TokenEndpoint, 10_000)
        .await
        .map_err(|e| format!("token endpoint: {}", e.describe()))?;
    token_answer(answer.status, &answer.body)
}

/// Records an outcome in the gate after the response has gone out; a failure is logged, since
/// the client's answer no longer depends on it.
pub fn finish_later(ctx: &worker::Context, env: &Env, gate: Object<ChannelGate>, cmd: FinishCmd) {
    let env = env.clone();
    ctx.wait_until(async move {
        if let Err(e) = super::ask(&env, &gate, cmd).await {
            worker::console_error!("{{\"gate_finish_failed\":{:?}}}", e.message);
        }
    });
}
