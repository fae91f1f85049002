//! `OauthTokens`, an integration's, a destination's, or the one a tenant's LLM providers share
//! (`objects::names`): holds its access token and fetches a new one, one fetch at a time for all
//! callers. A request may not await another request's I/O on Workers, so callers cannot share a
//! fetch in the isolate; here the first caller blocks the object's other events while it fetches,
//! and callers that arrive meanwhile find the new token instead of fetching their own. When the
//! provider rotates its refresh token, the new one is kept here, sealed, and sent on the next
//! refresh; a master key rotation's pass seals it again under the new key (`KeptRefreshCmd`).

use crate::core::config::seal::Sealer;
use crate::core::integration::connect::pending;
use crate::core::integration::oauth::token_request;
use crate::core::integration::oauth_tokens::{
    token_answer, HeldToken, IssuedToken, KeptPlan, KeptRefresh, KeptRefreshCmd, KeptToken,
    RotatedRefresh, TokenCmd, TokenRefusal,
};
use crate::core::objects::protocol::{TokenAnswer, TokensCmd};
use crate::core::upstream::Upstream;
use crate::edge::outbound::exchange;
use crate::edge::platform::{now_ms, random_array};
use crate::edge::store::sealer;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::cell::RefCell;
use std::rc::Rc;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State, Storage};

const TOKEN_ENDPOINT_MS: u64 = 10_000;
/// Where the refresh token the provider rotated to is kept (`RotatedRefresh`, as JSON text).
const ROTATED_KEY: &str = "rotated_refresh_token";
/// A connect's open attempts (`connect::pending`).
const ATTEMPTS_KEY: &str = "connect_attempts";

#[durable_object(fetch)]
pub struct OauthTokens {
    state: State,
    env: Env,
    /// The token and the key it was fetched for, shared with the fetch that fills it. Only in
    /// memory: a token is not worth a write, and an evicted object fetches a new one.
    held: Rc<RefCell<Option<(String, IssuedToken)>>>,
}

