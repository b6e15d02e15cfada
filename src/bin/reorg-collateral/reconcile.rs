//! `reconcile`: the store's confirmed balances against the chain's `balanceOf` at the
//! store's finalized block ([`Reconciler`]), one line per drift; exit code 1 when any
//! differs. Writes nothing.

use std::process::ExitCode;
use std::sync::Arc;

use alloy_primitives::Address;
use clap::Args;
use reorg_collateral::decode::{Contract, Decoders};
use reorg_collateral::source::rpc::{RpcBlockSource, RpcConfig};
use reorg_collateral::store::PostgresStore;
use reorg_collateral::watcher::{Reconciler, ReconcilerConfig, Sample};

/// Which tokens to compare, and through which node.
#[derive(Args, Debug)]
pub(crate) struct ReconcileArgs {
    /// JSON-RPC URL of a node of the store's chain (an archive-ish node: the finalized
    /// block's state is read by hash). Its value is never printed.
    #[arg(long, env = "ETH_RPC_URL", hide_env_values = true)]
    rpc_url: String,
    /// An ERC-20 token to compare (its contract address, the asset's id); repeat for
    /// several. Default: every asset the store holds.
    #[arg(long = "token")]
    tokens: Vec<Address>,
    /// Compare at most this many (user, token) keys (0: every holder).
    #[arg(long, default_value_t = 0)]
    sample: usize,
}

impl ReconcileArgs {
    /// Compares, prints every drift and a summary; exit code 1 on drift.
    pub(crate) async fn run(
        &self,
        store: &Arc<PostgresStore>,
    ) -> Result<ExitCode, Box<dyn std::error::Error>> {
        let tokens: Vec<Address> = if self.tokens.is_empty() {
            store.assets().await?.iter().map(|a| a.id).collect()
        } else {
            self.tokens.clone()
        };
        let decoders = tokens.iter().fold(Decoders::new(), |d, t| {
            d.with(*t, Contract::Token { asset: *t })
        });
        let source = Arc::new(RpcBlockSource::http(
            &self.rpc_url,
            RpcConfig::new(decoders),
        )?);
        let mut config = ReconcilerConfig::new(tokens.iter().copied());
        if self.sample > 0 {
            config.sample = Sample::Rotating { keys: self.sample };
        }
        let mut reconciler = Reconciler::new(source, config);
        let report = reconciler.run(store.as_ref()).await?;
        let Some(at) = report.at else {
            println!("nothing finalized yet: nothing compared");
            return Ok(ExitCode::SUCCESS);
        };
        for d in &report.drifts {
            println!(
                "drift user {} token {} at #{}: ours {} chain {} difference {}",
                d.user, d.asset, d.block.number, d.ours, d.chain_value, d.difference
            );
        }
        for e in &report.unread {
            println!("unread {e}");
        }
        println!(
            "compared {} balances of {} tokens at {at}: {} drifts, {} unread",
            report.compared,
            tokens.len(),
            report.drifts.len(),
            report.unread.len()
        );
        Ok(if report.is_clean() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}
