//! Several chains in one database, one schema each: the `chains` catalog (migration 0017)
//! of the base schema maps each [`ChainId`] to the schema holding that chain's store.
//!
//! Each chain's store is a whole store of its own (its log, window, checkpoint, writer
//! claim and fencing epoch), so writers of different chains share no row and no lock: the
//! writer lock and the ownership lock are keyed by the schema. A store of chain C refuses
//! a writer claim for chain D, as a single-chain store always did.

use std::sync::Arc;

use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, PgPool, Row};

use super::codec::{BACKEND, db};
use super::connect::{classify, create_schema};
use super::deadline::Progress;
use super::ident::{quote_ident, schema_problem};
use super::{PostgresStore, migrate};
use crate::chains::ChainId;
use crate::error::StoreError;

impl PostgresStore {
    /// The store of `chain` in this store's database: the base schema's own chain (the one
    /// it was claimed for; [`ChainId::UNSPECIFIED`] while never claimed) is a store on the
    /// base schema; any other chain is the schema the base's catalog registers for it, or
    /// a new schema `<base>_c<chain_id>`, created, migrated and registered (concurrent
    /// calls for the same chain, from any process, agree on one schema).
    ///
    /// The base is this store's schema, or, for a store this method returned, the schema it
    /// was called on. The store returned has a pool of its own (as large as this one's, over
    /// the same connection options) and no writer claim: keep it for the chain's lifetime
    /// rather than calling this per operation. Its writer claim and fencing are its own
    /// schema's ([`StoreWriter::claim_writer`](crate::StoreWriter::claim_writer)).
    ///
    /// A schema name too long for Postgres, a catalog that maps the chain to a schema
    /// holding a store claimed for another chain, or a schema name registered for another
    /// chain, is [`StoreError::Chain`] naming the chain and the schema.
    pub async fn chain(&self, chain: ChainId) -> Result<PostgresStore, StoreError> {
        let (own, base) = self.schemas().await?;
        let schema = match self.registered(&base, chain).await? {
            Some(schema) => schema,
            None => self.register(&base, chain).await?,
        };
        if schema == own {
            return Ok(self.clone());
        }
        let pool = sibling_pool(&self.pool, &schema).await?;
        migrate(&pool).await?;
        let store = PostgresStore::new(pool).with_operation_deadline(self.deadline);
        let store = PostgresStore {
            catalog: Some(Arc::from(base.as_str())),
            ..store
        };
        store.adopt(chain, &schema).await?;
        Ok(store)
    }

