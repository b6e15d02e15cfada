//! The npm dependencies of `tests/chain` (Hardhat and the compiled contracts): installed on
//! first use in a process (`npm ci`, from the committed lockfile) when `node_modules` is
//! missing or older than `package-lock.json`, under a lock file so parallel test binaries do
//! not install at once. A missing `node` or `npm` is a test failure that names it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

/// The npm project holding Hardhat and the compiled contracts.
pub fn chain_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/chain")
}

/// Whether `node_modules` was installed from the current lockfile.
fn deps_fresh(dir: &Path) -> bool {
    let modified = |p: PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let installed = modified(dir.join("node_modules/.package-lock.json"));
    let lock = modified(dir.join("package-lock.json"));
    let cli = dir.join("node_modules/hardhat/internal/cli/cli.js");
    matches!((installed, lock), (Some(i), Some(l)) if i >= l) && cli.exists()
}

/// Fails naming the missing program, e.g. `node`.
fn require_program(program: &str) {
    match Command::new(program).arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "`{program} --version` failed ({}): the real-node tests need Node.js (`node` and `npm`) on PATH",
            out.status
        ),
        Err(e) => panic!(
            "`{program}` not found ({e}): the real-node tests need Node.js (`node` and `npm`) on PATH; install Node.js 18 or later"
        ),
    }
}

/// Removes the install lock when the installer finishes or panics.
struct InstallLock(PathBuf);

impl Drop for InstallLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Installs `tests/chain`'s npm dependencies unless they are fresh: once per process,
/// and across processes one at a time (a lock file created with `create_new`; a lock
/// older than 10 minutes is taken as left by a killed installer).
pub fn ensure_chain_deps() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        require_program("node");
        let dir = chain_dir();
        let lock = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("npm-install-tests-chain.lock");
        let deadline = Instant::now() + Duration::from_secs(15 * 60);
        loop {
            if deps_fresh(&dir) {
                return;
            }
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock)
            {
                Ok(_) => break,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let age = std::fs::metadata(&lock)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| SystemTime::now().duration_since(t).ok());
                    if age.is_some_and(|a| a > Duration::from_secs(600)) {
                        let _ = std::fs::remove_file(&lock);
                    }
                    assert!(
                        Instant::now() < deadline,
                        "another process holds {} for 15 minutes",
                        lock.display()
                    );
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(e) => panic!("create {}: {e}", lock.display()),
            }
        }
        let _guard = InstallLock(lock);
        if deps_fresh(&dir) {
            return;
        }
        require_program("npm");
        eprintln!(
            "installing the npm dependencies of {} (npm ci)",
            dir.display()
        );
        let out = Command::new("npm")
            .args(["ci", "--prefix"])
            .arg(&dir)
            .args(["--no-audit", "--no-fund"])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run `npm ci --prefix {}`: {e}", dir.display()));
        assert!(
            out.status.success(),
            "`npm ci --prefix {}` failed ({}):\n{}\n{}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            deps_fresh(&dir),
            "`npm ci` succeeded but {} has no Hardhat",
            dir.join("node_modules").display()
        );
    });
}
