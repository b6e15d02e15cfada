//! A Hardhat development node as a child process (killed on drop), plus the few JSON-RPC
//! calls the tests and benches need: deploy, send, mine, snapshot/revert, `eth_call` at a
//! block. Shared by the `rpc` test binary, `benches/rpc.rs` and `benches/hardhat_catchup.rs`.
//!
//! On first use in a process the npm dependencies of `tests/chain` are installed
//! (`chain_deps`); a missing `node` or `npm` is a test failure that names it: these tests
//! never skip.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, Bytes, U64, U256};
use alloy_rpc_client::{ClientBuilder, RpcClient};
use alloy_sol_types::{SolCall, sol};
use reorg_collateral::decode::AggregatorV3Interface;

#[path = "chain_deps.rs"]
mod chain_deps;
pub use chain_deps::{chain_dir, ensure_chain_deps};

sol! {
    interface ITestToken {
        function balanceOf(address owner) external view returns (uint256);
        function transfer(address to, uint256 value) external returns (bool);
        function burn(uint256 value) external;
        function transferMany(address first, uint256 count, uint256 value) external;
    }
    interface IMockAggregator {
        function updateAnswer(int256 answer) external;
    }
}

/// A running `hardhat node` on a free port.
pub struct DevNode {
    child: Option<Child>,
    /// The HTTP endpoint.
    pub url: String,
    /// A plain client (no retries) for test calls.
    pub client: RpcClient,
    /// The node's unlocked accounts.
    pub accounts: Vec<Address>,
    /// Replica mode: the timestamp of the next block (every block's timestamp is set), so
    /// two nodes given the same calls build the same chain.
    clock: Option<AtomicU64>,
}

impl Drop for DevNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The genesis date of replica nodes, and its Unix time.
const REPLICA_DATE: &str = "2024-01-01T00:00:00Z";
const REPLICA_EPOCH: u64 = 1_704_067_200;

impl DevNode {
    /// Starts a node (installing Hardhat first if needed).
    pub async fn start() -> DevNode {
        Self::spawn(false, None).await
    }

    /// Starts a node whose chain id is `chain_id` (Hardhat's config reads
    /// `HARDHAT_CHAIN_ID`), for tests that run several chains at once.
    pub async fn start_on_chain(chain_id: u64) -> DevNode {
        Self::spawn(false, Some(chain_id)).await
    }

    /// Starts a node whose chain is a pure function of the calls made to it: genesis at a
    /// fixed date, every block's timestamp set. Two replicas given the same calls serve
    /// the same blocks (same hashes).
    pub async fn replica() -> DevNode {
        Self::spawn(true, None).await
    }

