//! The `hubspot-sim` binary starts, serves the 2026-09 API with the given token, and stops.
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test]
async fn binary_serves_with_flags() {
    let (mut child, url) = spawn(&[
        "--listen",
        "127.0.0.1:0",
        "--tier",
        "starter",
        "--search-lag-ms",
        "0",
        "--token",
        "tok",
        "--payments-enabled",
        "false",
    ]);
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{url}/crm/objects/2026-09/companies"))
        .bearer_auth("tok")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["x-hubspot-ratelimit-max"], "100");
    let r = http
        .post(format!("{url}/crm/objects/2026-09/subscriptions"))
        .bearer_auth("tok")
        .json(&serde_json::json!({"properties": {"hs_name": "s"}}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 400);
    child.kill().expect("kill");
    let _ = child.wait();
}

/// Starts the binary with `args` and returns it with its base URL.
fn spawn(args: &[&str]) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hubspot-sim"))
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn binary");
    let stdout = child.stdout.take().expect("stdout");
    let line = BufReader::new(stdout)
        .lines()
        .next()
        .expect("a line")
        .expect("read");
    (child, line.rsplit(' ').next().expect("url").to_string())
}

/// SIGTERM (how `scripts/dev` stops it) saves the state file; the next start serves it again.
#[tokio::test]
async fn binary_keeps_its_state_file_across_sigterm() {
    let dir = std::env::temp_dir().join(format!(
        "hubspot-sim-binary-{}-{}",
        std::process::id(),
        hubspot_sim::clock::wall_ms()
    ));
    std::fs::create_dir_all(&dir).expect("state folder");
    let state = dir.join("state.json");
    let state_arg = state.to_str().expect("utf-8 path");
    let args = ["--listen", "127.0.0.1:0", "--state-file", state_arg];
    let http = reqwest::Client::new();

    let (mut child, url) = spawn(&args);
    let created: serde_json::Value = http
        .post(format!("{url}/crm/objects/2026-09/companies"))
        .bearer_auth("pat-na1-simulator-token")
        .json(&serde_json::json!({"properties": {"name": "Acme"}}))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("id").to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let exit = child.wait().expect("wait");
    assert!(exit.success(), "SIGTERM is a clean stop: {exit}");

    let (mut child, url) = spawn(&args);
    let r = http
        .get(format!("{url}/crm/objects/2026-09/companies/{id}"))
        .bearer_auth("pat-na1-simulator-token")
        .send()
        .await
        .expect("get");
    let status = r.status().as_u16();
    child.kill().expect("kill");
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(status, 200, "company {id} survived the restart");
}
