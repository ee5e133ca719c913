//! Versioned migrations of the `_fb_*` system tables. Each runs once, in its own transaction,
//! and is recorded in `_fb_migrations`; on PostgreSQL an advisory lock keeps instances that
//! start together from running one twice.

use super::{Db, DbError, Dialect, Stmt};

struct Migration {
    version: i64,
    name: &'static str,
    /// SQL for both dialects; `{json}`, `{bigint}` and `{bytewise}` (a text column compared
    /// byte by byte, as prefix ranges need) are replaced per dialect, `{now_ms}` by the time
    /// the migration runs.
    sql: &'static str,
    /// Run on this dialect only (recorded as applied on the other).
    only: Option<Dialect>,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        only: None,
        name: "collections and settings",
        sql: "
        CREATE TABLE _fb_collections (
            name TEXT PRIMARY KEY,
            rules {json} NOT NULL,
            created_at {bigint} NOT NULL,
            updated_at {bigint} NOT NULL
        );
        CREATE TABLE _fb_settings (
            key TEXT PRIMARY KEY,
            value {json} NOT NULL,
            updated_at {bigint} NOT NULL
        );
    ",
    },
    Migration {
        version: 2,
        only: None,
        name: "users, sessions, api keys, auth tokens",
        sql: "
        CREATE TABLE _fb_users (
            id TEXT PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            password_hash TEXT,
            email_verified BOOLEAN NOT NULL,
            roles {json} NOT NULL,
            metadata {json} NOT NULL,
            totp_secret TEXT,
            totp_enabled BOOLEAN NOT NULL,
            totp_last_step {bigint},
            failed_logins {bigint} NOT NULL,
            locked_until {bigint},
            created_at {bigint} NOT NULL,
            updated_at {bigint} NOT NULL
        );
        CREATE TABLE _fb_sessions (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES _fb_users(id) ON DELETE CASCADE,
            impersonated BOOLEAN NOT NULL,
            created_at {bigint} NOT NULL,
            expires_at {bigint} NOT NULL,
            last_used_at {bigint} NOT NULL,
            revoked_at {bigint},
            user_agent TEXT,
            ip TEXT
        );
        CREATE INDEX _fb_sessions_user_idx ON _fb_sessions (user_id);
        CREATE TABLE _fb_refresh_tokens (
            token_hash TEXT PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES _fb_sessions(id) ON DELETE CASCADE,
            created_at {bigint} NOT NULL,
            expires_at {bigint} NOT NULL,
            used_at {bigint}
        );
        CREATE INDEX _fb_refresh_tokens_session_idx ON _fb_refresh_tokens (session_id);
        CREATE TABLE _fb_api_keys (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES _fb_users(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            prefix TEXT NOT NULL,
            key_hash TEXT NOT NULL UNIQUE,
            created_at {bigint} NOT NULL,
            expires_at {bigint},
            last_used_at {bigint},
            revoked_at {bigint}
        );
        CREATE INDEX _fb_api_keys_user_idx ON _fb_api_keys (user_id);
        CREATE TABLE _fb_auth_tokens (
            token_hash TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            user_id TEXT REFERENCES _fb_users(id) ON DELETE CASCADE,
            email TEXT,
            created_at {bigint} NOT NULL,
            expires_at {bigint} NOT NULL,
            used_at {bigint}
        );
        CREATE TABLE _fb_recovery_codes (
            code_hash TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES _fb_users(id) ON DELETE CASCADE,
            used_at {bigint}
        );
        CREATE INDEX _fb_recovery_codes_user_idx ON _fb_recovery_codes (user_id);
    ",
    },
    Migration {
        version: 3,
        only: None,
        name: "field validation rules",
        sql: "ALTER TABLE _fb_collections ADD COLUMN field_rules {json};",
    },
    Migration {
        version: 4,
        only: None,
        name: "relations",
        sql: "
            CREATE TABLE _fb_relations (
                id TEXT PRIMARY KEY,
                collection TEXT NOT NULL,
                field TEXT NOT NULL,
                target TEXT NOT NULL,
                many BOOLEAN NOT NULL,
                on_delete TEXT NOT NULL,
                created_at {bigint} NOT NULL,
                UNIQUE (collection, field)
            );
        ",
    },
    Migration {
        version: 5,
        only: None,
        name: "search index fields",
        sql: "ALTER TABLE _fb_collections ADD COLUMN search_index {json};",
    },
    Migration {
        version: 6,
        only: None,
        name: "access rules of tables that are not collections",
        sql: "
            CREATE TABLE _fb_table_rules (
                name TEXT PRIMARY KEY,
                rules {json} NOT NULL,
                updated_at {bigint} NOT NULL
            );
        ",
    },
    Migration {
        version: 7,
        only: None,
        name: "table versions (counted in each write transaction, for cached counts)",
        sql: "
            CREATE TABLE _fb_table_versions (
                name TEXT PRIMARY KEY,
                version {bigint} NOT NULL
            );
        ",
    },
    Migration {
        version: 8,
        only: None,
        name: "storage: buckets, files, blobs to delete, spent signed uploads, resumable uploads",
        sql: "
            CREATE TABLE _fb_buckets (
                name TEXT PRIMARY KEY,
                is_public BOOLEAN NOT NULL,
                allowed_mime_types {json} NOT NULL,
                max_size_bytes {bigint},
                created_at {bigint} NOT NULL,
                updated_at {bigint} NOT NULL
            );
            INSERT INTO _fb_buckets (name, is_public, allowed_mime_types, max_size_bytes, created_at, updated_at)
                VALUES ('default', FALSE, '[]', NULL, 0, 0);
            CREATE TABLE _fb_files (
                id TEXT PRIMARY KEY,
                bucket TEXT NOT NULL,
                key TEXT {bytewise} NOT NULL,
                filename TEXT NOT NULL,
                mime_type TEXT NOT NULL,
                size {bigint} NOT NULL,
                etag TEXT NOT NULL,
                is_public BOOLEAN,
                owner_id TEXT,
                collection TEXT,
                record_id TEXT,
                blob TEXT NOT NULL,
                created_at {bigint} NOT NULL,
                updated_at {bigint} NOT NULL,
                UNIQUE (bucket, key)
            );
            CREATE INDEX _fb_files_owner ON _fb_files (owner_id, created_at);
            CREATE INDEX _fb_files_record ON _fb_files (collection, record_id);
            CREATE TABLE _fb_blob_trash (
                blob TEXT PRIMARY KEY,
                not_before {bigint} NOT NULL
            );
            CREATE TABLE _fb_signed_uses (
                nonce TEXT PRIMARY KEY,
                expires_at {bigint} NOT NULL
            );
            CREATE TABLE _fb_uploads (
                id TEXT PRIMARY KEY,
                owner_id TEXT,
                bucket TEXT NOT NULL,
                key TEXT,
                filename TEXT NOT NULL,
                mime_type TEXT,
                is_public BOOLEAN,
                collection TEXT,
                record_id TEXT,
                length {bigint} NOT NULL,
                received {bigint} NOT NULL,
                metadata TEXT NOT NULL,
                file_id TEXT,
                expires_at {bigint} NOT NULL,
                created_at {bigint} NOT NULL
            );
            CREATE TABLE _fb_upload_chunks (
                upload_id TEXT NOT NULL,
                start {bigint} NOT NULL,
                size {bigint} NOT NULL,
                blob TEXT NOT NULL,
                PRIMARY KEY (upload_id, start)
            );
        ",
    },
    Migration {
        version: 9,
        only: None,
        name: "settings audit log",
        sql: "
            CREATE TABLE _fb_settings_audit (
                id TEXT PRIMARY KEY,
                changed_at {bigint} NOT NULL,
                actor TEXT NOT NULL,
                key TEXT NOT NULL,
                old_value {json},
                new_value {json}
            );
            CREATE INDEX _fb_settings_audit_changed ON _fb_settings_audit (changed_at);
        ",
    },
    Migration {
        version: 10,
        only: None,
        name: "failed sign-ins of emails without an account",
        sql: "
            CREATE TABLE _fb_login_failures (
                email_hash TEXT PRIMARY KEY,
                failed_logins {bigint} NOT NULL,
                locked_until {bigint},
                updated_at {bigint} NOT NULL
            );
            CREATE INDEX _fb_login_failures_updated ON _fb_login_failures (updated_at);
        ",
    },
    Migration {
        version: 11,
        only: None,
        name: "limits of resumable uploads started with a signed URL",
        sql: "
            ALTER TABLE _fb_uploads ADD COLUMN max_size {bigint};
            ALTER TABLE _fb_uploads ADD COLUMN mime_pattern TEXT;
        ",
    },
    Migration {
        version: 12,
        only: None,
        name: "schema versions (checked by each write transaction against the plan it runs)",
        sql: "ALTER TABLE _fb_table_versions ADD COLUMN schema_version {bigint} NOT NULL DEFAULT 0;",
    },
    Migration {
        version: 13,
        only: Some(Dialect::Postgres),
        name: "search indexes split words on punctuation as SQLite does (rebuilt at each collection's next search)",
        sql: "
            DO $drop$ DECLARE t text; BEGIN
                FOR t IN SELECT name FROM _fb_collections WHERE search_index IS NOT NULL LOOP
                    EXECUTE format('ALTER TABLE IF EXISTS %I DROP COLUMN IF EXISTS _fb_search', t);
                END LOOP;
            END $drop$;
            UPDATE _fb_collections SET search_index = NULL WHERE search_index IS NOT NULL;
        ",
    },
    Migration {
        version: 14,
        only: None,
        name: "the default bucket dated (it was made with created_at 0)",
        sql: "UPDATE _fb_buckets SET created_at = {now_ms}, updated_at = {now_ms} WHERE name = 'default' AND created_at = 0;",
    },
];

