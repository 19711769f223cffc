//! The HubSpot simulator in a child process (this binary, re-run with `--simulator-child`), so
//! the benchmark's peak RSS is the operator's (and the benchmark's own bookkeeping), not the
//! simulator's records: at 50,000 subscriptions the simulator holds more than the operator.
//! The parent reads counters and adds faults over the simulator's `/_sim` HTTP API; the child
//! stops when its stdin closes, so it never outlives the benchmark.

use std::process::Stdio;

use hubspot_sim::ratelimit::Counters;
use hubspot_sim::{FaultRule, SimConfig, Simulator, Tier as SimTier};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::Result;

/// Flag that makes this binary serve the simulator instead of benchmarking.
pub const CHILD_FLAG: &str = "--simulator-child";

/// What the child needs to know, passed as its arguments.
#[derive(Debug, Clone, Copy)]
pub struct SimSettings {
    pub tier: SimTier,
    pub search_lag_ms: u64,
    pub no_rate_limits: bool,
}

/// The running child.
pub struct SimProcess {
    child: Child,
    base_url: String,
    http: reqwest::Client,
}

impl SimProcess {
    pub async fn start(settings: SimSettings) -> Result<Self> {
        let tier = serde_json::to_value(settings.tier)?;
        let mut child = Command::new(std::env::current_exe()?)
            .arg(CHILD_FLAG)
            .arg(tier.as_str().unwrap_or("professional"))
            .arg(settings.search_lag_ms.to_string())
            .arg(if settings.no_rate_limits {
                "unlimited"
            } else {
                "limited"
            })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or("the simulator child has no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).await?;
        let base_url = line
            .trim()
            .strip_prefix("listening ")
            .ok_or_else(|| format!("the simulator child said {line:?}, not its address"))?
            .to_string();
        Ok(SimProcess {
            child,
            base_url,
            http: reqwest::Client::new(),
        })
    }

    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    pub async fn counters(&self) -> Result<Counters> {
        let url = format!("{}/_sim/counters", self.base_url);
        Ok(self
            .http
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    pub async fn add_fault(&self, rule: &FaultRule) -> Result<()> {
        let url = format!("{}/_sim/faults", self.base_url);
        self.http
            .post(url)
            .json(rule)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// The child's peak RSS in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.child.id()?;
        super::status_kib_of(&format!("/proc/{pid}/status"), "VmHWM:")
    }

    /// Closes the child's stdin (it stops) and waits for it.
    pub async fn stop(mut self) -> Result<()> {
        drop(self.child.stdin.take());
        self.child.wait().await?;
        Ok(())
    }
}

/// The child's side: `bench-activation --simulator-child TIER SEARCH_LAG_MS limited|unlimited`.
/// Prints `listening URL`, serves until stdin closes.
pub async fn serve(args: &[String]) -> Result<()> {
    let [tier, lag, limits] = args else {
        return Err(format!("{CHILD_FLAG} TIER SEARCH_LAG_MS limited|unlimited").into());
    };
    let mut config = SimConfig {
        listen: "127.0.0.1:0".into(),
        tier: serde_json::from_value(serde_json::Value::String(tier.clone()))?,
        search_lag_ms: lag.parse()?,
        ..SimConfig::default()
    };
    if limits == "unlimited" {
        config.ten_second_limit = Some(u32::MAX / 2);
        config.daily_limit = Some(u64::MAX / 2);
    }
    let sim = Simulator::start(config).await?;
    println!("listening {}", sim.base_url());
    // Blocks until the parent closes the pipe (or dies).
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink)
    })
    .await??;
    sim.shutdown().await?;
    Ok(())
}
