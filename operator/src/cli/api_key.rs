//! `marketplace api-key create|list|revoke`: backend keys product servers send as `X-API-Key`
//! to read one tenant ([`crate::front_door::api_keys`]).

use clap::Subcommand;
use jiff::{SignedDuration, Timestamp};
use kube::Client;

use super::CliError;
use crate::front_door::api_keys::secrets::{
    KeySummary, create_api_key, list_api_keys, revoke_api_key,
};

#[derive(Subcommand, Debug)]
pub enum ApiKeyCommand {
    /// Create a key that reads one tenant; prints the key once (on stdout, alone) and writes
    /// only its hash, in a Secret in the tenant's namespace.
    Create {
        /// The Tenant the key reads.
        #[arg(long)]
        tenant: String,
        /// What the key is for (e.g. the server that uses it), shown by `list`.
        #[arg(long)]
        name: String,
        /// Days until the key stops working; without it, it works until revoked.
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List a tenant's keys: id, name, created, expires (never the key or its hash).
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Revoke a key: delete its Secret (every API replica refuses it within a second).
    Revoke {
        #[arg(long)]
        tenant: String,
        /// The key's id (the third part of `mk_<tenant>_<id>_<secret>`, or from `list`).
        #[arg(long)]
        id: String,
    },
}

pub fn run(command: ApiKeyCommand) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Cluster(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(execute(command))
}

async fn execute(command: ApiKeyCommand) -> Result<(), CliError> {
    let client = Client::try_default()
        .await
        .map_err(|e| CliError::Cluster(format!("cannot reach the Kubernetes API: {e}")))?;
    let failed =
        |e: crate::front_door::api_keys::secrets::ApiKeyError| CliError::Cluster(e.to_string());
    match command {
        ApiKeyCommand::Create {
            tenant,
            name,
            expires_in_days,
        } => {
            let now = Timestamp::now();
            let expires =
                expires_in_days.map(|days| now + SignedDuration::from_hours(24 * i64::from(days)));
            let issued = create_api_key(&client, &tenant, &name, expires, now)
                .await
                .map_err(failed)?;
            eprintln!(
                "created key {} for tenant {tenant} (Secret {}/{}); it is shown only now:",
                issued.id, issued.namespace, issued.secret
            );
            println!("{}", issued.key);
        }
        ApiKeyCommand::List { tenant } => {
            let keys = list_api_keys(&client, &tenant).await.map_err(failed)?;
            print!("{}", render(&keys));
        }
        ApiKeyCommand::Revoke { tenant, id } => {
            revoke_api_key(&client, &tenant, &id)
                .await
                .map_err(failed)?;
            println!("revoked key {id} of tenant {tenant}");
        }
    }
    Ok(())
}

/// The keys as a table.
pub fn render(keys: &[KeySummary]) -> String {
    if keys.is_empty() {
        return "no API keys\n".to_string();
    }
    let time = |t: Option<Timestamp>| t.map_or_else(|| "-".to_string(), |t| t.to_string());
    let mut out = format!("{:<10} {:<22} {:<22} NAME\n", "ID", "CREATED", "EXPIRES");
    for key in keys {
        out.push_str(&format!(
            "{:<10} {:<22} {:<22} {}\n",
            key.id,
            time(key.created),
            time(key.expires),
            key.name
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_keys_as_a_table() {
        let keys = [KeySummary {
            id: "1a2b3c4d".into(),
            name: "billing server".into(),
            created: Some("2026-06-01T12:00:00Z".parse().unwrap()),
            expires: None,
        }];
        let text = render(&keys);
        assert!(text.starts_with("ID "), "{text}");
        assert!(
            text.contains("1a2b3c4d   2026-06-01T12:00:00Z   -"),
            "{text}"
        );
        assert!(text.contains("billing server"), "{text}");
        assert_eq!(render(&[]), "no API keys\n");
    }
}
