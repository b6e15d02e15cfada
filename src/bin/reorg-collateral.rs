//! `reorg-collateral`: operate the Postgres store from the command line.
//!
//! ```text
//! reorg-collateral migrate                      apply the schema migrations
//! reorg-collateral simulate --steps 200         run the watcher over a scripted chain
//! reorg-collateral backfill [--high-water N]    fold the log into user_current_balances
//! reorg-collateral verify [--sample N]          diff user_current_balances against the log
//! reorg-collateral cutover [--rollback]         switch the shared read-path flag
//! reorg-collateral rebuild-cache                repopulate the Redis collateral cache
//! ```
//!
//! `backfill`, `verify` and `cutover` fold the crate's own `balance_updates`, or a legacy
//! table given with `--legacy-table` and its column flags.
//!
//! Exit codes: 0 success, 1 a failed operation (message on stderr; also a `verify` that
//! had nothing to check, and an interrupt), 2 bad usage (an argument out of range, a
//! refused schema name or legacy mapping), 3 `verify` found mismatches.
//!
//! Connection strings come from `--database-url` / `DATABASE_URL` and `--redis-url` /
//! `REDIS_URL`; their values are never printed (not in `--help`, not in errors). TLS:
//! `sslmode=verify-full&sslrootcert=<ca.pem>` in the Postgres URL, `rediss://` and
//! `--redis-ca-file <ca.pem>` for Redis.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use reorg_collateral::cache::{RedisCacheConfig, RedisCollateralCache};
use reorg_collateral::error::StoreError;
use reorg_collateral::migration::MigrationError;
use reorg_collateral::migration::{
    AddressEncoding, AmountColumns, Backfill, BackfillConfig, History, LegacyLog, Phase, ReadPath,
    StatusColumn, SwitchableReads, VerifyMode, verify,
};
use reorg_collateral::model::AssetRegistry;
use reorg_collateral::reader::CollateralReader;
use reorg_collateral::source::ScriptedChain;
use reorg_collateral::store::{PostgresConfig, PostgresStore, cancel_sessions};
use reorg_collateral::valuation::Valuator;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};

/// Exit code of bad usage.
const USAGE: u8 = 2;
/// Exit code of a `verify` that found mismatches.
const MISMATCHES: u8 = 3;
/// The most users `simulate` scripts (each is an allocation and a key per block).
const MAX_USERS: u64 = 1_000_000;
/// The most balance events per simulated block.
const MAX_EVENTS: u64 = 1_000_000;
/// The most keys `verify --sample` draws.
const MAX_SAMPLE: i64 = 10_000_000;

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
    /// commands refuse a missing one).
    #[arg(long, default_value = "public")]
    schema: String,
    /// Server-side cap on each statement, in seconds (0: none). Raise it for a full verify
    /// of a very large log.
    #[arg(long, default_value_t = 120)]
    statement_timeout: u64,
    /// Cap on each lock wait (rows, the store's writer lock), in seconds (0: none).
    #[arg(long, default_value_t = 10)]
    lock_timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Apply the schema migrations.
    Migrate,
    /// Run the watcher over a deterministic scripted chain (deposits, transfers, prices,
    /// shallow reorgs), syncing after every step; resumes from the store's checkpoint.
    Simulate {
        /// Script seed: the same seed gives the same chain.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Steps (blocks or reorgs) to play.
        #[arg(long, default_value_t = 100)]
        steps: usize,
        /// Balance events per block (at most 1,000,000).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=MAX_EVENTS))]
        events: u64,
        /// Users in the script (1 to 1,000,000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=MAX_USERS))]
        users: u64,
        /// Confirmation depth (at least 1).
        #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u64).range(1..))]
        confirmations: u64,
    },
    /// Fold the history into user_current_balances (resumable: run it again after a kill).
    /// The backfill owns history at or below the high-water mark; run the live watcher on
    /// a `MigratingStore` meanwhile.
    Backfill {
        #[command(flatten)]
        history: HistoryArgs,
        /// High-water mark (default: the history's newest confirmed block). Ignored when
        /// resuming.
        #[arg(long, value_parser = clap::value_parser!(u64).range(0..=i64::MAX as u64))]
        high_water: Option<u64>,
        /// History rows per transaction.
        #[arg(long, default_value_t = 250_000)]
        chunk_rows: u64,
        /// Keys merged per transaction.
        #[arg(long, default_value_t = 20_000)]
        merge_keys: u64,
        /// Forget a finished or failed backfill first and start a new one (rows already
        /// merged into user_current_balances stay). Refused after the cutover.
        #[arg(long)]
        reset: bool,
    },
    /// Recompute confirmed balances from the log and diff them against
    /// user_current_balances; exits 3 when any differ.
    Verify {
        #[command(flatten)]
        history: HistoryArgs,
        /// Check about N sampled keys instead of all of them (1 to 10,000,000).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=MAX_SAMPLE))]
        sample: Option<u32>,
        /// Mismatches to print.
        #[arg(long, default_value_t = 20)]
        show: u32,
    },
    /// Switch the shared read-path flag to user_current_balances (refused before the
    /// backfill is done), or back to the log with --rollback.
    Cutover {
        #[command(flatten)]
        history: HistoryArgs,
        /// Switch back to the legacy log query.
        #[arg(long)]
        rollback: bool,
    },
    /// Repopulate the Redis collateral cache from the store, for every holder.
    RebuildCache {
        /// Redis URL. Its value is never printed.
        #[arg(
            long,
            env = "REDIS_URL",
            hide_env_values = true,
            hide_default_value = true,
            default_value = "redis://127.0.0.1:6379"
        )]
        redis_url: String,
        /// Key prefix of the cache.
        #[arg(long, default_value = "collateral")]
        prefix: String,
        /// A PEM file of the CA that signed the Redis server's certificate (for a
        /// `rediss://` URL whose server is not signed by a system root).
        #[arg(long, env = "REDIS_CA_FILE")]
        redis_ca_file: Option<std::path::PathBuf>,
        /// Prices older than this many seconds (before the head) count as stale.
        #[arg(long, default_value_t = 3_600)]
        max_price_age: u64,
    },
    /// Compares the Redis cache with the store for every holder; exits 3 when any entry
    /// differs or the cache's watermark is not the store's head.
    VerifyCache {
        /// Redis URL. Its value is never printed.
        #[arg(
            long,
            env = "REDIS_URL",
            hide_env_values = true,
            hide_default_value = true,
            default_value = "redis://127.0.0.1:6379"
        )]
        redis_url: String,
        /// Key prefix of the cache.
        #[arg(long, default_value = "collateral")]
        prefix: String,
        /// A PEM file of the CA that signed the Redis server's certificate (for a
        /// `rediss://` URL whose server is not signed by a system root).
        #[arg(long, env = "REDIS_CA_FILE")]
        redis_ca_file: Option<std::path::PathBuf>,
        /// Prices older than this many seconds (before the head) count as stale.
        #[arg(long, default_value_t = 3_600)]
        max_price_age: u64,
    },
}

