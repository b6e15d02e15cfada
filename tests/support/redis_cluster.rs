//! A private Redis Cluster of a test's own: 3 masters and 3 replicas (`redis-server
//! --cluster-enabled yes` on free loopback ports, joined by `redis-cli --cluster create`),
//! with a failover (kill a master) and a resharding (`redis-cli --cluster reshard`).
//! Every server is killed and its directory removed on drop, panics included. Nothing here
//! skips: missing `redis-server` / `redis-cli` fail naming them.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::process::{free_port, run};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// One node: its port and process (`None` once killed).
struct Node {
    port: u16,
    child: Option<Child>,
}

/// A private 3 + 3 Redis Cluster; see the module docs.
pub struct PrivateRedisCluster {
    dir: PathBuf,
    nodes: Vec<Node>,
}

impl PrivateRedisCluster {
    /// The output of `redis-cli -p <port> <args>` on a node of a private cluster (panics
    /// naming redis-cli if it cannot run).
    fn cli(port: u16, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli must be installed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts six nodes and joins them (each master gets one replica), then waits until
    /// every node reports `cluster_state:ok`.
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "rc_redis_cluster_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the cluster directory");
        let mut me = Self {
            dir,
            nodes: Vec::new(),
        };
        for _ in 0..6 {
            let (port, bus) = (free_port(), free_port());
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    &bus.to_string(),
                ])
                .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                .args(["--cluster-node-timeout", "1000"])
                // A replica always stands for election, however long since it last synced.
                .args(["--cluster-replica-validity-factor", "0"])
                .args(["--logfile", &format!("redis-{port}.log")])
                .args(["--dir", &me.dir.to_string_lossy()])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server must be installed");
            me.nodes.push(Node {
                port,
                child: Some(child),
            });
        }
        for node in &me.nodes {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Self::cli(node.port, &["PING"]).trim() != "PONG" {
                assert!(
                    Instant::now() < deadline,
                    "redis-server on {} did not start",
                    node.port
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let addresses: Vec<String> = me
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        run(
            Command::new("redis-cli")
                .args(["--cluster", "create"])
                .args(&addresses)
                .args(["--cluster-replicas", "1", "--cluster-yes"]),
            "redis-cli --cluster create",
        );
        me.wait_ok();
        // Every replica in sync with its master, so a failover has data to promote.
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in &me.nodes {
            loop {
                let role = Self::cli(node.port, &["INFO", "replication"]);
                if role.contains("role:master") || role.contains("master_link_status:up") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "replica {} never synced: {role}",
                    node.port
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        me
    }

    /// `redis://127.0.0.1:<port>` of every live node.
    pub fn urls(&self) -> Vec<String> {
        self.live_ports()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    fn live_ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.port)
    }

    /// The port of the master serving `slot`, from `CLUSTER NODES` of a live node.
    pub fn master_of(&self, slot: u16) -> u16 {
        let port = self.live_ports().next().expect("a live node");
        Self::master_in_view(port, slot)
            .unwrap_or_else(|| panic!("no live master serves slot {slot}"))
    }

    /// The port of the master serving `slot` in the view (`CLUSTER NODES`) of the node
    /// on `port`, if a master not flagged as failed serves it there.
    fn master_in_view(port: u16, slot: u16) -> Option<u16> {
        for line in Self::cli(port, &["CLUSTER", "NODES"]).lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 9 || !fields[2].contains("master") || fields[2].contains("fail") {
                continue;
            }
            let owns = fields[8..].iter().any(|range| {
                let (a, b) = range.split_once('-').unwrap_or((range, range));
                match (a.parse::<u16>(), b.parse::<u16>()) {
                    (Ok(a), Ok(b)) => (a..=b).contains(&slot),
                    _ => false,
                }
            });
            if owns {
                let address = fields[1].split('@').next()?;
                return address.rsplit(':').next()?.parse().ok();
            }
        }
        None
    }

    /// Waits (up to 120 s) until every live node sees a master other than `old` serving
    /// `slot` (a replica promoted after `old` was killed), and returns it; panics naming
    /// the slot and the views otherwise.
    pub fn wait_promoted(&self, slot: u16, old: u16) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let views: Vec<(u16, Option<u16>)> = self
                .live_ports()
                .map(|p| (p, Self::master_in_view(p, slot)))
                .collect();
            if let Some((_, Some(new))) = views.first()
                && *new != old
                && views.iter().all(|(_, m)| m == &Some(*new))
            {
                return *new;
            }
            assert!(
                Instant::now() < deadline,
                "no replica was promoted for slot {slot} (master {old} killed) within 120 s: \
                 node -> master it sees {views:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The hash slot of `key` (`CLUSTER KEYSLOT`).
    pub fn keyslot(&self, key: &str) -> u16 {
        let port = self.live_ports().next().expect("a live node");
        let out = Self::cli(port, &["CLUSTER", "KEYSLOT", key]);
        out.trim()
            .parse()
            .unwrap_or_else(|_| panic!("CLUSTER KEYSLOT: {out:?}"))
    }

    /// The node id of the node on `port`.
    pub fn node_id(&self, port: u16) -> String {
        Self::cli(port, &["CLUSTER", "MYID"]).trim().to_owned()
    }

    /// Kills the node on `port` (SIGKILL); its replica is promoted after the node timeout.
    pub fn kill(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("a node of this cluster");
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits (up to 120 s: generous, for a busy machine) until every live node reports
    /// `cluster_state:ok` and every slot is served by a live master.
    pub fn wait_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let ok = self.live_ports().all(|p| {
                let info = Self::cli(p, &["CLUSTER", "INFO"]);
                info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
            });
            if ok {
                return;
            }
            if Instant::now() > deadline {
                let states: Vec<String> = self
                    .live_ports()
                    .map(|p| {
                        format!(
                            "{p}: {}\n{}",
                            Self::cli(p, &["CLUSTER", "INFO"]),
                            Self::cli(p, &["CLUSTER", "NODES"])
                        )
                    })
                    .collect();
                panic!(
                    "the cluster never became ok (cluster_state:ok, 16384 slots served) within 120 s:\n{}",
                    states.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Moves `slots` slots from the master on `from` to the master on `to` with
    /// `redis-cli --cluster reshard`, keys included.
    pub fn reshard(&self, from: u16, to: u16, slots: u16) {
        let (from_id, to_id) = (self.node_id(from), self.node_id(to));
        run(
            Command::new("redis-cli")
                .args(["--cluster", "reshard", &format!("127.0.0.1:{from}")])
                .args(["--cluster-from", &from_id, "--cluster-to", &to_id])
                .args(["--cluster-slots", &slots.to_string(), "--cluster-yes"])
                .stdout(Stdio::null()),
            "redis-cli --cluster reshard",
        );
    }

    /// The ports of the live masters.
    pub fn masters(&self) -> Vec<u16> {
        self.live_ports()
            .filter(|&p| Self::cli(p, &["ROLE"]).starts_with("master"))
            .collect()
    }
}

impl Drop for PrivateRedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
