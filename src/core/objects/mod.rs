//! The Durable Objects that hold per-tenant state: their classes (by binding), the typed handle
//! a command travels through (`Object`, `Class`, `Command`; each class's commands are in
//! `protocol`), and `names`: where each object's name is made. What each class does is its
//! state machine (`machine`), one file per class, over its document and its tables (`store`);
//! `OauthTokens`, which waits on a token endpoint inside a command, is the one class written in
//! the shell.

pub mod machine;
pub mod names;
pub mod protocol;
pub mod store;

mod call_gate;
mod conversation;
mod dead_letters;
mod dedupe;
mod event_log;
mod outbox;
mod pending;
#[cfg(test)]
mod plans;
mod rate_limiter;
mod sequencer;
mod usage;

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;

/// A Durable Object class, by its binding in `wrangler.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectClass {
    DeadLetters,
    Dedupe,
    CallGate,
    OauthTokens,
    Outbox,
    RateLimiter,
    Conversation,
    Usage,
    EventLog,
    Sequencer,
}

impl ObjectClass {
    /// How long a caller waits for the object's answer before the call counts as failed (503):
    /// a stuck object must not hold requests open. `OauthTokens` may itself wait on a token
    /// endpoint (10 s) before it answers.
    pub fn deadline_ms(self) -> u64 {
        match self {
            ObjectClass::OauthTokens => 20_000,
            _ => 10_000,
        }
    }

    pub fn binding(self) -> &'static str {
        match self {
            ObjectClass::DeadLetters => "DEAD_LETTERS",
            ObjectClass::Dedupe => "DEDUPE",
            ObjectClass::CallGate => "CALL_GATE",
            ObjectClass::OauthTokens => "OAUTH_TOKENS",
            ObjectClass::Outbox => "OUTBOX",
            ObjectClass::RateLimiter => "RATE_LIMITER",
            ObjectClass::Conversation => "CONVERSATIONS",
            ObjectClass::Usage => "USAGE",
            ObjectClass::EventLog => "EVENT_LOG",
            ObjectClass::Sequencer => "SEQUENCER",
        }
    }
}

/// A Durable Object class: where it is bound, and the one command enum it takes.
pub trait Class {
    const CLASS: ObjectClass;
    type Cmd: Serialize + DeserializeOwned;
    /// The command that erases an object of the class.
    fn purge() -> Self::Cmd;
}

/// A command objects of class `K` take, and what they answer to it.
pub trait Command<K: Class> {
    type Answer: Serialize + DeserializeOwned;
    fn into_cmd(self) -> K::Cmd;
}

/// One object of class `K`, by its name (made by `objects::names`).
pub struct Object<K> {
    name: String,
    class: PhantomData<K>,
}

impl<K> Clone for Object<K> {
    fn clone(&self) -> Self {
        Object::named(self.name.clone())
    }
}

impl<K> Object<K> {
    fn named(name: String) -> Self {
        Object {
            name,
            class: PhantomData,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}
