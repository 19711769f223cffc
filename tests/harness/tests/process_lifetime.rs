//! Components must never outlive their owner, however the owner ends. Each test starts its own
//! control plane, so they run one at a time (2-core machines).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const HOLD_ENV: &str = "MARKETPLACE_HARNESS_HOLD_SHARED";

/// Running = exists and is not a zombie (a zombie has exited; only its parent has not reaped it).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|s| {
            !s.lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'))
        })
        .unwrap_or(false)
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Reads the child's stdout until a line starting with `until`, for at most `timeout`; returns
/// all lines read.
fn read_until(child: &mut Child, until: &str, timeout: Duration) -> Vec<String> {
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // After the receiver is gone, keep draining so the child never blocks on stdout.
            let _ = sender.send(line);
        }
    });
    let deadline = Instant::now() + timeout;
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(left) {
            Ok(line) => {
                let done = line.starts_with(until);
                lines.push(line);
                if done {
                    return lines;
                }
            }
            Err(e) => {
                let _ = child.kill();
                panic!(
                    "no line starting with {until:?} ({e}); output so far:\n{}",
                    lines.join("\n")
                );
            }
        }
    }
}

/// `(name, pid)` from the `control-plane` binary's "<name> pid <pid> log <path>" lines.
fn printed_pids(lines: &[String]) -> Vec<(String, u32)> {
    lines
        .iter()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?;
            (words.next()? == "pid").then_some(())?;
            Some((name.to_owned(), words.next()?.parse().ok()?))
        })
        .collect()
}

fn assert_all_running(pids: &[(String, u32)]) {
    let names: Vec<&str> = pids.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["etcd", "kube-apiserver", "kube-controller-manager"]);
    for (name, pid) in pids {
        // The pid is the component itself, not a wrapper: the watchdog `exec`s it, which for
        // the component started last may still be a few milliseconds away. (`comm` is cut to
        // 15 characters.)
        let deadline = Instant::now() + Duration::from_secs(10);
        while !name.starts_with(&comm(*pid)) || comm(*pid) == "bash" {
            assert!(running(*pid), "{name} ({pid}) is not running");
            assert!(
                Instant::now() < deadline,
                "pid {pid} is {:?}, not {name}",
                comm(*pid)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(running(*pid), "{name} ({pid}) is not running");
    }
}

/// Kills the child if the test fails half-way, so no owner (and control plane) is left behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_all_gone(pids: &[(String, u32)], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let left: Vec<_> = pids.iter().filter(|(_, pid)| running(*pid)).collect();
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still running after {timeout:?}: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start_control_plane_binary(dir: &std::path::Path) -> (KillOnDrop, Vec<(String, u32)>) {
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_control-plane"))
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let lines = read_until(&mut child.0, "ready", Duration::from_secs(120));
    assert!(lines[0].starts_with("KUBECONFIG="), "{lines:?}");
    let pids = printed_pids(&lines);
    assert_all_running(&pids);
    (child, pids)
}

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn sigkill_of_the_owner_stops_every_component() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (mut child, pids) = start_control_plane_binary(dir.path());

    child.0.kill().unwrap(); // SIGKILL: no destructor, no signal handler runs.
    child.0.wait().unwrap();
    let killed = Instant::now();
    wait_all_gone(&pids, Duration::from_secs(45));
    eprintln!(
        "components gone {:?} after SIGKILL of their owner",
        killed.elapsed()
    );
}

#[test]
fn sigterm_stops_the_binary_cleanly() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (mut child, pids) = start_control_plane_binary(dir.path());
    let kubeconfig = dir.path().join("kubeconfig");
    assert!(kubeconfig.is_file());

    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(45);
    let exit = loop {
        if let Some(exit) = child.0.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(exit.success(), "control-plane exited with {exit}");
    // Drop waits for each component, so they are gone as soon as the binary has exited.
    wait_all_gone(&pids, Duration::from_secs(1));
    // `--dir` state is kept.
    assert!(dir.path().join("etcd").is_dir());
    assert!(kubeconfig.is_file());
}

/// SIGKILL of a test process holding the never-dropped `shared()` control plane: the
/// components stop and the janitor removes its temporary folder.
#[test]
fn sigkill_of_a_test_process_cleans_up_the_shared_control_plane() {
    let _serial = serial();
    // Its stdin stays open until it is killed: the helper exits if this process dies first.
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "hold_shared_control_plane",
                "--ignored",
                "--nocapture",
            ])
            .env(HOLD_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let lines = read_until(&mut child.0, "HOLD ", Duration::from_secs(120));
    let hold = lines.last().unwrap();
    let mut dir = None;
    let mut pids = Vec::new();
    for word in hold.split_whitespace().skip(1) {
        match word.split_once('=') {
            Some(("dir", value)) => dir = Some(PathBuf::from(value)),
            Some((name, value)) => pids.push((name.to_owned(), value.parse().unwrap())),
            None => {}
        }
    }
    let dir = dir.unwrap();
    assert!(dir.join("etcd").is_dir());
    assert_all_running(&pids);

    child.0.kill().unwrap();
    child.0.wait().unwrap();
    wait_all_gone(&pids, Duration::from_secs(45));
    let deadline = Instant::now() + Duration::from_secs(30);
    while dir.exists() {
        assert!(Instant::now() < deadline, "{} not removed", dir.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn dropping_a_control_plane_stops_it_and_removes_its_folder() {
    let _serial = serial();
    let control_plane =
        marketplace_harness::ControlPlane::start_blocking(Default::default()).unwrap();
    let pids: Vec<(String, u32)> = control_plane
        .components()
        .iter()
        .map(|(name, pid, _)| ((*name).to_owned(), *pid))
        .collect();
    assert_all_running(&pids);
    let dir = control_plane.dir().to_path_buf();
    assert!(dir.join("etcd").is_dir());

    let dropping = Instant::now();
    drop(control_plane);
    eprintln!("drop took {:?}", dropping.elapsed());
    wait_all_gone(&pids, Duration::from_secs(1));
    assert!(!dir.exists(), "{} was not removed", dir.display());
}

/// Helper process for the test above (does nothing unless started by it).
#[test]
#[ignore = "helper: started by sigkill_of_a_test_process_cleans_up_the_shared_control_plane"]
fn hold_shared_control_plane() {
    if std::env::var_os(HOLD_ENV).is_none() {
        return;
    }
    let control_plane = marketplace_harness::shared();
    let pids: Vec<String> = control_plane
        .components()
        .iter()
        .map(|(name, pid, _)| format!("{name}={pid}"))
        .collect();
    println!(
        "HOLD dir={} {}",
        control_plane.dir().display(),
        pids.join(" ")
    );
    // Wait to be killed; stop on our own when the parent is gone (stdin EOF) or after 5 min.
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        let _ = sender.send(());
    });
    let _ = receiver.recv_timeout(Duration::from_secs(300));
}
