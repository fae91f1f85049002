//! What native tests of flows share: a fixed sealer, stored documents sealed as the admin API
//! seals them, and a platform that answers from a few fixed outcomes.

use crate::core::config::document::{seal_document, RecordRef};
use crate::core::config::seal::Sealer;
use crate::core::flow::{Effect, Outcome};
use crate::core::objects::ObjectClass;
use crate::core::platform::{ConfigKey, RecordKind};
use crate::core::Entropy;
use serde_json::Value;

pub struct Counter(pub u8);

impl Entropy for Counter {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 = self.0.wrapping_add(1);
            *b = self.0;
        }
    }
}

pub fn sealer() -> Sealer {
    Sealer::new(&"11".repeat(32)).unwrap()
}

/// `doc` as stored for `tenant`'s record `kind`/`name`: its secrets sealed.
pub fn stored(kind: RecordKind, tenant: &str, name: Option<&str>, doc: Value) -> Value {
    let record = kind.seal_record(name);
    let at = RecordRef {
        tenant,
        record: &record,
    };
    seal_document(
        doc,
        kind.secret_paths(),
        None,
        &at,
        &sealer(),
        &mut Counter(0),
    )
    .unwrap()
}

/// The commands sent to objects of `class`, as JSON, in order (inside `All` too).
pub fn asked(seen: &[Effect], class: ObjectClass) -> Vec<Value> {
    let mut out = vec![];
    for e in seen {
        match e {
            Effect::Ask { class: c, body, .. } if *c == class => {
                out.push(serde_json::from_str(body).unwrap())
            }
            Effect::All(each) => out.extend(asked(each, class)),
            Effect::Later(e) => out.extend(asked(std::slice::from_ref(e), class)),
            _ => {}
        }
    }
    out
}

/// The texts put on queues, in order (inside `All` and `Later` too).
pub fn sent(seen: &[Effect]) -> Vec<String> {
    let mut out = vec![];
    for e in seen {
        match e {
            Effect::Send { texts, .. } => out.extend(texts.iter().cloned()),
            Effect::All(each) => out.extend(sent(each)),
            Effect::Later(e) => out.extend(sent(std::slice::from_ref(e))),
            _ => {}
        }
    }
    out
}

/// A `CONFIG` namespace in memory: answers reads, writes, deletes and listings; any other effect
/// gets `other`.
#[derive(Default)]
pub struct Kv(pub std::cell::RefCell<std::collections::BTreeMap<String, Value>>);

impl Kv {
    pub fn with(docs: &[(ConfigKey, Value)]) -> Self {
        let kv = Kv::default();
        for (k, v) in docs {
            kv.0.borrow_mut().insert(k.as_str().to_string(), v.clone());
        }
        kv
    }

    pub fn get(&self, key: &ConfigKey) -> Option<Value> {
        self.0.borrow().get(key.as_str()).cloned()
    }

    pub fn answer(&self, e: &Effect) -> Option<Outcome> {
        let mut kv = self.0.borrow_mut();
        Some(match e {
            Effect::Config { key, .. } => Outcome::Doc(kv.get(key.as_str()).cloned()),
            Effect::PutConfig { key, text } => {
                kv.insert(
                    key.as_str().to_string(),
                    serde_json::from_str(text).unwrap(),
                );
                Outcome::Done
            }
            Effect::DeleteConfig(key) => {
                kv.remove(key.as_str());
                Outcome::Done
            }
            Effect::ListConfig { prefix, .. } => Outcome::Keys(
                kv.keys()
                    .filter(|k| k.starts_with(prefix.as_str()))
                    .map(|k| ConfigKey::listed(k.clone()))
                    .collect(),
            ),
            _ => return None,
        })
    }
}

/// A repeatable stream of pseudo-random numbers (a linear congruential generator, Knuth's MMIX
/// constants) for tests that cut texts at random places: the same seed, the same cuts.
pub fn pseudo_random(seed: u64) -> impl FnMut() -> usize {
    let mut state = seed;
    move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    }
}
