// Recompiles contracts/*.sol with the npm `solc` package (pure JS/wasm, no binary download)
// and writes build/<Name>.json with { abi, bytecode }. Run: npm run compile
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const dir = path.join(__dirname, "contracts");
const sources = {};
for (const file of fs.readdirSync(dir).filter((f) => f.endsWith(".sol"))) {
  sources[file] = { content: fs.readFileSync(path.join(dir, file), "utf8") };
}
const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "paris",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);
const out = path.join(__dirname, "build");
fs.mkdirSync(out, { recursive: true });
for (const file of Object.keys(output.contracts)) {
  for (const [name, c] of Object.entries(output.contracts[file])) {
    const artifact = { contractName: name, compiler: solc.version(), abi: c.abi, bytecode: "0x" + c.evm.bytecode.object };
    fs.writeFileSync(path.join(out, name + ".json"), JSON.stringify(artifact, null, 2) + "\n");
    console.log(`build/${name}.json (${c.evm.bytecode.object.length / 2} bytes)`);
  }
}
