//! The `reorg-collateral` command-line tool and the migration toolkit it drives, against
//! the shared Postgres and Redis; and the docs, checked against the code and the CLI.

#[path = "../support/mod.rs"]
mod support;

mod chains;
mod docs;
mod explain;
mod migration;
mod promises;
mod quarantine;
mod quarantine_resume;
mod quarantine_setup;
mod quarantine_verify;
mod read_only;
mod streams;
mod subcommands;
