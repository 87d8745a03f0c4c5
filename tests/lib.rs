//! Shared harness of Stablelane's end-to-end tests.
//!
//! Every test starts its own devnet (a real anvil on a free loopback port, contracts
//! deployed from the committed artifacts) through [`start_devnet`], so tests never share
//! chain state and can run in parallel. Not a library for anything but these tests.

use stablelane_devnet::{DeployConfig, Devnet, DevnetOptions};

/// Starts a fresh devnet on a free port with `deploy` settings.
pub async fn start_devnet(deploy: DeployConfig) -> eyre::Result<Devnet> {
    Ok(Devnet::start(DevnetOptions {
        port: 0,
        deploy,
        ..DevnetOptions::default()
    })
    .await?)
}

/// The EIP-712 typed data of `transfer` in the JSON shape of `eth_signTypedData_v4` and
/// `cast wallet sign --data`, written out by hand (not by our library) so that a signature
/// over it is an independent check of our hashing.
pub fn transfer_typed_data(
    transfer: &stablelane::Transfer,
    chain_id: u64,
    contract: alloy::primitives::Address,
) -> serde_json::Value {
    serde_json::json!({
        "types": {
            "EIP712Domain": [
                { "name": "name", "type": "string" },
                { "name": "version", "type": "string" },
                { "name": "chainId", "type": "uint256" },
                { "name": "verifyingContract", "type": "address" }
            ],
            "Transfer": [
                { "name": "from", "type": "address" },
                { "name": "to", "type": "address" },
                { "name": "token", "type": "address" },
                { "name": "amount", "type": "uint128" },
                { "name": "fee", "type": "uint128" },
                { "name": "nonce", "type": "uint64" },
                { "name": "validUntil", "type": "uint64" }
            ]
        },
        "primaryType": "Transfer",
        "domain": {
            "name": "Stablelane",
            "version": "1",
            "chainId": chain_id,
            "verifyingContract": contract
        },
        "message": {
            "from": transfer.from,
            "to": transfer.to,
            "token": transfer.token,
            "amount": transfer.amount.to_string(),
            "fee": transfer.fee.to_string(),
            "nonce": transfer.nonce.get(),
            "validUntil": transfer.valid_until
        }
    })
}

/// Signs typed data with foundry's `cast wallet sign --data` (the npm-installed binary);
/// returns the `0x` signature.
pub fn cast_sign_typed_data(data: &serde_json::Value, private_key: &str) -> eyre::Result<String> {
    let cast = stablelane_devnet::tools::cast_binary()?;
    let output = std::process::Command::new(cast)
        .args(["wallet", "sign", "--data", "--private-key", private_key])
        .arg(data.to_string())
        .output()?;
    eyre::ensure!(
        output.status.success(),
        "cast failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?.trim().to_string())
}
