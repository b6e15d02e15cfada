//! `quarantine list`: the assets quarantined in the store (a log of each could not be
//! applied; every other asset went on), on the confirmed and the pending side.
//! `quarantine resume <asset> [--at-block N]`: a request the running watcher picks up
//! (it is the store's single writer; this process writes only the request).

use std::process::ExitCode;

use alloy_primitives::Address;
use clap::{Args, Subcommand};
use reorg_collateral::model::{AssetState, ResumeRequest};
use reorg_collateral::store::PostgresStore;
use reorg_collateral::traits::AssetStateReader;

/// `quarantine` subcommands.
#[derive(Args, Debug)]
pub(crate) struct QuarantineArgs {
    #[command(subcommand)]
    command: QuarantineCommand,
}

#[derive(Subcommand, Debug)]
enum QuarantineCommand {
    /// List every quarantined asset, one line each: the asset, the side (`pending`: at the
    /// head; `confirmed`: finalized too), the block and log of the fault and its reason.
    /// Exits 0 with no line when none is.
    List,
    /// Ask the running watcher to resume a quarantined asset: the request is stored, the
    /// watcher (the store's single writer) takes it at its next sync and writes the resume
    /// at the end of the first block at or above `--at-block` it applies (default: the next
    /// block). Exits 1 when the asset is not quarantined at the head (nothing is stored).
    Resume {
        /// The quarantined asset (its token address).
        asset: Address,
        /// The lowest block that may carry the resume.
        #[arg(long)]
        at_block: Option<u64>,
    },
}

impl QuarantineArgs {
    /// Runs the subcommand: `list` reads only; `resume` stores a request.
    pub(crate) async fn run(
        &self,
        store: &PostgresStore,
    ) -> Result<ExitCode, Box<dyn std::error::Error>> {
        match self.command {
            QuarantineCommand::Resume { asset, at_block } => {
                let quarantined = store
                    .asset_states()
                    .await?
                    .iter()
                    .any(|v| v.asset == asset && v.pending.is_quarantined());
                if !quarantined {
                    eprintln!("{asset} is not quarantined at the head: nothing to resume");
                    return Ok(ExitCode::FAILURE);
                }
                store
                    .request_resume(ResumeRequest { asset, at_block })
                    .await?;
                match at_block {
                    Some(n) => println!(
                        "resume of {asset} requested: the running watcher writes it in the first block at or above #{n} it applies"
                    ),
                    None => println!(
                        "resume of {asset} requested: the running watcher writes it in the next block it applies"
                    ),
                }
                Ok(ExitCode::SUCCESS)
            }
            QuarantineCommand::List => {
                for view in store.asset_states().await? {
                    let side = if view.confirmed.is_quarantined() {
                        "confirmed"
                    } else {
                        "pending"
                    };
                    let state = match (&view.confirmed, &view.pending) {
                        (AssetState::Quarantined(q), _) | (_, AssetState::Quarantined(q)) => q,
                        _ => continue,
                    };
                    println!(
                        "{} {side} quarantined at #{} ({}) log {}: {}",
                        view.asset, state.block.number, state.block.hash, state.log, state.reason
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}