    /// Every chain of the base's catalog (see [`chain`](Self::chain)) with its schema,
    /// ascending by chain id. An upgraded single-chain store lists itself alone.
    pub async fn chains(&self) -> Result<Vec<(ChainId, String)>, StoreError> {
        let (_, base) = self.schemas().await?;
        let sql = format!(
            "SELECT chain_id::text AS chain_id, schema_name FROM {}.chains ORDER BY chain_id",
            quote_ident(&base)
        );
        let rows = self
            .bounded("read the chains catalog", async |conn, _| {
                sqlx::query(AssertSqlSafe(sql))
                    .fetch_all(conn)
                    .await
                    .map_err(db("read the chains catalog"))
            })
            .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("chain_id").map_err(db("read a chain id"))?;
                let schema: String = r.try_get("schema_name").map_err(db("read a schema"))?;
                Ok((parse_chain(&id)?, schema))
            })
            .collect()
    }

    /// The schema the base's catalog registers for `chain` (see [`chain`](Self::chain)),
    /// without creating anything: `None` when the chain is not registered.
    pub async fn chain_schema(&self, chain: ChainId) -> Result<Option<String>, StoreError> {
        let (_, base) = self.schemas().await?;
        self.registered(&base, chain).await
    }

    /// The schema of this store's connections and the base whose catalog it uses.
    async fn schemas(&self) -> Result<(String, String), StoreError> {
        let own: String = self
            .bounded("read the current schema", async |conn, _| {
                sqlx::query_scalar("SELECT current_schema()::text")
                    .fetch_one(conn)
                    .await
                    .map_err(db("read the current schema"))
            })
            .await?;
        let base = self
            .catalog
            .as_deref()
            .map_or_else(|| own.clone(), str::to_owned);
        Ok((own, base))
    }

    /// The schema `base`'s catalog registers for `chain`.
    async fn registered(&self, base: &str, chain: ChainId) -> Result<Option<String>, StoreError> {
        let sql = format!(
            "SELECT schema_name FROM {}.chains WHERE chain_id = $1::numeric",
            quote_ident(base)
        );
        let what = format!("look up {chain} in the chains catalog of {base}");
        self.bounded(&what, async |conn, _| {
            sqlx::query_scalar(AssertSqlSafe(sql))
                .bind(chain.0.to_string())
                .fetch_optional(conn)
                .await
                .map_err(db(what.as_str()))
        })
        .await
    }

    /// Registers `<base>_c<chain>` for `chain` in `base`'s catalog (or finds the schema a
    /// concurrent registration won with) and returns the registered schema.
    async fn register(&self, base: &str, chain: ChainId) -> Result<String, StoreError> {
        let schema = format!("{base}_c{}", chain.0);
        if let Some(reason) = schema_problem(&schema) {
            return Err(StoreError::Chain {
                backend: BACKEND,
                chain,
                schema,
                reason: format!("the schema name for the chain is refused: {reason}"),
            });
        }
        let sql = format!(
            "INSERT INTO {}.chains (chain_id, schema_name) VALUES ($1::numeric, $2)
             ON CONFLICT DO NOTHING",
            quote_ident(base)
        );
        let what = format!("register {chain} as schema {schema} in the chains catalog of {base}");
        self.bounded(&what, async |conn, _| {
            sqlx::query(AssertSqlSafe(sql))
                .bind(chain.0.to_string())
                .bind(&schema)
                .execute(conn)
                .await
                .map_err(db(what.as_str()))
        })
        .await?;
        // Ours, or the one a concurrent registration of the same chain committed first.
        match self.registered(base, chain).await? {
            Some(registered) => Ok(registered),
            None => Err(StoreError::Chain {
                backend: BACKEND,
                chain,
                schema,
                reason: format!(
                    "the catalog of {base} already registers this schema for another chain"
                ),
            }),
        }
    }

    /// Makes the freshly migrated `schema` (this store's) the store of `chain`: its own
    /// catalog row names `chain`, and a store claimed for another chain is refused.
    async fn adopt(&self, chain: ChainId, schema: &str) -> Result<(), StoreError> {
        let what = format!("record {chain} in the catalog of schema {schema}");
        let stored = self
            .bounded(&what, async |conn, progress| {
                record_chain(conn, progress, chain, &what).await
            })
            .await?;
        match stored {
            Some(stored) if stored != chain => Err(StoreError::Chain {
                backend: BACKEND,
                chain,
                schema: schema.to_owned(),
                reason: format!("the schema holds a store claimed for {stored}"),
            }),
            _ => Ok(()),
        }
    }
}

/// [`PostgresStore::adopt`]'s transaction on `conn`: the schema's claimed chain (`None`:
/// never claimed), and its catalog row set to `chain` unless it holds another chain.
/// A named function, not a closure, so that the future of
/// [`PostgresStore::chain`] is `Send` (a closure's transaction borrows trip the
/// compiler's higher-ranked `Send` check).
async fn record_chain(
    conn: &mut PgConnection,
    progress: &Progress,
    chain: ChainId,
    what: &str,
) -> Result<Option<ChainId>, StoreError> {
    let mut tx = conn.begin().await.map_err(db(what))?;
    let claimed: Option<Option<String>> =
        sqlx::query_scalar("SELECT chain_id::text FROM store_identity")
            .fetch_optional(&mut *tx)
            .await
            .map_err(db(what))?;
    let stored = match claimed {
        None => None,
        Some(None) => Some(ChainId::UNSPECIFIED),
        Some(Some(text)) => Some(parse_chain(&text)?),
    };
    if stored.is_none_or(|s| s == chain) {
        sqlx::query(
            "UPDATE chains SET chain_id = $1::numeric
             WHERE schema_name = current_schema() AND chain_id <> $1::numeric",
        )
        .bind(chain.0.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db(what))?;
        progress.committing();
        tx.commit().await.map_err(db(what))?;
    }
    Ok(stored)
}

