// Hardhat's in-process development chain, served by `npx hardhat node` for the Rust
// integration test (tests/rpc_node.rs) and the rpc bench. Automine: one transaction per block.
module.exports = {
  solidity: "0.8.24",
  networks: {
    hardhat: {
      chainId: 31337,
      mining: { auto: true },
      hardfork: "cancun",
    },
  },
};
