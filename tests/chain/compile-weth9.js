// Compiles canonical WETH9 from its published npm package (`canonical-weth`, the source 0x
// published as the canonical WETH) with the compiler of its era from npm (`solc-0.5`, an
// alias of solc@0.5.17: pure JS/wasm, no binary download), and writes { abi, bytecode } to
// the path given. Run by the Rust test support: node compile-weth9.js <out.json>
const fs = require("fs");
const path = require("path");
const solc = require("solc-0.5");

const out = process.argv[2];
if (!out) {
  console.error("usage: node compile-weth9.js <out.json>");
  process.exit(2);
}
const file = path.join(__dirname, "node_modules/canonical-weth/contracts/WETH9.sol");
const input = {
  language: "Solidity",
  sources: { "WETH9.sol": { content: fs.readFileSync(file, "utf8") } },
  settings: {
    optimizer: { enabled: false, runs: 200 },
    evmVersion: "petersburg",
    outputSelection: { "*": { WETH9: ["abi", "evm.bytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);
const c = output.contracts["WETH9.sol"].WETH9;
const artifact = { contractName: "WETH9", compiler: solc.version(), abi: c.abi, bytecode: "0x" + c.evm.bytecode.object };
fs.writeFileSync(out, JSON.stringify(artifact) + "\n");
console.log(`${out}: WETH9 (${c.evm.bytecode.object.length / 2} bytes, solc ${solc.version()})`);
