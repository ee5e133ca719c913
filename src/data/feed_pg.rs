//! The change feed across instances on PostgreSQL. The write transaction sends every change
//! with `pg_notify` (delivered at commit, in commit order, and not at all on rollback); each
//! instance listens on one connection of its own and publishes the changes of the other
//! instances on its local feed. A change whose record does not fit a notification (NOTIFY
//! takes under 8,000 bytes) travels without it, and the listener reads the record by id.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use tokio_postgres::AsyncMessage;

use super::feed::{Actor, Change, ChangeOp, RecordData};
use super::read::{Deleted, ReadPlan};
use super::records::output_columns;
use super::{Stmt, Store, Value};

/// The channel the instances sharing a database and schema notify and listen on: its name
/// carries the schema, so that servers of other schemas of the same database (NOTIFY is
/// database-wide) do not hear each other. Empty on SQLite.
pub async fn channel(db: &super::Db) -> Result<String, super::DbError> {
    if db.dialect() != super::Dialect::Postgres {
        return Ok(String::new());
    }
    let rows = db.read(Stmt::new("SELECT current_schema()::text", vec![])).await?;
    let schema = rows.rows.first().and_then(|r| r[0].text()).unwrap_or_default();
    Ok(channel_of_schema(&schema))
}

/// The channel of the instances serving `schema`.
pub fn channel_of_schema(schema: &str) -> String {
    let channel = format!("fb_changes_{schema}");
    // A channel is an identifier: at most 63 bytes. A long schema name is shortened by hash.
    if channel.len() <= 63 {
        return channel;
    }
    format!("fb_changes_{}", &crate::auth::crypto::sha256_hex(schema)[..40])
}

/// The largest payload sent with its record; NOTIFY refuses 8,000 bytes and more.
const MAX_PAYLOAD: usize = 7_800;

/// One change as a notification carries it.
#[derive(Serialize, Deserialize)]
struct Payload {
    /// The instance that wrote it (which skips its own).
    instance: String,
    collection: String,
    op: ChangeOp,
    id: Option<String>,
    /// The record, or `None` when it did not fit (then read by id).
    record: Option<Json>,
    old_record: Option<Json>,
    actor: Actor,
    /// The change's place in its transaction (keeps equal payloads apart).
    n: usize,
}

/// The closing statement of a write transaction on PostgreSQL, one round trip: bump the
/// versions of the tables it changed (their kept counts no longer hold), `pg_notify` each
/// change to the other instances, and answer the tables' schema versions (as a JSON object,
/// the second column).
pub fn after_write_stmt(channel: &str, instance: &str, changes: &[Change]) -> Option<Stmt> {
    if changes.is_empty() {
        return None;
    }
    let mut tables: Vec<&str> = changes.iter().map(|c| c.collection.as_str()).collect();
    tables.sort_unstable();
    tables.dedup();
    let payloads: Vec<Json> = changes
        .iter()
        .enumerate()
        .map(|(n, change)| {
            let mut payload = Payload {
                instance: instance.to_owned(),
                collection: change.collection.clone(),
                op: change.op,
                id: change.id.clone(),
                record: change.record.as_ref().map(RecordData::to_json),
                old_record: change.old_record.as_ref().map(RecordData::to_json),
                actor: change.actor.clone(),
                n,
            };
            let mut text = serde_json::to_string(&payload).unwrap_or_default();
            if text.len() > MAX_PAYLOAD {
                payload.record = None;
                payload.old_record = None;
                text = serde_json::to_string(&payload).unwrap_or_default();
            }
            Json::String(text)
        })
        .collect();
    // A data-changing CTE runs whether or not it is read; pg_notify answers void, which no
    // driver decodes: the statement counts the notifications instead. The bump answers each
    // table's schema version as a schema change committed since may have left it (the write
    // executor checks them against its plan).
    let sql = format!(
        "WITH bumped AS ({} RETURNING name, schema_version) \
         SELECT COUNT(*), (SELECT jsonb_object_agg(name, schema_version) FROM bumped) FROM \
         (SELECT pg_notify($2, p) FROM jsonb_array_elements_text($3) AS p) AS sent",
        super::read::counts::bump_all_sql()
    );
    let tables = Json::Array(tables.into_iter().map(|t| Json::String(t.to_owned())).collect());
    Some(Stmt::new(sql, vec![Value::Json(tables), channel.into(), Value::Json(Json::Array(payloads))]))
}

/// The system table whose changes tell every instance to re-read its settings: a change of it
/// carries no record, only the news.
pub const SETTINGS_TABLE: &str = "_fb_settings";

/// The name under which an instance tells the others that a table's schema or rules changed
/// (the change's `id` names the table): they read that table again at once, so that every
/// instance plans, checks access and validates on the table as it now is.
pub const CATALOG_NEWS: &str = "_fb_catalog";

/// Where an instance announces news to the others: its channel, and its own name (which it
/// skips when the news comes back).
#[derive(Debug, Clone)]
pub struct Announcer {
    pub channel: String,
    pub instance: String,
}

