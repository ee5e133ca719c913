//! The change feed: after each commit the write pipeline publishes one event per record it
//! wrote, on a bounded in-process broadcast. After-hooks, realtime streams and caches consume
//! it; none of them is called by a handler directly.
//!
//! A consumer that falls more than [`CAPACITY`] events behind is told it lagged (and how many
//! events it missed) the next time it reads; a writer never waits for a consumer. Each table
//! has its own sequence, increasing by one with every event this instance publishes for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use tokio::sync::broadcast;

use super::Value;
use super::access::Caller;
use super::catalog::ColumnType;
use super::records::Typed;

/// How many events a consumer may fall behind before it is told it lagged.
pub const CAPACITY: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeOp {
    Create,
    Update,
    Delete,
}

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Actor {
    Anonymous,
    Admin,
    User { id: String },
}

impl From<&Caller> for Actor {
    fn from(caller: &Caller) -> Self {
        match caller {
            Caller::Anonymous => Actor::Anonymous,
            Caller::Admin => Actor::Admin,
            Caller::User(p) => Actor::User { id: p.id.clone() },
        }
    }
}

/// A record as written: its columns and values, shown as JSON only when a consumer asks.
#[derive(Debug, Clone)]
pub struct RecordData {
    pub columns: Arc<[(String, ColumnType)]>,
    pub values: Vec<Value>,
}

impl RecordData {
    pub fn get(&self, column: &str) -> Option<&Value> {
        self.columns.iter().position(|(name, _)| name == column).map(|i| &self.values[i])
    }

    pub fn to_json(&self) -> Json {
        serde_json::to_value(self).unwrap_or(Json::Null)
    }
}

impl Serialize for RecordData {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.columns.len()))?;
        for ((name, ty), value) in self.columns.iter().zip(&self.values) {
            map.serialize_entry(name, &Typed(*ty, value))?;
        }
        map.end()
    }
}

/// One record written, as the pipeline saw it before the commit.
#[derive(Debug, Clone)]
pub struct Change {
    pub collection: String,
    pub op: ChangeOp,
    /// The record's key (`_id` of a collection); `None` for a row of a table without one.
    pub id: Option<String>,
    /// The record after the change (before it, for a hard delete).
    pub record: Option<RecordData>,
    /// The record before an update or delete, when the pipeline read it.
    pub old_record: Option<RecordData>,
    pub actor: Actor,
}

/// A published change: what was written and its place in its table's sequence.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeEvent {
    pub collection: String,
    pub op: ChangeOp,
    pub id: Option<String>,
    pub record: Option<RecordData>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_record: Option<RecordData>,
    pub actor: Actor,
    /// This table's sequence number of the event: one more than the previous event's.
    pub commit_seq: u64,
}

/// The broadcast and the per-table sequences.
pub struct Feed {
    sender: broadcast::Sender<Arc<ChangeEvent>>,
    sequences: Mutex<HashMap<String, u64>>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed { sender: broadcast::channel(CAPACITY).0, sequences: Mutex::new(HashMap::new()) }
    }
}

impl Feed {
    /// A new consumer: it receives every event published from now on, or learns it lagged.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ChangeEvent>> {
        self.sender.subscribe()
    }

    /// Publishes the changes of one commit, in order. Sequences are assigned under one lock,
    /// so a table's events are numbered in the order they are published.
    pub fn publish(&self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        let mut sequences = self.sequences.lock().expect("feed sequences");
        for change in changes {
            let seq = sequences.entry(change.collection.clone()).or_insert(0);
            *seq += 1;
            let event = ChangeEvent {
                collection: change.collection,
                op: change.op,
                id: change.id,
                record: change.record,
                old_record: change.old_record,
                actor: change.actor,
                commit_seq: *seq,
            };
            // No consumer is not an error: the event is simply not kept.
            let _ = self.sender.send(Arc::new(event));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(collection: &str, id: &str) -> Change {
        Change {
            collection: collection.into(),
            op: ChangeOp::Create,
            id: Some(id.into()),
            record: None,
            old_record: None,
            actor: Actor::Admin,
        }
    }

    #[tokio::test]
    async fn sequences_are_per_table_and_a_slow_consumer_lags() {
        let feed = Feed::default();
        let mut rx = feed.subscribe();
        feed.publish(vec![change("a", "1"), change("b", "1"), change("a", "2")]);
        let seqs: Vec<(String, u64)> =
            (0..3).map(|_| rx.try_recv().unwrap()).map(|e| (e.collection.clone(), e.commit_seq)).collect();
        assert_eq!(seqs, vec![("a".into(), 1), ("b".into(), 1), ("a".into(), 2)]);
        // Publishing never waits: a consumer that fell behind learns how much it missed.
        feed.publish((0..CAPACITY + 10).map(|i| change("a", &i.to_string())).collect());
        assert!(matches!(rx.try_recv(), Err(broadcast::error::TryRecvError::Lagged(10))));
    }
}
