//! The load generator: wrk (one thread, pinned to its own core) with a Lua script that asks for a
//! random tenant and feature on every request, so every server sees the same mix. A rate-limited
//! run makes each connection wait a fixed time after every answer (wrk's `delay`).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::Result;
use crate::dataset::Dataset;

/// The request a run repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /ofrep/v1/evaluate/flags/{feature}`, tenant in the context's `targetingKey`.
    Ofrep,
    /// `GET /v1/tenants/{tenant}/entitlements/{feature}`.
    Rest,
    /// Unleash Edge's `POST /api/frontend/features/{feature}`, tenant as `userId`.
    Edge,
}

/// One wrk run.
pub struct Run<'a> {
    pub wrk: &'a Path,
    pub core: usize,
    pub server: SocketAddr,
    pub endpoint: Endpoint,
    /// The bearer token (ours) or the frontend token (Edge).
    pub credential: &'a str,
    pub dataset: Dataset,
    pub connections: usize,
    pub duration: Duration,
    /// Rate-limited runs: each connection waits this long after each answer.
    pub delay_ms: Option<u64>,
    pub script_dir: &'a Path,
}

/// What wrk measured (latencies in microseconds).
#[derive(Clone, Copy, Debug, Default)]
pub struct Measured {
    pub requests: u64,
    pub seconds: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    /// Connect, read, write errors and timeouts.
    pub socket_errors: u64,
    /// Answers that were not 2xx or 3xx.
    pub status_errors: u64,
    /// CPU time (user + system) wrk used.
    pub generator_cpu_s: f64,
}

impl Measured {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds.max(f64::EPSILON)
    }

    pub fn errors(&self) -> u64 {
        self.socket_errors + self.status_errors
    }

    /// The share of its core the load generator used.
    pub fn generator_cpu_percent(&self) -> f64 {
        self.generator_cpu_s / self.seconds.max(f64::EPSILON) * 100.0
    }
}

impl Run<'_> {
    pub async fn measure(&self) -> Result<Measured> {
        // Load goes to loopback only, whatever the caller passed.
        if !self.server.ip().is_loopback() {
            return Err(format!("refusing to aim load at {}: not loopback", self.server).into());
        }
        let script = self.script_dir.join(format!(
            "{:?}-{}.lua",
            self.endpoint,
            self.delay_ms.unwrap_or(0)
        ));
        std::fs::write(&script, self.script())?;
        // Through bash for its `times`: the load generator's own CPU time, to tell a saturated
        // generator from a saturated server.
        let output = tokio::process::Command::new("taskset")
            .arg("-c")
            .arg(self.core.to_string())
            .args(["bash", "-c", r#""$@"; s=$?; times >&2; exit $s"#, "bash"])
            .arg(self.wrk)
            .args(["-t1", "-c", &self.connections.to_string()])
            .arg("-d")
            .arg(format!("{}s", self.duration.as_secs().max(1)))
            .args(["--timeout", "5s", "-s"])
            .arg(&script)
            .arg(format!("http://{}", self.server))
            .kill_on_drop(true)
            .output()
            .await?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("BENCH "))
            .ok_or_else(|| {
                format!(
                    "wrk printed no result ({}): {stdout}{}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                )
            })?;
        let v: Vec<f64> = line
            .split_whitespace()
            .map(str::parse)
            .collect::<std::result::Result<_, _>>()?;
        let [
            requests,
            micros,
            connect,
            read,
            write,
            status,
            timeout,
            p50,
            p99,
            p999,
            max,
        ] = v[..]
        else {
            return Err(format!("unexpected wrk result line: {line}").into());
        };
        let stderr = String::from_utf8_lossy(&output.stderr);
        Ok(Measured {
            generator_cpu_s: children_cpu_seconds(&stderr),
            requests: requests as u64,
            seconds: micros / 1e6,
            p50_us: p50,
            p99_us: p99,
            p999_us: p999,
            max_us: max,
            socket_errors: (connect + read + write + timeout) as u64,
            status_errors: status as u64,
        })
    }

    fn script(&self) -> String {
        let (method, path, body) = match self.endpoint {
            Endpoint::Ofrep => (
                "POST",
                r#""/ofrep/v1/evaluate/flags/" .. f"#,
                r#"'{"context":{"targetingKey":"' .. t .. '"}}'"#,
            ),
            Endpoint::Rest => (
                "GET",
                r#""/v1/tenants/" .. t .. "/entitlements/" .. f"#,
                "nil",
            ),
            Endpoint::Edge => (
                "POST",
                r#""/api/frontend/features/" .. f"#,
                r#"'{"userId":"' .. t .. '"}'"#,
            ),
        };
        let authorization = match self.endpoint {
            Endpoint::Ofrep | Endpoint::Rest => format!("Bearer {}", self.credential),
            Endpoint::Edge => self.credential.to_string(),
        };
        let delay = match self.delay_ms {
            Some(ms) => format!("delay = function() return {ms} end"),
            None => String::new(),
        };
        // Tenant and feature names as `Dataset::tenant` and `Dataset::feature` spell them.
        format!(
            r#"local tenants, features = {tenants}, {features}
local headers = {{["Authorization"] = "{authorization}", ["Content-Type"] = "application/json"}}
math.randomseed(20260101)
request = function()
  local t = string.format("t%05d", math.random(0, tenants - 1))
  local f = string.format("feature_%02d", math.random(0, features - 1))
  return wrk.format("{method}", {path}, headers, {body})
end
{delay}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d %d %d %d %d %.1f %.1f %.1f %.1f\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
"#,
            tenants = self.dataset.tenants,
            features = self.dataset.features,
        )
    }
}

/// How a run loads a server: `connections` in a closed loop, each waiting `delay_ms` after each
/// answer (none: at once, the peak).
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    pub connections: usize,
    pub delay_ms: Option<u64>,
}

impl Pace {
    /// About `rate` requests per second when an answer takes `latency_ms`: a connection sends
    /// one request per delay + latency. At least 5 ms of delay (wrk's timers count whole
    /// milliseconds), more connections when needed.
    pub fn for_rate(rate: f64, latency_ms: f64) -> Pace {
        let rate = rate.max(1.0);
        let mut connections = (rate / 100.0).round().max(1.0) as usize;
        while (connections as f64 * 1000.0 / rate - latency_ms) < 5.0 && connections < 10_000 {
            connections += connections.div_ceil(4);
        }
        let delay = (connections as f64 * 1000.0 / rate - latency_ms)
            .round()
            .max(1.0);
        Pace {
            connections,
            delay_ms: Some(delay as u64),
        }
    }
}

impl std::fmt::Display for Pace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} connections", self.connections)?;
        match self.delay_ms {
            Some(ms) => write!(f, " waiting {ms} ms"),
            None => Ok(()),
        }
    }
}

/// User + system time of the children, from the last line bash's `times` printed
/// (`0m1.250s 0m0.310s`).
fn children_cpu_seconds(stderr: &str) -> f64 {
    let seconds = |t: &str| -> Option<f64> {
        let (m, s) = t.strip_suffix('s')?.split_once('m')?;
        Some(m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?)
    };
    stderr
        .lines()
        .rev()
        .find_map(|line| {
            let mut parts = line.split_whitespace();
            Some(seconds(parts.next()?)? + seconds(parts.next()?)?)
        })
        .unwrap_or(0.0)
}
