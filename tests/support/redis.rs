//! A key prefix per test on the shared Redis, and a private `redis-server` child process
//! for tests that stop, freeze or reconfigure the server: [`PrivateRedis`] is the only
//! place a test's commands may do that (`tests/shared_servers.rs` checks it). Nothing here
//! skips: an unreachable server fails, naming what to start.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reorg_collateral::cache::RedisCollateralCache;

static NEXT: AtomicUsize = AtomicUsize::new(0);

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

pub fn unique_prefix(tag: &str) -> String {
    format!(
        "rc_test_{tag}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A cache on the shared server under a fresh prefix.
#[allow(dead_code)]
pub async fn fresh_cache(tag: &str) -> RedisCollateralCache {
    let url = redis_url();
    RedisCollateralCache::connect(&url, &unique_prefix(tag))
        .await
        .unwrap_or_else(|e| panic!("{}", missing_redis(&url, &e)))
}

/// What a test that cannot reach the shared Redis says: what is missing and how to start it.
pub fn missing_redis(url: &str, error: &dyn std::fmt::Display) -> String {
    format!(
        "Redis must be reachable at REDIS_URL={url} ({error}); start one with \
         `redis-server --daemonize yes --port 6379 --save \"\"` (`bash .ci/run` does), \
         or point REDIS_URL at one"
    )
}

/// A `redis-server` of this test's own, on a free port; killed on drop.
#[allow(dead_code)]
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
    extra: Vec<String>,
    frozen: bool,
}

#[allow(dead_code)]
impl PrivateRedis {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A private server with extra `redis-server` arguments (e.g. `--maxmemory 1mb`).
    pub fn start_with(extra: &[&str]) -> Self {
        let port = super::process::free_port();
        let mut me = Self {
            port,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            frozen: false,
        };
        me.restart();
        me
    }

    fn signal(&self, signal: &str) {
        if let Some(c) = &self.child {
            let status = Command::new("kill")
                .args([signal, &c.id().to_string()])
                .status()
                .expect("kill(1) must be installed");
            assert!(status.success(), "kill {signal} {}", c.id());
        }
    }

    /// Freezes the server (SIGSTOP): it keeps its connections but answers nothing.
    /// Dropping the server thaws it before killing it.
    pub fn freeze(&mut self) {
        self.signal("-STOP");
        self.frozen = true;
    }

    /// Thaws a frozen server (SIGCONT).
    pub fn thaw(&mut self) {
        if self.frozen {
            self.signal("-CONT");
            self.frozen = false;
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server on the same port and waits until it answers.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("redis-server must be installed (apt-get install redis-server): {e}")
            });
        self.child = Some(child);
        let deadline = Instant::now() + super::process::START_TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "private redis-server did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sets a server parameter of this private server (`CONFIG SET name value`), e.g.
    /// `min-replicas-to-write 1` to refuse every write.
    pub async fn config_set(&self, name: &str, value: &str) {
        let client = redis::Client::open(self.url()).expect("a valid URL");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the private redis-server");
        redis::cmd("CONFIG")
            .arg("SET")
            .arg(name)
            .arg(value)
            .query_async::<()>(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("CONFIG SET {name} {value}: {e}"));
    }

    /// Empties this private server (`FLUSHALL`), as an operator's mistake would.
    #[allow(dead_code)]
    pub async fn wipe(&self) {
        let client = redis::Client::open(self.url()).expect("a valid URL");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the private redis-server");
        redis::cmd("FLUSHALL")
            .query_async::<()>(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("FLUSHALL on the private redis-server: {e}"));
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        self.thaw();
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
