//! `--legacy-*`: the history `backfill`, `verify` and `cutover` fold, the crate's own
//! `balance_updates` or a legacy table with its column mapping.

use clap::{Args, ValueEnum};
use reorg_collateral::migration::{
    AddressEncoding, AmountColumns, History, LegacyLog, StatusColumn,
};

use crate::Usage;

/// The history to fold: the crate's `balance_updates`, or a legacy table.
#[derive(Args, Debug)]
pub(crate) struct HistoryArgs {
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
pub(crate) enum Encoding {
    /// Hex text (`0x…`).
    Hex,
    /// Raw bytes.
    Bytea,
}

impl HistoryArgs {
    /// The history these flags name; a refused mapping is a [`Usage`] error.
    pub(crate) fn history(&self) -> Result<History, Box<dyn std::error::Error>> {
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
