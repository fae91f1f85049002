//! What a Durable Object class does, apart from the platform: the shell's one host
//! (`edge::durable::host`) loads an object's document once, applies each command to it, its
//! tables and the time, writes the document back when the command changed it, sets the alarm the
//! step asks for, and answers. Erasing an object (a purge, or its alarm's verdict) is a step too,
//! which the host performs the same way for every class. An alarm that needs the platform (queue
//! bodies sent again, a configuration document read) says so, and is applied again with what was
//! heard.

use super::store::{Store, StoreError};
use super::{Class, Command};
use crate::core::platform::ConfigKey;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

/// A class's state machine.
pub trait Machine: Class {
    /// What an object keeps in memory between commands: read at its first command from
    /// `DOC_KEYS`, written back when a step says it changed; `()` for none.
    type Doc: Serialize + DeserializeOwned + Default;
    /// The storage keys the document is read from; it is written to the first.
    const DOC_KEYS: &'static [&'static str] = &[];
    /// Its tables and indexes, created when an object starts and after it is erased.
    const TABLES: &'static [&'static str] = &[];

    /// The document from its keys' stored values (`stored` has the keys that exist).
    fn open(stored: &Map<String, Value>) -> Self::Doc {
        Self::DOC_KEYS
            .first()
            .and_then(|k| stored_doc(stored, k))
            .unwrap_or_default()
    }

    /// The document as written: each key and its JSON text.
    fn write(doc: &Self::Doc) -> Result<Vec<(&'static str, String)>, StoreError> {
        match Self::DOC_KEYS.first() {
            Some(k) => Ok(vec![(*k, serde_json::to_string(doc)?)]),
            None => Ok(vec![]),
        }
    }

    /// Applies one command.
    fn apply<S: Store>(
        doc: &mut Self::Doc,
        sql: &S,
        cmd: Self::Cmd,
        at: &Ctx,
    ) -> Result<Step, StoreError>;

    /// When an object must wake next, from what it holds (`Wake::Next`).
    fn next_wake<S: Store>(_doc: &Self::Doc, _sql: &S) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }

    /// What its alarm does, having `heard` what it asked for.
    fn alarm<S: Store>(
        _doc: &mut Self::Doc,
        _sql: &S,
        _heard: Heard,
        _at: &Ctx,
    ) -> Result<Woken, StoreError> {
        Ok(Woken::Done(Step::default()))
    }
}

/// When a command or an alarm is applied, and the deployment's settings by name.
pub struct Ctx<'a> {
    pub now_ms: u64,
    pub var: &'a dyn Fn(&str) -> Option<String>,
}

impl Ctx<'_> {
    /// At `now_ms`, with the default settings (tests).
    pub fn at(now_ms: u64) -> Ctx<'static> {
        fn none(_: &str) -> Option<String> {
            None
        }
        Ctx { now_ms, var: &none }
    }
}

/// A document as stored under `key`: JSON text, or the structured value an older version put.
pub fn stored_doc<T: DeserializeOwned>(stored: &Map<String, Value>, key: &str) -> Option<T> {
    match stored.get(key)? {
        Value::String(text) => serde_json::from_str(text).ok(),
        v => serde_json::from_value(v.clone()).ok(),
    }
}

/// What a command or an alarm did.
#[derive(Debug, Default, PartialEq)]
pub struct Step {
    /// The answer, as sent (JSON).
    pub answer: String,
    /// The document changed: write it.
    pub save: bool,
    pub wake: Option<Wake>,
    /// Log lines (JSON objects; the host adds the object's name).
    pub logs: Vec<Value>,
    /// Erase everything the object holds.
    pub erase: bool,
}

impl Step {
    /// Answers `answer` to a command of type `C` (the answer type `C` names, nothing else).
    pub fn reply<K: Class, C: Command<K>>(_cmd: &C, answer: &C::Answer) -> Step {
        Step {
            answer: serde_json::to_string(answer).unwrap_or_else(|_| "null".into()),
            ..Step::default()
        }
    }

