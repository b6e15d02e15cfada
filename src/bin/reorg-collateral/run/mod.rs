//! `run --config FILE`: the service. Follows a node into Postgres (and the Redis cache, if
//! configured) with the production defaults, and serves `/metrics`, `/health`,
//! `GET /collateral/{user}` and `/updates` (server-sent events) on an HTTP port. SIGTERM or
//! Ctrl-C stops it gracefully (see `Watcher::shutdown`).

mod config;
mod http;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use metrics_exporter_prometheus::PrometheusBuilder;
use reorg_collateral::cache::{RedisCacheConfig, RedisCollateralCache};
use reorg_collateral::health::{HealthReport, HealthThresholds};
use reorg_collateral::source::rpc::{RpcBlockSource, RpcConfig};
use reorg_collateral::store::{PostgresConfig, PostgresStore};
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

/// The configuration file and the secrets that stay out of it.
#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// The TOML configuration (chain, endpoints, assets, finality, Postgres schema, Redis,
    /// HTTP address); see docs/operations.md.
    #[arg(long)]
    config: PathBuf,
    /// Redis URL, when the configuration has a `[redis]` section. Its value is never printed.
    #[arg(
        long,
        env = "REDIS_URL",
        hide_env_values = true,
        hide_default_value = true,
        default_value = "redis://127.0.0.1:6379"
    )]
    redis_url: String,
}

impl RunArgs {
    /// Reads and validates the configuration (exit 2 on an error, naming the line).
    pub(crate) fn load(&self) -> Result<config::ServiceConfig, Box<dyn std::error::Error>> {
        let file = self.config.display().to_string();
        let text = std::fs::read_to_string(&self.config)
            .map_err(|e| crate::Usage(format!("cannot read {file}: {e}")))?;
        Ok(config::parse(&file, &text).map_err(|e| crate::Usage(e.to_string()))?)
    }

    /// Runs the service until `stop` is cancelled, on `chain_schema` (`--chain`) when
    /// given, else on the configuration's schema or `default_schema`.
    pub(crate) async fn run(
        self,
        database_url: &str,
        default_schema: &str,
        chain_schema: Option<&str>,
        pg: &PostgresConfig,
        stop: CancellationToken,
    ) -> Result<ExitCode, Box<dyn std::error::Error>> {
        let config = self.load()?;
        let prometheus = PrometheusBuilder::new().install_recorder()?;
        reorg_collateral::metrics::describe();
        // `--chain`'s schema (resolved in the configuration's schema's catalog) wins.
        let schema = chain_schema
            .or(config.schema.as_deref())
            .or(Some(default_schema));
        let store = Arc::new(PostgresStore::connect_with(database_url, schema, pg).await?);
        let registry = config.assets.clone();
        store.register_assets(&registry).await?;
        let mut rpc = RpcConfig::new(config.decoders.clone());
        rpc.finality = config.finality;
        let urls: Vec<&str> = config.endpoints.iter().map(String::as_str).collect();
        let source = Arc::new(RpcBlockSource::http_fallback(&urls, rpc)?);
        let mut watcher_config =
            WatcherConfig::new(EngineConfig::new(registry, config.confirmations));
        watcher_config.start_block = config.start_block;
        let mut watcher = Watcher::new(watcher_config, source, store.clone()).await?;
        if let Some(prefix) = &config.redis_prefix {
            let cache = RedisCollateralCache::connect_with(
                &self.redis_url,
                prefix,
                RedisCacheConfig::default(),
            )
            .await?;
            watcher = watcher.with_cache(Arc::new(cache));
        }
        watcher.stop_on(stop.clone());
        show_catch_up(watcher.progress());
        let thresholds = HealthThresholds::default();
        let (health_tx, health_rx) = watch::channel(watcher.health(&thresholds).await);
        let (updates, _) = broadcast::channel(1_024);
        let mut subscription = watcher.subscribe();
        let forward = updates.clone();
        tokio::spawn(async move {
            while let Some(n) = subscription.recv().await {
                let _ = forward.send(http::update_json(&n));
            }
        });
        let state = http::AppState {
            reader: watcher.reader().clone(),
            prometheus,
            health: health_rx,
            updates,
            stop: stop.clone(),
        };
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        // The line a supervisor (or a test) waits for: the bound address.
        println!("listening on http://{}", listener.local_addr()?);
        let server_stop = stop.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, http::router(state))
                .with_graceful_shutdown(async move { server_stop.cancelled().await })
                .await
        });
        follow(
            &mut watcher,
            &health_tx,
            &thresholds,
            config.poll_interval,
            &stop,
        )
        .await;
        let status = watcher.shutdown().await?;
        // Requests in flight finish; a client that does not let go is cut off after 5 s.
        match tokio::time::timeout(std::time::Duration::from_secs(5), server).await {
            Ok(served) => served??,
            Err(_) => tracing::warn!("HTTP connections still open at shutdown were cut off"),
        }
        Err(format!(
            "stopped by a signal; every committed changeset is kept (refreshed through {:?})",
            status.through.map(|b| b.number)
        )
        .into())
    }
}

/// Syncs every `poll` until `stop`, publishing the health report after each sync.
async fn follow(
    watcher: &mut Watcher,
    health: &watch::Sender<HealthReport>,
    thresholds: &HealthThresholds,
    poll: std::time::Duration,
    stop: &CancellationToken,
) {
    while !stop.is_cancelled() {
        if let Err(error) = watcher.sync().await {
            tracing::warn!(%error, "sync failed; retrying at the next poll");
            eprintln!("warning: sync failed: {error}");
        }
        health.send_replace(watcher.health(thresholds).await);
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(poll) => {}
        }
    }
}

/// Shows the progress of a catch-up of more than 100 blocks (a bar on a terminal, log
/// lines otherwise) until the watcher is dropped.
fn show_catch_up(mut progress: watch::Receiver<reorg_collateral::watcher::SyncProgress>) {
    tokio::spawn(async move {
        let mut bar: Option<(indicatif::ProgressBar, u64)> = None;
        loop {
            let p = *progress.borrow_and_update();
            let head = p.head.unwrap_or(0);
            let target = p.target.unwrap_or(0);
            match &bar {
                None if target > head + 100 => {
                    let b = crate::bar(
                        target - head,
                        "catch-up [{bar:40}] {pos}/{len} blocks {per_sec} eta {eta}",
                    );
                    bar = Some((b, head));
                }
                Some((b, start)) => {
                    b.set_length(target.saturating_sub(*start));
                    b.set_position(head.saturating_sub(*start));
                    if head >= target {
                        b.finish();
                        eprintln!("caught up with the node at #{head}");
                        bar = None;
                    }
                }
                None => {}
            }
            if progress.changed().await.is_err() {
                return;
            }
        }
    });
}
