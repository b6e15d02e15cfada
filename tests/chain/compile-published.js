// Compiles contracts from their published npm sources with a compiler from npm (pure
// JS/wasm, no binary download) and writes { abi, bytecode } to the path given. Run by the
// Rust test support: node compile-published.js <contract> <out.json>
//   WETH9      canonical WETH9 (`canonical-weth`, the source 0x published as the canonical
//              WETH), with the compiler of its era (`solc-0.5`, an alias of solc@0.5.17)
//   TestVault  OpenZeppelin 5.1's ERC4626 (`@openzeppelin/contracts`) made concrete, no
//              changes to its logic, with solc 0.8.24
//   OzToken    OpenZeppelin 5.1's ERC20, its constructor minting `amount` to each holder
//              given, with solc 0.8.24
//   FiatTokenV2_2, FiatTokenProxy, SignatureChecker
//              Circle's USDC implementation, its proxy and the library FiatTokenV2_2 links
//              (its bytecode keeps solc's `__$…$__` placeholder) as Stargate publishes them
//              (`@stargatefinance/stg-evm-v2` 2.0.6, `src/usdc/impl`: Circle's sources moved to
//              `pragma ^0.8.0`), with the compiler and settings of Stargate's own build
//              (solc 0.8.22, paris, 5,000 runs) and the OpenZeppelin 4.9 files that build
//              used (from the package's `artifacts/build-info`)
//   Multicall3 not compiled: the runtime code OP-stack chains preinstall at
//              0xcA11bde05977b3631167028862bE2a173976CA11 (`MultiCall3Code` in
//              `@eth-optimism/contracts-bedrock` 0.17.3's `src/libraries/Preinstalls.sol`),
//              written as `deployedBytecode` for `hardhat_setCode`; no Multicall3 source is
//              published on npm
const fs = require("fs");
const path = require("path");

const modules = path.join(__dirname, "node_modules");
const targets = {
  WETH9: {
    solc: "solc-0.5",
    evmVersion: "petersburg",
    sources: {
      "WETH9.sol": fs.readFileSync(path.join(modules, "canonical-weth/contracts/WETH9.sol"), "utf8"),
    },
  },
  TestVault: {
    solc: "solc",
    evmVersion: "cancun",
    sources: {
      "TestVault.sol": [
        "// SPDX-License-Identifier: MIT",
        "pragma solidity ^0.8.20;",
        'import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";',
        'import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";',
        'import {ERC4626} from "@openzeppelin/contracts/token/ERC20/extensions/ERC4626.sol";',
        'contract TestVault is ERC4626 { constructor(IERC20 asset) ERC20("Test Vault", "vTST") ERC4626(asset) {} }',
      ].join("\n"),
    },
  },
  OzToken: {
    solc: "solc",
    evmVersion: "cancun",
    sources: {
      "OzToken.sol": [
        "// SPDX-License-Identifier: MIT",
        "pragma solidity ^0.8.20;",
        'import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";',
        "contract OzToken is ERC20 {",
        '  constructor(address[] memory holders, uint256 amount) ERC20("OZ Token", "OZT") {',
        "    for (uint256 i = 0; i < holders.length; i++) _mint(holders[i], amount);",
        "  }",
        "}",
      ].join("\n"),
    },
  },
};

const stargate = path.join(modules, "@stargatefinance/stg-evm-v2");
let stargateBuild;
// The sources of Stargate's own build, for the imports its package does not ship.
const stargateSource = (p) => {
  if (!stargateBuild) {
    const dir = path.join(stargate, "artifacts/build-info");
    const file = fs.readdirSync(dir).find((f) => f.endsWith(".json"));
    stargateBuild = JSON.parse(fs.readFileSync(path.join(dir, file), "utf8")).input.sources;
  }
  return stargateBuild[p] && stargateBuild[p].content;
};
for (const [name, file] of [
  ["FiatTokenV2_2", "src/usdc/impl/v2/FiatTokenV2_2.sol"],
  ["FiatTokenProxy", "src/usdc/impl/v1/FiatTokenProxy.sol"],
  ["SignatureChecker", "src/usdc/impl/util/SignatureChecker.sol"],
]) {
  targets[name] = {
    solc: "solc-0.8.22",
    evmVersion: "paris",
    runs: 5000,
    sources: { [file]: fs.readFileSync(path.join(stargate, file), "utf8") },
    // Stargate's package files first, then its build's (OpenZeppelin 4.9).
    resolve: (p) => {
      const local = path.join(stargate, p);
      if (fs.existsSync(local)) return fs.readFileSync(local, "utf8");
      return stargateSource(p);
    },
  };
}

const [name, out] = process.argv.slice(2);
if (name === "Multicall3" && out) {
  const file = path.join(modules, "@eth-optimism/contracts-bedrock/src/libraries/Preinstalls.sol");
  const m = fs.readFileSync(file, "utf8").match(/MultiCall3Code\s*=\s*hex"([0-9a-fA-F]+)"/);
  if (!m) {
    console.error(`no MultiCall3Code in ${file}`);
    process.exit(1);
  }
  fs.writeFileSync(out, JSON.stringify({ contractName: name, deployedBytecode: "0x" + m[1] }) + "\n");
  console.log(`${out}: Multicall3 runtime code (${m[1].length / 2} bytes)`);
  process.exit(0);
}
const target = targets[name];
if (!target || !out) {
  console.error(`usage: node compile-published.js <${Object.keys(targets).join("|")}> <out.json>`);
  process.exit(2);
}
const solc = require(target.solc);
const sources = {};
for (const [file, content] of Object.entries(target.sources)) sources[file] = { content };
const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: target.runs || 200 },
    evmVersion: target.evmVersion,
    outputSelection: { "*": { [name]: ["abi", "evm.bytecode.object"] } },
  },
};
// Imports resolve inside node_modules only.
const findImports = (p) => {
  if (target.resolve) {
    const contents = target.resolve(p);
    return contents ? { contents } : { error: `not found: ${p}` };
  }
  const file = path.join(modules, p);
  return fs.existsSync(file) ? { contents: fs.readFileSync(file, "utf8") } : { error: `not found: ${p}` };
};
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of errors) console.error(e.formattedMessage);
if (errors.length) process.exit(1);
const file = Object.keys(output.contracts).find((f) => output.contracts[f][name]);
const c = output.contracts[file][name];
const artifact = { contractName: name, compiler: solc.version(), abi: c.abi, bytecode: "0x" + c.evm.bytecode.object };
fs.writeFileSync(out, JSON.stringify(artifact) + "\n");
console.log(`${out}: ${name} (${c.evm.bytecode.object.length / 2} bytes, solc ${solc.version()})`);
