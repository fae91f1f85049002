//! `DeadLetters`, one per tenant: its messages that exhausted their retries, kept for inspection
//! and replay until the upkeep expires them.

use super::machine::{Ctx, Machine, Step};
use super::protocol::{DeadLetters, LettersCmd};
use super::store::{bodies, Store, StoreError};
use crate::core::jobs::{DeadLetter, ExpireLetters, PutLetter};

impl Machine for DeadLetters {
    type Doc = ();
    const TABLES: &'static [&'static str] = &[
        "CREATE TABLE IF NOT EXISTS letters (id TEXT PRIMARY KEY, dead_at INTEGER NOT NULL, body TEXT NOT NULL)",
    ];

    fn apply<S: Store>(_: &mut (), sql: &S, cmd: LettersCmd, _: &Ctx) -> Result<Step, StoreError> {
        Ok(match cmd {
            LettersCmd::Purge => Step::erase(),
            LettersCmd::Put(put) => {
                let PutLetter(l) = &put;
                sql.run(
                    "INSERT OR REPLACE INTO letters (id, dead_at, body) VALUES (?, ?, ?)",
                    vec![
                        l.id.as_str().into(),
                        l.dead_at.into(),
                        serde_json::to_string(l)?.into(),
                    ],
                )?;
                Step::reply(&put, &())
            }
            LettersCmd::List(list) => {
                let query = "SELECT body FROM letters ORDER BY dead_at LIMIT ?";
                let letters: Vec<DeadLetter> = bodies(sql, query, vec![list.bound().into()])?;
                Step::reply(&list, &letters)
            }
            LettersCmd::Get(get) => {
                let query = "SELECT body FROM letters WHERE id = ?";
                let found: Vec<DeadLetter> = bodies(sql, query, vec![get.id.as_str().into()])?;
                Step::reply(&get, &found.into_iter().next())
            }
            LettersCmd::Expire(x @ ExpireLetters { before_ms }) => {
                let query = "DELETE FROM letters WHERE dead_at < ?";
                let gone = sql.run(query, vec![before_ms.into()])?;
                Step::reply(&x, &(gone as u32))
            }
            LettersCmd::Delete(d) => {
                let query = "DELETE FROM letters WHERE id = ?";
                sql.run(query, vec![d.id.as_str().into()])?;
                Step::reply(&d, &())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::jobs::{DeleteLetter, GetLetter, ListLetters};
    use crate::core::objects::store::{create, Sqlite};

    fn letter(id: &str, dead_at: u64) -> DeadLetter {
        DeadLetter {
            id: id.into(),
            queue: "events".into(),
            dead_at,
            attempts: 5,
            last_error: "503".into(),
            message: serde_json::json!({"tenant": "acme"}),
        }
    }

    fn ask(sql: &Sqlite, cmd: LettersCmd) -> String {
        DeadLetters::apply(&mut (), sql, cmd, &Ctx::at(0))
            .unwrap()
            .answer
    }

    #[test]
    fn letters_are_listed_oldest_first_found_by_id_deleted_and_expired_by_age() {
        let sql = Sqlite::default();
        create(&sql, DeadLetters::TABLES).unwrap();
        for (id, at) in [("b", 20), ("a", 10), ("c", 30)] {
            ask(&sql, LettersCmd::Put(PutLetter(letter(id, at))));
        }
        let list = |limit| ask(&sql, LettersCmd::List(ListLetters { limit }));
        let ids = |text: String| -> Vec<String> {
            let letters: Vec<DeadLetter> = serde_json::from_str(&text).unwrap();
            letters.into_iter().map(|l| l.id).collect()
        };
        assert_eq!(ids(list(None)), ["a", "b", "c"]);
        assert_eq!(ids(list(Some(2))), ["a", "b"]);
        let get = |id: &str| ask(&sql, LettersCmd::Get(GetLetter { id: id.into() }));
        let b: Option<DeadLetter> = serde_json::from_str(&get("b")).unwrap();
        assert_eq!(b, Some(letter("b", 20)));
        assert_eq!(get("zz"), "null");
        ask(&sql, LettersCmd::Delete(DeleteLetter { id: "b".into() }));
        assert_eq!(ids(list(None)), ["a", "c"]);
        let expire = ExpireLetters { before_ms: 30 };
        assert_eq!(
            ask(&sql, LettersCmd::Expire(expire)),
            "1",
            "only a died before 30"
        );
        assert_eq!(ids(list(None)), ["c"]);
    }
}