/// The history to fold: the crate's `balance_updates`, or a legacy table.
#[derive(Args, Debug)]
struct HistoryArgs {
    /// A legacy log table (`name` or `schema.name`) instead of balance_updates.
    #[arg(long)]
    legacy_table: Option<String>,
    /// Its block-number column.
    #[arg(long, default_value = "block_number")]
    legacy_block: String,
    /// Its log-index column ("" for none).
    #[arg(long, default_value = "log_index")]
    legacy_log_index: String,
    /// Its user-address column.
    #[arg(long, default_value = "user_address")]
    legacy_user: String,
    /// Its asset-address column.
    #[arg(long, default_value = "asset_id")]
    legacy_asset: String,
    /// How it stores addresses.
    #[arg(long, value_enum, default_value_t = Encoding::Hex)]
    legacy_encoding: Encoding,
    /// Its amount column: signed, unless --legacy-kind is given.
    #[arg(long, default_value = "amount")]
    legacy_amount: String,
    /// A kind column (credit/debit/set codes from --legacy-kind-codes); the amount is then
    /// non-negative.
    #[arg(long)]
    legacy_kind: Option<String>,
    /// Credit, debit and set codes of --legacy-kind.
    #[arg(long, default_value = "0,1,2")]
    legacy_kind_codes: String,
    /// Its status column ("" for none: every row is confirmed).
    #[arg(long, default_value = "block_status")]
    legacy_status: String,
    /// Status value of a confirmed row.
    #[arg(long, default_value = "confirmed")]
    legacy_confirmed: String,
    /// Status value of a pending row.
    #[arg(long, default_value = "pending")]
    legacy_pending: String,
}

/// Address encoding of a legacy table.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Encoding {
    /// Hex text (`0x…`).
    Hex,
    /// Raw bytes.
    Bytea,
}