/// Within a claim's transaction on `conn` (see `writer`): refuses a claim for another chain
/// than the one the schema's catalog row names, and, when `first` (the store had no
/// identity before this claim), makes a never-claimed store (chain 0) the chain claimed.
pub(super) async fn claim_chain(
    conn: &mut PgConnection,
    chain: ChainId,
    first: bool,
) -> Result<(), StoreError> {
    let what = format!("check {chain} against the chains catalog");
    let catalog: Option<String> = sqlx::query_scalar("SELECT to_regclass('chains')::text")
        .fetch_one(&mut *conn)
        .await
        .map_err(db(what.as_str()))?;
    if catalog.is_none() {
        // A schema before migration 0017 (a store built over a pool the caller did not
        // migrate): it has no catalog to check, as before.
        return Ok(());
    }
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT chain_id::text, schema_name FROM chains WHERE schema_name = current_schema()",
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(db(what.as_str()))?;
    let Some((listed, schema)) = row else {
        // A schema whose own row was removed: nothing to check or update.
        return Ok(());
    };
    let listed = parse_chain(&listed)?;
    if listed == chain {
        return Ok(());
    }
    if !(first && listed == ChainId::UNSPECIFIED) {
        return Err(StoreError::Chain {
            backend: BACKEND,
            chain,
            schema,
            reason: format!("the chains catalog gives this schema to {listed}"),
        });
    }
    let taken: Option<String> =
        sqlx::query_scalar("SELECT schema_name FROM chains WHERE chain_id = $1::numeric")
            .bind(chain.0.to_string())
            .fetch_optional(&mut *conn)
            .await
            .map_err(db(what.as_str()))?;
    if let Some(taken) = taken {
        return Err(StoreError::Chain {
            backend: BACKEND,
            chain,
            schema,
            reason: format!("the chains catalog already gives this chain to schema {taken}"),
        });
    }
    sqlx::query("UPDATE chains SET chain_id = $1::numeric WHERE schema_name = current_schema()")
        .bind(chain.0.to_string())
        .execute(&mut *conn)
        .await
        .map_err(db(format!("record {chain} in the chains catalog")))?;
    Ok(())
}

fn parse_chain(text: &str) -> Result<ChainId, StoreError> {
    text.parse::<u64>()
        .map(ChainId)
        .map_err(|_| StoreError::OutOfRange {
            backend: BACKEND,
            column: "chain_id",
            value: text.to_owned(),
        })
}

/// A pool over `base`'s connection options whose sessions use `schema`, created if
/// missing (under the same lock as [`connect_in_schema`](PostgresStore::connect_in_schema)'s
/// first start), with `base`'s size and acquire timeout.
async fn sibling_pool(base: &PgPool, schema: &str) -> Result<PgPool, StoreError> {
    let options = (*base.connect_options()).clone();
    let target = format!("schema {schema}");
    let mut first = PgConnection::connect_with(&options)
        .await
        .map_err(|e| classify(format!("connect to create {target}"), e))?;
    let created = create_schema(&mut first, schema, &target).await;
    let _ = first.close().await;
    created?;
    let set = format!("SET search_path TO {}", quote_ident(schema));
    Ok(PgPoolOptions::new()
        .max_connections(base.options().get_max_connections())
        .acquire_timeout(base.options().get_acquire_timeout())
        .after_connect(move |conn, _| {
            let set = set.clone();
            Box::pin(async move {
                conn.execute(AssertSqlSafe(set)).await?;
                Ok(())
            })
        })
        .connect_lazy_with(options))
}
