//! `reorg-collateral`: operate the Postgres store from the command line.
//!
//! ```text
//! reorg-collateral run --config FILE            the service: follow a node, serve HTTP
//! reorg-collateral migrate                      apply the schema migrations
//! reorg-collateral simulate --steps 200         run the watcher over a scripted chain
//! reorg-collateral backfill [--high-water N]    fold the log into user_current_balances
//! reorg-collateral verify [--sample N]          diff user_current_balances against the log
//! reorg-collateral cutover [--rollback]         switch the shared read-path flag
//! reorg-collateral rebuild-cache                repopulate the Redis collateral cache
//! reorg-collateral follow --stream <key>        print the durable notification stream
//! reorg-collateral reconcile --rpc-url URL      compare confirmed balances with balanceOf
//! reorg-collateral quarantine list              the quarantined assets and why
//! reorg-collateral explain 0x… [--json]         why a user's collateral is what it is
//! reorg-collateral explain 0x… --block N        the collateral after a past finalized block
//! reorg-collateral history-indexes              build the log index of the history reads
//! ```
//!
//! `backfill`, `verify` and `cutover` fold the crate's own `balance_updates`, or a legacy
//! table given with `--legacy-table` and its column flags.
//!
//! Exit codes: 0 success, 1 a failed operation (message on stderr; also a `verify` that
//! had nothing to check, and an interrupt), 2 bad usage (an argument out of range, a
//! refused schema name or legacy mapping), 3 `verify` found mismatches; `reconcile` exits 1
//! when a balance differs from the chain's.
//!
//! Connection strings come from `--database-url` / `DATABASE_URL` and `--redis-url` /
//! `REDIS_URL`; their values are never printed (not in `--help`, not in errors). TLS:
//! `sslmode=verify-full&sslrootcert=<ca.pem>` in the Postgres URL, `rediss://` and
//! `--redis-ca-file <ca.pem>` for Redis.
//
// One file per subcommand group: `simulate`, `migration` (backfill, verify, cutover) with
// the `history` flags they share, `cache` (rebuild-cache, verify-cache).

mod cache;
mod explain;
mod follow;
mod history;
mod migration;
mod progress;
mod quarantine;
mod reconcile;
mod run;
mod simulate;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use reorg_collateral::chains::ChainId;
use reorg_collateral::error::StoreError;
use reorg_collateral::migration::MigrationError;
use reorg_collateral::store::{PostgresConfig, PostgresStore, cancel_sessions, ping};
use tokio_util::sync::CancellationToken;

use cache::CacheArgs;
use explain::ExplainArgs;
use follow::FollowArgs;
use migration::{BackfillArgs, CutoverArgs, VerifyArgs};
use quarantine::QuarantineArgs;
use reconcile::ReconcileArgs;
use run::RunArgs;
use simulate::SimulateArgs;

/// Exit code of bad usage.
const USAGE: u8 = 2;
/// Exit code of a `verify` that found mismatches.
const MISMATCHES: u8 = 3;

/// How far the store's client-side deadline is above the statement timeout.
const OPERATION_SLACK: Duration = Duration::from_secs(30);
/// Pause between two liveness probes.
const PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// How long an interrupt waits for the server to take the cancel requests.
const CANCEL_WAIT: Duration = Duration::from_secs(5);

