//! File metadata: one `_fb_files` row per stored file, naming its bucket and key, what it
//! is, who owns it, the record it belongs to and the blob that holds its bytes. The blob id
//! is never the key: replacing a file writes a new blob and swaps the row in one statement
//! group, so a reader sees the old file or the new one, never half of either.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value as Json;

use super::Files;
use crate::data::{Dialect, Rows, Stmt, Value};
use crate::error::ApiError;

/// One stored file, with whether it is public (its own flag, else its bucket's).
#[derive(Debug, Clone, PartialEq)]
pub struct FileRecord {
    pub id: String,
    pub bucket: String,
    pub key: String,
    pub filename: String,
    pub mime_type: String,
    pub size: u64,
    /// What the `ETag` names: the stored version of the content. A new file's is its id (its
    /// blob's name, which changes whenever the content does); files stored by earlier versions
    /// carry the SHA-256 of their content.
    pub version_tag: String,
    pub is_public: bool,
    /// The file's own setting behind `is_public`; `None` follows its bucket's.
    pub own_public: Option<bool>,
    pub owner_id: Option<String>,
    pub collection: Option<String>,
    pub record_id: Option<String>,
    pub blob: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The columns read for a [`FileRecord`], in its field order but for `own_public`, last (`f`
/// the file, `b` its bucket).
const COLUMNS: &str = "f.id, f.bucket, f.key, f.filename, f.mime_type, f.size, f.etag, \
    COALESCE(f.is_public, b.is_public), f.owner_id, f.collection, f.record_id, f.blob, f.created_at, f.updated_at, \
    f.is_public";
const FROM: &str = "FROM _fb_files f JOIN _fb_buckets b ON b.name = f.bucket";

/// Characters escaped in a URL path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

impl FileRecord {
    fn from_row(row: Vec<Value>) -> FileRecord {
        let mut row = row.into_iter();
        let mut next = || row.next().unwrap_or(Value::Null);
        FileRecord {
            id: next().into_text().unwrap_or_default(),
            bucket: next().into_text().unwrap_or_default(),
            key: next().into_text().unwrap_or_default(),
            filename: next().into_text().unwrap_or_default(),
            mime_type: next().into_text().unwrap_or_default(),
            size: next().as_int().unwrap_or(0).max(0) as u64,
            version_tag: next().into_text().unwrap_or_default(),
            is_public: next().as_bool(),
            owner_id: next().into_text(),
            collection: next().into_text(),
            record_id: next().into_text(),
            blob: next().into_text().unwrap_or_default(),
            created_at: next().as_int().unwrap_or(0),
            updated_at: next().as_int().unwrap_or(0),
            own_public: match next() {
                Value::Null => None,
                own => Some(own.as_bool()),
            },
        }
    }

    /// The file in the first of `rows`, if any.
    pub(super) fn first(rows: Rows) -> Option<FileRecord> {
        rows.rows.into_iter().next().map(FileRecord::from_row)
    }

    /// The strong `ETag`, quoted.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version_tag)
    }

    /// Where the collections surface serves it: `/api/v1/storage/{id}/{filename}`.
    pub fn url(&self) -> String {
        FileUrl(self).to_string()
    }

    /// Where the tables surface serves it: `/api/v1/storage/{bucket}/{key}`.
    pub fn object_path(&self) -> String {
        object_path(&self.bucket, &self.key)
    }

    /// The file as the API shows it.
    pub fn to_json(&self) -> Json {
        serde_json::to_value(self).unwrap_or(Json::Null)
    }
}

/// The API's view of a file, written straight into the answer: a bucket listing writes up to
/// a thousand of them, and building each as a JSON map first cost more than the query.
impl Serialize for FileRecord {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(16))?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("filename", &self.filename)?;
        map.serialize_entry("name", &self.key)?;
        map.serialize_entry("mime_type", &self.mime_type)?;
        map.serialize_entry("size", &self.size)?;
        map.serialize_entry("bucket", &self.bucket)?;
        map.serialize_entry("key", &self.key)?;
        map.serialize_entry("url", &format_args!("{}", FileUrl(self)))?;
        map.serialize_entry("path", &format_args!("{}", ObjectPath { bucket: &self.bucket, key: &self.key }))?;
        map.serialize_entry("is_public", &self.is_public)?;
        map.serialize_entry("etag", &format_args!("\"{}\"", self.version_tag))?;
        map.serialize_entry("owner_id", &self.owner_id)?;
        map.serialize_entry("collection", &self.collection)?;
        map.serialize_entry("record_id", &self.record_id)?;
        map.serialize_entry("created_at", &self.created_at)?;
        map.serialize_entry("updated_at", &self.updated_at)?;
        map.end()
    }
}

