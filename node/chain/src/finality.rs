//! Which L2 block the node treats as final: the *finality head*.
//!
//! The watcher credits deposits and serves forced requests only up to it, and the settler
//! calls a commit `finalized` only once the commit's block is at or below it. Three modes
//! ([`FinalityMode`]):
//!
//! - `finalized` (the default): the block the L2 node answers for the `finalized` block tag.
//!   On OP-stack and Arbitrum chains that is an L2 block whose data is in a finalized L1
//!   block: it cannot be reorged without an L1 reorg past finality.
//! - `safe`: the block answered for the `safe` tag (its data is on L1, L1 not yet final).
//! - `confirmations`: the block `confirmations − 1` below the latest one (the head itself
//!   for 1). Only a soft confirmation on rollups: a sequencer can still reorg it.
//!
//! When the L2 node answers the tag with an error or with no block (a chain without tags),
//! that step falls back to `confirmations`, and a warning is logged the first time. The mode
//! each step used is in the returned [`FinalityHead`].

use std::sync::atomic::{AtomicBool, Ordering};

use alloy::{
    eips::BlockNumberOrTag,
    primitives::B256,
    providers::{DynProvider, Provider},
    transports::TransportError,
};
use tracing::warn;

/// How the finality head is chosen (`[chain] finality`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinalityMode {
    /// The L2's `finalized` block tag.
    #[default]
    Finalized,
    /// The L2's `safe` block tag.
    Safe,
    /// `confirmations` blocks deep, counted from the latest block.
    Confirmations,
}

impl FinalityMode {
    /// The mode's name, as in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Finalized => "finalized",
            Self::Safe => "safe",
            Self::Confirmations => "confirmations",
        }
    }

    /// The number `/metrics` shows for the mode: 1 finalized, 2 safe, 3 confirmations.
    pub fn metric_code(self) -> u64 {
        match self {
            Self::Finalized => 1,
            Self::Safe => 2,
            Self::Confirmations => 3,
        }
    }

    fn tag(self) -> Option<BlockNumberOrTag> {
        match self {
            Self::Finalized => Some(BlockNumberOrTag::Finalized),
            Self::Safe => Some(BlockNumberOrTag::Safe),
            Self::Confirmations => None,
        }
    }
}

impl std::fmt::Display for FinalityMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The block treated as final at one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinalityHead {
    /// Its number.
    pub number: u64,
    /// Its hash (reads of contract state are made at this hash).
    pub hash: B256,
    /// The mode that chose it: the configured one, or `Confirmations` when the L2 did not
    /// answer the configured tag.
    pub mode: FinalityMode,
}

/// Who asks for the finality head.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FinalityUser {
    Watcher,
    Settler,
}

/// Finds the finality head for the watcher or the settler.
#[derive(Debug)]
pub(crate) struct Finality {
    mode: FinalityMode,
    confirmations: u64,
    /// The component using it (for its log target).
    user: FinalityUser,
    fallback_warned: AtomicBool,
}

impl Finality {
    /// `confirmations` (at least 1) serves the `Confirmations` mode and the fallback.
    pub(crate) fn new(mode: FinalityMode, confirmations: u64, user: FinalityUser) -> Self {
        Self {
            mode,
            confirmations: confirmations.max(1),
            user,
            fallback_warned: AtomicBool::new(false),
        }
    }

    /// The finality head now; `None` while the chain is shorter than `confirmations` (in
    /// that mode or its fallback).
    pub(crate) async fn head(
        &self,
        provider: &DynProvider,
    ) -> Result<Option<FinalityHead>, TransportError> {
        if let Some(tag) = self.mode.tag() {
            match provider.get_block_by_number(tag).await {
                Ok(Some(block)) => {
                    return Ok(Some(FinalityHead {
                        number: block.header.number,
                        hash: block.header.hash,
                        mode: self.mode,
                    }))
                }
                // The node answered, without the block: no such tag on this chain.
                Ok(None) => self.warn_fallback("no block"),
                Err(e) => match e.as_error_resp() {
                    Some(response) => self.warn_fallback(&response.message),
                    // Transport failure: retried with backoff, no fallback.
                    None => return Err(e),
                },
            }
        }
        let latest = provider.get_block_number().await?;
        let Some(number) = (latest + 1).checked_sub(self.confirmations) else {
            return Ok(None);
        };
        let block = provider
            .get_block_by_number(number.into())
            .await?
            .ok_or_else(|| TransportError::local_usage_str(&format!("block {number} not found")))?;
        Ok(Some(FinalityHead {
            number,
            hash: block.header.hash,
            mode: FinalityMode::Confirmations,
        }))
    }

