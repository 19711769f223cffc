//! The `hubspot-sim` binary starts, serves the 2026-09 API with the given token, and stops.
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test]
async fn binary_serves_with_flags() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hubspot-sim"))
        .args([
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
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn binary");
    let stdout = child.stdout.take().expect("stdout");
    let line = BufReader::new(stdout)
        .lines()
        .next()
        .expect("a line")
        .expect("read");
    let url = line.rsplit(' ').next().expect("url").to_string();
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
