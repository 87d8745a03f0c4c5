//! The prover pool behind `lane_proveBalance`: Groth16 proving off the sequencer's path.
//!
//! Proofs run on a dedicated rayon pool of `threads` threads (arkworks parallelises inside
//! it), never on tokio's workers or the sequencer's writer. At most `threads + queue_max`
//! requests are admitted; more are refused at once as busy. A caller waits at most `timeout`;
//! a proof that takes longer still finishes on the pool (its admission slot is released only
//! then, so a stuck pool cannot be flooded) but the caller gets a timeout error. With one
//! thread on a two-core machine, proving uses one core and leaves the other to the sequencer.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use alloy::primitives::B256;
use stablelane_circuits::{
    keys::{verifying_key_hash, ProvingKey},
    prover::{check_proving_key, prove, Proof},
    AttestationWitness, ChaCha20Rng, SeedableRng,
};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use tracing::{debug, warn};

/// Settings of the prover pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProverLimits {
    /// Proving threads.
    pub threads: usize,
    /// Requests waiting beyond those being proven.
    pub queue_max: usize,
    /// Longest a caller waits for its proof.
    pub timeout: Duration,
    /// Scheduling niceness of the proving threads (0 = as the sequencer, 19 = yield to
    /// everything): on a machine with few cores, proofs must not take CPU from transfers.
    /// Linux only; elsewhere ignored.
    pub nice: i32,
}

impl Default for ProverLimits {
    fn default() -> Self {
        Self {
            threads: 1,
            queue_max: 8,
            timeout: Duration::from_secs(60),
            nice: 19,
        }
    }
}

/// Why no proof came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProveError {
    /// Every admission slot is taken: retry later.
    #[error("the prover is busy ({0} requests admitted): retry later")]
    Busy(usize),
    /// Not proven within the timeout.
    #[error("no proof within {0:?}")]
    Timeout(Duration),
    /// Proving failed (a witness that does not satisfy the circuit: a bug, since witnesses
    /// are checked first).
    #[error("proving failed: {0}")]
    Failed(String),
}

/// Counters of the prover, for metrics.
#[derive(Debug, Default)]
pub struct ProverCounters {
    /// Proofs made.
    pub proofs: AtomicU64,
    /// Requests refused as busy.
    pub busy: AtomicU64,
    /// Callers that timed out.
    pub timeouts: AtomicU64,
    /// Proofs that failed.
    pub failures: AtomicU64,
    /// Total proving time of the proofs made, microseconds.
    pub proving_micros: AtomicU64,
}

/// The prover pool (see the [module docs](self)). Cheap to share behind an `Arc`.
pub struct Prover {
    key: Arc<ProvingKey>,
    key_hash: B256,
    pool: rayon::ThreadPool,
    admission: Arc<Semaphore>,
    admitted_max: usize,
    limits: ProverLimits,
    counters: Arc<ProverCounters>,
}

impl std::fmt::Debug for Prover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prover")
            .field("key_hash", &self.key_hash)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Prover {
    /// A pool proving with `key`.
    ///
    /// # Errors
    ///
    /// A message if the key is not a key of the attestation circuit or the pool cannot start.
    pub fn new(key: ProvingKey, limits: ProverLimits) -> Result<Self, String> {
        check_proving_key(&key).map_err(|e| format!("proving key: {e}"))?;
        let key_hash =
            B256::from(verifying_key_hash(&key.vk).map_err(|e| format!("key hash: {e}"))?);
        let threads = limits.threads.max(1);
        let pool = proving_pool(threads, limits.nice)?;
        let admitted_max = threads + limits.queue_max;
        Ok(Self {
            key: Arc::new(key),
            key_hash,
            pool,
            admission: Arc::new(Semaphore::new(admitted_max)),
            admitted_max,
            limits,
            counters: Arc::new(ProverCounters::default()),
        })
    }

    /// keccak256 of the verifying key (the deployed verifier's `VERIFYING_KEY_HASH` must
    /// equal it).
    pub fn key_hash(&self) -> B256 {
        self.key_hash
    }

    /// The verifying key that checks this pool's proofs.
    pub fn verifying_key(&self) -> &stablelane_circuits::keys::VerifyingKey {
        &self.key.vk
    }

    /// The counters.
    pub fn counters(&self) -> &ProverCounters {
        &self.counters
    }

    /// Requests admitted now (being proven or waiting).
    pub fn admitted(&self) -> usize {
        self.admitted_max - self.admission.available_permits()
    }

    /// Proves `witness` on the pool.
    ///
    /// # Errors
    ///
    /// [`ProveError::Busy`] at once when the queue is full, [`ProveError::Timeout`] after the
    /// timeout, [`ProveError::Failed`] if proving fails.
    pub async fn prove(&self, witness: AttestationWitness) -> Result<Proof, ProveError> {
        let permit: OwnedSemaphorePermit =
            self.admission.clone().try_acquire_owned().map_err(|_| {
                self.counters.busy.fetch_add(1, Ordering::Relaxed);
                ProveError::Busy(self.admitted_max)
            })?;
        let (tx, rx) = oneshot::channel();
        let key = self.key.clone();
        let counters = self.counters.clone();
        self.pool.spawn(move || {
            // Fresh randomness per proof (zero knowledge needs it): 32 bytes from the OS.
            let seed = alloy::primitives::B256::random();
            let started = Instant::now();
            let result = prove(&key, &witness, &mut ChaCha20Rng::from_seed(seed.0))
                .map_err(|e| ProveError::Failed(e.to_string()));
            let took = started.elapsed();
            match &result {
                Ok(_) => {
                    counters.proofs.fetch_add(1, Ordering::Relaxed);
                    counters.proving_micros.fetch_add(
                        u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
                        Ordering::Relaxed,
                    );
                }
                Err(_) => {
                    counters.failures.fetch_add(1, Ordering::Relaxed);
                }
            }
            drop(permit);
            let _ = tx.send((result, took));
        });
        match tokio::time::timeout(self.limits.timeout, rx).await {
            Ok(Ok((result, took))) => {
                match &result {
                    Ok(_) => debug!(target: "prover", ?took, "proof made"),
                    Err(e) => warn!(target: "prover", %e, "proving failed"),
                }
                result
            }
            Ok(Err(_)) => Err(ProveError::Failed("the prover pool dropped the job".into())),
            Err(_) => {
                self.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                Err(ProveError::Timeout(self.limits.timeout))
            }
        }
    }
}

/// The proving threads: `threads` of them at niceness `nice`, logging nothing.
fn proving_pool(threads: usize, nice: i32) -> Result<rayon::ThreadPool, String> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("prover-{i}"))
        // arkworks instruments its gadgets with INFO spans that record whole constraint
        // systems; under an application's INFO logging one proof would take minutes.
        // The pool's threads log nothing (the outcome is logged by the caller).
        .start_handler(move |_| {
            stablelane_sequencer::priority::lower_thread_priority(nice);
            std::mem::forget(tracing::subscriber::set_default(
                tracing::subscriber::NoSubscriber::default(),
            ));
        })
        .build()
        .map_err(|e| format!("prover pool: {e}"))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use stablelane_sequencer::priority::thread_nice as own_nice;

    #[test]
    fn proving_threads_run_at_the_configured_niceness_and_others_do_not() {
        let before = own_nice();
        let pool = proving_pool(2, 7).unwrap();
        let inside = pool.broadcast(|_| own_nice());
        // A process started nicer than 7 stays as nice as it was.
        assert!(inside.iter().all(|n| *n == before.max(7)), "{inside:?}");
        assert_eq!(own_nice(), before, "the calling thread keeps its priority");
    }
}
