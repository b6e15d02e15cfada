//! Tests against the shared Postgres (`DATABASE_URL`, default in `.cargo/config.toml`):
//! the conformance suite, faults (killed writers, dropped connections), schema upgrades,
//! tenant names, SQL injection, writer fencing and the read path's cost.

#[path = "../support/mod.rs"]
mod support;

mod chains;
mod conformance;
mod corrections;
mod faults;
mod first_start;
mod history;
mod injection;
mod lock_keys;
mod migrations;
mod multichain;
mod read_path;
mod replicas;
mod send;
mod tenants;
mod timestamps;
mod writer_fencing;
