//! A private Postgres cluster (initdb) of a test's own, on a free loopback port with trust
//! authentication: for tests that stop, freeze or reconfigure the server, which the shared
//! one must never be. Shut down (immediate) and removed on drop, panics included; a frozen
//! cluster is thawed first. Nothing here skips: missing Postgres server binaries fail.
// Shared by every test binary; only some use it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::process::{START_TIMEOUT, free_port, freeze_tree, run, thaw_tree, wait_for_port};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The newest installed Postgres server binaries (`/usr/lib/postgresql/<v>/bin`).
pub fn postgres_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("Postgres server binaries must be installed under /usr/lib/postgresql")
        .filter_map(|e| {
            let e = e.ok()?;
            let v = e.file_name().to_str()?.parse().ok()?;
            Some((v, e.path().join("bin")))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, p)| p)
        .expect("a Postgres version under /usr/lib/postgresql")
}

/// The uid and gid to run Postgres as: `postgres` when this process is root (initdb and
/// postgres refuse root), else our own.
pub fn server_user() -> Option<(u32, u32)> {
    let id = |flag: &str, user: Option<&str>| -> u32 {
        let out = Command::new("id")
            .arg(flag)
            .args(user)
            .output()
            .expect("id(1)");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a numeric id")
    };
    (id("-u", None) == 0).then(|| (id("-u", Some("postgres")), id("-g", Some("postgres"))))
}

pub fn as_server_user(cmd: &mut Command, user: Option<(u32, u32)>) -> &mut Command {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

/// Makes `paths` the server user's (when we run as root).
pub fn give_to_server_user(paths: &[&Path]) {
    if let Some((uid, gid)) = server_user() {
        for p in paths {
            std::os::unix::fs::chown(p, Some(uid), Some(gid)).expect("chown");
        }
    }
}

pub fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A private Postgres cluster; see the module docs.
pub struct PrivatePostgres {
    pub port: u16,
    /// The data directory.
    dir: PathBuf,
    /// A directory created for the cluster (removed on drop), if it was not given.
    base: Option<PathBuf>,
    child: Child,
}

impl PrivatePostgres {
    /// Creates the login role `role` on this private cluster with only `USAGE` on `schema`
    /// and `SELECT` on its tables (roles are the cluster's, shared by every database: a
    /// test creates them on a server of its own only).
    #[allow(dead_code)]
    pub async fn create_read_only_role(&self, role: &str, schema: &str) {
        use sqlx::{Connection, Executor};
        let mut admin = sqlx::PgConnection::connect(&self.url())
            .await
            .expect("connect to the private cluster");
        let sql = format!(
            "CREATE ROLE {role} LOGIN;
             GRANT USAGE ON SCHEMA {schema} TO {role};
             GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role};"
        );
        admin
            .execute(sqlx::AssertSqlSafe(sql.clone()))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// A plain cluster in a temporary directory of its own.
    pub fn start() -> Self {
        let base = std::env::temp_dir().join(format!(
            "rc_pg_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&base).expect("create the cluster directory");
        give_to_server_user(&[&base]);
        let mut me = Self::start_in(&base, &[]);
        me.base = Some(base);
        me
    }

    /// A cluster whose data directory is `base/pgdata` (`base` must be the server user's),
    /// with extra `-c name=value` settings (e.g. `ssl=on`).
    pub fn start_in(base: &Path, settings: &[String]) -> Self {
        let bin = postgres_bin();
        let user = server_user();
        let dir = base.join("pgdata");
        run(
            as_server_user(
                Command::new(bin.join("initdb"))
                    .args(["-D", &dir.to_string_lossy()])
                    .args(["-A", "trust", "-U", "postgres", "--no-sync"]),
                user,
            ),
            "initdb",
        );
        Self::run_on(dir, settings)
    }

    /// A server on the existing data directory `dir` (the server user's, e.g. a base
    /// backup), on a free port, with extra `-c name=value` settings; `dir` is removed on
    /// drop.
    pub fn run_on(dir: PathBuf, settings: &[String]) -> Self {
        let bin = postgres_bin();
        let user = server_user();
        let port = free_port();
        let mut cmd = Command::new(bin.join("postgres"));
        cmd.args(["-D", &dir.to_string_lossy(), "-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", &format!("unix_socket_directories={}", dir.display())])
            .args(["-c", "fsync=off"]);
        for setting in settings {
            cmd.args(["-c", setting]);
        }
        let mut child = as_server_user(cmd.stdout(Stdio::null()).stderr(Stdio::null()), user)
            .spawn()
            .expect("start postgres");
        wait_for_port(port, &mut child, "postgres");
        let me = Self {
            port,
            dir,
            base: None,
            child,
        };
        // Listening is not accepting: wait until start-up is over.
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let ready = Command::new(bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return me;
            }
            assert!(
                Instant::now() < deadline,
                "the private postgres on port {port} was not ready within {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Also removes `base` (a directory made for this cluster) on drop.
    pub fn removing(mut self, base: PathBuf) -> Self {
        self.base = Some(base);
        self
    }

    /// A URL to the cluster's `postgres` database (no TLS).
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    /// The postmaster's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Freezes the postmaster and every backend (SIGSTOP): connections stay open and
    /// nothing answers, new connections included.
    pub fn freeze(&self) {
        freeze_tree(self.pid());
    }

    /// Thaws the cluster (SIGCONT); harmless when it is not frozen.
    pub fn thaw(&self) {
        thaw_tree(self.pid());
    }

    /// A handle that freezes this cluster from elsewhere (a hook inside the store), and
    /// nothing else: the only way a test freezes a Postgres by its pid.
    pub fn freezer(&self) -> Freezer {
        Freezer {
            postmaster: self.pid(),
        }
    }
}

/// Freezes one private cluster ([`PrivatePostgres::freezer`]); dropping the cluster thaws it.
#[derive(Debug)]
pub struct Freezer {
    postmaster: u32,
}

impl Freezer {
    /// Freezes the postmaster and every backend, as [`PrivatePostgres::freeze`].
    pub fn freeze(&self) {
        freeze_tree(self.postmaster);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // A stopped process would not act on the shutdown signal.
        self.thaw();
        // SIGQUIT: immediate shutdown, children included.
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(base) = &self.base {
            let _ = std::fs::remove_dir_all(base);
        }
    }
}
