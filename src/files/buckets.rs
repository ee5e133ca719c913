//! Buckets: a name, whether their files are public, which content types they take and how
//! large a file may be. The private `default` bucket always exists.

use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::meta::FileRecord;
use super::{Files, names, sniff};
use crate::data::{DbError, Dialect, Rows, Stmt, Value};
use crate::error::ApiError;
use crate::limits::MAX_ALLOWED_MIME_TYPES;
use crate::util::now_ms;

/// The bucket that uploads go to when they name none; it can be changed but not deleted.
pub const DEFAULT_BUCKET: &str = "default";

#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub name: String,
    pub is_public: bool,
    /// Patterns such as `image/*`; empty admits every type.
    pub allowed_mime_types: Vec<String>,
    pub max_size_bytes: Option<u64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Made for an upload by `auto_create_buckets` and not written yet: the upload writes it
    /// with its own row ([`Files::unsaved_bucket_stmt`]), so that a refused upload leaves no
    /// bucket behind.
    pub unsaved: bool,
}

impl Bucket {
    /// The bucket as the API shows it (`public` and `file_size_limit` for Supabase-style
    /// clients as well).
    pub fn to_json(&self) -> Json {
        json!({
            "name": self.name,
            "id": self.name,
            "is_public": self.is_public,
            "public": self.is_public,
            "allowed_mime_types": self.allowed_mime_types,
            "max_size_bytes": self.max_size_bytes,
            "file_size_limit": self.max_size_bytes,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }

    /// The bucket in the first of `rows`, if any.
    fn first(rows: Rows) -> Option<Bucket> {
        rows.rows.into_iter().next().map(Bucket::from_row)
    }

    fn from_row(row: Vec<Value>) -> Bucket {
        let mut row = row.into_iter();
        let mut next = || row.next().unwrap_or(Value::Null);
        Bucket {
            name: next().text().unwrap_or_default(),
            is_public: next().as_bool(),
            allowed_mime_types: serde_json::from_value(next().as_json()).unwrap_or_default(),
            max_size_bytes: next().as_int().and_then(|n| u64::try_from(n).ok()),
            created_at: next().as_int().unwrap_or(0),
            updated_at: next().as_int().unwrap_or(0),
            unsaved: false,
        }
    }
}

const COLUMNS: &str = "name, is_public, allowed_mime_types, max_size_bytes, created_at, updated_at";

/// The settings a bucket is created or changed with; absent fields keep their value (or
/// default, on creation). `public` and `file_size_limit` are accepted as aliases.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketSettings {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, alias = "public")]
    pub is_public: Option<bool>,
    #[serde(default)]
    pub allowed_mime_types: Option<Vec<String>>,
    /// `Some(None)` clears the limit.
    #[serde(default, alias = "file_size_limit", deserialize_with = "nullable")]
    pub max_size_bytes: Option<Option<u64>>,
}

fn nullable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    Option::<u64>::deserialize(d).map(Some)
}

impl BucketSettings {
    fn check(&self) -> Result<(), ApiError> {
        if let Some(types) = &self.allowed_mime_types {
            if types.len() > MAX_ALLOWED_MIME_TYPES {
                return Err(ApiError::bad_field(
                    "allowed_mime_types",
                    format!("at most {MAX_ALLOWED_MIME_TYPES} types (MAX_ALLOWED_MIME_TYPES)"),
                ));
            }
            if let Some(bad) = types.iter().find(|t| !sniff::is_valid_pattern(t)) {
                return Err(ApiError::bad_field(
                    "allowed_mime_types",
                    format!(
                        "'{}' is not a content type pattern such as image/png or image/*",
                        names::truncate(bad, 80)
                    ),
                ));
            }
        }
        if let Some(Some(size)) = self.max_size_bytes
            && (size == 0 || i64::try_from(size).is_err())
        {
            return Err(ApiError::bad_field("max_size_bytes", "max_size_bytes must be a positive number of bytes"));
        }
        Ok(())
    }
}

impl Files {
    pub async fn list_buckets(&self) -> Result<Vec<Bucket>, ApiError> {
        let sql = format!("SELECT {COLUMNS} FROM _fb_buckets ORDER BY name");
        let rows = self.db.read(self.db.stmt(&sql, vec![])).await?;
        Ok(rows.rows.into_iter().map(Bucket::from_row).collect())
    }