    async fn spawn(replica: bool, chain_id: Option<u64>) -> DevNode {
        ensure_chain_deps();
        let cli = chain_dir().join("node_modules/hardhat/internal/cli/cli.js");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let log = std::env::temp_dir().join(format!("hardhat-node-{port}.log"));
        let out = std::fs::File::create(&log).expect("node log file");
        let err = out.try_clone().expect("node log file");
        let mut command = Command::new("node");
        command
            .arg(&cli)
            .args([
                "node",
                "--hostname",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .current_dir(chain_dir())
            .env("HARDHAT_DISABLE_TELEMETRY_PROMPT", "true")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        if replica {
            command.env("HARDHAT_INITIAL_DATE", REPLICA_DATE);
        }
        if let Some(id) = chain_id {
            command.env("HARDHAT_CHAIN_ID", id.to_string());
        }
        let child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "spawn `node {}` ({e}): is Node.js (`node`) on PATH?",
                cli.display()
            )
        });
        let url = format!("http://127.0.0.1:{port}");
        let client = ClientBuilder::default().http(url.parse().expect("url"));
        let mut node = DevNode {
            child: Some(child),
            url,
            client,
            accounts: Vec::new(),
            clock: replica.then(|| AtomicU64::new(REPLICA_EPOCH + 100)),
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(accounts) = node
                .client
                .request_noparams::<Vec<Address>>("eth_accounts")
                .await
            {
                node.accounts = accounts;
                return node;
            }
            if let Some(Ok(Some(status))) = node.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "hardhat node exited with {status}: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "hardhat node did not answer within 90 s: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Kills the node (SIGKILL) and reaps it; later calls to it fail.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// In replica mode, the next block's timestamp.
    fn tick(&self) -> Option<u64> {
        self.clock
            .as_ref()
            .map(|c| c.fetch_add(12, Ordering::Relaxed))
    }

    /// Sends a transaction from `from` (unlocked) and waits for its receipt; panics on revert.
    pub async fn send(
        &self,
        from: Address,
        to: Option<Address>,
        data: Vec<u8>,
    ) -> serde_json::Value {
        let mut tx =
            serde_json::json!({ "from": from, "data": Bytes::from(data), "gas": "0x200000" });
        if let Some(to) = to {
            tx["to"] = serde_json::json!(to);
        }
        if let Some(ts) = self.tick() {
            let _: serde_json::Value = self
                .client
                .request("evm_setNextBlockTimestamp", (ts,))
                .await
                .expect("evm_setNextBlockTimestamp");
        }
        let hash: B256 = self
            .client
            .request("eth_sendTransaction", (tx,))
            .await
            .expect("eth_sendTransaction");
        let receipt: serde_json::Value = self
            .client
            .request("eth_getTransactionReceipt", (hash,))
            .await
            .expect("receipt");
        assert_eq!(receipt["status"], "0x1", "transaction reverted: {receipt}");
        receipt
    }

    /// Sends one transaction from `from` (unlocked) to `to` per entry of `calls`, in
    /// JSON-RPC batches of `batch` calls (with automine, a block each); returns the hashes.
    /// Receipts are not read, so check the effects. Not for replica nodes (no timestamps).
    pub async fn send_many(
        &self,
        from: Address,
        to: Address,
        calls: impl IntoIterator<Item = Vec<u8>>,
        batch: usize,
    ) -> Vec<B256> {
        assert!(self.clock.is_none(), "send_many sets no block timestamps");
        let calls: Vec<Vec<u8>> = calls.into_iter().collect();
        let mut hashes = Vec::with_capacity(calls.len());
        for chunk in calls.chunks(batch.max(1)) {
            let mut request = self.client.new_batch();
            let mut waiters = Vec::with_capacity(chunk.len());
            for data in chunk {
                let tx = serde_json::json!({
                    "from": from,
                    "to": to,
                    "data": Bytes::from(data.clone()),
                    "gas": "0x200000",
                });
                waiters.push(
                    request
                        .add_call::<_, B256>("eth_sendTransaction", &(tx,))
                        .expect("batch"),
                );
            }
            request.send().await.expect("eth_sendTransaction batch");
            for w in waiters {
                hashes.push(w.await.expect("eth_sendTransaction"));
            }
        }
        hashes
    }

    /// Deploys the compiled contract `name` (from `tests/chain/build`) with ABI-encoded
    /// constructor `args`.
    pub async fn deploy(&self, name: &str, args: &[u8]) -> Address {
        let path = chain_dir().join(format!("build/{name}.json"));
        let artifact: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("artifact")).expect("json");
        let code: Bytes = artifact["bytecode"]
            .as_str()
            .expect("bytecode")
            .parse()
            .expect("hex");
        let mut data = code.to_vec();
        data.extend_from_slice(args);
        let receipt = self.send(self.accounts[0], None, data).await;
        receipt["contractAddress"]
            .as_str()
            .expect("contract address")
            .parse()
            .expect("address")
    }

    /// `token.transfer(to, amount)` from `from`.
    pub async fn transfer(&self, token: Address, from: Address, to: Address, amount: U256) {
        let call = ITestToken::transferCall { to, value: amount };
        self.send(from, Some(token), call.abi_encode()).await;
    }

