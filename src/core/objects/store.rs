//! A Durable Object's tables, as core sees them: statements run synchronously, as the platform's
//! SQLite runs them inside an object, so a command's reads and writes cannot interleave with
//! another command's. Like `Entropy`, the shell supplies it (`edge::durable::host`) and tests
//! supply SQLite itself (`Sqlite`), so the statements are tested as they run.

use serde::de::DeserializeOwned;

/// A value bound to a statement's `?`.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Null,
    Int(i64),
    Text(String),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

/// Times and counts are stored as SQLite integers.
impl From<u64> for Arg {
    fn from(v: u64) -> Self {
        Arg::Int(v as i64)
    }
}

impl From<u32> for Arg {
    fn from(v: u32) -> Self {
        Arg::Int(i64::from(v))
    }
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_string())
    }
}

impl<T: Into<Arg>> From<Option<T>> for Arg {
    fn from(v: Option<T>) -> Self {
        v.map_or(Arg::Null, Into::into)
    }
}

/// A statement the storage refused, or a value that did not encode.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreError(pub String);

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError(e.to_string())
    }
}

/// An object's SQL storage.
pub trait Store {
    /// Runs a statement with its `?` arguments; how many rows it wrote.
    fn run(&self, sql: &str, args: Vec<Arg>) -> Result<u64, StoreError>;
    /// A query's rows, each read by column name as a `T`.
    fn rows<T: DeserializeOwned>(&self, sql: &str, args: Vec<Arg>) -> Result<Vec<T>, StoreError>;
}

/// Runs each statement of a schema (idempotent: `CREATE ... IF NOT EXISTS`).
pub fn create<S: Store>(sql: &S, tables: &[&str]) -> Result<(), StoreError> {
    tables.iter().try_for_each(|t| sql.run(t, vec![]).map(drop))
}

/// The JSON documents in the `body` column of a query's rows (rows that do not decode are
/// skipped: a record written by an older version is left out, not an error).
pub fn bodies<T: DeserializeOwned, S: Store>(
    sql: &S,
    query: &str,
    args: Vec<Arg>,
) -> Result<Vec<T>, StoreError> {
    #[derive(serde::Deserialize)]
    struct Row {
        body: String,
    }
    let rows: Vec<Row> = sql.rows(query, args)?;
    Ok(rows
        .iter()
        .filter_map(|r| serde_json::from_str(&r.body).ok())
        .collect())
}

#[cfg(test)]
pub use sqlite::Sqlite;

#[cfg(test)]
mod sqlite {
    use super::{Arg, Store, StoreError};
    use rusqlite::types::{ToSqlOutput, Value as Sql, ValueRef};
    use serde::de::DeserializeOwned;
    use serde_json::{Map, Value};

    /// SQLite in memory, for tests.
    pub struct Sqlite(rusqlite::Connection);

    impl Default for Sqlite {
        fn default() -> Self {
            Sqlite(rusqlite::Connection::open_in_memory().unwrap())
        }
    }

    impl rusqlite::ToSql for Arg {
        fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
            Ok(ToSqlOutput::Owned(match self {
                Arg::Null => Sql::Null,
                Arg::Int(i) => Sql::Integer(*i),
                Arg::Text(t) => Sql::Text(t.clone()),
            }))
        }
    }

    fn failed(e: rusqlite::Error) -> StoreError {
        StoreError(e.to_string())
    }

    impl Store for Sqlite {
        fn run(&self, sql: &str, args: Vec<Arg>) -> Result<u64, StoreError> {
            let mut stmt = self.0.prepare(sql).map_err(failed)?;
            let params = rusqlite::params_from_iter(args.iter());
            // A statement that returns rows is run to its end, as the platform runs it.
            let mut rows = stmt.query(params).map_err(failed)?;
            while rows.next().map_err(failed)?.is_some() {}
            Ok(self.0.changes())
        }

        fn rows<T: DeserializeOwned>(
            &self,
            sql: &str,
            args: Vec<Arg>,
        ) -> Result<Vec<T>, StoreError> {
            let mut stmt = self.0.prepare(sql).map_err(failed)?;
            let names: Vec<String> = stmt.column_names().map(|n| n.to_string()).collect();
            let params = rusqlite::params_from_iter(args.iter());
            let mut rows = stmt.query(params).map_err(failed)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(failed)? {
                let mut doc = Map::new();
                for (i, name) in names.iter().enumerate() {
                    let v = match row.get_ref(i).map_err(failed)? {
                        ValueRef::Null | ValueRef::Blob(_) => Value::Null,
                        ValueRef::Integer(n) => n.into(),
                        ValueRef::Real(f) => f.into(),
                        ValueRef::Text(t) => String::from_utf8_lossy(t).into(),
                    };
                    doc.insert(name.clone(), v);
                }
                out.push(serde_json::from_value(Value::Object(doc))?);
            }
            Ok(out)
        }
    }
}