    pub async fn bucket(&self, name: &str) -> Result<Option<Bucket>, ApiError> {
        Ok(Bucket::first(self.db.read(self.bucket_stmt(name)).await?))
    }

    fn bucket_stmt(&self, name: &str) -> Stmt {
        let sql = format!("SELECT {COLUMNS} FROM _fb_buckets WHERE name = ?");
        self.db.stmt(&sql, vec![name.into()]).cached()
    }

    /// Where an upload to `name`/`key` goes ([`Files::bucket_for_upload`]) and the file it
    /// would replace, read in one hand-off.
    pub async fn upload_target(
        &self,
        name: &str,
        key: &str,
        auto_create: bool,
    ) -> Result<(Bucket, Option<FileRecord>), ApiError> {
        let mut rows = self.db.read_many(vec![self.bucket_stmt(name), self.file_at_stmt(name, key)]).await?.into_iter();
        let bucket = rows.next().and_then(Bucket::first);
        let existing = rows.next().and_then(FileRecord::first);
        match bucket {
            Some(bucket) => Ok((bucket, existing)),
            // A bucket created now holds no file yet.
            None => Ok((self.missing_bucket(name, auto_create)?, None)),
        }
    }

    /// The bucket, or 404.
    pub async fn existing_bucket(&self, name: &str) -> Result<Bucket, ApiError> {
        self.bucket(name).await?.ok_or_else(|| bucket_not_found(name))
    }

    /// The bucket an upload goes to: it exists, or `auto_create` makes a private one.
    pub async fn bucket_for_upload(&self, name: &str, auto_create: bool) -> Result<Bucket, ApiError> {
        match self.bucket(name).await? {
            Some(bucket) => Ok(bucket),
            None => self.missing_bucket(name, auto_create),
        }
    }

    /// An upload's bucket that was not found: 404, or with `auto_create` a private one with
    /// no limits, which the upload writes only if it succeeds.
    fn missing_bucket(&self, name: &str, auto_create: bool) -> Result<Bucket, ApiError> {
        if !auto_create {
            return Err(ApiError::NotFound(format!(
                "bucket '{name}' not found (the setting auto_create_buckets creates buckets on first upload)"
            )));
        }
        names::check_bucket_name(name)?;
        Ok(Bucket { unsaved: true, ..new_bucket(name, BucketSettings::default()) })
    }

    /// The row of an unsaved bucket, for the statement group of the upload that made it; a
    /// bucket that another request created meanwhile is kept as it is (the upload's own row
    /// then finds its settings changed and reads it again).
    pub(super) fn unsaved_bucket_stmt(&self, bucket: &Bucket) -> Option<Stmt> {
        bucket.unsaved.then(|| self.insert_bucket_stmt(bucket, " ON CONFLICT (name) DO NOTHING"))
    }

    /// The insert of `bucket`'s row, followed by `tail`.
    fn insert_bucket_stmt(&self, bucket: &Bucket, tail: &str) -> Stmt {
        let sql = format!("INSERT INTO _fb_buckets ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?){tail}");
        let params = vec![
            bucket.name.as_str().into(),
            bucket.is_public.into(),
            Value::Json(json!(bucket.allowed_mime_types)),
            bucket.max_size_bytes.map_or(Value::Null, |n| Value::Int(n as i64)),
            bucket.created_at.into(),
            bucket.updated_at.into(),
        ];
        self.db.stmt(&sql, params)
    }

    pub async fn create_bucket(&self, name: &str, settings: BucketSettings) -> Result<Bucket, ApiError> {
        names::check_bucket_name(name)?;
        settings.check()?;
        match self.db.write(self.insert_bucket_stmt(&new_bucket(name, settings), "")).await {
            Ok(_) => self.existing_bucket(name).await,
            Err(DbError::UniqueViolation(_)) => Err(ApiError::Conflict(format!("bucket '{name}' already exists"))),
            Err(err) => Err(err.into()),
        }
    }