    /// `feed.updateAnswer(answer)` from the deployer.
    pub async fn set_price(&self, feed: Address, answer: i64) {
        let call = IMockAggregator::updateAnswerCall {
            answer: alloy_primitives::I256::try_from(answer).expect("small"),
        };
        self.send(self.accounts[0], Some(feed), call.abi_encode())
            .await;
    }

    /// `eth_call` of `data` on `to` at block `number`.
    pub async fn call_at(&self, to: Address, data: Vec<u8>, number: u64) -> Bytes {
        self.client
            .request(
                "eth_call",
                (
                    serde_json::json!({ "to": to, "data": Bytes::from(data) }),
                    U64::from(number),
                ),
            )
            .await
            .expect("eth_call")
    }

    /// `token.balanceOf(owner)` at block `number` (zero before the token exists).
    pub async fn balance_at(&self, token: Address, owner: Address, number: u64) -> U256 {
        let out = self
            .call_at(
                token,
                ITestToken::balanceOfCall { owner }.abi_encode(),
                number,
            )
            .await;
        if out.is_empty() {
            return U256::ZERO;
        }
        ITestToken::balanceOfCall::abi_decode_returns(&out).expect("balanceOf")
    }

    /// `feed.latestRoundData()` at block `number` (all zero before the feed exists).
    pub async fn round_at(
        &self,
        feed: Address,
        number: u64,
    ) -> AggregatorV3Interface::latestRoundDataReturn {
        let out = self
            .call_at(
                feed,
                AggregatorV3Interface::latestRoundDataCall {}.abi_encode(),
                number,
            )
            .await;
        if out.is_empty() {
            return AggregatorV3Interface::latestRoundDataReturn {
                roundId: Default::default(),
                answer: Default::default(),
                startedAt: U256::ZERO,
                updatedAt: U256::ZERO,
                answeredInRound: Default::default(),
            };
        }
        AggregatorV3Interface::latestRoundDataCall::abi_decode_returns(&out)
            .expect("latestRoundData")
    }

    /// The latest block number.
    pub async fn head(&self) -> u64 {
        let n: U64 = self
            .client
            .request_noparams("eth_blockNumber")
            .await
            .expect("head");
        n.to()
    }

    /// Mines `n` empty blocks: `evm_mine` calls in JSON-RPC batches of 500. (Not
    /// `hardhat_mine`: its reserved blocks report a zero `parentHash`.)
    pub async fn mine(&self, n: u64) {
        if self.clock.is_some() {
            // Replica mode: one call per block, since Hardhat may run a batch's calls out
            // of order and the timestamps must increase.
            for _ in 0..n {
                let ts = self.tick().into_iter().collect::<Vec<u64>>();
                let _: serde_json::Value =
                    self.client.request("evm_mine", ts).await.expect("evm_mine");
            }
            return;
        }
        let mut left = n;
        while left > 0 {
            let k = left.min(500);
            let mut batch = self.client.new_batch();
            let mut waiters = Vec::new();
            for _ in 0..k {
                waiters.push(
                    batch
                        .add_call::<_, serde_json::Value>("evm_mine", &Vec::<u8>::new())
                        .expect("batch"),
                );
            }
            batch.send().await.expect("evm_mine batch");
            for w in waiters {
                w.await.expect("evm_mine");
            }
            left -= k;
        }
    }

    /// `evm_snapshot`.
    pub async fn snapshot(&self) -> U64 {
        self.client
            .request_noparams("evm_snapshot")
            .await
            .expect("evm_snapshot")
    }

    /// `evm_revert` to `id`: the blocks after the snapshot leave the chain.
    pub async fn revert(&self, id: U64) {
        let ok: bool = self
            .client
            .request("evm_revert", (id,))
            .await
            .expect("evm_revert");
        assert!(ok, "evm_revert {id} failed");
    }

    /// The hash of block `number`.
    pub async fn hash_at(&self, number: u64) -> B256 {
        let block: serde_json::Value = self
            .client
            .request("eth_getBlockByNumber", (U64::from(number), false))
            .await
            .expect("block");
        block["hash"].as_str().expect("hash").parse().expect("hash")
    }
}
