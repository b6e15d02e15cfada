//! `follow`: print the durable collateral stream (a `RedisStreamPublisher`'s), resuming
//! after a restart from a state file (alone) or from its consumer group.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use reorg_collateral::cache::{RedisStreamConsumer, Resync, StreamEvent, StreamId, entry_ids};

/// The stream and how to consume it.
#[derive(Args, Debug)]
pub(crate) struct FollowArgs {
    /// Redis URL. Its value is never printed.
    #[arg(
        long,
        env = "REDIS_URL",
        hide_env_values = true,
        hide_default_value = true,
        default_value = "redis://127.0.0.1:6379"
    )]
    redis_url: String,
    /// The stream key.
    #[arg(long)]
    stream: String,
    /// Consume in this consumer group (with `--consumer`); else alone.
    #[arg(long, requires = "consumer")]
    group: Option<String>,
    /// This consumer's name in the group.
    #[arg(long, requires = "group")]
    consumer: Option<String>,
    /// Alone: the file holding the last id printed, read at start and rewritten after
    /// every batch (absent: from the stream's start).
    #[arg(long, conflicts_with = "group")]
    state_file: Option<PathBuf>,
    /// In a group: take over the entries another consumer of the group was delivered but
    /// has not acknowledged for this many milliseconds (it died for good), checked every
    /// half of it; 0 turns it off.
    #[arg(long, default_value_t = 30_000, requires = "group")]
    claim_idle_ms: u64,
    /// Stop after this many events (default: never).
    #[arg(long)]
    max_events: Option<u64>,
}

impl FollowArgs {
    /// Prints one line per event (`update <id> <block>`, `resync trimmed <after>
    /// <next> <missed or ?>`, `resync publisher <id> <missed>`), flushed before the batch is
    /// acknowledged or recorded: a kill repeats lines, never loses one.
    pub(crate) async fn run(self) -> Result<ExitCode, Box<dyn std::error::Error>> {
        let client = redis::Client::open(self.redis_url.as_str())?;
        let conn = redis::aio::ConnectionManager::new(client).await?;
        let mut consumer = match (&self.group, &self.consumer) {
            (Some(group), Some(name)) => {
                RedisStreamConsumer::in_group(conn, self.stream.clone(), group, name).await?
            }
            _ => {
                let last = match &self.state_file {
                    Some(path) if path.exists() => {
                        std::fs::read_to_string(path)?.trim().parse::<StreamId>()?
                    }
                    _ => StreamId::ZERO,
                };
                RedisStreamConsumer::after(conn, self.stream.clone(), last)
            }
        };
        let mut printed = 0u64;
        let mut out = std::io::stdout().lock();
        let claim_idle = Duration::from_millis(self.claim_idle_ms);
        let mut last_claim = Instant::now();
        while self.max_events.is_none_or(|max| printed < max) {
            let mut events = consumer.next().await?;
            if self.group.is_some()
                && !claim_idle.is_zero()
                && last_claim.elapsed() >= claim_idle / 2
            {
                events.extend(consumer.claim_idle(claim_idle).await?);
                last_claim = Instant::now();
            }
            for event in &events {
                match event {
                    StreamEvent::Update(u) => writeln!(out, "update {} {}", u.id, u.block)?,
                    StreamEvent::AssetState(e) => {
                        let kind = e.message.split('|').next().unwrap_or_default();
                        writeln!(out, "{kind} {} {}", e.id, e.block)?;
                    }
                    StreamEvent::Resync(Resync::Trimmed {
                        after,
                        next,
                        missed,
                    }) => {
                        let missed = missed.map_or_else(|| "?".to_owned(), |m| m.to_string());
                        writeln!(out, "resync trimmed {after} {next} {missed}")?;
                    }
                    StreamEvent::Resync(Resync::Publisher { id, missed, .. }) => {
                        writeln!(out, "resync publisher {id} {missed}")?;
                    }
                }
                printed += 1;
            }
            out.flush()?;
            consumer.ack(&entry_ids(&events)).await?;
            if let (Some(path), false) = (&self.state_file, events.is_empty()) {
                let tmp = path.with_extension("tmp");
                std::fs::write(&tmp, consumer.last_id().to_string())?;
                std::fs::rename(&tmp, path)?;
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
