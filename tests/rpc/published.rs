//! Contracts compiled from their published npm sources by `tests/chain/compile-published.js`
//! (canonical-weth's WETH9 with solc 0.5.17, OpenZeppelin 5.1's ERC4626 with solc 0.8.24,
//! Circle's FiatTokenV2_2 and its proxy as Stargate publishes them with solc 0.8.22, and
//! Multicall3's runtime code as OP's contracts-bedrock publishes it; the
//! sources and compilers are npm packages in `tests/chain`'s lockfile, installed on first
//! use), once per contract and process.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use alloy_primitives::{Address, Bytes};

use crate::dev_node::{DevNode, chain_dir, ensure_chain_deps};

/// The creation bytecode of `name` (`WETH9`, `TestVault`, `OzToken`, `FiatTokenProxy`,
/// `SignatureChecker`; `FiatTokenV2_2` needs [`linked_bytecode`]).
pub fn bytecode(name: &str) -> Bytes {
    artifact_field(name, "bytecode")
}

/// The runtime code of `name` (`Multicall3`).
pub fn runtime_code(name: &str) -> Bytes {
    artifact_field(name, "deployedBytecode")
}

/// Writes Multicall3's published runtime code at its canonical address
/// (`hardhat_setCode`), as on every chain it is deployed to.
pub async fn install_multicall3(node: &DevNode) {
    let code = runtime_code("Multicall3");
    let _: bool = node
        .client
        .request(
            "hardhat_setCode",
            (reorg_collateral::source::rpc::MULTICALL3, code),
        )
        .await
        .expect("hardhat_setCode");
}

fn artifact_field(name: &str, field: &str) -> Bytes {
    artifact_str(name, field)
        .parse()
        .unwrap_or_else(|e| panic!("hex {field} of {name} (unlinked library?): {e}"))
}

/// The creation bytecode of `name` with every library placeholder (`__$…$__`) linked to
/// `library` (`FiatTokenV2_2`, whose one library is `SignatureChecker`).
pub fn linked_bytecode(name: &str, library: Address) -> Bytes {
    let mut hex = artifact_str(name, "bytecode");
    let address = alloy_primitives::hex::encode(library);
    while let Some(start) = hex.find("__$") {
        hex.replace_range(start..start + 40, &address);
    }
    hex.parse().expect("linked bytecode")
}

/// Deploys `name` linked to `library` (see [`linked_bytecode`]).
pub async fn deploy_linked(node: &DevNode, name: &str, library: Address, args: &[u8]) -> Address {
    let mut data = linked_bytecode(name, library).to_vec();
    data.extend_from_slice(args);
    // Larger than `DevNode::send`'s gas: FiatTokenV2_2 is close to the 24 KiB limit.
    let tx = serde_json::json!({
        "from": node.accounts[0], "data": Bytes::from(data), "gas": "0x1000000",
    });
    let hash: alloy_primitives::B256 = node
        .client
        .request("eth_sendTransaction", (tx,))
        .await
        .expect("eth_sendTransaction");
    let receipt: serde_json::Value = node
        .client
        .request("eth_getTransactionReceipt", (hash,))
        .await
        .expect("receipt");
    assert_eq!(
        receipt["status"], "0x1",
        "deployment of {name} reverted: {receipt}"
    );
    receipt["contractAddress"]
        .as_str()
        .expect("contract address")
        .parse()
        .expect("address")
}

fn artifact_str(name: &str, field: &str) -> String {
    static CODE: Mutex<Option<HashMap<String, String>>> = Mutex::new(None);
    let mut code = CODE.lock().unwrap_or_else(|p| p.into_inner());
    let id = format!("{name}.{field}");
    if let Some(c) = code.get_or_insert_with(HashMap::new).get(&id) {
        return c.clone();
    }
    ensure_chain_deps();
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{name}-{}.json", std::process::id()));
    let script = chain_dir().join("compile-published.js");
    let run = Command::new("node")
        .arg(&script)
        .arg(name)
        .arg(&out)
        .output()
        .unwrap_or_else(|e| panic!("run `node {} {name}`: {e}", script.display()));
    assert!(
        run.status.success(),
        "`node {} {name}` failed ({}):\n{}\n{}",
        script.display(),
        run.status,
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let artifact: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("artifact"))
            .expect("artifact json");
    let _ = std::fs::remove_file(&out);
    let text = artifact[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} of {name}"))
        .to_owned();
    code.get_or_insert_with(HashMap::new)
        .insert(id, text.clone());
    text
}

/// Deploys `name` from the node's first account with ABI-encoded constructor `args`.
pub async fn deploy(node: &DevNode, name: &str, args: &[u8]) -> Address {
    let mut data = bytecode(name).to_vec();
    data.extend_from_slice(args);
    let receipt = node.send(node.accounts[0], None, data).await;
    receipt["contractAddress"]
        .as_str()
        .expect("contract address")
        .parse()
        .expect("address")
}
