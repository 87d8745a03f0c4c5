//! Stablelane's proof system (work in progress): Poseidon over BN254 with circomlib's
//! parameters and the depth-32 sparse Merkle tree of the ledger state.
