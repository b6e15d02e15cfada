//! One statement for a collateral read: the state (head, finalized height) of every store
//! involved and, per chain, the users' balances (with the rebasing indexes), the prices of
//! the keys they need, the vault rates of the derived assets they hold and the
//! quarantines, plus prices other chains read from a store; the stores being schemas of
//! one database (one `PostgresStore` catalog, or any stores connected to the same server,
//! database and role).
//!
//! One `SELECT` sees one snapshot of every schema it names: each store's writer commits a
//! changeset in one transaction, so the statement never sees half of one, and the state it
//! reports is the state the values were read from, in one round trip, without the before /
//! after check of the separate reads.

mod decode;

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::AssertSqlSafe;

use super::PostgresStore;
use super::codec::{BACKEND, db};
use super::ident::quote_ident;
use crate::error::StoreError;
use crate::model::{
    AssetId, AssetStateView, BalanceView, BlockHeader, PriceView, RateView, StateRef, UserId,
};
use decode::decode;

/// What one chain's part of a [`SnapshotQuery`] reads from its store.
#[derive(Clone, Debug, Default)]
pub(crate) struct ChainQuery {
    /// The chain's store: an index into [`SnapshotQuery::stores`].
    pub store: usize,
    /// `(asset, price key)` of each asset priced from another asset's price (an asset not
    /// listed is its own price key).
    pub price_keys: Vec<(AssetId, AssetId)>,
    /// The assets priced through a vault rate.
    pub derived: Vec<AssetId>,
    /// Price keys read from another store ([`PriceQuery`]), not this one.
    pub remote_keys: Vec<AssetId>,
}

/// Prices of fixed keys read from a store (another chain's feed).
#[derive(Clone, Debug, Default)]
pub(crate) struct PriceQuery {
    /// The store: an index into [`SnapshotQuery::stores`].
    pub store: usize,
    /// The keys there, distinct.
    pub keys: Vec<AssetId>,
}

/// One statement's reads (see the module docs). `stores[0]` runs it.
#[derive(Clone, Debug)]
pub(crate) struct SnapshotQuery<'a> {
    /// The stores named, distinct, all of one database ([`PostgresStore::same_database`]).
    pub stores: Vec<&'a PostgresStore>,
    /// Whether each store's state is read.
    pub heads: bool,
    /// The users whose balances each chain reads.
    pub users: &'a [UserId],
    /// The chains' parts.
    pub chains: Vec<ChainQuery>,
    /// The fixed-key price reads.
    pub prices: Vec<PriceQuery>,
}

/// What one chain's part read.
#[derive(Clone, Debug, Default)]
pub(crate) struct ChainInputs {
    /// Each user's balance views, in the order of [`SnapshotQuery::users`].
    pub balances: Vec<Vec<(AssetId, BalanceView)>>,
    /// The price views of the (local) price keys the users' assets need.
    pub prices: HashMap<AssetId, PriceView>,
    /// The rate views of the derived assets the users hold.
    pub rates: HashMap<AssetId, RateView>,
    /// The assets quarantined on either side, ascending.
    pub states: Vec<AssetStateView>,
}

/// A [`SnapshotQuery`]'s answer, from one snapshot of every store.
#[derive(Clone, Debug, Default)]
pub(crate) struct Snapshot {
    /// Each store's head and state (`None`: no block applied; all `None` without
    /// [`SnapshotQuery::heads`]), in [`SnapshotQuery::stores`] order.
    pub heads: Vec<Option<(BlockHeader, StateRef)>>,
    /// Each chain's inputs, in [`SnapshotQuery::chains`] order.
    pub chains: Vec<ChainInputs>,
    /// Each fixed-key read's views by key, in [`SnapshotQuery::prices`] order.
    pub prices: Vec<HashMap<AssetId, PriceView>>,
}

/// The row kinds of the statement (its `kind` column).
pub(super) const HEAD: i16 = 0;
pub(super) const BALANCE: i16 = 1;
pub(super) const INDEX: i16 = 2;
pub(super) const PRICE: i16 = 3;
pub(super) const RATE: i16 = 4;
pub(super) const STATE: i16 = 5;
pub(super) const FIXED_PRICE: i16 = 6;

