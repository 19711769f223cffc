//! A real PostgreSQL server on 127.0.0.1 for the usage store's tests, `scripts/dev` and the
//! usage benchmark: Debian's `postgresql` binaries (installed by `scripts/install-postgres`),
//! a fresh cluster in a temporary folder (or a kept one), started under the same watchdog as
//! the control plane's components, so it stops when its owner does, even on SIGKILL.
//!
//! PostgreSQL refuses to run as root; as root (CI) `initdb` and `postgres` run as the
//! `postgres` user the Debian package creates (through `setpriv`, which execs, so the watchdog
//! still holds the server's own pid).
//!
//! Environment: `MARKETPLACE_POSTGRES_BIN`, the folder with `initdb` and `postgres`; default:
//! the newest `/usr/lib/postgresql/<version>/bin`.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::HarnessError;
use crate::process::{Component, Janitor, free_ports, log_tail};

/// The environment variable naming PostgreSQL's binary folder.
pub const POSTGRES_BIN_ENV: &str = "MARKETPLACE_POSTGRES_BIN";
/// The superuser `initdb` creates; connections are trusted (loopback only).
const USER: &str = "marketplace";
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running PostgreSQL server.
#[derive(Debug)]
pub struct Postgres {
    url: String,
    dir: PathBuf,
    // Field order is drop order: the server stops before the janitor may remove its folder.
    server: Component,
    _janitor: Option<Janitor>,
}

/// Where Debian's PostgreSQL binaries are.
pub fn bin_dir() -> Result<PathBuf, HarnessError> {
    if let Some(dir) = std::env::var_os(POSTGRES_BIN_ENV) {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let version = e.file_name().to_str()?.parse().ok()?;
                    let bin = e.path().join("bin");
                    bin.join("initdb").exists().then_some((version, bin))
                })
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or(HarnessError::MissingBinary {
            path: PathBuf::from(
                "/usr/lib/postgresql/<version>/bin/initdb (scripts/install-postgres)",
            ),
        })
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("0")
    })
}

/// `binary args...`, as the `postgres` user when we are root.
fn as_server_user(binary: &Path, args: &[String]) -> (PathBuf, Vec<String>) {
    if !is_root() {
        return (binary.to_path_buf(), args.to_vec());
    }
    let mut all = vec![
        "--reuid=postgres".to_string(),
        "--regid=postgres".into(),
        "--init-groups".into(),
        "--".into(),
        binary.display().to_string(),
    ];
    all.extend(args.iter().cloned());
    (PathBuf::from("setpriv"), all)
}

/// A new folder for a throw-away cluster, and the janitor that removes it once the server stops.
fn temporary_folder(prefix: &str) -> Result<(PathBuf, Janitor), HarnessError> {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| HarnessError::io("creating a folder for PostgreSQL", e))?
        .keep();
    let janitor = Janitor::spawn(&dir, &dir.join("pids"))?;
    Ok((dir, janitor))
}

impl Postgres {
    /// Starts a server with a new cluster in a temporary folder, removed once it stops.
    pub fn start_temporary() -> Result<Postgres, HarnessError> {
        let (dir, janitor) = temporary_folder("marketplace-postgres-")?;
        let mut started = Postgres::start_in(&dir, false)?;
        started._janitor = Some(janitor);
        Ok(started)
    }

