//! What each Durable Object class takes and answers. A class is a marker type here with one
//! command enum; a command of class `K` names its answer type, so asking an `Object<K>` a wrong
//! op, or reading a wrong answer, does not compile. The edge's classes match on these enums, and
//! callers (edge or core flows) send them through one untyped round trip.

use super::{names, Class, Command, Object, ObjectClass};
use crate::core::integration::connect::pending::{Attempt, AttemptCmd};
use crate::core::integration::oauth_tokens::{
    ConnectionRefresh, IssuedToken, KeptRefresh, KeptRefreshCmd, ReleaseRefresh, RotatedRefresh,
    TokenCmd, TokenRefusal,
};
use crate::core::jobs::order::{Done, Offer, OrderedAgain, Released, Replay, Skip};
use crate::core::jobs::{
    DeadLetter, DeleteLetter, ExpireLetters, GetLetter, ListLetters, OpenWork, PutLetter,
};
use crate::core::limits::budget::Spend;
use crate::core::limits::gate::{
    Begin, BeginCmd, DeliveryQuery, DeliveryRecord, FinishCmd, LastCall, Spoke,
};
use crate::core::limits::limiter::{AdmitCmd, Admitted, SettleCmd, SpendQuery};
use crate::core::mcp::tool_calls::{ToolCallPage, ToolCallQuery};
use crate::core::portal::spend::SpendLink;
use crate::core::usage::{Batch, Counters, Dims, Range};
use crate::core::webhook::dedupe::{Forget, HandshakeAttempt, SeenMany, SeenResult};
use crate::core::webhook::event_log::{
    EventDetail, EventPage, EventQuery, ExpireLog, GetEvent, LogBatch,
};
use crate::core::webhook::handshake::Verdict;
use crate::core::webhook::health::Disable;
use crate::core::widget::{AppendCmd, GetHistory, History};

/// A class's marker type, binding and command enum, declared from its `Variant(Payload) -> Answer`
/// lines: each payload becomes its variant, and a `Purge` variant erases an object.
macro_rules! classes {
    ($($(#[$doc:meta])* $class:ident: $binding:expr => $cmd:ident {
        $($variant:ident($payload:ty) -> $answer:ty),* $(,)?
    })*) => {$(
        $(#[$doc])*
        pub enum $class {}

        #[doc = concat!("What a `", stringify!($class), "` takes.")]
        #[derive(serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $cmd {
            $($variant($payload),)*
            Purge,
        }

        impl Class for $class {
            const CLASS: ObjectClass = $binding;
            type Cmd = $cmd;
            fn purge() -> $cmd {
                $cmd::Purge
            }
        }

        $(impl Command<$class> for $payload {
            type Answer = $answer;
            fn into_cmd(self) -> $cmd {
                $cmd::$variant(self)
            }
        })*
    )*};
}

/// A token, or why none could be had (never the endpoint's text).
pub type TokenAnswer = Result<IssuedToken, TokenRefusal>;

classes! {
    /// One per tenant: its LLM windows and target breakers (`limits::limiter`).
    RateLimiter: ObjectClass::RateLimiter => LimiterCmd {
        Admit(AdmitCmd) -> Admitted,
        Settle(SettleCmd) -> (),
        Spend(SpendQuery) -> Vec<Spend>,
    }
    /// One per widget conversation: its bounded history.
    Conversation: ObjectClass::Conversation => ConversationCmd {
        Get(GetHistory) -> History,
        Append(AppendCmd) -> History,
    }
    /// One per tenant: messages that exhausted their retries.
    DeadLetters: ObjectClass::DeadLetters => LettersCmd {
        Put(PutLetter) -> (),
        List(ListLetters) -> Vec<DeadLetter>,
        Get(GetLetter) -> Option<DeadLetter>,
        Delete(DeleteLetter) -> (),
        Expire(ExpireLetters) -> u32,
    }
    /// One per channel and integration: what a call must pass first and what it records after.
    CallGate: ObjectClass::CallGate => GateCmd {
        Begin(BeginCmd) -> Begin,
        Finish(FinishCmd) -> (),
        Delivery(DeliveryQuery) -> Option<DeliveryRecord>,
        LastCall(LastCall) -> Option<Spoke>,
    }
    /// One per webhook source: seen ids, open work, handshake failures.
    Dedupe: ObjectClass::Dedupe => DedupeCmd {
        SeenMany(SeenMany) -> SeenResult,
        Forget(Forget) -> (),
        Update(OpenWork) -> (),
        Handshake(HandshakeAttempt) -> Verdict,
    }
    /// One per OAuth2 integration (and one per tenant for its LLM providers' service accounts):
    /// its access token, fetched one at a time, and the refresh token its provider rotated to;
    /// for a connected one, the connect's attempts until the callback (`Attempt`), the
    /// connection's refresh token (`Keep`), and what a disconnect revokes (`Release`).
    OauthTokens: ObjectClass::OauthTokens => TokensCmd {
        Token(Box<TokenCmd>) -> TokenAnswer,
        Kept(KeptRefreshCmd) -> KeptRefresh,
        Attempt(AttemptCmd) -> Option<Attempt>,
        Connected(ConnectionRefresh) -> (),
        Release(ReleaseRefresh) -> Option<RotatedRefresh>,
    }
    /// One per channel: its queued sends until each is finished.
    Outbox: ObjectClass::Outbox => OutboxCmd {
        Update(OpenWork) -> (),
    }
    /// One per tenant: its usage, hour by hour (`core::usage`).
    Usage: ObjectClass::Usage => UsageCmd {
        Add(Batch) -> (),
        Rows(Range) -> Vec<(Dims, Counters)>,
    }
    /// One per tenant and ordered destination: its deliveries one at a time per ordering key
    /// (`jobs::sequencing`).
    Sequencer: ObjectClass::Sequencer => SeqCmd {
        Offer(Offer) -> Released,
        Skip(Skip) -> Released,
        Done(Done) -> Released,
        Replay(Replay) -> Released,
        Update(OpenWork) -> (),
        OrderedAgain(OrderedAgain) -> (),
    }
    /// One per tenant: its events, their deliveries and every attempt (`webhook::event_log`),
    /// its MCP tool calls (`mcp::audit`), and the portal links it spent (`portal::spend`).
    EventLog: ObjectClass::EventLog => LogCmd {
        Record(LogBatch) -> Vec<Disable>,
        List(EventQuery) -> EventPage,
        Get(GetEvent) -> Option<EventDetail>,
        Expire(ExpireLog) -> u32,
        ToolCalls(ToolCallQuery) -> ToolCallPage,
        SpendLink(SpendLink) -> bool,
    }
}