/// `/api/v1/storage/{id}/{filename}` as it is written out, the name percent-encoded.
struct FileUrl<'a>(&'a FileRecord);

impl std::fmt::Display for FileUrl<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "/api/v1/storage/{}/{}", self.0.id, utf8_percent_encode(&self.0.filename, SEGMENT))
    }
}

/// `/api/v1/storage/{bucket}/{key}` as it is written out, each key segment percent-encoded.
struct ObjectPath<'a> {
    bucket: &'a str,
    key: &'a str,
}

impl std::fmt::Display for ObjectPath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "/api/v1/storage/{}", self.bucket)?;
        for segment in self.key.split('/') {
            write!(f, "/{}", utf8_percent_encode(segment, SEGMENT))?;
        }
        Ok(())
    }
}

/// `/api/v1/storage/{bucket}/{key}`, each key segment percent-encoded.
pub fn object_path(bucket: &str, key: &str) -> String {
    ObjectPath { bucket, key }.to_string()
}

/// Which files of a bucket a listing shows.
#[derive(Debug, Clone)]
pub enum Visible {
    /// Every file (the admin).
    All,
    /// Public files and those this user owns.
    PublicOrOwnedBy(String),
    /// Public files only (anonymous callers).
    Public,
}

/// A page of files, and how many there are in all.
pub struct FilePage {
    pub items: Vec<FileRecord>,
    pub total: i64,
}

impl Files {
    /// The file with this id. A UUID's text is read regardless of case (RFC 9562); ids are
    /// stored in lower case.
    pub async fn file(&self, id: &str) -> Result<Option<FileRecord>, ApiError> {
        let id = id.to_ascii_lowercase();
        self.one(format!("SELECT {COLUMNS} {FROM} WHERE f.id = ?"), vec![id.into()]).await
    }

    pub async fn file_at(&self, bucket: &str, key: &str) -> Result<Option<FileRecord>, ApiError> {
        let rows = self.db.read(self.file_at_stmt(bucket, key)).await?;
        Ok(FileRecord::first(rows))
    }

    /// The read of the file at `bucket`/`key`.
    pub(super) fn file_at_stmt(&self, bucket: &str, key: &str) -> Stmt {
        let sql = format!("SELECT {COLUMNS} {FROM} WHERE f.bucket = ? AND f.key = ?");
        self.db.stmt(&sql, vec![bucket.into(), key.into()]).cached()
    }

    async fn one(&self, sql: String, params: Vec<Value>) -> Result<Option<FileRecord>, ApiError> {
        let rows = self.db.read(self.db.stmt(&sql, params).cached()).await?;
        Ok(FileRecord::first(rows))
    }

    /// Files newest first: one owner's (`Some`) or everyone's, optionally of one bucket.
    pub async fn list_files(
        &self,
        owner: Option<&str>,
        bucket: Option<&str>,
        limit: u32,
        offset: u64,
    ) -> Result<FilePage, ApiError> {
        let mut conditions = Vec::new();
        let mut params: Vec<Value> = Vec::new();
        if let Some(owner) = owner {
            conditions.push("f.owner_id = ?");
            params.push(owner.into());
        }
        if let Some(bucket) = bucket {
            conditions.push("f.bucket = ?");
            params.push(bucket.into());
        }
        let filter = if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
        let page = format!("SELECT {COLUMNS} {FROM} {filter} ORDER BY f.created_at DESC, f.id DESC LIMIT ? OFFSET ?");
        let count = format!("SELECT COUNT(*) {FROM} {filter}");
        let mut page_params = params.clone();
        page_params.extend([Value::Int(limit.into()), Value::Int(offset as i64)]);
        let mut results =
            self.db.read_many(vec![self.db.stmt(&page, page_params), self.db.stmt(&count, params)]).await?;
        let total = results.pop().and_then(|r| r.rows.first().and_then(|row| row[0].as_int())).unwrap_or(0);
        let items = results.pop().map(|r| r.rows.into_iter().map(FileRecord::from_row).collect()).unwrap_or_default();
        Ok(FilePage { items, total })
    }

