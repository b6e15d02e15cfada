//! TLS servers of a test's own: a throw-away CA and a server certificate for `localhost` /
//! `127.0.0.1` (openssl), a `redis-server` listening with TLS only, and a private Postgres
//! cluster (initdb) with `ssl = on`, each on a free loopback port and stopped on drop.
//! Nothing here skips: a missing `openssl`, `redis-server` or Postgres binary fails.
// Shared by every test binary; only some use it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A temporary directory holding `ca.crt`, `server.crt` and `server.key`; removed on drop.
pub struct Certs {
    pub dir: PathBuf,
}

impl Certs {
    pub fn generate() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "rc_tls_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the certificate directory");
        let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(
            Command::new("openssl")
                .args(["req", "-x509"])
                .args(ec)
                .args(["-keyout", &p("ca.key"), "-out", &p("ca.crt")])
                .args(["-days", "2", "-subj", "/CN=reorg-collateral test CA"])
                .args(["-addext", "basicConstraints=critical,CA:TRUE"])
                .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]),
            "openssl (CA)",
        );
        run(
            Command::new("openssl")
                .arg("req")
                .args(ec)
                .args(["-keyout", &p("server.key"), "-out", &p("server.csr")])
                .args(["-subj", "/CN=localhost"]),
            "openssl (server key)",
        );
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write extensions");
        run(
            Command::new("openssl")
                .args(["x509", "-req", "-in", &p("server.csr")])
                .args([
                    "-CA",
                    &p("ca.crt"),
                    "-CAkey",
                    &p("ca.key"),
                    "-CAcreateserial",
                ])
                .args(["-out", &p("server.crt"), "-days", "2"])
                .args(["-extfile", &p("server.ext")]),
            "openssl (server certificate)",
        );
        Self { dir }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    fn path(&self, f: &str) -> String {
        self.dir.join(f).to_string_lossy().into_owned()
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    for _ in 0..200 {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited at start-up: {status}");
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on port {port}");
}

/// A `redis-server` accepting TLS connections only; killed on drop.
pub struct TlsRedis {
    pub port: u16,
    child: Child,
}

impl TlsRedis {
    pub fn start(certs: &Certs) -> Self {
        let port = free_port();
        let mut child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--tls-cert-file", &certs.path("server.crt")])
            .args(["--tls-key-file", &certs.path("server.key")])
            .args(["--tls-ca-cert-file", &certs.path("ca.crt")])
            .args(["--tls-auth-clients", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (with TLS support)");
        wait_for_port(port, &mut child, "redis-server --tls-port");
        Self { port, child }
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The newest installed Postgres server binaries (`/usr/lib/postgresql/<v>/bin`).
fn postgres_bin() -> PathBuf {
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
fn server_user() -> Option<(u32, u32)> {
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

fn as_server_user(cmd: &mut Command, user: Option<(u32, u32)>) -> &mut Command {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

/// A private Postgres cluster with `ssl = on` and trust authentication on 127.0.0.1; shut
/// down (immediate) and removed on drop.
pub struct TlsPostgres {
    pub port: u16,
    dir: PathBuf,
    child: Child,
}

impl TlsPostgres {
    pub fn start(certs: &Certs) -> Self {
        let bin = postgres_bin();
        let user = server_user();
        let dir = certs.dir.join("pgdata");
        // The server reads its key and certificate from its own directory, owned by it.
        let ssl = certs.dir.join("pgssl");
        std::fs::create_dir_all(&ssl).expect("ssl dir");
        for f in ["server.crt", "server.key"] {
            std::fs::copy(certs.dir.join(f), ssl.join(f)).expect("copy certificate");
        }
        chmod(&ssl.join("server.key"), 0o600);
        if let Some((uid, gid)) = user {
            for p in [
                &certs.dir,
                &ssl,
                &ssl.join("server.crt"),
                &ssl.join("server.key"),
            ] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid)).expect("chown");
            }
        }
        run(
            as_server_user(
                Command::new(bin.join("initdb"))
                    .args(["-D", &dir.to_string_lossy()])
                    .args(["-A", "trust", "-U", "postgres", "--no-sync"]),
                user,
            ),
            "initdb",
        );
        let port = free_port();
        let mut child = as_server_user(
            Command::new(bin.join("postgres"))
                .args(["-D", &dir.to_string_lossy(), "-p", &port.to_string()])
                .args(["-c", "listen_addresses=127.0.0.1"])
                .args(["-c", &format!("unix_socket_directories={}", dir.display())])
                .args(["-c", "ssl=on", "-c", "fsync=off"])
                .args([
                    "-c",
                    &format!("ssl_cert_file={}", ssl.join("server.crt").display()),
                ])
                .args([
                    "-c",
                    &format!("ssl_key_file={}", ssl.join("server.key").display()),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            user,
        )
        .spawn()
        .expect("start postgres");
        wait_for_port(port, &mut child, "postgres");
        let me = Self { port, dir, child };
        // Listening is not accepting: wait until start-up is over.
        for _ in 0..200 {
            let ready = Command::new(bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return me;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the private postgres on port {port} never became ready");
    }
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        // SIGQUIT: immediate shutdown, children included.
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
