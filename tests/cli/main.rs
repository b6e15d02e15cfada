//! The `reorg-collateral` command-line tool and the migration toolkit it drives, against
//! the shared Postgres and Redis.

#[path = "../support/mod.rs"]
mod support;

mod migration;
mod promises;
mod streams;
mod subcommands;
