//! Every limit the API enforces on one request or one record, in one place. Each has a row in
//! the README's limits table, and each is answered with a 4xx that names it: these exist so
//! that no single request can exhaust the stack, the database's parameter slots or the
//! writer's time.

/// The longest request target (path and query string), in bytes; longer is a 414.
pub const MAX_URL_BYTES: usize = 32 * 1024;

/// How deeply `or=(…)`/`and=(…)` groups may nest inside one another.
pub const MAX_FILTER_DEPTH: usize = 8;

/// Conditions in all the filters of one request (each condition of an `or`/`and` counts).
pub const MAX_CONDITIONS: usize = 100;

/// Values in all the `in` lists of one request.
pub const MAX_IN_VALUES: usize = 500;

/// The longest `select=` of the tables surface, and how deeply its embeds may nest.
pub const MAX_SELECT_BYTES: usize = 8192;
pub const MAX_SELECT_DEPTH: usize = 4;

/// The longest `search=` text, its most terms and its deepest parentheses.
pub const MAX_SEARCH_BYTES: usize = 1000;
pub const MAX_SEARCH_TERMS: usize = 64;
pub const MAX_SEARCH_DEPTH: usize = 16;

/// Fields a single write may add to a collection (all records of a bulk or batch together).
pub const MAX_NEW_FIELDS_PER_WRITE: usize = 50;

/// Fields (columns, system fields included) a collection may have.
pub const MAX_COLUMNS: usize = 500;

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
