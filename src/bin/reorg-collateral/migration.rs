//! The migration subcommands: `backfill` (with a progress bar), `verify` and `cutover`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use indicatif::ProgressBar;
use reorg_collateral::migration::{
    Backfill, BackfillConfig, Phase, ReadPath, SwitchableReads, VerifyMode, verify,
};
use reorg_collateral::store::PostgresStore;

use crate::history::HistoryArgs;
use crate::{MISMATCHES, bar};

/// The most keys `verify --sample` draws.
const MAX_SAMPLE: i64 = 10_000_000;

/// `backfill`: fold the history into user_current_balances.
#[derive(Args, Debug)]
pub(crate) struct BackfillArgs {
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
}

/// `verify`: diff user_current_balances against the log.
#[derive(Args, Debug)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    history: HistoryArgs,
    /// Check about N sampled keys instead of all of them (1 to 10,000,000).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=MAX_SAMPLE))]
    sample: Option<u32>,
    /// Mismatches to print.
    #[arg(long, default_value_t = 20)]
    show: u32,
}

/// `cutover`: switch the shared read-path flag.
#[derive(Args, Debug)]
pub(crate) struct CutoverArgs {
    #[command(flatten)]
    history: HistoryArgs,
    /// Switch back to the legacy log query.
    #[arg(long)]
    rollback: bool,
}

impl BackfillArgs {
    /// Starts (or resumes) the backfill and runs it to the end, drawing its progress.
    pub(crate) async fn run(
        self,
        store: &PostgresStore,
    ) -> Result<ExitCode, Box<dyn std::error::Error>> {
        let Self {
            history,
            high_water,
            chunk_rows,
            merge_keys,
            reset,
        } = self;
        let backfill =
            Backfill::new(store.pool().clone(), history.history()?).with_config(BackfillConfig {
                chunk_rows,
                merge_keys,
            });
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
        Ok(ExitCode::SUCCESS)
    }
}

impl VerifyArgs {
    /// Verifies and prints the mismatches; exit code 3 when there are any.
    pub(crate) async fn run(
        self,
        store: &PostgresStore,
        schema: &str,
    ) -> Result<ExitCode, Box<dyn std::error::Error>> {
        let Self {
            history,
            sample,
            show,
        } = self;
        let mode = sample.map_or(VerifyMode::Full, VerifyMode::Sample);
        let spinner = ProgressBar::new_spinner();
        spinner.set_message(format!("verifying ({mode:?})"));
        spinner.enable_steady_tick(Duration::from_millis(200));
        let report = verify(store.pool(), &history.history()?, mode, show).await?;
        spinner.finish_and_clear();
        if report.keys_checked == 0 {
            return Err(format!(
                "verify checked nothing: schema {} holds no confirmed balances and the history is empty (wrong --schema or --legacy-table?)",
                schema
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
        Ok(ExitCode::SUCCESS)
    }
}

impl CutoverArgs {
    /// Switches the read path (or rolls it back).
    pub(crate) async fn run(
        self,
        store: &PostgresStore,
    ) -> Result<ExitCode, Box<dyn std::error::Error>> {
        let Self { history, rollback } = self;
        let reads = SwitchableReads::new(store.pool().clone(), history.history()?).await?;
        let path = if rollback {
            ReadPath::Log
        } else {
            ReadPath::CurrentState
        };
        reads.cutover(path).await?;
        println!("read path is now {path:?}");
        Ok(ExitCode::SUCCESS)
    }
}