/// The statement's columns after `part` and `kind`, with their types: every branch fills
/// those of its kind and leaves the others NULL. Named as the row decoders of the separate
/// reads (`read::header`, `read::price`, `asset_state::state`) expect.
const COLUMNS: &[(&str, &str)] = &[
    ("block_status", "int2"),
    ("block_number", "int8"),
    ("number", "int8"),
    ("hash", "bytea"),
    ("parent_hash", "bytea"),
    ("timestamp", "int8"),
    ("finalized", "int8"),
    ("user_address", "bytea"),
    ("asset", "bytea"),
    ("value", "numeric"),
    ("den", "numeric"),
    ("answer", "text"),
    ("decimals", "int2"),
    ("round_id", "text"),
    ("updated_at", "int8"),
    ("rate", "text"),
    ("state", "int2"),
    ("since_number", "int8"),
    ("since_hash", "bytea"),
    ("tx_hash", "bytea"),
    ("log_index", "int8"),
    ("reason", "int2"),
    ("balance", "text"),
    ("amount", "text"),
    ("detail", "text"),
];

/// The index of column `name` in a row (after `part` and `kind`).
pub(super) fn column(name: &str) -> usize {
    COLUMNS
        .iter()
        .position(|(n, _)| *n == name)
        .map_or(usize::MAX, |i| i + 2)
}

/// One `UNION ALL` branch: `part`, `kind`, the columns `set` gives (cast to their type),
/// NULL for the others, then `from`.
fn branch(part: usize, kind: i16, set: &[(&str, &str)], from: &str) -> String {
    let mut s = format!("SELECT {part}::int4 AS part, {kind}::int2 AS kind");
    for (name, ty) in COLUMNS {
        let value = set.iter().find(|(n, _)| n == name);
        s.push_str(&match value {
            Some((_, v)) => format!(", ({v})::{ty} AS {name}"),
            None => format!(", NULL::{ty} AS {name}"),
        });
    }
    s.push(' ');
    s.push_str(from);
    s
}

/// The confirmed price row and the latest pending one of `key`, from `prefix`'s
/// `oracle_prices` (two index probes), as the lateral `p`.
fn prices_of(prefix: &str, key: &str) -> String {
    let cols = "answer::text AS answer, decimals, round_id::text AS round_id, updated_at, block_number, block_status";
    format!(
        "CROSS JOIN LATERAL (
            (SELECT {cols} FROM {prefix}oracle_prices WHERE asset = {key} AND block_status = 1)
            UNION ALL
            (SELECT {cols} FROM {prefix}oracle_prices WHERE asset = {key} AND block_status = 0
             ORDER BY block_number DESC LIMIT 1)) p"
    )
}

/// The price columns of the lateral `p`.
const PRICE_SET: &[(&str, &str)] = &[
    ("answer", "p.answer"),
    ("decimals", "p.decimals"),
    ("round_id", "p.round_id"),
    ("updated_at", "p.updated_at"),
    ("block_number", "p.block_number"),
    ("block_status", "p.block_status"),
];

