//! A key prefix per test on the shared Redis, and a private `redis-server` child process
//! for tests that stop the server. Nothing here skips: an unreachable server fails.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

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
        .unwrap_or_else(|e| panic!("Redis must be reachable at {url}: {e}"))
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
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
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
            .expect("redis-server must be installed");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("private redis-server did not start on port {}", self.port);
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
