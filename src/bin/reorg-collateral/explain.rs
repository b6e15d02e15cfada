//! `explain`: why a user's collateral is what it is (text, or `--json`), or with `--block`
//! their collateral after a past finalized block; `history-indexes`: build the log index
//! those reads need.

use std::process::ExitCode;
use std::sync::Arc;

use alloy_primitives::Address;
use clap::Args;
use reorg_collateral::model::{Collateral, Effect, PriceStatus, Valuation};
use reorg_collateral::reader::{
    CollateralReader, DEFAULT_EXPLAIN_ROWS, Explanation, SideExplanation,
};
use reorg_collateral::store::PostgresStore;
use reorg_collateral::traits::LogStatus;
use reorg_collateral::valuation::{Rounding, Valuator};
use serde_json::{Value, json};

/// Which user to explain, and how.
#[derive(Args, Debug)]
pub(crate) struct ExplainArgs {
    /// The user's address, `0x…`.
    user: Address,
    /// The most log rows shown per asset and side (latest first).
    #[arg(long, default_value_t = DEFAULT_EXPLAIN_ROWS)]
    limit: usize,
    /// Instead: the collateral after this finalized block, folded from the log (needs
    /// `history-indexes`).
    #[arg(long)]
    block: Option<u64>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Prices older than this many seconds (before the valuation time) count as stale.
    #[arg(long, default_value_t = 3_600)]
    max_price_age: u64,
}

impl ExplainArgs {
    /// Runs `explain`.
    pub(crate) async fn run(
        self,
        store: &Arc<PostgresStore>,
    ) -> Result<ExitCode, Box<dyn std::error::Error>> {
        let registry = Arc::new(store.assets().await?);
        let reader =
            CollateralReader::new(store.clone(), Valuator::new(registry, self.max_price_age));
        if let Some(block) = self.block {
            let c = reader.collateral_at_block(self.user, block).await?;
            if self.json {
                println!("{}", collateral_json(&c));
            } else {
                println!(
                    "collateral of {} after block #{block}: confirmed {}",
                    c.user, c.confirmed.total
                );
                for a in &c.confirmed.assets {
                    println!(
                        "  {} balance {} value {:?} ({:?})",
                        a.asset, a.balance, a.value, a.status
                    );
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        let e = reader.explain(self.user, self.limit).await?;
        if self.json {
            println!("{}", explanation_json(&e));
        } else {
            print!("{e}");
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// `history-indexes`: builds the history index of the log.
pub(crate) async fn history_indexes(
    store: &Arc<PostgresStore>,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    store.create_history_indexes().await?;
    println!("history index balance_updates_user is in place");
    Ok(ExitCode::SUCCESS)
}

fn status(s: &PriceStatus) -> Value {
    match s {
        PriceStatus::Fresh => json!("fresh"),
        PriceStatus::Stale { age } => json!({ "stale": { "age": age } }),
        PriceStatus::Missing => json!("missing"),
        PriceStatus::Unrepresentable => json!("unrepresentable"),
        PriceStatus::Quarantined { block, log } => json!({ "quarantined": {
            "block": block.number,
            "block_hash": block.hash.to_string(),
            "tx_hash": log.tx_hash.to_string(),
            "log_index": log.log_index,
        } }),
    }
}

fn side_json(s: &SideExplanation) -> Value {
    let rows: Vec<Value> = s
        .rows
        .iter()
        .map(|r| {
            let (effect, amount) = match r.effect {
                Effect::Credit(a) => ("credit", a),
                Effect::Debit(a) => ("debit", a),
                Effect::Set(a) => ("set", a),
                Effect::Reconcile(a) => ("correction", a),
            };
            json!({
                "block": r.block.number,
                "block_hash": r.block.hash.to_string(),
                "tx_hash": r.log.tx_hash.to_string(),
                "log_index": r.log.log_index,
                "ordinal": r.ordinal,
                "effect": effect,
                "amount": amount.to_string(),
                "status": match r.status {
                    LogStatus::Pending => "pending",
                    LogStatus::Confirmed => "confirmed",
                    _ => "reverted",
                },
            })
        })
        .collect();
    json!({
        "balance": s.balance.to_string(),
        "rows": rows,
        "truncated": s.truncated,
        "price": s.price.map(|p| json!({
            "answer": p.price.answer.to_string(),
            "decimals": p.price.decimals,
            "round_id": p.price.round_id.to_string(),
            "block": p.price.block,
            "updated_at": p.price.updated_at,
            "age": p.age,
            "origin": format!("{:?}", p.origin).to_lowercase(),
        })),
        "status": s.status.as_ref().map(status),
        "value": s.value.map(|v| v.to_string()),
        "arithmetic": s.arithmetic.map(|a| json!({
            "units": a.units.to_string(),
            "token_decimals": a.token_decimals,
            "answer": a.answer.to_string(),
            "feed_decimals": a.feed_decimals,
            "factor_bps": a.factor_bps,
            "numerator": a.numerator.map(|n| n.to_string()),
            "exponent": a.exponent,
            "places": a.places,
            "value": a.value.map(|v| v.to_string()),
            "rounding": match a.rounding { Rounding::Exact => "exact", Rounding::HalfEven => "half_even" },
        })),
    })
}

fn valuation_json(v: &Valuation) -> Value {
    json!({
        "total": v.total.to_string(),
        "complete": v.is_complete(),
        "assets": v.assets.iter().map(|a| json!({
            "asset": a.asset.to_string(),
            "balance": a.balance.to_string(),
            "value": a.value.map(|x| x.to_string()),
            "status": status(&a.status),
        })).collect::<Vec<_>>(),
    })
}

fn collateral_json(c: &Collateral) -> Value {
    json!({
        "user": c.user.to_string(),
        "block": c.block,
        "confirmed": valuation_json(&c.confirmed),
        "pending": valuation_json(&c.pending),
    })
}

fn explanation_json(e: &Explanation) -> Value {
    json!({
        "user": e.user.to_string(),
        "head": e.state.map(|s| json!({ "number": s.head.number, "hash": s.head.hash.to_string() })),
        "finalized": e.state.and_then(|s| s.finalized),
        "now": e.now,
        "limit": e.limit,
        "assets": e.assets.iter().map(|a| json!({
            "asset": a.asset.to_string(),
            "symbol": a.symbol,
            "decimals": a.decimals,
            "factor_bps": a.factor_bps,
            "confirmed": side_json(&a.confirmed),
            "pending": side_json(&a.pending),
        })).collect::<Vec<_>>(),
        "collateral": collateral_json(&e.collateral),
    })
}
