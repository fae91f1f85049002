//! `OauthTokens`, one per OAuth2 integration (`{tenant}:integration:{id}`): holds its access
//! token and fetches a new one, one fetch at a time for all callers. A request may not await
//! another request's I/O on Workers, so callers cannot share a fetch in the isolate; here the
//! first caller blocks the object's other events while it fetches, and callers that arrive
//! meanwhile find the new token instead of fetching their own.

use super::{answer, command, purge};
use crate::core::integration::oauth::{token_answer, token_request, HeldToken, TokenCmd};
use crate::core::objects::protocol::{TokenAnswer, TokensCmd};
use crate::core::upstream::Upstream;
use crate::edge::outbound::exchange;
use crate::edge::platform::now_ms;
use std::cell::RefCell;
use std::rc::Rc;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

const TOKEN_ENDPOINT_MS: u64 = 10_000;

#[durable_object(fetch)]
pub struct OauthTokens {
    state: State,
    /// The token and the key it was fetched for, shared with the fetch that fills it. Only in
    /// memory: a token is not worth a write, and an evicted object fetches a new one.
    held: Rc<RefCell<Option<(String, HeldToken)>>>,
}

impl DurableObject for OauthTokens {
    fn new(state: State, _env: Env) -> Self {
        OauthTokens {
            state,
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
        if let Some((_, t)) = held
            .filter(|(key, t)| *key == cmd.key && t.usable(fresh_until, cmd.rejected.as_deref()))
        {
            return answer::<TokenAnswer>(&Ok(t));
        }
        let slot = self.held.clone();
        // Errors travel as values: an Err here would reset the object.
        let got = self
            .state
            .block_concurrency_while(async move {
                let got = fetch_token(&cmd).await;
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
/// answer are `core::integration::oauth`'s).
async fn fetch_token(cmd: &TokenCmd) -> TokenAnswer {
    let req = token_request(&cmd.auth, &cmd.client_secret, cmd.refresh_token.as_deref())?;
    let answer = exchange(&req, &cmd.trail, Upstream::TokenEndpoint, TOKEN_ENDPOINT_MS)
        .await
        .map_err(|e| format!("token endpoint: {}", e.describe()))?;
    let token = token_answer(answer.status, &answer.body)?;
    Ok(HeldToken::issued(token, now_ms() / 1000))
}
