//! `OauthTokens`, one per OAuth2 integration (`{tenant}:integration:{id}`): holds its access
//! token and fetches a new one, one fetch at a time for all callers. A request may not await
//! another request's I/O on Workers, so callers cannot share a fetch in the isolate; here the
//! first caller blocks the object's other events while it fetches, and callers that arrive
//! meanwhile find the new token instead of fetching their own. When the provider rotates its
//! refresh token, the new one is kept here, sealed, and sent on the next refresh.

use super::{answer, command, purge};
use crate::core::integration::oauth::{
    rotated, token_answer, token_request, HeldToken, IssuedToken, KeptToken, RotatedRefresh,
    TokenCmd,
};
use crate::core::objects::protocol::{TokenAnswer, TokensCmd};
use crate::core::upstream::Upstream;
use crate::edge::outbound::exchange;
use crate::edge::platform::{now_ms, random_array};
use crate::edge::store::sealer;
use std::cell::RefCell;
use std::rc::Rc;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State, Storage};

const TOKEN_ENDPOINT_MS: u64 = 10_000;
/// Where the refresh token the provider rotated to is kept (`RotatedRefresh`, as JSON text).
const ROTATED_KEY: &str = "rotated_refresh_token";

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
            TokensCmd::Token(cmd) => *cmd,
        };
        let now_s = now_ms() / 1000;
        let held = self.held.borrow().clone();
        let fresh_until = now_s + cmd.fresh_for_s;
        if let Some((_, t)) = held.filter(|(key, t)| {
            *key == cmd.key && t.token.usable(fresh_until, cmd.rejected.as_deref())
        }) {
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
                    *slot.borrow_mut() = Some((cmd.key, t.clone()));
                }
                Ok(got)
            })
            .await?;
        answer(&got)
    }
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
        "the integration's token store failed".to_string()
    };
    let sealer = sealer(env).map_err(|e| failed("no sealer", &e.message))?;
    let kept: Option<RotatedRefresh> = match storage.get::<String>(ROTATED_KEY).await {
        Ok(text) => text.and_then(|t| serde_json::from_str(&t).ok()),
        Err(e) => return Err(failed("read", &e)),
    };
    let opened = kept.as_ref().and_then(|k| {
        let ctx = RotatedRefresh::context(&k.key);
        Some((k, sealer.open(&ctx, &k.sealed).ok()?))
    });
    let sent = cmd.refresh_to_send(opened.as_ref().map(|(k, rt)| (*k, rt.as_str())));
    let req = token_request(&cmd.auth, &cmd.client_secret, sent)?;
    let answer = exchange(&req, &cmd.trail, Upstream::TokenEndpoint, TOKEN_ENDPOINT_MS)
        .await
        .map_err(|e| format!("token endpoint: {}", e.describe()))?;
    let token = token_answer(answer.status, &answer.body)?;
    // The provider's new refresh token; or the kept one again when a master key rotation left
    // it sealed under a key that is no longer the current one.
    let stale = opened
        .as_ref()
        .filter(|(k, _)| k.key == cmd.key && !sealer.is_current(&k.sealed))
        .map(|(_, rt)| rt.as_str());
    if let Some(keep) = rotated(sent, &token).or(stale) {
        let ctx = RotatedRefresh::context(&cmd.key);
        let kept = RotatedRefresh {
            key: cmd.key.clone(),
            sealed: sealer.seal(&ctx, keep, &random_array()),
        };
        let text = serde_json::to_string(&kept).map_err(|e| failed("encode", &e))?;
        // The provider already retired the old one: a token that cannot be kept is a failure
        // the caller hears about, not one found at the next refresh.
        storage
            .put(ROTATED_KEY, text)
            .await
            .map_err(|e| failed("write", &e))?;
    }
    let token = HeldToken::issued(token, now_ms() / 1000);
    let ctx = KeptToken::context(&cmd.key);
    let kept = KeptToken {
        sealed: sealer.seal(&ctx, &token.access_token, &random_array()),
        usable_until_s: token.usable_until_s,
    };
    Ok(IssuedToken { token, kept })
}