/// The statement's SQL text and its array parameters (after `$1`, the users), in order.
fn statement(query: &SnapshotQuery<'_>, schemas: &[Arc<str>]) -> (String, Vec<Vec<Vec<u8>>>) {
    // One store: its own search_path; several: every table qualified by its schema.
    let prefix: Vec<String> = if query.stores.len() == 1 {
        vec![String::new()]
    } else {
        schemas
            .iter()
            .map(|s| format!("{}.", quote_ident(s)))
            .collect()
    };
    // Every parameter is read through a subquery (an init plan): the planner cannot look
    // into its value even in a custom plan, so the server's plan cache settles on the
    // generic plan after five executions instead of planning every execution again, which
    // cost several times the execution (about 2 ms against 0.5 ms for three chains). The
    // lookups stay index probes (`= ANY` of a parameter).
    let mut params: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut param = |values: Vec<Vec<u8>>| {
        params.push(values);
        format!("(SELECT ${}::bytea[])::bytea[]", params.len() + 1)
    };
    let mut ctes = Vec::new();
    let mut branches = Vec::new();
    if query.heads {
        for (j, p) in prefix.iter().enumerate() {
            let from = format!(
                "FROM (WITH f AS (SELECT number, hash, parent_hash, timestamp FROM {p}blocks
                                  WHERE hash = (SELECT finalized_hash FROM {p}checkpoint))
                       SELECT w.*, (SELECT number FROM f) AS fin FROM (
                          (SELECT number, hash, parent_hash, timestamp FROM {p}blocks
                           WHERE status = 0 AND number > COALESCE((SELECT number FROM f), -1)
                           ORDER BY number DESC LIMIT 1)
                          UNION ALL
                          SELECT number, hash, parent_hash, timestamp FROM f
                       ) w ORDER BY number DESC LIMIT 1) h"
            );
            let set = [
                ("number", "h.number"),
                ("hash", "h.hash"),
                ("parent_hash", "h.parent_hash"),
                ("timestamp", "h.timestamp"),
                ("finalized", "h.fin"),
            ];
            branches.push(branch(j, HEAD, &set, &from));
        }
    }
    for (i, chain) in query.chains.iter().enumerate() {
        let p = &prefix[chain.store];
        // Each user's rows by a probe of each partition's primary key (a lateral join per
        // user; `OFFSET 0` keeps the planner from flattening it into a hash join): with
        // `= ANY` of the array, or a flattened join, the generic plan does not know how
        // many users it gets and scanned the confirmed partition whole on a small table
        // (two thirds of a three-chain statement's execution in the bench, twice the
        // buffers). A user named twice reads the same rows twice, which the decoding takes
        // once.
        ctes.push(format!(
            "b{i} AS (SELECT c.user_address, c.asset, c.balance, c.block_status, c.block_number
                      FROM UNNEST((SELECT $1::bytea[])::bytea[]) AS u(address)
                      CROSS JOIN LATERAL (
                         SELECT user_address, asset, balance, block_status, block_number
                         FROM {p}user_current_balances WHERE user_address = u.address
                         OFFSET 0) c)"
        ));
        let set = [
            ("user_address", "b.user_address"),
            ("asset", "b.asset"),
            ("value", "b.balance"),
            ("block_status", "b.block_status"),
            ("block_number", "b.block_number"),
        ];
        branches.push(branch(i, BALANCE, &set, &format!("FROM b{i} b")));
        // The confirmed and the latest pending index of each rebasing asset held.
        let from = format!(
            "FROM {p}indexes i WHERE i.chain = 1 AND i.asset IN (SELECT asset FROM b{i})
               AND (i.block_status = 1 OR i.block_number =
                    (SELECT max(j.block_number) FROM {p}indexes j
                     WHERE j.chain = 1 AND j.asset = i.asset AND j.block_status = 0))"
        );
        let set = [
            ("asset", "i.asset"),
            ("value", "i.num"),
            ("den", "i.den"),
            ("block_status", "i.block_status"),
            ("block_number", "i.block_number"),
        ];
        branches.push(branch(i, INDEX, &set, &from));
        let (sources, keys): (Vec<Vec<u8>>, Vec<Vec<u8>>) = chain
            .price_keys
            .iter()
            .map(|(a, k)| (a.to_vec(), k.to_vec()))
            .unzip();
        let (sources, keys) = (param(sources), param(keys));
        let remote = param(chain.remote_keys.iter().map(|k| k.to_vec()).collect());
        let from = format!(
            "FROM (SELECT DISTINCT COALESCE(m.k, b.asset) AS key FROM b{i} b
                   LEFT JOIN UNNEST({sources}, {keys}) AS m(a, k) ON m.a = b.asset) k
             {} WHERE k.key <> ALL({remote})",
            prices_of(p, "k.key")
        );
        let mut set = vec![("asset", "k.key")];
        set.extend_from_slice(PRICE_SET);
        branches.push(branch(i, PRICE, &set, &from));
        let derived = param(chain.derived.iter().map(|a| a.to_vec()).collect());
        let cols = "rate::text AS rate, block_number, block_status";
        let from = format!(
            "FROM (SELECT DISTINCT asset FROM b{i} WHERE asset = ANY({derived})) k
             CROSS JOIN LATERAL (
                (SELECT {cols} FROM {p}rates WHERE chain = 1 AND asset = k.asset AND block_status = 1)
                UNION ALL
                (SELECT {cols} FROM {p}rates WHERE chain = 1 AND asset = k.asset AND block_status = 0
                 ORDER BY block_number DESC LIMIT 1)) r"
        );
        let set = [
            ("asset", "k.asset"),
            ("rate", "r.rate"),
            ("block_number", "r.block_number"),
            ("block_status", "r.block_status"),
        ];
        branches.push(branch(i, RATE, &set, &from));
        // Every confirmed row and the latest pending row of each asset (usually none).
        let from = format!(
            "FROM (SELECT DISTINCT ON (asset, block_status) block_status, asset, state,
                          since_number, since_hash, tx_hash, log_index, reason, user_address,
                          balance::text AS balance, amount::text AS amount, detail
                   FROM {p}asset_state ORDER BY asset, block_status, block_number DESC) s"
        );
        let set: Vec<(&str, String)> = [
            "block_status",
            "asset",
            "state",
            "since_number",
            "since_hash",
            "tx_hash",
            "log_index",
            "reason",
            "user_address",
            "balance",
            "amount",
            "detail",
        ]
        .iter()
        .map(|c| (*c, format!("s.{c}")))
        .collect();
        let set: Vec<(&str, &str)> = set.iter().map(|(c, v)| (*c, v.as_str())).collect();
        branches.push(branch(i, STATE, &set, &from));
    }
    for (g, fixed) in query.prices.iter().enumerate() {
        let keys = param(fixed.keys.iter().map(|k| k.to_vec()).collect());
        let from = format!(
            "FROM UNNEST({keys}) AS k(key) {}",
            prices_of(&prefix[fixed.store], "k.key")
        );
        let mut set = vec![("asset", "k.key")];
        set.extend_from_slice(PRICE_SET);
        branches.push(branch(g, FIXED_PRICE, &set, &from));
    }
    let mut sql = String::new();
    if !ctes.is_empty() {
        sql.push_str("WITH ");
        sql.push_str(&ctes.join(", "));
        sql.push(' ');
    }
    if branches.is_empty() {
        // Nothing asked: a statement that returns no row.
        branches.push(branch(0, HEAD, &[], "WHERE FALSE"));
    }
    sql.push_str(&branches.join("\nUNION ALL\n"));
    (sql, params)
}

