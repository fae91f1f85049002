//! The one host of every Durable Object class that is a `core::objects::machine::Machine`: it
//! reads a command, loads the object's document once per object lifetime, applies the command
//! (synchronously: no other command runs in between), writes the document back when the step
//! says it changed, erases, logs and arms the alarm as the step says, and answers. An alarm is
//! applied the same way, performing what it asks for (queue bodies sent again, a configuration
//! document read) between its steps.

use crate::core::objects::machine::{
    arm, must_look, Ctx, Heard, Machine, Resend, Step, Wake, Woken,
};
use crate::core::objects::store::{create, Arg, Store, StoreError};
use crate::edge::effects::send_texts;
use crate::edge::platform::now_ms;
use crate::edge::store::get_text;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::cell::{Cell, RefCell};
use worker::wasm_bindgen::JsValue;
use worker::{Env, Request, Response, Result, SqlStorage, SqlStorageValue, State};

pub struct Host<M: Machine> {
    state: State,
    env: Env,
    doc: RefCell<Option<M::Doc>>,
    /// When the alarm is known to go off, so the hot path skips asking storage.
    armed: Cell<Option<u64>>,
}

impl Store for SqlStorage {
    fn run(&self, sql: &str, args: Vec<Arg>) -> std::result::Result<u64, StoreError> {
        let cursor = self.exec(sql, bind(args)).map_err(failed)?;
        Ok(cursor.rows_written() as u64)
    }

    fn rows<T: DeserializeOwned>(
        &self,
        sql: &str,
        args: Vec<Arg>,
    ) -> std::result::Result<Vec<T>, StoreError> {
        let cursor = self.exec(sql, bind(args)).map_err(failed)?;
        cursor.to_array().map_err(failed)
    }
}

fn bind(args: Vec<Arg>) -> Vec<SqlStorageValue> {
    let value = |a| match a {
        Arg::Null => SqlStorageValue::Null,
        Arg::Int(i) => SqlStorageValue::Integer(i),
        Arg::Text(t) => SqlStorageValue::String(t),
    };
    args.into_iter().map(value).collect()
}

fn failed(e: worker::Error) -> StoreError {
    StoreError(e.to_string())
}

fn refused(e: StoreError) -> worker::Error {
    worker::Error::RustError(e.0)
}

impl<M: Machine> Host<M> {
    pub fn new(state: State, env: Env) -> Self {
        // The tables exist from here on; creating them cannot fail but for a broken storage,
        // which every statement after would report.
        let _ = create(&state.storage().sql(), M::TABLES);
        Host {
            state,
            env,
            doc: RefCell::new(None),
            armed: Cell::new(None),
        }
    }

    pub async fn fetch(&self, mut req: Request) -> Result<Response> {
        let cmd: M::Cmd = serde_json::from_str(&req.text().await?)?;
        self.load().await?;
        let now = now_ms();
        let step = self.apply(now, |doc, sql, at| M::apply(doc, sql, cmd, at))?;
        self.perform(step, now).await
    }

    pub async fn alarm(&self) -> Result<Response> {
        self.armed.set(None);
        self.load().await?;
        let now = now_ms();
        let mut heard = Heard::Woke;
        loop {
            heard = match self.apply(now, |doc, sql, at| M::alarm(doc, sql, heard, at))? {
                Woken::Done(step) => return self.perform(step, now).await,
                Woken::Resend(rows) => Heard::Resent(self.resend(rows).await),
                Woken::Read(key) => Heard::Config(get_text(&self.env, &key).await.map_err(drop)),
            };
        }
    }

    /// Applies `f` to the document, the tables and the time `now`, without awaiting: no other
    /// command runs in between.
    fn apply<T>(
        &self,
        now: u64,
        f: impl FnOnce(&mut M::Doc, &SqlStorage, &Ctx) -> std::result::Result<T, StoreError>,
    ) -> Result<T> {
        let var = |name: &str| self.env.var(name).ok().map(|v| v.to_string());
        let at = Ctx {
            now_ms: now,
            var: &var,
        };
        let mut doc = self.doc.borrow_mut();
        let doc = doc.get_or_insert_with(Default::default);
        f(doc, &self.state.storage().sql(), &at).map_err(refused)
    }

    /// The document, from its keys, unless it is in memory already.
    async fn load(&self) -> Result<()> {
        if M::DOC_KEYS.is_empty() || self.doc.borrow().is_some() {
            return Ok(());
        }
        let storage = self.state.storage();
        let found = storage.get_multiple(M::DOC_KEYS.to_vec()).await?;
        let mut stored = Map::new();
        for key in M::DOC_KEYS {
            let v = found.get(&JsValue::from_str(key));
            if !v.is_undefined() {
                let v: Value = serde_wasm_bindgen::from_value(v)?;
                stored.insert(key.to_string(), v);
            }
        }
        // A command that loaded it meanwhile keeps its own.
        self.doc
            .borrow_mut()
            .get_or_insert_with(|| M::open(&stored));
        Ok(())
    }

    async fn perform(&self, step: Step, now: u64) -> Result<Response> {
        let storage = self.state.storage();
        if step.erase {
            storage.delete_alarm().await?;
            storage.delete_all().await?;
            *self.doc.borrow_mut() = None;
            self.armed.set(None);
            let _ = create(&storage.sql(), M::TABLES);
            return Response::ok(step.answer);
        }
        if step.save {
            // One JSON string per key: a JS object per field would cost a crossing per field,
            // and the runtime's structured clone on top.
            let texts = match &*self.doc.borrow() {
                Some(doc) => M::write(doc).map_err(refused)?,
                None => vec![],
            };
            for (key, text) in texts {
                storage.put_raw(key, JsValue::from_str(&text)).await?;
            }
        }
        for mut line in step.logs {
            if let Some(fields) = line.as_object_mut() {
                fields.insert("object".into(), self.state.id().name().into());
            }
            worker::console_log!("{line}");
        }
        match step.wake {
            Some(Wake::Next { unless_by }) if must_look(unless_by, self.armed.get()) => {
                let next = match &*self.doc.borrow() {
                    Some(doc) => M::next_wake(doc, &storage.sql()).map_err(refused)?,
                    None => None,
                };
                if let Some(due) = next {
                    let current = storage.get_alarm().await?.map(|t| t as u64);
                    match arm(current, due, now) {
                        Some(at) => self.set_alarm(at, now).await?,
                        None => self.armed.set(current),
                    }
                }
            }
            Some(Wake::At(at)) => self.set_alarm(at, now).await?,
            _ => {}
        }
        Response::ok(step.answer)
    }

    async fn set_alarm(&self, at: u64, now: u64) -> Result<()> {
        let offset = at.saturating_sub(now) as i64;
        self.state.storage().set_alarm(offset).await?;
        self.armed.set(Some(at));
        Ok(())
    }

    /// Sends each body again on its queue; the ids of those sent.
    async fn resend(&self, rows: Vec<Resend>) -> Vec<String> {
        let mut sent = Vec::new();
        for r in rows {
            match send_texts(&self.env, &r.binding, vec![r.body], 0).await {
                Ok(()) => {
                    worker::console_log!("{}", serde_json::json!({"outbox_resent": r.id}));
                    sent.push(r.id);
                }
                Err(e) => worker::console_error!(
                    "{}",
                    serde_json::json!({"outbox_resend_failed": r.id, "error": e.to_string()})
                ),
            }
        }
        sent
    }
}
