//! Child processes that cannot outlive the process that started them.
//!
//! A shared control plane lives in a `static`, and statics are never dropped; a test binary can
//! also be killed (timeout, Ctrl-C, SIGKILL). Without help, etcd and kube-apiserver would then
//! keep running forever. Linux's `PR_SET_PDEATHSIG` needs `unsafe` (`pre_exec`), which this
//! workspace forbids, so each component is started through a tiny bash watchdog instead:
//!
//! * the watchdog's stdin is a pipe whose only write end is held by this process (Rust creates
//!   pipes close-on-exec, so no other child inherits it);
//! * it forks a watcher that blocks reading that pipe, then `exec`s the component, so the
//!   component keeps the watchdog's pid ([`Component::pid`] is the real etcd/apiserver pid);
//! * when the pipe reaches EOF (we dropped the write end, or this process died, even by
//!   SIGKILL) the watcher sends SIGTERM, and SIGKILL after a grace period.
//!
//! The watcher only signals while the component is still its parent (read from
//! `/proc/<watcher>/stat`), so a recycled pid can never be hit.
//!
//! Order matters even when the owner dies: etcd stopping under a live kube-apiserver takes
//! seconds (open watch streams), and an apiserver losing etcd mid-shutdown hangs until killed.
//! So every component's pid is appended to a shared pid file, and a watcher first waits
//! (bounded) for the components started *after* its own to exit: KCM, then the apiserver,
//! then etcd, like [`crate::ControlPlane`]'s `Drop`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::HarnessError;