/// Brings the system tables up to the newest version.
pub async fn run(db: &Db) -> Result<(), DbError> {
    let dialect = db.dialect();
    db.execute_script(
        "CREATE TABLE IF NOT EXISTS _fb_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
            .into(),
    )
    .await?;
    for migration in MIGRATIONS {
        let applied = db.read(Stmt::new(select_applied(dialect), vec![migration.version.into()])).await?;
        if !applied.rows.is_empty() {
            continue;
        }
        let mut script = String::new();
        if dialect == Dialect::Postgres {
            // Serialises concurrent start-ups; released at the end of the transaction.
            script.push_str("SELECT pg_advisory_xact_lock(7262019);\n");
        }
        let sql = match migration.only {
            Some(only) if only != dialect => "SELECT 1;",
            _ => migration.sql,
        };
        let body = sql
            .replace("{json}", if dialect == Dialect::Postgres { "JSONB" } else { "TEXT" })
            .replace("{bigint}", "BIGINT")
            .replace("{bytewise}", if dialect == Dialect::Postgres { "COLLATE \"C\"" } else { "" })
            .replace("{now_ms}", &crate::util::now_ms().to_string());
        // A concurrent start-up may have applied it while we waited for the lock.
        script.push_str(&guarded(dialect, migration.version, &body));
        script.push_str(&format!(
            "\nINSERT INTO _fb_migrations (version, name, applied_at) VALUES ({}, '{}', {}) ON CONFLICT DO NOTHING;",
            migration.version,
            migration.name.replace('\'', "''"),
            crate::util::now_ms()
        ));
        match db.execute_script(script).await {
            Ok(()) => tracing::info!(version = migration.version, name = migration.name, "applied migration"),
            Err(err) => {
                let recheck = db.read(Stmt::new(select_applied(dialect), vec![migration.version.into()])).await?;
                if recheck.rows.is_empty() {
                    return Err(err);
                }
            }
        }
    }
    Ok(())
}

fn select_applied(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "SELECT version FROM _fb_migrations WHERE version = ?",
        Dialect::Postgres => "SELECT version FROM _fb_migrations WHERE version = $1",
    }
}

/// On PostgreSQL the body runs only when the version is still missing after taking the lock.
fn guarded(dialect: Dialect, version: i64, body: &str) -> String {
    match dialect {
        Dialect::Sqlite => body.to_owned(),
        Dialect::Postgres => format!(
            "DO $migration$ BEGIN IF NOT EXISTS (SELECT 1 FROM _fb_migrations WHERE version = {version}) THEN EXECUTE $body${body}$body$; END IF; END $migration$;"
        ),
    }
}
