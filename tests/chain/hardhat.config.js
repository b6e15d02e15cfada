// Hardhat's in-process development chain, served by `npx hardhat node` for the Rust
// integration test (tests/rpc_node.rs) and the rpc bench. Automine: one transaction per block.
module.exports = {
  solidity: "0.8.24",
  networks: {
    hardhat: {
      // Tests that run two chains at once give the second its own id (HARDHAT_CHAIN_ID).
      chainId: Number(process.env.HARDHAT_CHAIN_ID || 31337),
      mining: { auto: true },
      hardfork: "cancun",
      // Tests that run two nodes as replicas of one chain start both at the same date
      // (and set every block's timestamp), so their blocks are identical.
      ...(process.env.HARDHAT_INITIAL_DATE ? { initialDate: process.env.HARDHAT_INITIAL_DATE } : {}),
    },
  },
};
