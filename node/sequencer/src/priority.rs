//! Thread priorities: background work (the tree worker, the prover) runs nicer than the
//! threads that answer transfers, so it takes only the CPU they leave.

/// Raises the calling thread's niceness to `nice` unless it is already at least that
/// (Linux: `setpriority` on a thread id affects that thread only; elsewhere nothing). A
/// failure only costs priority, so it is logged, not fatal.
pub fn lower_thread_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        let tid = rustix::thread::gettid();
        if rustix::process::getpriority_process(Some(tid)).is_ok_and(|current| current >= nice) {
            return;
        }
        if let Err(e) = rustix::process::setpriority_process(Some(tid), nice) {
            tracing::warn!(target: "node", nice, error = %e, "cannot lower a background thread's priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// The calling thread's niceness (Linux; 0 elsewhere).
pub fn thread_nice() -> i32 {
    #[cfg(target_os = "linux")]
    {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap_or(0)
    }
    #[cfg(not(target_os = "linux"))]
    0
}
