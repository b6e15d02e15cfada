// Compiles contracts from their published npm sources with a compiler from npm (pure
// JS/wasm, no binary download) and writes { abi, bytecode } to the path given. Run by the
// Rust test support: node compile-published.js <contract> <out.json>
//   WETH9      canonical WETH9 (`canonical-weth`, the source 0x published as the canonical
//              WETH), with the compiler of its era (`solc-0.5`, an alias of solc@0.5.17)
//   TestVault  OpenZeppelin 5.1's ERC4626 (`@openzeppelin/contracts`) made concrete, no
//              changes to its logic, with solc 0.8.24
//   OzToken    OpenZeppelin 5.1's ERC20 made concrete (the constructor mints the supply to
//              the deployer), no changes to its logic, with solc 0.8.24
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
        'contract OzToken is ERC20 { constructor(uint256 supply) ERC20("OZ Token", "OZT") { _mint(msg.sender, supply); } }',
      ].join("\n"),
    },
  },
};

const [name, out] = process.argv.slice(2);
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
    optimizer: { enabled: true, runs: 200 },
    evmVersion: target.evmVersion,
    outputSelection: { "*": { [name]: ["abi", "evm.bytecode.object"] } },
  },
};
// Imports resolve inside node_modules only.
const findImports = (p) => {
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