    fn warn_fallback(&self, answer: &str) {
        if !self.fallback_warned.swap(true, Ordering::Relaxed) {
            let (mode, confirmations) = (self.mode.as_str(), self.confirmations);
            let message = "the L2 does not answer the block tag: falling back to confirmations";
            match self.user {
                FinalityUser::Watcher => {
                    warn!(target: "chain::watcher", mode, answer, confirmations, "{message}")
                }
                FinalityUser::Settler => {
                    warn!(target: "chain::settler", mode, answer, confirmations, "{message}")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use alloy::{
        primitives::U64,
        providers::{Provider, ProviderBuilder},
        rpc::types::Block,
        transports::mock::Asserter,
    };

    use super::*;

    fn provider(asserter: &Asserter) -> DynProvider {
        ProviderBuilder::new()
            .connect_mocked_client(asserter.clone())
            .erased()
    }

    fn block(number: u64) -> Block {
        let mut block: Block = Block::default();
        block.header.inner.number = number;
        block.header.hash = B256::with_last_byte(number as u8);
        block
    }

    #[tokio::test]
    async fn the_tag_is_used_when_answered() {
        let asserter = Asserter::new();
        let finality = Finality::new(FinalityMode::Safe, 12, FinalityUser::Watcher);
        asserter.push_success(&block(40));
        let head = finality.head(&provider(&asserter)).await.unwrap().unwrap();
        assert_eq!((head.number, head.mode), (40, FinalityMode::Safe));
        assert_eq!(head.hash, B256::with_last_byte(40));
        assert!(!finality.fallback_warned.load(Ordering::Relaxed));
    }

    #[tokio::test]
    async fn an_l2_without_the_tag_falls_back_to_confirmations() {
        let asserter = Asserter::new();
        let finality = Finality::new(FinalityMode::Finalized, 12, FinalityUser::Watcher);
        let p = provider(&asserter);
        // An error answer: latest 100, so block 89 is 12 deep.
        asserter.push_failure_msg("unknown block tag finalized");
        asserter.push_success(&U64::from(100));
        asserter.push_success(&block(89));
        let head = finality.head(&p).await.unwrap().unwrap();
        assert_eq!((head.number, head.mode), (89, FinalityMode::Confirmations));
        assert!(finality.fallback_warned.load(Ordering::Relaxed));
        // No block for the tag: the same, at every step.
        asserter.push_success(&Option::<Block>::None);
        asserter.push_success(&U64::from(101));
        asserter.push_success(&block(90));
        let head = finality.head(&p).await.unwrap().unwrap();
        assert_eq!((head.number, head.mode), (90, FinalityMode::Confirmations));
        // A chain shorter than the confirmations has no head yet.
        asserter.push_success(&Option::<Block>::None);
        asserter.push_success(&U64::from(10));
        assert_eq!(finality.head(&p).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_transport_failure_is_an_error_not_a_fallback() {
        // An empty asserter fails the request locally, as a dead connection would.
        let asserter = Asserter::new();
        let finality = Finality::new(FinalityMode::Finalized, 12, FinalityUser::Settler);
        assert!(finality.head(&provider(&asserter)).await.is_err());
        assert!(!finality.fallback_warned.load(Ordering::Relaxed));
    }

    #[test]
    fn modes_read_as_configured() {
        for mode in [
            FinalityMode::Finalized,
            FinalityMode::Safe,
            FinalityMode::Confirmations,
        ] {
            let text = format!("\"{mode}\"");
            assert_eq!(serde_json::from_str::<FinalityMode>(&text).unwrap(), mode);
        }
        assert!(serde_json::from_str::<FinalityMode>("\"latest\"").is_err());
    }
}
