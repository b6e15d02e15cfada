//! Child processes of a test's own: a free loopback port, running a command to completion,
//! waiting for a server to listen, and signalling a child. Signalling by pid (a process
//! and its children) is for the private servers of `support` only (`pub(super)`): a test
//! signals a server it did not start through nothing here (see `tests/shared_servers.rs`).
// Shared by every test binary; only some use it.
#![allow(dead_code)]

use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// How long a private server may take to start on a busy machine before a test fails.
pub const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A loopback port nothing listens on (yet).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Runs `cmd` to completion; panics with its stderr if it fails.
pub fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits until `port` accepts TCP connections; panics if `child` exits first or it does not
/// within [`START_TIMEOUT`].
pub fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited at start-up: {status}");
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on port {port} within {START_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The pids of `parent`'s direct children (from `/proc`).
pub(super) fn children(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
            let ppid: u32 = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            (ppid == parent).then_some(pid)
        })
        .collect()
}

/// Sends `signal` (e.g. `-STOP`, `-CONT`) to `pid` with kill(1); whether it was delivered
/// (a child may have exited meanwhile).
pub(super) fn signal(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .args([signal, &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .expect("kill(1) must be installed")
        .success()
}

/// Freezes `pid` and its children (SIGSTOP): the parent first, so it starts no new child.
pub(super) fn freeze_tree(pid: u32) {
    assert!(signal(pid, "-STOP"), "cannot stop process {pid}");
    for child in children(pid) {
        signal(child, "-STOP");
    }
}

/// Thaws `pid` and its children (SIGCONT); harmless on a process that is not stopped.
pub(super) fn thaw_tree(pid: u32) {
    for child in children(pid) {
        signal(child, "-CONT");
    }
    signal(pid, "-CONT");
}

/// Sends `signal` (e.g. `-INT`) to `child`, a process this test started; whether it was
/// delivered.
pub fn signal_child(child: &Child, signal: &str) -> bool {
    self::signal(child.id(), signal)
}