impl DurableObject for OauthTokens {
    fn new(state: State, env: Env) -> Self {
        OauthTokens {
            state,
            env,
            held: Default::default(),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let cmd = match command::<TokensCmd>(req).await? {
            TokensCmd::Purge => {
                purge(&self.state).await?;
                *self.held.borrow_mut() = None;
                return answer(&());
            }
            TokensCmd::Kept(cmd) => {
                // As a fetch does: no token is fetched (and kept) while it is moved.
                let (storage, env) = (self.state.storage(), self.env.clone());
                let kept = async move { kept_refresh(&env, &storage, &cmd).await };
                return answer(&self.state.block_concurrency_while(kept).await?);
            }
            TokensCmd::Attempt(cmd) => {
                let open = self.state.storage().get(ATTEMPTS_KEY).await?;
                let (spent, open) = pending::apply(open.unwrap_or_default(), cmd, now_ms() / 1000);
                self.state.storage().put(ATTEMPTS_KEY, open).await?;
                return answer(&spent);
            }
            TokensCmd::Connected(k) => {
                let text = serde_json::to_string(&k.refresh)?;
                self.state.storage().put(ROTATED_KEY, text).await?;
                return answer(&());
            }
            TokensCmd::Release(cmd) => {
                let kept = cmd.pick(read_kept(&self.state.storage()).await?);
                purge(&self.state).await?;
                *self.held.borrow_mut() = None;
                return answer(&kept);
            }
            TokensCmd::Token(cmd) => *cmd,
        };
        let held = cmd
            .held(self.held.borrow().as_ref(), now_ms() / 1000)
            .cloned();
        if let Some(t) = held {
            return answer::<TokenAnswer>(&Ok(t));
        }
        let slot = self.held.clone();
        let storage = self.state.storage();
        let env = self.env.clone();
        // Errors travel as values: an Err here would reset the object.
        let got = self
            .state
            .block_concurrency_while(async move {
                let got = fetch_token(&env, &storage, &cmd).await;
                if let Ok(t) = &got {
                    *slot.borrow_mut() = Some((cmd.keys.current, t.clone()));
                }
                Ok(got)
            })
            .await?;
        answer(&got)
    }
}

/// The command, read as text and decoded here (workers-rs' `json()` builds a JS object and
/// copies it into Rust one field at a time).
async fn command<C: DeserializeOwned>(mut req: Request) -> Result<C> {
    Ok(serde_json::from_str(&req.text().await?)?)
}

fn answer<T: Serialize>(v: &T) -> Result<Response> {
    Response::from_json(v)
}

/// Erases everything the object stores (the caller forgets what it holds in memory).
async fn purge(state: &State) -> Result<()> {
    state.storage().delete_alarm().await?;
    state.storage().delete_all().await
}

/// Fetches a token from the integration's token endpoint (the request and the reading of its
/// answer are `core::integration::oauth`'s), with the rotated refresh token when one is kept,
/// and keeps the one the provider rotates to.
async fn fetch_token(env: &Env, storage: &Storage, cmd: &TokenCmd) -> TokenAnswer {
    // Storage and sealing failures are logged here; the caller hears only that the token store
    // failed (its text reaches the integration's envelope).
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        worker::console_error!(
            "{}",
            serde_json::json!({"oauth_tokens": what, "error": e.to_string()})
        );
        "the token store failed".to_string()
    };
    let sealer = sealer(env).map_err(|e| failed("no sealer", &e.logged()))?;
    let kept = read_kept(storage).await.map_err(|e| failed("read", &e))?;
    let opened = kept.as_ref().and_then(|k| {
        let ctx = RotatedRefresh::context(&k.key);
        let rt = sealer.open(&ctx, &k.sealed).ok()?;
        Some((k, rt, sealer.is_current(&k.sealed)))
    });
    let sent = cmd.refresh_to_send(opened.as_ref().map(|(k, rt, _)| (*k, rt.as_str())));
    let req = token_request(&cmd.auth, &cmd.client_secret, sent, now_ms() / 1000)?;
    let answer = exchange(&req, &cmd.trail, Upstream::TokenEndpoint, TOKEN_ENDPOINT_MS)
        .await
        .map_err(|e| format!("token endpoint: {}", e.describe()))?;
    let token = token_answer(answer.status, &answer.body);
    let sent_kept = opened
        .as_ref()
        .is_some_and(|(k, ..)| cmd.keys.matches(&k.key));
    if let (Err(TokenRefusal::InvalidGrant(_)), true) = (&token, sent_kept) {
        // The refresh token kept here was refused: it is not sent again.
        storage
            .delete(ROTATED_KEY)
            .await
            .map_err(|e| failed("delete", &e))?;
    }
    let token = token?;
    let kept = opened
        .as_ref()
        .map(|(k, rt, current)| (*k, rt.as_str(), *current));
    if let Some(keep) = cmd.refresh_to_keep(kept, sent, &token) {
        // The provider already retired the old one: a token that cannot be kept is a failure
        // the caller hears about, not one found at the next refresh.
        keep_refresh(&sealer, storage, &cmd.keys.current, keep)
            .await
            .map_err(|e| failed("write", &e))?;
    }
    let token = HeldToken::issued(token, now_ms() / 1000);
    let ctx = KeptToken::context(&cmd.keys.current);
    let kept = KeptToken {
        sealed: sealer.seal(&ctx, &token.access_token, &random_array()),
        usable_until_s: token.usable_until_s,
    };
    Ok(IssuedToken { token, kept })
}

/// The refresh token kept for the integration, if any (one of another shape is none).
async fn read_kept(storage: &Storage) -> Result<Option<RotatedRefresh>> {
    let text = storage.get::<String>(ROTATED_KEY).await?;
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}

/// Keeps `refresh_token`, sealed under the current master key, for the token key `key`.
async fn keep_refresh(
    sealer: &Sealer,
    storage: &Storage,
    key: &str,
    refresh_token: &str,
) -> Result<()> {
    let ctx = RotatedRefresh::context(key);
    let kept = RotatedRefresh {
        key: key.to_string(),
        sealed: sealer.seal(&ctx, refresh_token, &random_array()),
    };
    storage
        .put(ROTATED_KEY, serde_json::to_string(&kept)?)
        .await
}

/// A master key rotation's question about the kept refresh token (`KeptRefreshCmd::plan`).
async fn kept_refresh(env: &Env, storage: &Storage, cmd: &KeptRefreshCmd) -> Result<KeptRefresh> {
    let sealer = sealer(env).map_err(|e| worker::Error::RustError(e.logged().to_string()))?;
    let kept = read_kept(storage).await?;
    let opened = kept.as_ref().and_then(|k| {
        let ctx = RotatedRefresh::context(&k.key);
        sealer.open_labelled(&ctx, &k.sealed).ok()
    });
    let under = opened.as_ref().map(|o| o.key_id.as_str());
    match cmd.plan(kept.as_ref(), under, sealer.current_key_id()) {
        KeptPlan::Answer(a) => Ok(a),
        KeptPlan::Reseal => {
            let rt = opened.map(|o| o.plaintext).unwrap_or_default();
            keep_refresh(&sealer, storage, &cmd.keys.current, &rt).await?;
            Ok(KeptRefresh::Under {
                key_id: sealer.current_key_id().to_string(),
                resealed: true,
            })
        }
    }
}