    pub async fn update_bucket(&self, name: &str, settings: BucketSettings) -> Result<Bucket, ApiError> {
        settings.check()?;
        if settings.name.as_deref().is_some_and(|new| new != name) {
            return Err(ApiError::bad_field("name", "a bucket cannot be renamed"));
        }
        let current = self.existing_bucket(name).await?;
        let types = settings.allowed_mime_types.unwrap_or(current.allowed_mime_types);
        let max = settings.max_size_bytes.unwrap_or(current.max_size_bytes);
        let sql = "UPDATE _fb_buckets SET is_public = ?, allowed_mime_types = ?, max_size_bytes = ?, updated_at = ? WHERE name = ?";
        let params = vec![
            settings.is_public.unwrap_or(current.is_public).into(),
            Value::Json(json!(types)),
            max.map_or(Value::Null, |n| Value::Int(n as i64)),
            now_ms().into(),
            name.into(),
        ];
        self.db.write(self.db.stmt(sql, params)).await?;
        self.existing_bucket(name).await
    }

    /// Deletes a bucket. One with files needs `force`, which deletes the files too; the
    /// `default` bucket is never deleted. Returns how many files went with it.
    pub async fn delete_bucket(&self, name: &str, force: bool) -> Result<u64, ApiError> {
        if name == DEFAULT_BUCKET {
            return Err(ApiError::bad_request("the default bucket cannot be deleted"));
        }
        let mut stmts = Vec::new();
        if self.db.dialect() == Dialect::Postgres {
            // Waits for uploads committing into the bucket (they share-lock its row), so the
            // statements below see their files; later uploads find the bucket gone.
            stmts.push(self.db.stmt("SELECT name FROM _fb_buckets WHERE name = ? FOR UPDATE", vec![name.into()]));
        }
        let files_at = stmts.len() + 1;
        if force {
            stmts.extend([
                super::meta::trash_stmt(self, "bucket = ?", vec![name.into()]),
                self.db.stmt("DELETE FROM _fb_files WHERE bucket = ?", vec![name.into()]),
                self.db.stmt("DELETE FROM _fb_buckets WHERE name = ?", vec![name.into()]).must_change(),
            ]);
        } else {
            // Empty is checked in the delete itself, so a file stored meanwhile keeps the bucket.
            stmts.push(
                self.db
                    .stmt(
                        "DELETE FROM _fb_buckets WHERE name = ? AND NOT EXISTS (SELECT 1 FROM _fb_files WHERE bucket = ?)",
                        vec![name.into(), name.into()],
                    )
                    .must_change(),
            );
        }
        match self.db.write_many(stmts).await {
            Ok(results) if force => {
                self.sweep_soon();
                Ok(results.get(files_at).map_or(0, |rows| rows.affected))
            }
            Ok(_) => Ok(0),
            Err(DbError::InStatement { source, .. }) if matches!(*source, DbError::NoRowChanged(_)) => {
                Err(self.undeletable(name).await)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Why a bucket was not deleted: it does not exist, or it holds files.
    async fn undeletable(&self, name: &str) -> ApiError {
        let count = self.db.stmt("SELECT COUNT(*) FROM _fb_files WHERE bucket = ?", vec![name.into()]);
        let mut rows = match self.db.read_many(vec![self.bucket_stmt(name), count]).await {
            Ok(rows) => rows.into_iter(),
            Err(err) => return err.into(),
        };
        if rows.next().and_then(Bucket::first).is_none() {
            return bucket_not_found(name);
        }
        let files = rows.next().and_then(|r| r.rows.first().and_then(|row| row[0].as_int())).unwrap_or(0);
        ApiError::Conflict(format!("bucket '{name}' holds {files} file(s); delete them first or pass ?force=true"))
    }
}

pub fn bucket_not_found(name: &str) -> ApiError {
    ApiError::NotFound(format!("bucket '{}' not found", names::truncate(name, 80)))
}

/// A bucket made now with `settings` (absent ones default: private, every type, no limit).
fn new_bucket(name: &str, settings: BucketSettings) -> Bucket {
    let now = now_ms();
    Bucket {
        name: name.to_owned(),
        is_public: settings.is_public.unwrap_or(false),
        allowed_mime_types: settings.allowed_mime_types.unwrap_or_default(),
        max_size_bytes: settings.max_size_bytes.flatten(),
        created_at: now,
        updated_at: now,
        unsaved: false,
    }
}
