//! The `stablelane-devnet` binary as `make devnet` runs it: it writes the description once
//! everything is deployed, stays up, cleans up on SIGTERM, and a run after a killed one
//! starts cleanly on the same port.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use stablelane_devnet::DevnetDescription;

struct Dirs {
    root: PathBuf,
    out: PathBuf,
    run: PathBuf,
}

impl Dirs {
    fn new(name: &str) -> Self {
        let root =
            std::env::temp_dir().join(format!("stablelane-devnet-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("temp dir");
        Self {
            out: root.join("devnet.json"),
            run: root.join("run"),
            root,
        }
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn spawn(dirs: &Dirs, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_stablelane-devnet"))
        .args(["--port", &port.to_string(), "--out"])
        .arg(&dirs.out)
        .arg("--run-dir")
        .arg(&dirs.run)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn stablelane-devnet")
}

fn wait_for_description(path: &Path, child: &mut Child) -> DevnetDescription {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(description) = DevnetDescription::read(path) {
            return description;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("stablelane-devnet exited early: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "no devnet description after 120 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill {sig} {pid} failed");
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

fn answers_chain_id(url: &str) -> bool {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        use alloy::providers::{Provider, ProviderBuilder};
        let Ok(url) = url.parse() else { return false };
        let provider = ProviderBuilder::new().connect_http(url);
        matches!(provider.get_chain_id().await, Ok(31337))
    })
}

fn anvil_pid(dirs: &Dirs) -> u32 {
    std::fs::read_to_string(dirs.run.join("anvil.pid"))
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid")
}

#[test]
fn devnet_runs_stops_cleanly_and_recovers_from_a_killed_run() {
    let dirs = Dirs::new("cli");
    let port = free_port();

    // First run: description written once deployed, anvil answering.
    let mut first = spawn(&dirs, port);
    let description = wait_for_description(&dirs.out, &mut first);
    assert_eq!(description.l2_rpc_url, format!("http://127.0.0.1:{port}"));
    assert_eq!(description.tokens.len(), 2);
    assert!(answers_chain_id(&description.l2_rpc_url));
    let first_anvil = anvil_pid(&dirs);
    assert!(alive(first_anvil));

    // SIGKILL leaves anvil running, the pid file and the description behind.
    signal(first.id(), "-KILL");
    let _ = first.wait();
    assert!(
        alive(first_anvil),
        "anvil should outlive a SIGKILLed parent"
    );
    assert!(dirs.out.exists());

    // Second run on the same port: stops the stale anvil and starts a fresh devnet. The
    // stale description has the same contents (deployments are deterministic), so wait for
    // the new anvil's pid first.
    let mut second = spawn(&dirs, port);
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::fs::read_to_string(dirs.run.join("anvil.pid"))
        .map_or(true, |pid| pid.trim() == first_anvil.to_string())
    {
        assert!(
            second.try_wait().ok().flatten().is_none(),
            "second run exited early"
        );
        assert!(Instant::now() < deadline, "second run never started anvil");
        std::thread::sleep(Duration::from_millis(100));
    }
    let description = wait_for_description(&dirs.out, &mut second);
    assert!(!alive(first_anvil), "stale anvil must be stopped");
    assert!(answers_chain_id(&description.l2_rpc_url));
    let second_anvil = anvil_pid(&dirs);
    assert_ne!(second_anvil, first_anvil);

    // SIGTERM: clean shutdown, nothing left behind.
    signal(second.id(), "-TERM");
    let status = second.wait().expect("wait");
    assert!(status.success(), "devnet exited with {status}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(second_anvil) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!alive(second_anvil), "anvil must stop with the devnet");
    assert!(
        !dirs.out.exists(),
        "description must be removed on shutdown"
    );
    assert!(!dirs.run.join("anvil.pid").exists());
}