    /// [`Postgres::start_temporary`], serving TLS with a certificate for 127.0.0.1 signed by a
    /// fresh CA; also returns the path of that CA's certificate (PEM), which clients must trust.
    pub fn start_temporary_with_tls() -> Result<(Postgres, PathBuf), HarnessError> {
        let (dir, janitor) = temporary_folder("marketplace-postgres-tls-")?;
        let (ca, cert, key) = crate::pki::serving_pair("postgres")?;
        let tls = dir.join("tls");
        std::fs::create_dir_all(&tls)
            .map_err(|e| HarnessError::io(format!("creating {}", tls.display()), e))?;
        for (name, text) in [("ca.crt", &ca), ("server.crt", &cert), ("server.key", &key)] {
            let path = tls.join(name);
            std::fs::write(&path, text)
                .map_err(|e| HarnessError::io(format!("writing {}", path.display()), e))?;
        }
        // PostgreSQL refuses a key others may read.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            tls.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .map_err(|e| HarnessError::io("chmod of the server key", e))?;
        let settings = [
            "ssl=on".to_string(),
            format!("ssl_cert_file={}", tls.join("server.crt").display()),
            format!("ssl_key_file={}", tls.join("server.key").display()),
        ];
        let mut started = Postgres::start_with(&dir, false, &settings)?;
        started._janitor = Some(janitor);
        Ok((started, tls.join("ca.crt")))
    }

    /// Starts a server on the cluster in `dir` (made there the first time): kept across runs,
    /// as `scripts/dev` keeps its state. `durable` keeps fsync on.
    pub fn start_in(dir: &Path, durable: bool) -> Result<Postgres, HarnessError> {
        Postgres::start_with(dir, durable, &[])
    }

    /// [`Postgres::start_in`] with more `name=value` server settings.
    fn start_with(
        dir: &Path,
        durable: bool,
        settings: &[String],
    ) -> Result<Postgres, HarnessError> {
        let bin = bin_dir()?;
        std::fs::create_dir_all(dir)
            .map_err(|e| HarnessError::io(format!("creating {}", dir.display()), e))?;
        if is_root() {
            // The server user must own its folder (and the socket it puts there).
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir)
                .status()
                .map_err(|e| HarnessError::io("chown of the PostgreSQL folder", e))?;
            if !status.success() {
                return Err(HarnessError::InvalidInput(format!(
                    "chown postgres {} failed",
                    dir.display()
                )));
            }
        }
        let data = dir.join("data");
        if !data.join("PG_VERSION").exists() {
            let args: Vec<String> = [
                "-D",
                &data.display().to_string(),
                "-U",
                USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]
            .map(String::from)
            .to_vec();
            let (program, args) = as_server_user(&bin.join("initdb"), &args);
            let out = Command::new(&program)
                .args(&args)
                .output()
                .map_err(|e| HarnessError::io(format!("running {}", program.display()), e))?;
            if !out.status.success() {
                return Err(HarnessError::InvalidInput(format!(
                    "initdb failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                )));
            }
        }
        let port = free_ports(1)?[0];
        let mut args: Vec<String> = vec![
            "-D".into(),
            data.display().to_string(),
            "-p".into(),
            port.to_string(),
            "-k".into(),
            dir.display().to_string(),
            "-c".into(),
            "listen_addresses=127.0.0.1".into(),
        ];
        if !durable {
            // Test data: a crash loses nothing anyone needs.
            for setting in [
                "fsync=off",
                "synchronous_commit=off",
                "full_page_writes=off",
            ] {
                args.extend(["-c".to_string(), setting.to_string()]);
            }
        }
        for setting in settings {
            args.extend(["-c".to_string(), setting.clone()]);
        }
        let (program, args) = as_server_user(&bin.join("postgres"), &args);
        let log = dir.join("postgres.log");
        let server = Component::spawn("postgres", &program, &args, log.clone(), &dir.join("pids"))?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            server.check_running()?;
            let ready = std::fs::read_to_string(&log)
                .is_ok_and(|text| text.contains("ready to accept connections"));
            if ready && TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                return Err(HarnessError::Timeout {
                    what: "PostgreSQL to accept connections".into(),
                    after: START_TIMEOUT,
                    details: format!("\n{}", log_tail(&log, 20)),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Postgres {
            url: format!("postgres://{USER}@127.0.0.1:{port}/postgres"),
            dir: dir.to_path_buf(),
            server,
            _janitor: None,
        })
    }

    /// `postgres://marketplace@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The folder of the cluster, its socket and its log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    /// Errors if the server has exited.
    pub fn check_running(&self) -> Result<(), HarnessError> {
        self.server.check_running()
    }
}
