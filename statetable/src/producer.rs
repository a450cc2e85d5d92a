//! [`ProducerStateTable`]: sends SET and DEL operations on one table of one database (SONiC's
//! `ZmqProducerStateTable`), each call one message.
//!
//! With a [`WriteThrough`] (SONiC's `dbPersistence` on the producer side), what was sent is also
//! written to the producer's own Redis in the background.

use bytes::Bytes;

use crate::client::Client;
use crate::error::Result;
use crate::wire::{Batch, Encoder, Operation};
use crate::writethrough::WriteThrough;

/// The producer of one table. Cheap to clone; clones share the client.
#[derive(Debug, Clone)]
pub struct ProducerStateTable {
    client: Client,
    db: Bytes,
    table: Bytes,
    write_through: Option<WriteThrough>,
}

fn set_message<F: AsRef<[u8]>, V: AsRef<[u8]>>(
    db: &[u8],
    table: &[u8],
    key: &[u8],
    fields: &[(F, V)],
) -> Result<Bytes> {
    let size = fields.iter().fold(key.len() + 32, |n, (f, v)| n + f.as_ref().len() + v.as_ref().len() + 16);
    let mut enc = Encoder::with_capacity(db, table, size);
    enc.set(key, fields);
    Ok(enc.finish()?)
}

fn owned<F: AsRef<[u8]>, V: AsRef<[u8]>>(key: &[u8], fields: &[(F, V)]) -> Operation {
    Operation::set(
        Bytes::copy_from_slice(key),
        fields.iter().map(|(f, v)| (Bytes::copy_from_slice(f.as_ref()), Bytes::copy_from_slice(v.as_ref()))),
    )
}

fn del_message<K: AsRef<[u8]>>(db: &[u8], table: &[u8], keys: &[K]) -> Result<Bytes> {
    let size = keys.iter().fold(0, |n, k| n + k.as_ref().len() + 17);
    let mut enc = Encoder::with_capacity(db, table, size);
    for k in keys {
        enc.del(k.as_ref());
    }
    Ok(enc.finish()?)
}

impl ProducerStateTable {
    /// The producer of `table` in `db`, sending through `client`.
    pub fn new(client: &Client, db: impl Into<Bytes>, table: impl Into<Bytes>) -> ProducerStateTable {
        ProducerStateTable { client: client.clone(), db: db.into(), table: table.into(), write_through: None }
    }

    /// Also writes what is sent to Redis through `write_through`.
    pub fn with_write_through(mut self, write_through: WriteThrough) -> ProducerStateTable {
        self.write_through = Some(write_through);
        self
    }

    /// The table's name.
    pub fn table(&self) -> &Bytes {
        &self.table
    }

    /// The client this table sends through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn persist(&self, ops: impl IntoIterator<Item = Operation>) {
        if let Some(wt) = &self.write_through {
            wt.update(&self.table, ops);
        }
    }

    /// Sets `key` to `fields` (one message).
    ///
    /// # Errors
    /// As [`Client::send_raw`]; [`crate::Error::Encode`] at 16 MiB or more.
    pub async fn set<F: AsRef<[u8]>, V: AsRef<[u8]>>(&self, key: &[u8], fields: &[(F, V)]) -> Result<()> {
        self.client.send_raw(set_message(&self.db, &self.table, key, fields)?).await?;
        if self.write_through.is_some() {
            self.persist([owned(key, fields)]);
        }
        Ok(())
    }

    /// Deletes `key` (one message).
    ///
    /// # Errors
    /// As [`ProducerStateTable::set`].
    pub async fn del(&self, key: &[u8]) -> Result<()> {
        self.client.send_raw(del_message(&self.db, &self.table, &[key])?).await?;
        self.persist([Operation::del(Bytes::copy_from_slice(key))]);
        Ok(())
    }

    /// Sends `ops` (SETs and DELs, in order) as one message (SONiC's `set(vector)` and `send`).
    ///
    /// # Errors
    /// As [`ProducerStateTable::set`]; an oversize batch is refused whole and nothing is sent.
    pub async fn set_batch(&self, ops: &[Operation]) -> Result<()> {
        self.client.send(&self.db, &self.table, ops).await?;
        self.persist(ops.iter().cloned());
        Ok(())
    }

    /// Deletes `keys` in one message (SONiC's `del(vector)`).
    ///
    /// # Errors
    /// As [`ProducerStateTable::set_batch`].
    pub async fn del_batch<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<()> {
        self.client.send_raw(del_message(&self.db, &self.table, keys)?).await?;
        self.persist(keys.iter().map(|k| Operation::del(Bytes::copy_from_slice(k.as_ref()))));
        Ok(())
    }

    /// [`ProducerStateTable::set`] from a thread.
    ///
    /// # Errors
    /// As [`ProducerStateTable::set`].
    pub fn set_blocking<F: AsRef<[u8]>, V: AsRef<[u8]>>(&self, key: &[u8], fields: &[(F, V)]) -> Result<()> {
        self.client.send_raw_blocking(set_message(&self.db, &self.table, key, fields)?)?;
        if self.write_through.is_some() {
            self.persist([owned(key, fields)]);
        }
        Ok(())
    }

    /// [`ProducerStateTable::del`] from a thread.
    ///
    /// # Errors
    /// As [`ProducerStateTable::set`].
    pub fn del_blocking(&self, key: &[u8]) -> Result<()> {
        self.client.send_raw_blocking(del_message(&self.db, &self.table, &[key])?)?;
        self.persist([Operation::del(Bytes::copy_from_slice(key))]);
        Ok(())
    }

    /// [`ProducerStateTable::set_batch`] from a thread.
    ///
    /// # Errors
    /// As [`ProducerStateTable::set_batch`].
    pub fn set_batch_blocking(&self, ops: &[Operation]) -> Result<()> {
        self.client.send_blocking(&self.db, &self.table, ops)?;
        self.persist(ops.iter().cloned());
        Ok(())
    }

    /// [`ProducerStateTable::del_batch`] from a thread.
    ///
    /// # Errors
    /// As [`ProducerStateTable::set_batch`].
    pub fn del_batch_blocking<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<()> {
        self.client.send_raw_blocking(del_message(&self.db, &self.table, keys)?)?;
        self.persist(keys.iter().map(|k| Operation::del(Bytes::copy_from_slice(k.as_ref()))));
        Ok(())
    }

    /// Synchronous mode: the consumer's reply to the last message (see [`Client::wait`]).
    ///
    /// # Errors
    /// As [`Client::wait`].
    pub async fn wait(&self) -> Result<Option<Batch>> {
        self.client.wait().await
    }

    /// [`ProducerStateTable::wait`] from a thread without a runtime.
    ///
    /// # Errors
    /// As [`Client::wait_blocking`].
    pub fn wait_blocking(&self) -> Result<Option<Batch>> {
        self.client.wait_blocking()
    }

    /// Operations the write-through has not written yet (SONiC's `dbUpdaterQueueSize`); `None`
    /// without one.
    pub fn write_through_queue_size(&self) -> Option<usize> {
        self.write_through.as_ref().map(WriteThrough::queue_size)
    }
}
