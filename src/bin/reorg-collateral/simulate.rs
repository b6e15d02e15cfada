//! `simulate`: the watcher over a deterministic scripted chain, resumable from the store's
//! checkpoint.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use reorg_collateral::BlockSource;
use reorg_collateral::model::AssetRegistry;
use reorg_collateral::source::{ScriptedChain, SimulatedOnChain};
use reorg_collateral::store::PostgresStore;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};
use tokio_util::sync::CancellationToken;

/// What a run stopped by a signal says (it exits 1).
const STOPPED: &str = "stopped by a signal; every committed changeset is kept, run again to resume";

/// The most users `simulate` scripts (each is an allocation and a key per block).
const MAX_USERS: u64 = 1_000_000;
/// The most balance events per simulated block.
const MAX_EVENTS: u64 = 1_000_000;

/// The script and the watcher's confirmation depth.
#[derive(Args, Debug)]
pub(crate) struct SimulateArgs {
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
    /// Wait for the writer claim while another process holds the store (a standby),
    /// instead of failing; prints `claimed the writer` once it has it.
    #[arg(long)]
    standby: bool,
    /// Hold the writer claim as a lease of this many milliseconds: if this process stops
    /// running (hangs, SIGSTOP), the claim is lost after about that long, so a standby can
    /// take over (0: no lease).
    #[arg(long, default_value_t = 0)]
    writer_lease_ms: u64,
}

impl SimulateArgs {
    /// Plays `steps` steps of the script, syncing after each. Once `stop` is cancelled
    /// (SIGTERM, Ctrl-C) it stops after the changeset being written, releases the store
    /// and fails with a message saying so: a run started again resumes from there.
    pub(crate) async fn run(
        self,
        store: Arc<PostgresStore>,
        chain: Option<u64>,
        stop: CancellationToken,
    ) -> Result<ExitCode, Box<dyn std::error::Error>> {
        let Self {
            seed,
            steps,
            events,
            users,
            confirmations,
            standby,
            writer_lease_ms,
        } = self;
        let assets = ScriptedChain::demo_assets();
        let registry = AssetRegistry::new(assets.clone())?;
        store.register_assets(&registry).await?;
        let script_users = (0..users as usize).map(ScriptedChain::demo_user).collect();
        let mut script = ScriptedChain::new(seed, 1, script_users, assets);
        let mut config = WatcherConfig::new(EngineConfig::new(registry, confirmations));
        config.start_block = 1;
        if writer_lease_ms > 0 {
            store.set_writer_lease(Duration::from_millis(writer_lease_ms));
        }
        if stop.is_cancelled() {
            return Err(STOPPED.into());
        }
        // `--chain N` (N > 0): the scripted chain reports chain id N, so its store is
        // claimed for that chain; otherwise no chain id, as without `--chain`.
        let source: Arc<dyn BlockSource> = Arc::new(SimulatedOnChain::new(
            script.chain.clone(),
            chain.filter(|id| *id != 0),
        ));
        let mut watcher = if standby {
            let retry = Duration::from_millis(50);
            let watcher = Watcher::standby(config, source, store.clone(), retry).await?;
            println!("claimed the writer");
            watcher
        } else {
            Watcher::new(config, source, store.clone()).await?
        };
        watcher.stop_on(stop.clone());
        // Every step raises the head by one. After a crash, replay the script without
        // syncing until it reaches the stored head; from there the watcher sees the
        // chain exactly as an uninterrupted run did (any fork is a shallow reorg).
        let stored_head = watcher.window().head().map_or(0, |h| h.number);
        if script.chain.head_number() >= stored_head {
            watcher.sync().await?;
        }
        for step in 0..steps {
            if stop.is_cancelled() {
                let head = watcher.window().head().map_or(0, |h| h.number);
                watcher.shutdown().await?;
                return Err(format!("{STOPPED} at step {step}, head #{head}").into());
            }
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
        if stop.is_cancelled() {
            watcher.shutdown().await?;
            return Err(STOPPED.into());
        }
        let w = watcher.window().clone();
        let stats = watcher.stats();
        watcher.shutdown().await?;
        println!(
            "simulated {steps} steps: head #{}, finalized #{}, {:?}",
            w.head().map_or(0, |h| h.number),
            w.finalized_number().unwrap_or_default(),
            stats
        );
        Ok(ExitCode::SUCCESS)
    }
}