impl PostgresStore {
    /// The schema of this store's connections (`current_schema()`), read once per store
    /// (shared by its clones).
    pub(crate) async fn schema_name(&self) -> Result<Arc<str>, StoreError> {
        if let Some(schema) = self.schema.get() {
            return Ok(schema.clone());
        }
        let what = "read the current schema";
        let schema: Option<String> = self
            .bounded(what, async |conn, _| {
                sqlx::query_scalar("SELECT current_schema()::text")
                    .fetch_one(conn)
                    .await
                    .map_err(db(what))
            })
            .await?;
        let schema = schema.ok_or_else(|| StoreError::Inconsistent {
            backend: BACKEND,
            detail: "the store's search_path names no existing schema".to_owned(),
        })?;
        Ok(self.schema.get_or_init(|| Arc::from(schema)).clone())
    }

    /// Whether `other`'s connections go to the same server, database and role as this
    /// store's (its schema may differ): then one statement can read both.
    pub(crate) fn same_database(&self, other: &PostgresStore) -> bool {
        let (a, b) = (self.pool.connect_options(), other.pool.connect_options());
        a.get_host() == b.get_host()
            && a.get_port() == b.get_port()
            && a.get_socket() == b.get_socket()
            && a.get_database() == b.get_database()
            && a.get_username() == b.get_username()
    }
}

/// Runs `query` in one statement on `query.stores[0]` (under its operation deadline). An
/// error names `what`.
pub(crate) async fn read_snapshot(
    query: &SnapshotQuery<'_>,
    what: &str,
) -> Result<Snapshot, StoreError> {
    let Some(first) = query.stores.first() else {
        return Ok(Snapshot::default());
    };
    let mut schemas = Vec::with_capacity(query.stores.len());
    if query.stores.len() > 1 {
        for store in &query.stores {
            schemas.push(store.schema_name().await?);
        }
    }
    let (sql, params) = statement(query, &schemas);
    let users: Vec<&[u8]> = query.users.iter().map(|u| u.as_slice()).collect();
    let rows = first
        .bounded(what, async |conn, _| {
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(&users);
            for p in &params {
                q = q.bind(p);
            }
            q.fetch_all(conn).await.map_err(db(what))
        })
        .await?;
    decode(query, &rows)
}
