//! The `reorg-collateral` binary as a child process, on the test database and a test's
//! schema.
#![allow(dead_code)]

use std::process::{Command, Output};

use super::pg::database_url;

/// The CLI binary cargo built for this test run.
pub const BIN: &str = env!("CARGO_BIN_EXE_reorg-collateral");

/// `reorg-collateral --schema <schema>` on `DATABASE_URL`, for the caller to add a
/// subcommand and its arguments to.
pub fn command(schema: &str) -> Command {
    let mut command = Command::new(BIN);
    command
        .env("DATABASE_URL", database_url())
        .args(["--schema", schema]);
    command
}

/// Runs `reorg-collateral --schema <schema> <args>` to its end.
pub fn run(schema: &str, args: &[&str]) -> Output {
    command(schema).args(args).output().expect("run the CLI")
}

/// A finished command's standard error, as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