impl HistoryArgs {
    fn history(&self) -> Result<History, Box<dyn std::error::Error>> {
        let Some(table) = &self.legacy_table else {
            return Ok(History::CrateLog);
        };
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let amount = match &self.legacy_kind {
            None => AmountColumns::Signed {
                column: self.legacy_amount.clone(),
            },
            Some(kind) => {
                let codes: Vec<i16> = self
                    .legacy_kind_codes
                    .split(',')
                    .map(|c| c.trim().parse())
                    .collect::<Result<_, _>>()
                    .map_err(|e| Usage(format!("--legacy-kind-codes: {e}")))?;
                let [credit, debit, set] = codes[..] else {
                    return Err(Usage(
                        "--legacy-kind-codes takes three codes: credit,debit,set".to_owned(),
                    )
                    .into());
                };
                AmountColumns::Kind {
                    kind: kind.clone(),
                    amount: self.legacy_amount.clone(),
                    credit,
                    debit,
                    set,
                }
            }
        };
        let legacy = LegacyLog {
            table: table.clone(),
            block_number: self.legacy_block.clone(),
            log_index: some(&self.legacy_log_index),
            tx_hash: None,
            user: self.legacy_user.clone(),
            asset: self.legacy_asset.clone(),
            encoding: match self.legacy_encoding {
                Encoding::Hex => AddressEncoding::HexText,
                Encoding::Bytea => AddressEncoding::Bytea,
            },
            amount,
            status: some(&self.legacy_status).map(|column| StatusColumn {
                column,
                confirmed: self.legacy_confirmed.clone(),
                pending: self.legacy_pending.clone(),
            }),
        };
        legacy.validate().map_err(|e| Usage(e.to_string()))?;
        Ok(History::Legacy(legacy))
    }
}