/// Bad usage found after parsing (exit code 2).
#[derive(Debug)]
struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// Operate a reorg-collateral Postgres store.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Postgres URL (or libpq key=value string). Its value is never printed.
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        hide_default_value = true,
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    database_url: String,
    /// Schema holding the store (created by `migrate` and `simulate` if missing; the other
    /// commands refuse a missing one). `verify`, `cutover`, `rebuild-cache` and
    /// `verify-cache` run no migration (a role without CREATE may run them) and refuse a
    /// schema that is behind this build.
    #[arg(long, default_value = "public")]
    schema: String,
    /// Run against this chain's schema, looked up in the chains catalog of --schema (the
    /// base): the base's own chain is the base itself. `migrate`, `simulate`, `backfill`
    /// and `run` add a chain missing from the catalog (schema `<base>_c<id>`); the other
    /// commands refuse it. Without it, commands run on --schema as before.
    #[arg(long, global = true)]
    chain: Option<u64>,
    /// Server-side cap on each statement, in seconds (0: none). Raise it for a full verify
    /// of a very large log.
    #[arg(long, default_value_t = 120)]
    statement_timeout: u64,
    /// Cap on each lock wait (rows, the store's writer lock), in seconds (0: none).
    #[arg(long, default_value_t = 10)]
    lock_timeout: u64,
    /// Give up when Postgres has not answered a liveness probe (a connection of its own
    /// running `SELECT 1`, every 2 seconds) for this many seconds: a frozen or unreachable
    /// server ends the command with an error instead of a hang (0: never). A slow statement
    /// of a live server does not count: its timeout is --statement-timeout.
    #[arg(long, default_value_t = 30)]
    unresponsive_timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Apply the schema migrations.
    Migrate,
    /// Run the watcher over a deterministic scripted chain (deposits, transfers, prices,
    /// shallow reorgs), syncing after every step; resumes from the store's checkpoint.
    Simulate(SimulateArgs),
    /// Fold the history into user_current_balances (resumable: run it again after a kill).
    /// The backfill owns history at or below the high-water mark; run the live watcher on
    /// a `MigratingStore` meanwhile.
    Backfill(BackfillArgs),
    /// Recompute confirmed balances from the log and diff them against
    /// user_current_balances; exits 3 when any differ.
    Verify(VerifyArgs),
    /// Switch the shared read-path flag to user_current_balances (refused before the
    /// backfill is done), or back to the log with --rollback.
    Cutover(CutoverArgs),
    /// Repopulate the Redis collateral cache from the store, for every holder.
    RebuildCache(CacheArgs),
    /// Compares the Redis cache with the store for every holder; exits 3 when any entry
    /// differs or the cache's watermark is not the store's head.
    VerifyCache(CacheArgs),
    /// The service: follow a node into Postgres (+ Redis) and serve `/metrics`, `/health`,
    /// `/collateral/{user}` and `/updates` over HTTP, as configured in a TOML file.
    Run(RunArgs),
    /// Print the durable collateral notifications of a Redis stream, one line per event,
    /// resuming after a restart (a state file, or a consumer group). Needs no database.
    Follow(FollowArgs),
    /// Compare the store's confirmed balances with the chain's `balanceOf` at the store's
    /// finalized block (batched `eth_call`s by block hash); one line per drift, exit code 1
    /// when any differs. Writes nothing.
    Reconcile(ReconcileArgs),
    /// The assets whose log could not be applied and that stopped folding there while the
    /// rest went on (`quarantine list`). Reads only.
    Quarantine(QuarantineArgs),
    /// Why a user's collateral is what it is: per asset the confirmed and pending balance
    /// with the latest log rows, the price used, the factor and the arithmetic; with
    /// --block, the collateral after a past finalized block, folded from the log.
    Explain(ExplainArgs),
    /// Build the log's history index (CREATE INDEX CONCURRENTLY), which `explain --block`
    /// needs and which costs ingest.
    HistoryIndexes,
}

impl Command {
    /// Whether the command creates or changes the schema (and so runs the migrations): the
    /// others open an existing, current store without creating anything, so a role
    /// without `CREATE` can run them.
    fn migrates(&self) -> bool {
        matches!(
            self,
            Self::Migrate | Self::Simulate(_) | Self::Backfill(_) | Self::Run(_)
        )
    }
}

