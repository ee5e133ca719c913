//! HTTP-level integration tests. Every test runs against SQLite and PostgreSQL.

mod harness;

mod admin;
mod cli;
mod errors;
mod query;
mod records;
