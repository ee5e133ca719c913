//! Every limit the API enforces on one request or one record, in one place. Each has a row in
//! the README's limits table, and each is answered with a 4xx that names it: these exist so
//! that no single request can exhaust the stack, the database's parameter slots or the
//! writer's time.

/// How long a client has to send a request's head (request line and headers), and how long an
/// idle kept-alive connection stays open (`--header-timeout-secs`): a client that never
/// finishes its request is disconnected after it.
pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 30;

/// The longest silence in the middle of a request body (`--body-idle-timeout-secs`): an upload
/// that stalls longer is abandoned (nothing of it is kept) and the connection closed.
pub const DEFAULT_BODY_IDLE_TIMEOUT_SECS: u64 = 60;

/// The longest value of a runtime setting, in bytes.
pub const MAX_SETTING_BYTES: usize = 4096;

/// The longest request target (path and query string), in bytes; longer is a 414.
pub const MAX_URL_BYTES: usize = 32 * 1024;

/// The most bytes of header names and values one request may send; more is a 431. Tokens,
/// cookies and a proxy's additions fit many times over, and no handler holds a large head.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// How deeply `or=(…)`/`and=(…)` groups may nest inside one another.
pub const MAX_FILTER_DEPTH: usize = 8;

/// Conditions in all the filters of one request (each condition of an `or`/`and` counts).
pub const MAX_CONDITIONS: usize = 100;

/// Values in all the `in` lists of one request.
pub const MAX_IN_VALUES: usize = 500;

/// Keys of one `sort=` or `order=`.
pub const MAX_SORT_KEYS: usize = 32;

/// The longest `select=` of the tables surface, and how deeply its embeds may nest.
pub const MAX_SELECT_BYTES: usize = 8192;
pub const MAX_SELECT_DEPTH: usize = 4;

/// Columns one `select=` names (each `*` counts once; embeds' columns included), and the
/// resources it embeds: each embed is a query of its own, and each column a term of the
/// statement's select list, which both databases cap.
pub const MAX_SELECT_ITEMS: usize = 500;
pub const MAX_SELECT_EMBEDS: usize = 16;

/// Levels of `cascade` relations one delete may follow (a record whose delete cascades to
/// records whose delete cascades…); past it the delete is refused and nothing is deleted.
pub const MAX_CASCADE_DEPTH: usize = 16;

/// Records one embed (`select=rel(*)`) or expand (`expand=field`) may put into one answer,
/// counting each copy: a page of records that each list many related ids answers a copy of
/// each related record per mention.
pub const MAX_EMBEDDED_RECORDS: usize = 50_000;

/// The longest `search=` text, its most terms and its deepest parentheses.
pub const MAX_SEARCH_BYTES: usize = 1000;
pub const MAX_SEARCH_TERMS: usize = 64;
pub const MAX_SEARCH_DEPTH: usize = 16;

/// Fields a single write may add to a collection (all records of a bulk or batch together).
pub const MAX_NEW_FIELDS_PER_WRITE: usize = 50;

/// Fields (columns, system fields included) a collection may have.
pub const MAX_COLUMNS: usize = 500;

/// Collections there may be (made by the admin or by first writes, `auto_create_collections`);
/// tables made with plain SQL are not counted.
pub const MAX_COLLECTIONS: usize = 1000;

/// Sessions a user may hold at once: a sign-in past it revokes the user's oldest sessions.
pub const MAX_SESSIONS_PER_USER: usize = 100;

/// Ids one value of a `many` relation field may hold.
pub const MAX_RELATION_IDS: usize = 1000;

/// Records of one bulk create, and operations of one batch.
pub const MAX_BULK: usize = 500;
pub const MAX_BATCH: usize = 100;

/// The largest page of the collections surface, and of the tables surface.
pub const MAX_PAGE: u32 = 500;
pub const MAX_TABLE_PAGE: u32 = 1000;

/// The most groups one aggregate answers.
pub const MAX_GROUPS: usize = 1000;

/// The longest collection or field name.
pub const MAX_NAME_BYTES: usize = 63;

/// The longest object key of the storage API, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// The longest original filename kept with a file, in bytes.
pub const MAX_FILENAME_BYTES: usize = 255;

/// The largest upload to a bucket without its own `max_size_bytes` (server-wide ceiling,
/// `--max-upload-bytes`, `MAX_UPLOAD_BYTES`): the default of [`crate::config::Config`].
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// The longest life of a signed URL, in seconds (7 days).
pub const MAX_SIGNED_URL_SECONDS: i64 = 7 * 24 * 3600;

/// The most types a bucket's `allowed_mime_types` may list.
pub const MAX_ALLOWED_MIME_TYPES: usize = 100;

/// The longest text field of an upload form, and the longest `Upload-Metadata` of a
/// resumable upload, in bytes.
pub const MAX_FORM_FIELD_BYTES: usize = 4096;
pub const MAX_UPLOAD_METADATA_BYTES: usize = 4096;

/// The largest optional JSON body of settings on a storage path that also takes files
/// (`POST /storage/buckets/{bucket}`, `POST /storage/{bucket}/{key}/signed-url`), in bytes.
pub const MAX_OPTIONS_BODY_BYTES: usize = 64 * 1024;

/// The longest header block of one part of a multipart form (its `Content-Disposition`,
/// filename and `Content-Type`), in bytes.
pub const MAX_PART_HEADER_BYTES: usize = 16 * 1024;

/// How long a refusal for the rate limit is held before it is answered (at most, and never
/// past the moment the caller's budget allows its next request). A client that sends as fast
/// as it is answered is slowed to one request per hold and connection, instead of costing the
/// server a refusal as fast as the network carries them.
pub const RATE_LIMIT_HOLD_MS: u64 = 1000;

/// Refusals held at once by one instance; past that a refusal is answered at once, with
/// `Connection: close`, so a flood over many connections cannot tie up unbounded memory.
pub const MAX_HELD_REFUSALS: usize = 1024;

/// The most characters of a message an error answer carries (a longer one is cut, ending with
/// `…`). A database's message may quote the whole value it refused (PostgreSQL's does), which
/// a client may have made huge.
pub const MAX_ERROR_MESSAGE_CHARS: usize = 2048;

/// The most roles a user may hold: every role travels in each of the user's access tokens.
pub const MAX_ROLES: usize = 100;

/// The longest role name, of a user's roles and of a `{"role": …}` access rule.
pub const MAX_ROLE_NAME_BYTES: usize = 64;

/// The most bytes of a user's `metadata` (as JSON), which comes back with every sign-in and
/// every `GET /auth/me`.
pub const MAX_USER_METADATA_BYTES: usize = 16 * 1024;
