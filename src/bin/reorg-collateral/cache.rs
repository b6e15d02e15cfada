//! The Redis cache subcommands, `rebuild-cache` and `verify-cache`, which share their
//! arguments ([`CacheArgs`]) and their reader.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use reorg_collateral::CollateralCache;
use reorg_collateral::cache::{RedisCacheConfig, RedisCollateralCache};
use reorg_collateral::model::StateRef;
use reorg_collateral::reader::CollateralReader;
use reorg_collateral::store::PostgresStore;
use reorg_collateral::valuation::Valuator;

use crate::{MISMATCHES, bar};

/// The Redis cache and how to value what goes in it.
#[derive(Args, Debug)]
pub(crate) struct CacheArgs {
    /// Redis URL. Its value is never printed.
    #[arg(
        long,
        env = "REDIS_URL",
        hide_env_values = true,
        hide_default_value = true,
        default_value = "redis://127.0.0.1:6379"
    )]
    redis_url: String,
    /// Key prefix of the cache.
    #[arg(long, default_value = "collateral")]
    prefix: String,
    /// A PEM file of the CA that signed the Redis server's certificate (for a
    /// `rediss://` URL whose server is not signed by a system root).
    #[arg(long, env = "REDIS_CA_FILE")]
    redis_ca_file: Option<std::path::PathBuf>,
    /// Prices older than this many seconds (before the head) count as stale.
    #[arg(long, default_value_t = 3_600)]
    max_price_age: u64,
}

impl CacheArgs {
    /// Connects to the cache and builds a reader of `store` valued with the store's assets.
    async fn reader(
        &self,
        store: &Arc<PostgresStore>,
    ) -> Result<(CollateralReader, Arc<RedisCollateralCache>), Box<dyn std::error::Error>> {
        let config = RedisCacheConfig {
            tls_root_cert: self.redis_ca_file.clone(),
            ..RedisCacheConfig::default()
        };
        let cache = Arc::new(
            RedisCollateralCache::connect_with(&self.redis_url, &self.prefix, config).await?,
        );
        let registry = Arc::new(store.assets().await?);
        let valuator = Valuator::new(registry, self.max_price_age);
        let reader = CollateralReader::new(store.clone(), valuator).with_cache(cache.clone());
        Ok((reader, cache))
    }

    /// `rebuild-cache`: repopulates the cache for every holder, drawing the progress.
    pub(crate) async fn rebuild(
        &self,
        store: &Arc<PostgresStore>,
    ) -> Result<ExitCode, Box<dyn std::error::Error>> {
        let (reader, _) = self.reader(store).await?;
        let head = reader.head().await?.map_or(0, |h| h.number);
        let users = bar(0, "cache [{bar:40}] {pos}/{len} users {per_sec} eta {eta}");
        let written = reader
            .rebuild_cache(|done, total| {
                users.set_length(total as u64);
                users.set_position(done as u64);
            })
            .await?;
        users.finish();
        println!("rebuilt the cache of {written} users at block {head}");
        Ok(ExitCode::SUCCESS)
    }

    /// `verify-cache`: compares the cache with the store; exit code 3 when any entry differs
    /// or the watermark is not the store's state (head and finalized height).
    pub(crate) async fn verify(
        &self,
        store: &Arc<PostgresStore>,
    ) -> Result<ExitCode, Box<dyn std::error::Error>> {
        let (reader, cache) = self.reader(store).await?;
        let head = reader.store().window().await?.state();
        let mark = cache.watermark().await?;
        let mismatches = reader.verify_cache().await?;
        for m in mismatches.iter().take(20) {
            println!(
                "{}: cache {:?}, store {} | {}",
                m.user,
                m.cached.as_ref().map(|c| (c.block, c.confirmed, c.pending)),
                m.expected.confirmed,
                m.expected.pending
            );
        }
        let behind = mark != head;
        if behind {
            let show = |s: Option<StateRef>| s.map_or_else(|| "none".to_owned(), |s| s.to_string());
            println!(
                "cache watermark {} is not the store's state {}",
                show(mark),
                show(head)
            );
        }
        println!("{} entries differ", mismatches.len());
        if behind || !mismatches.is_empty() {
            return Ok(ExitCode::from(MISMATCHES));
        }
        Ok(ExitCode::SUCCESS)
    }
}