/// A progress bar of `len` steps drawn with `template` on a terminal, log lines otherwise
/// (see `progress`).
fn bar(len: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), progress::target());
    if let Ok(style) = ProgressStyle::with_template(&progress::template(template)) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// The connection settings of `cli`; `application_name` tags this process's sessions so an
/// interrupt can cancel exactly their statements.
fn pg_config(cli: &Cli, application_name: &str) -> PostgresConfig {
    let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
    let statement_timeout = secs(cli.statement_timeout);
    PostgresConfig {
        statement_timeout,
        lock_timeout: secs(cli.lock_timeout),
        // Above any statement timeout asked for (a fixed one refused a raised
        // --statement-timeout); without one, the liveness probe bounds a frozen server.
        operation_deadline: statement_timeout.map(|t| t + OPERATION_SLACK),
        create_schema: matches!(
            cli.command,
            Command::Migrate | Command::Simulate(_) | Command::Run(_)
        ),
        application_name: Some(application_name.to_owned()),
        ..PostgresConfig::default()
    }
}

async fn run(
    cli: Cli,
    store: Arc<PostgresStore>,
    stop: CancellationToken,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match cli.command {
        Command::Migrate => {
            println!("migrations applied (schema {})", cli.schema);
            Ok(ExitCode::SUCCESS)
        }
        Command::Simulate(args) => args.run(store, cli.chain, stop).await,
        Command::Backfill(args) => args.run(&store).await,
        Command::Verify(args) => args.run(&store, &cli.schema).await,
        Command::Cutover(args) => args.run(&store).await,
        Command::RebuildCache(args) => args.rebuild(&store).await,
        Command::VerifyCache(args) => args.verify(&store).await,
        Command::Reconcile(args) => args.run(&store).await,
        Command::Quarantine(args) => args.run(&store).await,
        Command::Explain(args) => args.run(&store).await,
        Command::HistoryIndexes => explain::history_indexes(&store).await,
        Command::Run(_) => unreachable!("`run` connects by itself"),
        Command::Follow(_) => unreachable!("`follow` needs no store"),
    }
}

/// The schema of `chain` in the chains catalog of schema `base`: added when the command
/// `migrates`, else refused when missing (exit code 2).
async fn chain_schema(
    url: &str,
    base: &str,
    migrates: bool,
    config: &PostgresConfig,
    chain: ChainId,
) -> Result<String, Box<dyn std::error::Error>> {
    let store = if migrates {
        PostgresStore::connect_with(url, Some(base), config).await?
    } else {
        PostgresStore::open_existing(url, Some(base), config).await?
    };
    let base_store = store;
    let found = match base_store.chain_schema(chain).await? {
        Some(schema) => Some(schema),
        None if migrates => {
            let store = base_store.chain(chain).await?;
            store.pool().close().await;
            base_store.chain_schema(chain).await?
        }
        None => None,
    };
    base_store.pool().close().await;
    found.ok_or_else(|| {
        Usage(format!(
            "{chain} is not in the chains catalog of schema {base} (add it with `migrate --chain {}`)",
            chain.0
        ))
        .into()
    })
}

/// Exit code 2 for refused input (usage, a refused configuration value), else 1.
fn failure_code(e: &(dyn std::error::Error + 'static)) -> ExitCode {
    let config = |s: &StoreError| matches!(s, StoreError::Config { .. });
    let usage = e.is::<Usage>()
        || e.downcast_ref::<StoreError>().is_some_and(config)
        || matches!(e.downcast_ref::<MigrationError>(), Some(MigrationError::Store(s)) if config(s));
    if usage {
        ExitCode::from(USAGE)
    } else {
        ExitCode::FAILURE
    }
}

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM; never if no handler can be installed.
async fn interrupted() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                () = ctrl_c => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    ctrl_c.await;
}

