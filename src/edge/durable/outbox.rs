//! `Outbox`: a channel's queued sends until each is sent, refused or dead-lettered (the table and
//! why it exists: `pending`). Events have theirs in their source's `Dedupe` object instead, so
//! recording them costs no extra round trip at ingress.

use super::pending;
use super::{answer, command, purge};
use crate::core::objects::protocol::OutboxCmd;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

#[durable_object(alarm)]
pub struct Outbox {
    state: State,
    env: Env,
}

impl DurableObject for Outbox {
    fn new(state: State, env: Env) -> Self {
        pending::init(&state.storage().sql());
        Outbox { state, env }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let sql = self.state.storage().sql();
        match command::<OutboxCmd>(req).await? {
            OutboxCmd::Purge => {
                purge(&self.state).await?;
                pending::init(&sql);
                answer(&())
            }
            OutboxCmd::Update(cmd) => {
                pending::apply(&sql, &cmd)?;
                if let Some(at) = pending::next_due(&sql)? {
                    pending::arm(&self.state, at).await?;
                }
                answer(&())
            }
        }
    }

    async fn alarm(&self) -> Result<Response> {
        let sql = self.state.storage().sql();
        pending::sweep(&sql, &self.env).await?;
        if let Some(at) = pending::next_due(&sql)? {
            pending::arm(&self.state, at).await?;
        }
        Response::ok("swept")
    }
}