    /// Erases the object (answering `()`).
    pub fn erase() -> Step {
        Step {
            answer: "null".into(),
            erase: true,
            ..Step::default()
        }
    }

    pub fn saving(mut self, changed: bool) -> Step {
        self.save = changed;
        self
    }

    pub fn waking(mut self, wake: Option<Wake>) -> Step {
        self.wake = wake;
        self
    }

    pub fn logging(mut self, logs: Vec<Value>) -> Step {
        self.logs = logs;
        self
    }
}

/// When the object's alarm goes off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// No later than `Machine::next_wake` (recomputed), unless the alarm is known to go off by
    /// `unless_by` already (so the hot path skips reading storage).
    Next { unless_by: Option<u64> },
    /// At this time exactly (later or sooner than it was).
    At(u64),
}

/// Alarms are set at least this far ahead, so a backlog is worked in batches.
const ALARM_MIN_AHEAD_MS: u64 = 1_000;

/// When to set an alarm that must go off by `due`, given the one set (`current`): `None` keeps
/// the current one, which already goes off no later.
pub fn arm(current: Option<u64>, due: u64, now_ms: u64) -> Option<u64> {
    let at = due.max(now_ms + ALARM_MIN_AHEAD_MS);
    match current {
        Some(c) if c <= at => None,
        _ => Some(at),
    }
}

/// Whether `Wake::Next { unless_by }` must look at the alarm, known to go off at `armed`.
pub fn must_look(unless_by: Option<u64>, armed: Option<u64>) -> bool {
    match (unless_by, armed) {
        (Some(by), Some(armed)) => armed > by,
        _ => true,
    }
}

/// What an alarm asks the platform for before it can finish.
#[derive(Debug, PartialEq)]
pub enum Woken {
    Done(Step),
    /// Send these queue bodies again (`Heard::Resent`).
    Resend(Vec<Resend>),
    /// Read a configuration document (`Heard::Config`).
    Read(ConfigKey),
}

/// A queue body to send again, on the queue bound as `binding`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Resend {
    pub id: String,
    pub binding: String,
    pub body: String,
}

/// What an alarm heard back.
#[derive(Debug, PartialEq)]
pub enum Heard {
    /// Nothing yet: the alarm just went off.
    Woke,
    /// The ids of the bodies that were sent again.
    Resent(Vec<String>),
    /// The document's text (`None`: there is none), or `Err` if it could not be read.
    Config(Result<Option<String>, ()>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_alarm_is_only_moved_sooner_and_never_closer_than_a_second() {
        let now = 10_000;
        assert_eq!(arm(None, 50_000, now), Some(50_000));
        assert_eq!(arm(Some(40_000), 50_000, now), None, "already sooner");
        assert_eq!(arm(Some(60_000), 50_000, now), Some(50_000));
        assert_eq!(arm(None, 5_000, now), Some(11_000), "overdue: a second on");
        assert_eq!(arm(Some(11_000), 5_000, now), None);
        // The hot path skips the alarm when it is known to go off in time.
        assert!(!must_look(Some(50_000), Some(40_000)));
        assert!(must_look(Some(50_000), Some(60_000)));
        assert!(must_look(Some(50_000), None), "not known: look");
        assert!(must_look(None, Some(40_000)), "always look");
    }

    #[test]
    fn a_document_is_read_as_text_or_as_an_older_structured_value() {
        let stored = json!({"a": "{\"n\":1}", "b": {"n": 2}, "c": "not json"});
        let stored = stored.as_object().unwrap();
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct D {
            n: u32,
        }
        assert_eq!(stored_doc::<D>(stored, "a"), Some(D { n: 1 }));
        assert_eq!(stored_doc::<D>(stored, "b"), Some(D { n: 2 }));
        assert_eq!(stored_doc::<D>(stored, "c"), None);
        assert_eq!(stored_doc::<D>(stored, "d"), None);
    }
}
