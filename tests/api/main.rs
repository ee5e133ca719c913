//! HTTP-level integration tests. Every test runs against SQLite and PostgreSQL.

mod harness;
mod mailbox;

mod admin;
mod aggregate;
mod auth;
mod auth_email;
mod auth_security;
mod authorization;
mod backup;
mod bulk;
mod cli;
mod contention;
mod errors;
mod feed;
mod fuzz;
mod hardening;
mod openapi;
mod operations;
mod plans;
mod postgrest_js;
mod postgrest_py;
mod query;
mod records;
mod relations;
mod search;
mod settings_keys;
mod slow_clients;
mod storage;
mod storage_races;
mod storage_resumable;
mod tables_read;
mod tables_types;
mod tables_write;
mod validation;