    /// The files of a bucket whose keys start with `prefix`, in key order.
    pub async fn list_bucket(
        &self,
        bucket: &str,
        prefix: &str,
        visible: &Visible,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<FileRecord>, ApiError> {
        let mut sql = format!("SELECT {COLUMNS} {FROM} WHERE f.bucket = ?");
        let mut params: Vec<Value> = vec![bucket.into()];
        if !prefix.is_empty() {
            // A range on the (bucket, key) index; keys compare byte by byte on both backends.
            sql.push_str(" AND f.key >= ? AND f.key < ?");
            params.extend([prefix.into(), above_prefix(prefix).into()]);
        }
        match visible {
            Visible::All => {}
            Visible::PublicOrOwnedBy(user) => {
                sql.push_str(" AND (f.owner_id = ? OR COALESCE(f.is_public, b.is_public))");
                params.push(user.as_str().into());
            }
            Visible::Public => sql.push_str(" AND COALESCE(f.is_public, b.is_public)"),
        }
        sql.push_str(" ORDER BY f.key LIMIT ? OFFSET ?");
        params.extend([Value::Int(limit.into()), Value::Int(offset as i64)]);
        let rows = self.db.read(self.db.stmt(&sql, params)).await?;
        Ok(rows.rows.into_iter().map(FileRecord::from_row).collect())
    }

    /// Deletes a file's row and then its blob (the blob waits in the trash until it is gone,
    /// so a failure here is retried by the sweeper rather than leaking it).
    pub async fn delete_file(&self, file: &FileRecord) -> Result<(), ApiError> {
        let stmts = vec![
            trash_stmt(self, "id = ?", vec![file.id.as_str().into()]),
            self.db.stmt("DELETE FROM _fb_files WHERE id = ?", vec![file.id.as_str().into()]).must_change(),
        ];
        self.db.write_many(stmts).await.map_err(|_| ApiError::NotFound(format!("file '{}' not found", file.id)))?;
        self.sweep_soon();
        Ok(())
    }
}

/// Deletes the files matching `condition` and moves their blobs into the trash, as one
/// statement on PostgreSQL: under READ COMMITTED each statement reads its own snapshot, so a
/// delete after a separate trashing could remove a file committed in between and leak its blob.
/// SQLite runs one writer at a time, and its two statements see the same files.
pub(super) fn delete_to_trash_stmts(files: &Files, condition: &str, params: Vec<Value>) -> Vec<Stmt> {
    if files.db.dialect() == Dialect::Postgres {
        let sql = format!(
            "WITH gone AS (DELETE FROM _fb_files WHERE {condition} RETURNING blob) \
             INSERT INTO _fb_blob_trash (blob, not_before) SELECT blob, 0 FROM gone ON CONFLICT (blob) DO NOTHING"
        );
        return vec![files.db.stmt(&sql, params)];
    }
    let delete = files.db.stmt(&format!("DELETE FROM _fb_files WHERE {condition}"), params.clone());
    vec![trash_stmt(files, condition, params), delete]
}

/// Moves the blobs of the files matching `condition` into the trash (to delete now).
pub(super) fn trash_stmt(files: &Files, condition: &str, params: Vec<Value>) -> Stmt {
    let mut all = vec![Value::Int(0)];
    all.extend(params);
    files.db.stmt(
        &format!(
            "INSERT INTO _fb_blob_trash (blob, not_before) SELECT blob, ? FROM _fb_files WHERE {condition} \
             ON CONFLICT (blob) DO NOTHING"
        ),
        all,
    )
}

/// A key above every key that starts with `prefix`, byte by byte: the prefix followed by more
/// U+10FFFF (the largest character) than a key has room for after it. One U+10FFFF would miss
/// the keys that go on with U+10FFFF itself.
fn above_prefix(prefix: &str) -> String {
    let room = crate::limits::MAX_KEY_BYTES.saturating_sub(prefix.len()) / '\u{10FFFF}'.len_utf8() + 1;
    format!("{prefix}{}", "\u{10FFFF}".repeat(room))
}

#[cfg(test)]
mod tests {
    use super::above_prefix;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_key_with_the_prefix_lies_below_the_bound(prefix in "\\PC{1,20}", rest in prop::collection::vec(prop_oneof![Just('\u{10FFFF}'), any::<char>()], 0..40)) {
            let key: String = prefix.chars().chain(rest).collect();
            prop_assume!(key.len() <= crate::limits::MAX_KEY_BYTES);
            prop_assert!(key.as_bytes() < above_prefix(&prefix).as_bytes());
        }

        #[test]
        fn keys_past_the_prefix_lie_above_it(prefix in "[a-y]{1,10}") {
            let mut next = prefix.clone().into_bytes();
            *next.last_mut().unwrap() += 1;
            prop_assert!(above_prefix(&prefix).as_bytes() < next.as_slice());
        }
    }

    #[test]
    fn keys_that_go_on_with_the_largest_character_are_below() {
        let longest = format!("p{}", "\u{10FFFF}".repeat((crate::limits::MAX_KEY_BYTES - 1) / 4));
        for key in ["p\u{10FFFF}", "p\u{10FFFF}z", longest.as_str()] {
            assert!(key.as_bytes() < above_prefix("p").as_bytes(), "{key:?}");
        }
    }
}
