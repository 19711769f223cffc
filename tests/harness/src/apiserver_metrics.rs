//! The apiserver's own Prometheus metrics (`/metrics`), read as the admin: what tests and
//! benchmarks count writes, reviews and open watches with, instead of trusting the client side.

use std::collections::BTreeMap;

use kube::Client;

/// One sample of a metric: its labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// `a="x",b="y"`, as exposed.
    labels: String,
    pub value: f64,
}

impl Sample {
    /// The value of label `name`, or "" when the sample has none.
    pub fn label(&self, name: &str) -> &str {
        let needle = format!("{name}=\"");
        self.labels
            .split(',')
            .find_map(|pair| pair.strip_prefix(needle.as_str()))
            .and_then(|rest| rest.strip_suffix('"'))
            .unwrap_or("")
    }
}

/// The samples of `metric` in an exposition `text`.
pub fn parse_samples(text: &str, metric: &str) -> Vec<Sample> {
    let prefix = format!("{metric}{{");
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(prefix.as_str())?;
            let (labels, value) = rest.rsplit_once("} ")?;
            Some(Sample {
                labels: labels.to_string(),
                value: value.trim().parse().ok()?,
            })
        })
        .collect()
}

/// The apiserver's current samples of `metric`.
pub async fn apiserver_samples(client: &Client, metric: &str) -> Result<Vec<Sample>, kube::Error> {
    let request = http::Request::get("/metrics")
        .body(Vec::new())
        .expect("a GET request builds");
    let text = client.request_text(request).await?;
    Ok(parse_samples(&text, metric))
}

/// Requests counted by the apiserver, by (resource, subresource, verb).
pub type WriteCounts = BTreeMap<(String, String, String), u64>;

/// The writes (POST, PUT, PATCH, DELETE, APPLY) the apiserver has answered so far, Leases (the
/// control plane's own heartbeats) left out.
pub async fn apiserver_writes(client: &Client) -> Result<WriteCounts, kube::Error> {
    let mut all = apiserver_requests(client).await?;
    all.retain(|(_, _, verb), _| {
        matches!(verb.as_str(), "POST" | "PUT" | "PATCH" | "DELETE" | "APPLY")
    });
    Ok(all)
}

/// Every request the apiserver has answered so far, reads (GET, LIST, WATCH) included, by
/// (resource, subresource, verb); Leases left out. Requests not for a resource (`/metrics`)
/// have an empty resource.
pub async fn apiserver_requests(client: &Client) -> Result<WriteCounts, kube::Error> {
    let mut out = WriteCounts::new();
    for s in apiserver_samples(client, "apiserver_request_total").await? {
        if s.label("resource") == "leases" {
            continue;
        }
        let key = (
            s.label("resource").to_string(),
            s.label("subresource").to_string(),
            s.label("verb").to_string(),
        );
        *out.entry(key).or_insert(0) += s.value as u64;
    }
    Ok(out)
}

/// The requests (or writes) made between two counts (only those with any).
pub fn writes_between(before: &WriteCounts, after: &WriteCounts) -> WriteCounts {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_and_labels_are_read() {
        let text = "# HELP x\n\
            apiserver_request_total{code=\"201\",resource=\"tenants\",verb=\"POST\"} 3\n\
            apiserver_request_total_other{verb=\"GET\"} 9\n\
            apiserver_longrunning_requests{group=\"marketplace.dev\",verb=\"WATCH\"} 2\n";
        let samples = parse_samples(text, "apiserver_request_total");
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0].value, 3.0);
        assert_eq!(samples[0].label("resource"), "tenants");
        assert_eq!(samples[0].label("verb"), "POST");
        assert_eq!(samples[0].label("group"), "");
    }
}