/// Bash program run as `bash -c WATCHDOG watchdog GRACE_TENTHS PID_FILE BINARY ARGS...`.
const WATCHDOG: &str = r#"
grace=$1 pid_file=$2; shift 2
exec 3<&0 </dev/null
{
  cat <&3 >/dev/null
  component_alive() { read -r _ _ _ ppid _ </proc/$BASHPID/stat && [ "$ppid" = "$$" ]; }
  running() { [ -e "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
  for pid in $(sed -n "/^$$\$/,\$p" "$pid_file" 2>/dev/null | tail -n +2); do
    i=0
    while [ $i -lt "$grace" ] && running "$pid"; do sleep 0.1; i=$((i + 1)); done
  done
  component_alive && kill -TERM $$ 2>/dev/null
  i=0
  while [ $i -lt "$grace" ] && component_alive; do sleep 0.1; i=$((i + 1)); done
  component_alive && kill -KILL $$ 2>/dev/null
} &
exec 3<&- "$@"
"#;

/// Bash program run as `bash -c JANITOR janitor DIR PID_FILE`: once its stdin pipe reaches EOF
/// it waits for the pids listed in `PID_FILE` to disappear and removes `DIR`. This is how the
/// temporary folder (etcd's data is ~70 MB with its preallocated WAL) of a never-dropped shared
/// control plane gets removed.
const JANITOR: &str = r#"
dir=$1 pid_file=$2
cat >/dev/null
for pid in $(cat "$pid_file" 2>/dev/null); do
  i=0
  while [ $i -lt 300 ] && [ -e "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; do
    sleep 0.1; i=$((i + 1))
  done
done
rm -rf -- "$dir"
"#;

/// Grace period between SIGTERM and SIGKILL, for both the watchdog and [`Component::stop`].
const STOP_GRACE: Duration = Duration::from_secs(10);

/// One running control-plane process.
#[derive(Debug)]
pub struct Component {
    name: &'static str,
    log: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    child: Child,
    /// Holding this keeps the watchdog quiet; dropping it asks the component to stop.
    lifeline: Option<ChildStdin>,
    exited: Option<String>,
}

impl Component {
    /// Starts `binary args...` under the watchdog with stdout and stderr appended to `log`, and
    /// appends its pid to `pid_file` (see the module docs for why).
    pub fn spawn(
        name: &'static str,
        binary: &Path,
        args: &[String],
        log: PathBuf,
        pid_file: &Path,
    ) -> Result<Self, HarnessError> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| HarnessError::io(format!("opening {}", log.display()), e))?;
        // A marker, so the log of a restarted `--dir` control plane shows where a run begins.
        let _ = writeln!(file, "=== marketplace-harness: starting {name} ===");
        let stderr = file
            .try_clone()
            .map_err(|e| HarnessError::io("duplicating a log file handle", e))?;
        let grace_tenths = (STOP_GRACE.as_millis() / 100).to_string();
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("watchdog")
            .arg(grace_tenths)
            .arg(pid_file)
            .arg(binary)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(file)
            .stderr(stderr)
            // Own process group: a Ctrl-C in the terminal reaches only the owner, which then
            // stops the components in order instead of all of them dying at once.
            .process_group(0)
            .spawn()
            .map_err(|e| HarnessError::io(format!("starting {name} ({})", binary.display()), e))?;
        let lifeline = child.stdin.take();
        let component = Self {
            name,
            log,
            state: Mutex::new(State {
                child,
                lifeline,
                exited: None,
            }),
        };
        append_pid(pid_file, component.pid())?;
        Ok(component)
    }

    /// `etcd`, `kube-apiserver` or `kube-controller-manager`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The component's own pid (the watchdog `exec`s it).
    pub fn pid(&self) -> u32 {
        self.lock().child.id()
    }

    /// Its log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// `Err(ComponentExited)` with the log tail if the process is no longer running.
    pub fn check_running(&self) -> Result<(), HarnessError> {
        let mut state = self.lock();
        if state.exited.is_none() {
            match state.child.try_wait() {
                Ok(Some(status)) => state.exited = Some(status.to_string()),
                Ok(None) => return Ok(()),
                Err(e) => return Err(HarnessError::io(format!("checking on {}", self.name), e)),
            }
        }
        Err(HarnessError::ComponentExited {
            component: self.name,
            status: state.exited.clone().unwrap_or_default(),
            log: self.log.clone(),
            log_tail: self.log_tail(),
        })
    }

    /// The last lines of the log, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log, 40)
    }

    /// Asks the component to stop (SIGTERM through the watchdog), waits for it, and kills it
    /// if it is still running after the grace period. Idempotent.
    pub fn stop(&self) {
        let mut state = self.lock();
        state.lifeline = None;
        let deadline = Instant::now() + STOP_GRACE + Duration::from_secs(1);
        while Instant::now() < deadline {
            match state.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        tracing::warn!(component = self.name, "did not stop in time; killing it");
        let _ = state.child.kill();
        let _ = state.child.wait();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere; the process handle is still valid.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Component {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Removes a folder once the owning process is gone and the pids in `<dir>/pids` have exited.
#[derive(Debug)]
pub struct Janitor {
    child: Child,
    lifeline: Option<ChildStdin>,
}

impl Janitor {
    /// Starts the janitor for `dir`, waiting for the pids in `pid_file` before deleting it.
    pub fn spawn(dir: &Path, pid_file: &Path) -> Result<Self, HarnessError> {
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(JANITOR)
            .arg("janitor")
            .arg(dir)
            .arg(pid_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| HarnessError::io("starting the folder janitor", e))?;
        let lifeline = child.stdin.take();
        Ok(Self { child, lifeline })
    }
}

fn append_pid(pid_file: &Path, pid: u32) -> Result<(), HarnessError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(pid_file)
        .and_then(|mut file| writeln!(file, "{pid}"))
        .map_err(|e| HarnessError::io(format!("writing {}", pid_file.display()), e))
}

impl Drop for Janitor {
    fn drop(&mut self) {
        self.lifeline = None;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

/// `count` distinct free TCP ports on 127.0.0.1. All listeners are held until every port is
/// picked (so the ports differ); a clash with another process between here and the
/// component's own bind is possible and handled by retrying start-up.
pub fn free_ports(count: usize) -> Result<Vec<u16>, HarnessError> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| HarnessError::io("picking a free loopback port", e))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| HarnessError::io("reading a listener's port", e))
}

/// The last `lines` lines of a log file (reads at most the last 64 KiB).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let read = || -> std::io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map(|s| {
                !s.lines()
                    .any(|l| l.starts_with("State:") && l.contains('Z'))
            })
            .unwrap_or(false)
    }

    #[test]
    fn stop_terminates_the_component_itself() {
        let dir = tempfile::tempdir().unwrap();
        let c = Component::spawn(
            "sleeper",
            Path::new("sleep"),
            &["300".to_owned()],
            dir.path().join("sleeper.log"),
            &dir.path().join("pids"),
        )
        .unwrap();
        let pid = c.pid();
        // The watchdog execs the binary, so the pid is the sleep process itself.
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap_or_default()
            .trim()
            != "sleep"
        {
            assert!(Instant::now() < deadline, "watchdog did not exec sleep");
            std::thread::sleep(Duration::from_millis(10));
        }
        c.check_running().unwrap();
        let started = Instant::now();
        c.stop();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "SIGTERM did not stop sleep"
        );
        assert!(!alive(pid));
        assert!(matches!(
            c.check_running(),
            Err(HarnessError::ComponentExited { .. })
        ));
    }

    #[test]
    fn exited_component_reports_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let c = Component::spawn(
            "failing",
            Path::new("sh"),
            &[
                "-c".to_owned(),
                "echo boom: address already in use; exit 3".to_owned(),
            ],
            dir.path().join("failing.log"),
            &dir.path().join("pids"),
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let err = loop {
            if let Err(e) = c.check_running() {
                break e;
            }
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(err.is_port_clash(), "{err}");
        assert!(err.to_string().contains("exit status: 3"), "{err}");
    }

    #[test]
    fn free_ports_are_distinct() {
        let ports = free_ports(3).unwrap();
        assert!(ports[0] != ports[1] && ports[1] != ports[2] && ports[0] != ports[2]);
    }
}