impl Announcer {
    /// The statement that tells the other instances news of `subject` (about `id`).
    pub fn news_stmt(&self, subject: &str, id: Option<&str>) -> Stmt {
        Stmt::new(
            "SELECT COUNT(*) FROM (SELECT pg_notify($1, $2)) AS sent",
            vec![self.channel.as_str().into(), self.news(subject, id).into()],
        )
    }

    /// The notification's text that tells news of `subject` (about `id`; `None` for
    /// [`CATALOG_NEWS`] means every table).
    pub fn news(&self, subject: &str, id: Option<&str>) -> String {
        let payload = Payload {
            instance: self.instance.clone(),
            collection: subject.to_owned(),
            op: ChangeOp::Update,
            id: id.map(str::to_owned),
            record: None,
            old_record: None,
            actor: Actor::Admin,
            n: 0,
        };
        serde_json::to_string(&payload).unwrap_or_default()
    }
}

impl Store {
    /// Tells the other instances on this PostgreSQL database that the settings changed: their
    /// feeds publish it as an update of [`SETTINGS_TABLE`], on which they re-read the settings.
    /// SQLite has one server process per database, so there it does nothing.
    pub async fn announce_settings_change(&self) -> Result<(), super::DbError> {
        if self.db.dialect() != super::Dialect::Postgres {
            return Ok(());
        }
        let announcer = Announcer { channel: self.channel.clone(), instance: self.instance.clone() };
        self.db.write(announcer.news_stmt(SETTINGS_TABLE, None)).await.map(|_| ())
    }

    /// Listens for the changes of other instances until the store is dropped, reconnecting
    /// after a lost connection.
    pub async fn listen_for_changes(&self, url: &str) {
        loop {
            if let Err(err) = self.listen_once(url).await {
                tracing::warn!(%err, "listening for other instances' changes failed; reconnecting");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn listen_once(&self, url: &str) -> Result<(), tokio_postgres::Error> {
        let mut config: tokio_postgres::Config = url.parse()?;
        // A listener on a connection whose peer vanished would hear nothing, and not know it.
        super::postgres::detect_lost_connections(&mut config);
        let (client, mut connection) = config.connect(tokio_postgres::NoTls).await?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        // The connection delivers notifications as it is polled; it ends with the connection.
        let pump = tokio::spawn(async move {
            while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                match message {
                    Ok(AsyncMessage::Notification(n)) => {
                        let _ = tx.send(n.payload().to_owned());
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        client.batch_execute(&format!("LISTEN {}", super::sql::quote_ident(&self.channel))).await?;
        self.listening.send_replace(true);
        while let Some(text) = rx.recv().await {
            if let Some(change) = self.remote_change(&text).await {
                self.feed.publish(vec![change]);
            }
        }
        self.listening.send_replace(false);
        pump.abort();
        Ok(())
    }

    /// Another instance's change, its record read by id when it did not fit.
    async fn remote_change(&self, text: &str) -> Option<Change> {
        let payload: Payload = serde_json::from_str(text).ok()?;
        if payload.instance == self.instance {
            return None;
        }
        if payload.collection == CATALOG_NEWS {
            // Read again without announcing it: the news has gone round already. News of no
            // table in particular (a restore) is news of every table.
            let read = match &payload.id {
                Some(table) => self.catalog.refresh_quietly(table).await.map(|_| ()),
                None => self.catalog.reload_all().await,
            };
            if let Err(err) = read {
                tracing::warn!(%err, table = payload.id, "reading the tables another instance changed failed");
            }
            return None;
        }
        if payload.collection == SETTINGS_TABLE {
            let Payload { collection, op, actor, .. } = payload;
            return Some(Change { collection, op, id: None, record: None, old_record: None, actor });
        }
        let table = self.catalog.lookup(&payload.collection).await.ok()??;
        let columns = output_columns(&table, None, Deleted::Shown).ok()?;
        let shape: Arc<[_]> = columns.iter().map(|c| (c.name.clone(), c.ty)).collect();
        let from_json = |json: Option<Json>| {
            let object = json?;
            let values = columns.iter().map(|c| json_value(object.get(&c.name))).collect();
            Some(RecordData { columns: shape.clone(), values })
        };
        let record = match (payload.record, &payload.id) {
            (Some(json), _) => from_json(Some(json)),
            (None, Some(id)) => {
                let mut plan = ReadPlan::of(&table, super::access::Scope::All, Deleted::Shown, columns.clone());
                plan.key = Some(id);
                let read = self.read(&plan).await.ok()?;
                read.rows.rows.into_iter().next().map(|values| RecordData { columns: shape.clone(), values })
            }
            (None, None) => None,
        };
        Some(Change {
            collection: payload.collection,
            op: payload.op,
            id: payload.id,
            record,
            old_record: from_json(payload.old_record),
            actor: payload.actor,
        })
    }
}

/// A JSON value of a record as a stored value.
fn json_value(json: Option<&Json>) -> Value {
    match json {
        None | Some(Json::Null) => Value::Null,
        Some(Json::Bool(b)) => Value::Bool(*b),
        Some(Json::Number(n)) => n.as_i64().map_or_else(|| Value::Real(n.as_f64().unwrap_or_default()), Value::Int),
        Some(Json::String(s)) => Value::Text(s.clone()),
        Some(other) => Value::Json(other.clone()),
    }
}
