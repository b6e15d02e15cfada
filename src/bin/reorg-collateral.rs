//! `reorg-collateral`: operate the Postgres store from the command line.
//!
//! ```text
//! reorg-collateral migrate                      apply the schema migrations
//! reorg-collateral simulate --steps 200         run the watcher over a scripted chain
//! ```
//!
//! Exit codes: 0 success, 1 a failed operation (message on stderr), 2 bad usage.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use reorg_collateral::model::AssetRegistry;
use reorg_collateral::source::ScriptedChain;
use reorg_collateral::store::PostgresStore;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};

/// Operate a reorg-collateral Postgres store.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Postgres URL.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    database_url: String,
    /// Schema holding the store (created if missing).
    #[arg(long, default_value = "public")]
    schema: String,
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
        /// Balance events per block.
        #[arg(long, default_value_t = 20)]
        events: usize,
        /// Users in the script.
        #[arg(long, default_value_t = 50)]
        users: usize,
        /// Confirmation depth.
        #[arg(long, default_value_t = 6)]
        confirmations: u64,
    },
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(PostgresStore::connect_in_schema(&cli.database_url, &cli.schema).await?);
    match cli.command {
        Command::Migrate => println!("migrations applied (schema {})", cli.schema),
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
            let script_users = (0..users).map(ScriptedChain::demo_user).collect();
            let mut script = ScriptedChain::new(seed, 1, script_users, assets);
            let mut config = WatcherConfig::new(EngineConfig::new(registry, confirmations));
            config.start_block = 1;
            let mut watcher =
                Watcher::new(config, script.chain.clone(), store.clone(), store.clone()).await?;
            // Every step raises the head by one. After a crash, replay the script without
            // syncing until it reaches the stored head; from there the watcher sees the
            // chain exactly as an uninterrupted run did (any fork is a shallow reorg).
            let stored_head = watcher.window().head().map_or(0, |h| h.number);
            if script.chain.head_number() >= stored_head {
                watcher.sync().await?;
            }
            for step in 0..steps {
                script.step(events);
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
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