fn bar(len: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// The connection settings of `cli`; `application_name` tags this process's sessions so an
/// interrupt can cancel exactly their statements.
fn pg_config(cli: &Cli, application_name: &str) -> PostgresConfig {
    let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
    PostgresConfig {
        statement_timeout: secs(cli.statement_timeout),
        lock_timeout: secs(cli.lock_timeout),
        create_schema: matches!(cli.command, Command::Migrate | Command::Simulate { .. }),
        application_name: Some(application_name.to_owned()),
        ..PostgresConfig::default()
    }
}

async fn run(cli: Cli, store: Arc<PostgresStore>) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match cli.command {
        Command::Migrate => println!("migrations applied (schema {})", cli.schema),
        Command::Backfill {
            history,
            high_water,
            chunk_rows,
            merge_keys,
            reset,
        } => {
            let backfill = Backfill::new(store.pool().clone(), history.history()?).with_config(
                BackfillConfig {
                    chunk_rows,
                    merge_keys,
                },
            );
            if reset {
                match backfill.reset().await? {
                    Some(old) => println!(
                        "reset the backfill of {} up to block {} (was {:?})",
                        old.source, old.high_water, old.phase
                    ),
                    None => println!("no backfill to reset"),
                }
            }
            let state = backfill.start(high_water).await?;
            println!(
                "backfill of {} up to block {} ({} rows)",
                state.source, state.high_water, state.rows_total
            );
            let rows = bar(
                state.rows_total,
                "fold  [{bar:40}] {pos}/{len} rows {per_sec} eta {eta} {msg}",
            );
            let mut merging: Option<ProgressBar> = None;
            let done = backfill
                .run(|p| match p.phase {
                    Phase::Folding => {
                        rows.set_position(p.rows_folded);
                        rows.set_message(format!("block {:?}", p.folded_through));
                    }
                    Phase::Merging | Phase::Done => {
                        rows.finish();
                        let m = merging.get_or_insert_with(|| {
                            let m = ProgressBar::new_spinner();
                            m.set_message("merging");
                            m
                        });
                        m.set_message(format!("merged {} keys", p.keys_merged));
                        m.tick();
                    }
                })
                .await?;
            if let Some(m) = merging {
                m.finish();
            }
            println!(
                "backfill {:?}: {} rows folded, {} keys merged",
                done.phase, done.rows_folded, done.keys_merged
            );
        }
        Command::Verify {
            history,
            sample,
            show,
        } => {
            let mode = sample.map_or(VerifyMode::Full, VerifyMode::Sample);
            let spinner = ProgressBar::new_spinner();
            spinner.set_message(format!("verifying ({mode:?})"));
            spinner.enable_steady_tick(std::time::Duration::from_millis(200));
            let report = verify(store.pool(), &history.history()?, mode, show).await?;
            spinner.finish_and_clear();
            if report.keys_checked == 0 {
                return Err(format!(
                    "verify checked nothing: schema {} holds no confirmed balances and the history is empty (wrong --schema or --legacy-table?)",
                    cli.schema
                )
                .into());
            }
            println!(
                "verify {mode:?} at block {:?}: {} keys checked, {} mismatches",
                report.height, report.keys_checked, report.mismatches
            );
            for m in &report.samples {
                println!(
                    "  {} {}: log {} table {}",
                    m.user, m.asset, m.expected, m.actual
                );
            }
            if !report.is_clean() {
                return Ok(ExitCode::from(MISMATCHES));
            }
        }
        Command::Cutover { history, rollback } => {
            let reads = SwitchableReads::new(store.pool().clone(), history.history()?).await?;
            let path = if rollback {
                ReadPath::Log
            } else {
                ReadPath::CurrentState
            };
            reads.cutover(path).await?;
            println!("read path is now {path:?}");
        }
        Command::RebuildCache {
            redis_url,
            prefix,
            redis_ca_file,
            max_price_age,
        } => {
            let config = RedisCacheConfig {
                tls_root_cert: redis_ca_file,
                ..RedisCacheConfig::default()
            };
            let cache = RedisCollateralCache::connect_with(&redis_url, &prefix, config).await?;
            let registry = Arc::new(store.assets().await?);
            let valuator = Valuator::new(registry, max_price_age);
            let reader = CollateralReader::new(store.clone(), valuator).with_cache(Arc::new(cache));
            let head = reader.head().await?.map_or(0, |h| h.number);
            let users = bar(0, "cache [{bar:40}] {pos}/{len} users {per_sec} eta {eta}");
            let written = reader
                .rebuild_cache(|done, total| {
                    users.set_length(total as u64);
                    users.set_position(done as u64);
                })
                .await?;
            users.finish();
            println!("rebuilt the cache of {written} users at block {head}");
        }
        Command::VerifyCache {
            redis_url,
            prefix,
            redis_ca_file,
            max_price_age,
        } => {
            let config = RedisCacheConfig {
                tls_root_cert: redis_ca_file,
                ..RedisCacheConfig::default()
            };
            let cache =
                Arc::new(RedisCollateralCache::connect_with(&redis_url, &prefix, config).await?);
            let registry = Arc::new(store.assets().await?);
            let valuator = Valuator::new(registry, max_price_age);
            let reader = CollateralReader::new(store.clone(), valuator).with_cache(cache.clone());
            let head = reader.head().await?.map(|h| h.id());
            let mark = reorg_collateral::CollateralCache::watermark(&*cache).await?;
            let mismatches = reader.verify_cache().await?;
            for m in mismatches.iter().take(20) {
                println!(
                    "{}: cache {:?}, store {} | {}",
                    m.user,
                    m.cached.as_ref().map(|c| (c.block, c.confirmed, c.pending)),
                    m.expected.confirmed,
                    m.expected.pending
                );
            }
            let behind = mark != head;
            if behind {
                println!("cache watermark {mark:?} is not the store's head {head:?}");
            }
            println!("{} entries differ", mismatches.len());
            if behind || !mismatches.is_empty() {
                return Ok(ExitCode::from(MISMATCHES));
            }
        }
        Command::Simulate {
            seed,
            steps,
            events,
            users,
            confirmations,
        } => {
            let assets = ScriptedChain::demo_assets();
            let registry = AssetRegistry::new(assets.clone())?;
            store.register_assets(&registry).await?;
            let script_users = (0..users as usize).map(ScriptedChain::demo_user).collect();
            let mut script = ScriptedChain::new(seed, 1, script_users, assets);
            let mut config = WatcherConfig::new(EngineConfig::new(registry, confirmations));
            config.start_block = 1;
            let mut watcher = Watcher::new(config, script.chain.clone(), store.clone()).await?;
            // Every step raises the head by one. After a crash, replay the script without
            // syncing until it reaches the stored head; from there the watcher sees the
            // chain exactly as an uninterrupted run did (any fork is a shallow reorg).
            let stored_head = watcher.window().head().map_or(0, |h| h.number);
            if script.chain.head_number() >= stored_head {
                watcher.sync().await?;
            }
            for step in 0..steps {
                script.step(events as usize);
                if script.chain.head_number() < stored_head {
                    continue;
                }
                let report = watcher.sync().await?;
                if report.reverted > 0 {
                    println!(
                        "step {step}: reorg, {} block(s) rolled back",
                        report.reverted
                    );
                }
            }
            let w = watcher.window();
            println!(
                "simulated {steps} steps: head #{}, finalized #{}, {:?}",
                w.head().map_or(0, |h| h.number),
                w.finalized_number().unwrap_or_default(),
                watcher.stats()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
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

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let application_name = format!("reorg-collateral/{}", std::process::id());
    let config = pg_config(&cli, &application_name);
    let url = cli.database_url.clone();
    let work = async {
        let store =
            PostgresStore::connect_with(&cli.database_url, Some(&cli.schema), &config).await?;
        run(cli, Arc::new(store)).await
    };
    // Polled from the start, so the handler is in place before the first connection.
    let outcome = tokio::select! {
        outcome = work => outcome,
        () = interrupted() => {
            // The statements in flight are cancelled on the server: an interrupted verify
            // or backfill leaves nothing running (and nothing partial committed).
            if let Err(e) = cancel_sessions(&url, &application_name).await {
                eprintln!("error: could not cancel the running statements: {e}");
            }
            Err("interrupted; the statements in flight were cancelled (nothing partial is committed)".into())
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
