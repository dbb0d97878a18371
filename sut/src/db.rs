//! A durable local table of JSON values on redb. Every commit is fsynced before it returns,
//! so anything acknowledged after a commit survives SIGKILL.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use redb::{Database, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A table of string keys to JSON values.
pub type Table = TableDefinition<'static, &'static str, &'static [u8]>;

/// A redb database shared by a role's handlers.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Database>,
}

/// One write transaction; nothing is visible or durable until [`Txn::commit`].
pub struct Txn {
    inner: redb::WriteTransaction,
}

impl Db {
    /// Opens or creates `path`.
    pub fn open(path: &Path) -> anyhow::Result<Db> {
        let db = Database::create(path)
            .with_context(|| format!("opening database {}", path.display()))?;
        Ok(Db {
            inner: Arc::new(db),
        })
    }

    /// Reads one value.
    pub fn get<T: DeserializeOwned>(&self, table: Table, key: &str) -> anyhow::Result<Option<T>> {
        let txn = self.inner.begin_read()?;
        let t = match txn.open_table(table) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        match t.get(key)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
            None => Ok(None),
        }
    }

    /// Up to `limit` values with keys strictly after `after`, in key order.
    pub fn scan<T: DeserializeOwned>(
        &self,
        table: Table,
        after: Option<&str>,
        limit: usize,
    ) -> anyhow::Result<Vec<(String, T)>> {
        let txn = self.inner.begin_read()?;
        let t = match txn.open_table(table) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        let range = match after {
            Some(a) => {
                t.range::<&str>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))?
            }
            None => t.range::<&str>(..)?,
        };
        for entry in range {
            let (k, v) = entry?;
            out.push((k.value().to_owned(), serde_json::from_slice(v.value())?));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Starts a write transaction.
    pub fn begin(&self) -> anyhow::Result<Txn> {
        Ok(Txn {
            inner: self.inner.begin_write()?,
        })
    }
}

impl Txn {
    /// Stages `key = value` in `table`.
    pub fn put<T: Serialize>(&mut self, table: Table, key: &str, value: &T) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec(value)?;
        let mut t = self.inner.open_table(table)?;
        t.insert(key, bytes.as_slice())?;
        Ok(())
    }

    /// Makes the staged writes durable (fsync) and visible.
    pub fn commit(self) -> anyhow::Result<()> {
        self.inner.commit().context("committing")?;
        Ok(())
    }
}
