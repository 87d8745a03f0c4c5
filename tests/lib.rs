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
