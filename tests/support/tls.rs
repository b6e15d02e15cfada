//! TLS servers of a test's own: a throw-away CA and a server certificate for `localhost` /
//! `127.0.0.1` (openssl), a `redis-server` listening with TLS only, and a private Postgres
//! cluster ([`PrivatePostgres`]) with `ssl = on`, each on a free loopback port and stopped
//! on drop.
//! Nothing here skips: a missing `openssl`, `redis-server` or Postgres binary fails.
// Shared by every test binary; only some use it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::cluster::{PrivatePostgres, chmod, give_to_server_user};
use super::process::{free_port, run, wait_for_port};

static NEXT: AtomicUsize = AtomicUsize::new(0);

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

/// A private Postgres cluster ([`PrivatePostgres`]) with `ssl = on` and the certificate of
/// `certs`; shut down and removed on drop.
pub struct TlsPostgres {
    pub port: u16,
    _server: PrivatePostgres,
}

impl TlsPostgres {
    pub fn start(certs: &Certs) -> Self {
        // The server reads its key and certificate from its own directory, owned by it.
        let ssl = certs.dir.join("pgssl");
        std::fs::create_dir_all(&ssl).expect("ssl dir");
        for f in ["server.crt", "server.key"] {
            std::fs::copy(certs.dir.join(f), ssl.join(f)).expect("copy certificate");
        }
        chmod(&ssl.join("server.key"), 0o600);
        give_to_server_user(&[
            &certs.dir,
            &ssl,
            &ssl.join("server.crt"),
            &ssl.join("server.key"),
        ]);
        let server = PrivatePostgres::start_in(
            &certs.dir,
            &[
                "ssl=on".to_owned(),
                format!("ssl_cert_file={}", ssl.join("server.crt").display()),
                format!("ssl_key_file={}", ssl.join("server.key").display()),
            ],
        );
        Self {
            port: server.port,
            _server: server,
        }
    }
}
