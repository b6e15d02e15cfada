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

/// The creation bytecode of `name` (`WETH9`, `TestVault`, `OzToken`, `FiatTokenV2_2`,
/// `FiatTokenProxy`).
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
    static CODE: Mutex<Option<HashMap<String, Bytes>>> = Mutex::new(None);
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
    let bytes: Bytes = artifact[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} of {name}"))
        .parse()
        .expect("hex bytecode");
    code.get_or_insert_with(HashMap::new)
        .insert(id, bytes.clone());
    bytes
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