impl Object<RateLimiter> {
    /// A tenant's LLM limits and target breakers (the widget's visitor windows too).
    pub fn llm(tenant: &str) -> Self {
        Object::named(names::llm(tenant))
    }
}

impl Object<Usage> {
    /// A tenant's usage.
    pub fn usage(tenant: &str) -> Self {
        Object::named(names::usage(tenant))
    }
}

impl Object<Conversation> {
    pub fn of(tenant: &str, id: &str) -> Self {
        Object::named(names::conversation(tenant, id))
    }
}

impl Object<DeadLetters> {
    pub fn tenant(tenant: &str) -> Self {
        Object::named(names::dead_letters(tenant))
    }
}

impl Object<EventLog> {
    pub fn tenant(tenant: &str) -> Self {
        Object::named(names::event_log(tenant))
    }
}

impl Object<CallGate> {
    pub fn channel(tenant: &str, channel: &str) -> Self {
        Object::named(names::channel(tenant, channel))
    }

    pub fn integration(tenant: &str, id: &str) -> Self {
        Object::named(names::integration(tenant, id))
    }

    pub fn destination(tenant: &str, name: &str) -> Self {
        Object::named(names::destination(tenant, name))
    }
}

impl Object<Dedupe> {
    pub fn source(tenant: &str, source: &str) -> Self {
        Object::named(names::source(tenant, source))
    }
}

impl Object<OauthTokens> {
    pub fn integration(tenant: &str, id: &str) -> Self {
        Object::named(names::integration(tenant, id))
    }

    /// The tokens of a tenant's LLM providers (Vertex AI service accounts).
    pub fn llm(tenant: &str) -> Self {
        Object::named(names::llm(tenant))
    }

    pub fn destination(tenant: &str, name: &str) -> Self {
        Object::named(names::destination(tenant, name))
    }
}

impl Object<Sequencer> {
    pub fn destination(tenant: &str, name: &str) -> Self {
        Object::named(names::destination(tenant, name))
    }
}

impl Object<Outbox> {
    pub fn channel(tenant: &str, channel: &str) -> Self {
        Object::named(names::channel(tenant, channel))
    }
}

/// The command that erases any object of `class`, as sent.
pub fn purge_body(class: ObjectClass) -> String {
    fn body<K: Class>() -> String {
        serde_json::to_string(&K::purge()).unwrap_or_default()
    }
    match class {
        ObjectClass::DeadLetters => body::<DeadLetters>(),
        ObjectClass::Dedupe => body::<Dedupe>(),
        ObjectClass::CallGate => body::<CallGate>(),
        ObjectClass::OauthTokens => body::<OauthTokens>(),
        ObjectClass::Outbox => body::<Outbox>(),
        ObjectClass::RateLimiter => body::<RateLimiter>(),
        ObjectClass::Conversation => body::<Conversation>(),
        ObjectClass::Usage => body::<Usage>(),
        ObjectClass::EventLog => body::<EventLog>(),
        ObjectClass::Sequencer => body::<Sequencer>(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_travel_as_their_snake_case_variant() {
        let cmd = HandshakeAttempt { matched: true }.into_cmd();
        let text = serde_json::to_string(&cmd).unwrap();
        assert_eq!(text, r#"{"handshake":{"matched":true}}"#);
        assert_eq!(purge_body(ObjectClass::Outbox), r#""purge""#);
    }

    #[test]
    fn objects_are_named_by_their_tenant_first() {
        assert_eq!(
            Object::<CallGate>::integration("t1", "crm").name(),
            "t1:integration:crm"
        );
        assert_eq!(Object::<RateLimiter>::llm("t1").name(), "llm:t1");
    }
}