/// Resolves with an error once Postgres at `url` has not answered a probe ([`ping`]) for
/// `timeout`; never if `timeout` is `None`. A probe that fails (refused, too many
/// connections) is not a hang: the work itself reports such a server.
async fn unresponsive(url: &str, timeout: Option<Duration>) -> Box<dyn std::error::Error> {
    let Some(timeout) = timeout else {
        return std::future::pending().await;
    };
    loop {
        if tokio::time::timeout(timeout, ping(url)).await.is_err() {
            return format!(
                "Postgres did not answer a liveness probe within {}s (frozen or unreachable; see --unresponsive-timeout); each step is one transaction, so nothing partial is committed",
                timeout.as_secs()
            )
            .into();
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let application_name = format!("reorg-collateral/{}", std::process::id());
    let config = pg_config(&cli, &application_name);
    let url = cli.database_url.clone();
    // A watcher stops gracefully on the token (its changeset finished, the store released);
    // every other command is cut off at the signal, its statements cancelled.
    let graceful = matches!(cli.command, Command::Simulate(_) | Command::Run(_));
    // A watcher has its own deadlines and retries; a one-shot command is ended by the probe
    // when the server stops answering.
    let uses_postgres = !matches!(cli.command, Command::Follow(_));
    let probe_timeout = (!graceful && uses_postgres && cli.unresponsive_timeout > 0)
        .then(|| Duration::from_secs(cli.unresponsive_timeout));
    let stop = CancellationToken::new();
    let signalled = stop.clone();
    tokio::spawn(async move {
        interrupted().await;
        signalled.cancel();
    });
    // The handler is in place before the first connection.
    tokio::task::yield_now().await;
    let work = async {
        let mut cli = cli;
        if let Command::Follow(args) = cli.command {
            return args.run().await;
        }
        if let Command::Run(args) = cli.command {
            // The service's configuration is checked before anything connects.
            let service = args.load()?;
            let chain = match cli.chain {
                // The base is the configuration's schema, when it names one.
                Some(chain) => {
                    let base = service.schema.as_deref().unwrap_or(&cli.schema);
                    let url = &cli.database_url;
                    Some(chain_schema(url, base, true, &config, ChainId(chain)).await?)
                }
                None => None,
            };
            return args
                .run(
                    &cli.database_url,
                    &cli.schema,
                    chain.as_deref(),
                    &config,
                    stop.clone(),
                )
                .await;
        }
        if let Some(chain) = cli.chain {
            let migrates = cli.command.migrates();
            cli.schema = chain_schema(
                &cli.database_url,
                &cli.schema,
                migrates,
                &config,
                ChainId(chain),
            )
            .await?;
        }
        let store = if cli.command.migrates() {
            PostgresStore::connect_with(&cli.database_url, Some(&cli.schema), &config).await?
        } else {
            PostgresStore::open_existing(&cli.database_url, Some(&cli.schema), &config).await?
        };
        run(cli, Arc::new(store), stop.clone()).await
    };
    let cut_off = async {
        if graceful {
            std::future::pending::<()>().await;
        }
        stop.cancelled().await;
    };
    let outcome = tokio::select! {
        outcome = work => outcome,
        e = unresponsive(&url, probe_timeout) => Err(e),
        () = cut_off => {
            // The statements in flight are cancelled on the server: an interrupted verify
            // or backfill leaves nothing running (and nothing partial committed). A server
            // that does not answer (frozen) does not hold the exit up.
            match tokio::time::timeout(CANCEL_WAIT, cancel_sessions(&url, &application_name)).await {
                Ok(Ok(_)) => Err("interrupted; the statements in flight were cancelled (nothing partial is committed)".into()),
                Ok(Err(e)) => Err(format!("interrupted; could not cancel the running statements: {e} (nothing partial is committed)").into()),
                Err(_) => Err(format!("interrupted; Postgres did not take the cancel requests within {}s (frozen?): a statement may still run there until it notices this client is gone (nothing partial is committed)", CANCEL_WAIT.as_secs()).into()),
            }
        }
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            failure_code(&*e)
        }
    }
}
