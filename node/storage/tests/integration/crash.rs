//! A real crash test: a child process (this test binary, re-executed to run `crash_child`)
//! appends from several threads and prints every acknowledged sequence number; the parent
//! `SIGKILL`s it at a random moment, reopens the journal and checks that every acknowledged
//! record is there, intact, and that every record at all is one the child wrote. Repeated
//! several times on the same journal.
//!
//! A `SIGKILL` loses what the process had not handed to the kernel; it cannot simulate a
//! power cut (the page cache survives). Torn writes on disk are covered by `recovery.rs` and
//! `model.rs`.

use crate::common;

use std::{
    collections::BTreeMap,
    env,
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    sync::{mpsc, Arc},
    thread,
    time::{Duration, Instant, SystemTime},
};

use common::{all_records, config};
use stablelane_storage::{Error, Journal, JournalConfig};

const CHILD_DIR_ENV: &str = "STABLELANE_CRASH_CHILD_DIR";
const CHILD_RUN_ENV: &str = "STABLELANE_CRASH_CHILD_RUN";
const CHILD_THREADS: u64 = 4;
const RUNS: u64 = 8;

fn journal_config() -> JournalConfig {
    // Small segments, so that kills also land around rollovers.
    config(32 * 1024)
}

/// The payload the child appends for (run, thread, index): an identifying prefix and a
/// deterministic body of varying length.
fn child_payload(run: u64, thread: u64, index: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for part in [run, thread, index] {
        out.extend_from_slice(&part.to_le_bytes());
    }
    out.extend(common::payload(
        run * 1_000_003 + thread * 7_919 + index,
        (index % 40 * 10) as usize,
    ));
    out
}

fn parse_child_payload(payload: &[u8]) -> Option<(u64, u64, u64)> {
    let part = |i: usize| {
        Some(u64::from_le_bytes(
            payload.get(i * 8..i * 8 + 8)?.try_into().ok()?,
        ))
    };
    let id = (part(0)?, part(1)?, part(2)?);
    (child_payload(id.0, id.1, id.2) == payload).then_some(id)
}

/// Not a test on its own: the body of the child process, which appends until killed.
#[test]
#[ignore = "child process of acknowledged_records_survive_sigkill"]
fn crash_child() {
    let Some(dir) = env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let run: u64 = env::var(CHILD_RUN_ENV).unwrap().parse().unwrap();
    let (journal, _) = Journal::open(&dir, journal_config()).unwrap();
    let journal = Arc::new(journal);
    let started = Instant::now();
    let threads: Vec<_> = (0..CHILD_THREADS)
        .map(|t| {
            let journal = Arc::clone(&journal);
            thread::spawn(move || {
                // Bounded, in case the parent dies before killing us.
                for index in 0.. {
                    if started.elapsed() > Duration::from_secs(30) {
                        return;
                    }
                    match journal.append(child_payload(run, t, index)) {
                        Ok(seq) => {
                            let line = format!("ACK {seq} {run} {t} {index}\n");
                            // One write per line; stdout is a pipe to the parent.
                            std::io::stdout().lock().write_all(line.as_bytes()).unwrap();
                        }
                        Err(Error::Busy { .. }) => thread::yield_now(),
                        Err(e) => panic!("append failed: {e}"),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn acknowledged_records_survive_sigkill() {
    let seed = env::var("STABLELANE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash test seed {seed} (set STABLELANE_CRASH_SEED to repeat)");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let exe = env::current_exe().unwrap();
    // seq -> (run, thread, index) of every acknowledged append, over all runs.
    let mut acked: BTreeMap<u64, (u64, u64, u64)> = BTreeMap::new();

    for run in 0..RUNS {
        let mut child = Command::new(&exe)
            .args([
                "crash::crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR_ENV, dir.path())
            .env(CHILD_RUN_ENV, run.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (first_ack_tx, first_ack_rx) = mpsc::channel();
        let reader = thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut acks = Vec::new();
            let mut line = Vec::new();
            loop {
                line.clear();
                if reader.read_until(b'\n', &mut line).unwrap() == 0 {
                    return acks;
                }
                // A line cut by the kill has no newline: that ack was not seen, ignore it.
                let Some(text) = line.strip_suffix(b"\n") else {
                    continue;
                };
                let text = String::from_utf8_lossy(text);
                let Some(rest) = text.strip_prefix("ACK ") else {
                    continue;
                };
                let fields: Vec<u64> = rest.split(' ').map(|f| f.parse().unwrap()).collect();
                acks.push((fields[0], (fields[1], fields[2], fields[3])));
                let _ = first_ack_tx.send(());
            }
        });

        first_ack_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the child acknowledged nothing within 20 s");
        thread::sleep(Duration::from_millis(rng.below(250)));
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child exited before being killed"
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let acks = reader.join().unwrap();
        assert!(!acks.is_empty());
        for (seq, id) in &acks {
            assert_eq!(id.0, run);
            assert!(
                acked.insert(*seq, *id).is_none(),
                "sequence number {seq} acknowledged twice"
            );
        }

        let (journal, report) = Journal::open(dir.path(), journal_config()).unwrap();
        let records: BTreeMap<u64, Vec<u8>> = all_records(&journal).into_iter().collect();
        assert_eq!(records.len() as u64, report.records);
        for (seq, payload) in &records {
            assert!(
                parse_child_payload(payload).is_some(),
                "record {seq} is not a child's record"
            );
        }
        for (seq, id) in &acked {
            let payload = records.get(seq).unwrap_or_else(|| {
                panic!("run {run}: acknowledged record {seq} lost (seed {seed}); {report:?}")
            });
            assert_eq!(
                parse_child_payload(payload),
                Some(*id),
                "record {seq} changed"
            );
        }
        eprintln!(
            "run {run}: {} acknowledged this run, {} records in the journal, torn tail: {:?}",
            acks.len(),
            records.len(),
            report.torn_tail.map(|t| t.discarded_bytes)
        );
        journal.close().unwrap();
    }
    assert!(
        acked.len() as u64 >= RUNS,
        "too few acknowledged appends: {}",
        acked.len()
    );
}
