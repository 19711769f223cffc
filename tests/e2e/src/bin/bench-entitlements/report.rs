//! The benchmark's printout: the table of runs, our ratios to Edge, the propagation latency,
//! and the machine they ran on.

use std::time::Duration;

use crate::propagation::Propagation;
use crate::{Args, Row};

pub fn report(args: &Args, rows: &[Row], half: f64, propagation: Option<&Propagation>) {
    let ms = |us: f64| format!("{:.3}", us / 1000.0);
    println!(
        "  each server pinned to core {}, wrk (1 thread) to core {}; {} s per run after a {} s \
         warm-up; paced runs offer half of our lower peak ({half:.0}/s): each connection waits \
         a fixed time after each answer, set from a warm-up run at that pace. CPU%: share of \
         its core the server used; core%: share all processes used (the difference is other \
         work on the machine); wrk%: share of its core wrk used",
        args.server_core, args.load_core, args.duration_s, args.warmup_s
    );
    println!(
        "  {:<13} {:<17} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7} {:>5} {:>6} {:>5} {:>9} {:>9} {:>8}",
        "server",
        "load",
        "req/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "errors",
        "CPU%",
        "core%",
        "wrk%",
        "RSS MiB",
        "peak MiB",
        "reviews"
    );
    for Row {
        server,
        load,
        sample: r,
    } in rows
    {
        println!(
            "  {:<13} {:<17} {:>9.0} {:>8} {:>8} {:>8} {:>8} {:>7} {:>5.0} {:>6.0} {:>5.0} {:>9.1} {:>9.1} {:>8}",
            server,
            load,
            r.measured.rate(),
            ms(r.measured.p50_us),
            ms(r.measured.p99_us),
            ms(r.measured.p999_us),
            ms(r.measured.max_us),
            r.measured.errors(),
            r.cpu_percent,
            r.core_percent,
            r.measured.generator_cpu_percent(),
            r.usage.rss_kib as f64 / 1024.0,
            r.usage.peak_rss_kib as f64 / 1024.0,
            r.reviews.map_or("–".to_string(), |n| n.to_string())
        );
    }
    let find = |server: &str, peak: bool| {
        rows.iter()
            .find(|r| r.server == server && r.load.starts_with("peak") == peak)
            .map(|r| &r.sample.measured)
    };
    if let Some(edge) = find("Unleash Edge", true) {
        for ours in ["ours OFREP", "ours REST"] {
            if let (Some(peak), Some(paced), Some(edge_paced)) = (
                find(ours, true),
                find(ours, false),
                find("Unleash Edge", false),
            ) {
                println!(
                    "  {ours} / Edge: {:.2}× the peak req/s; at half load p99 {} ms vs {} ms ({:.2}×)",
                    peak.rate() / edge.rate().max(f64::EPSILON),
                    ms(paced.p99_us),
                    ms(edge_paced.p99_us),
                    paced.p99_us / edge_paced.p99_us.max(f64::EPSILON)
                );
            }
        }
    }
    if let Some(p) = propagation {
        let (mut flips, mut writes) = (p.flips.clone(), p.writes.clone());
        flips.sort();
        writes.sort();
        println!(
            "  propagation over {} changes (Entitlement Active → Suspended, OFREP polled every \
             1 ms until false): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (the patch's own round \
             trip: p50 {:.1} ms, p99 {:.1} ms)",
            flips.len(),
            millis(percentile(&flips, 0.50)),
            millis(percentile(&flips, 0.99)),
            millis(percentile(&flips, 1.0)),
            millis(percentile(&writes, 0.50)),
            millis(percentile(&writes, 0.99)),
        );
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`; 100 on Linux x86-64).
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// The CPU model, the cores and the load average, for the record.
pub fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores ({model}), {}", load_average())
}

pub fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let parts: Vec<&str> = text.split_whitespace().take(3).collect();
    format!("load average {}", parts.join(" "))
}
