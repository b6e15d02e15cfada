//! `quarantine list`: the assets quarantined in the store (a log of each could not be
//! applied; every other asset went on), on the confirmed and the pending side.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use reorg_collateral::model::AssetState;
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
}

impl QuarantineArgs {
    /// Runs the subcommand; reads only.
    pub(crate) async fn run(
        &self,
        store: &PostgresStore,
    ) -> Result<ExitCode, Box<dyn std::error::Error>> {
        match self.command {
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
