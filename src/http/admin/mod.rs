//! The admin API under `/api/v1/admin`. Everything but `health` needs the admin secret,
//! which the [`Admin`](super::extract::Admin) extractor checks in each handler.

pub(crate) mod backup;
pub(crate) mod collections;
pub(crate) mod health;
pub(crate) mod indexes;
pub(crate) mod records;
pub(crate) mod relations;
pub(crate) mod restart;
pub(crate) mod sessions;
pub(crate) mod settings;
pub(crate) mod stats;
pub(crate) mod users;
