//! [`ControlPlane`]: etcd + kube-apiserver + kube-controller-manager, started the way Go's
//! envtest starts them (same flags), plus the namespace and garbage-collector controllers that
//! envtest lacks, so namespace deletion and ownerReference cascades behave as in a cluster; the
//! apiserver also trusts a local OIDC issuer ([`crate::oidc`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{Ipv4Addr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::wait::{Condition, conditions};
use kube::{Api, Client};
use tempfile::TempDir;

use crate::HarnessError;
use crate::binaries::Binaries;
use crate::kubeconfig;
use crate::oidc::{self, DocumentServer, OidcIssuer, review_token};
use crate::pki::{Pki, PkiFiles};
use crate::process::{Component, Janitor, free_ports};

/// Set to `1` to keep a temporary control-plane folder (logs, etcd data, kubeconfig) after the
/// control plane stops; its location is printed.
pub const KEEP_ENV: &str = "MARKETPLACE_KEEP_CONTROL_PLANE";

/// Field manager of the harness's server-side applies.
pub const FIELD_MANAGER: &str = "marketplace-harness";

/// Label put on every namespace made by [`ControlPlane::create_namespace`].
pub const TEST_NAMESPACE_LABEL: &str = "marketplace.dev/test";

/// Controllers run by kube-controller-manager: exactly what tests observe without kubelets.
const KCM_CONTROLLERS: &str = "namespace-controller,garbage-collector-controller";

/// How often readiness conditions are polled.
const POLL: Duration = Duration::from_millis(200);

/// How start-up attempts are retried when a picked port was taken meanwhile.
const START_ATTEMPTS: u32 = 3;

/// How to start a [`ControlPlane`]. `Default` gives a throw-away control plane in a temp dir.
#[derive(Debug, Clone)]
pub struct ControlPlaneOptions {
    /// Folder with the binaries; default: `MARKETPLACE_CONTROL_PLANE_BIN`, else
    /// `scripts/install-control-plane --print-dir`.
    pub bin_dir: Option<PathBuf>,
    /// Folder for state (PKI, etcd data, logs, kubeconfig). It is created if missing and never
    /// deleted. Default: a fresh temporary folder, deleted on stop unless [`Self::keep`].
    pub dir: Option<PathBuf>,
    /// Where to write the admin kubeconfig; default `<dir>/kubeconfig`.
    pub kubeconfig_path: Option<PathBuf>,
    /// Fixed apiserver port (e.g. so a developer's kubeconfig survives restarts); default: free.
    pub apiserver_port: Option<u16>,
    /// Fixed port of the local OIDC issuer (its URL is in every token it mints, so tokens
    /// survive restarts only with a fixed port); default: free.
    pub oidc_port: Option<u16>,
    /// Keep the temporary folder after stopping. Default: `MARKETPLACE_KEEP_CONTROL_PLANE=1`.
    pub keep: bool,
    /// Limit for the whole start-up (etcd, apiserver `/readyz`, `default` namespace).
    pub start_timeout: Duration,
    /// Write the apiserver's audit log (every request's metadata, one JSON event per line) to
    /// [`ControlPlane::audit_log_path`]: who asked what, and the answer. Off by default.
    pub audit_log: bool,
    /// Admission plugins to enable beyond the apiserver's defaults, e.g.
    /// `OwnerReferencesPermissionEnforcement`.
    pub admission_plugins: Vec<String>,
}

impl Default for ControlPlaneOptions {
    fn default() -> Self {
        Self {
            bin_dir: None,
            dir: None,
            kubeconfig_path: None,
            apiserver_port: None,
            oidc_port: None,
            keep: std::env::var(KEEP_ENV).is_ok_and(|v| v == "1" || v == "true"),
            start_timeout: Duration::from_secs(60),
            audit_log: false,
            admission_plugins: Vec::new(),
        }
    }
}

/// A running etcd + kube-apiserver + kube-controller-manager on 127.0.0.1.
///
/// Dropping it stops KCM, the apiserver and etcd (in that order) and removes its temporary
/// folder. If the owning process dies instead, the watchdogs in [`crate::process`] stop the
/// components and a janitor removes the folder. It holds no async state, so one instance can
/// serve clients from any number of tokio runtimes; create a client per runtime.
#[derive(Debug)]
pub struct ControlPlane {
    /// etcd, kube-apiserver, kube-controller-manager, in start order.
    components: Vec<Component>,
    binaries: Binaries,
    dir: PathBuf,
    temp: Option<TempDir>,
    janitor: Option<Janitor>,
    announce_kept: bool,
    kubeconfig_path: PathBuf,
    audit_log_path: Option<PathBuf>,
    config: kube::Config,
    startup: Duration,
    oidc_issuer: OidcIssuer,
    /// Serves the issuer's keys; stops once `drop` has stopped the components.
    _oidc_server: DocumentServer,
}

impl ControlPlane {
    /// Starts a control plane and waits until it serves (`/readyz` is 200 and the `default`
    /// namespace exists).
    pub async fn start(options: ControlPlaneOptions) -> Result<Self, HarnessError> {
        let started = Instant::now();
        let deadline = started + options.start_timeout;
        let binaries = Binaries::locate(options.bin_dir.as_deref())?;

        let (dir, temp, announce_kept) = match &options.dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| HarnessError::io(format!("creating {}", dir.display()), e))?;
                let dir = std::path::absolute(dir)
                    .map_err(|e| HarnessError::io(format!("resolving {}", dir.display()), e))?;
                (dir, None, false)
            }
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("marketplace-control-plane-")
                    .tempdir()
                    .map_err(|e| HarnessError::io("creating a temporary folder", e))?;
                if options.keep {
                    let dir = temp.keep();
                    // Statics are never dropped, so say it now as well as on drop.
                    eprintln!(
                        "marketplace-harness: keeping control plane folder {}",
                        dir.display()
                    );
                    (dir, None, true)
                } else {
                    (temp.path().to_path_buf(), Some(temp), false)
                }
            }
        };
        // Components append their pids here; watchdogs and the janitor read it.
        let pid_file = dir.join("pids");
        let janitor = match temp {
            Some(_) => Some(Janitor::spawn(&dir, &pid_file)?),
            None => None,
        };
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs)
            .map_err(|e| HarnessError::io(format!("creating {}", logs.display()), e))?;
        let pki = Pki::generate()?;
        let pki_files = pki.write(&dir.join("pki"))?;
        // Before the apiserver: it fetches the issuer's discovery document as it starts.
        let (oidc_issuer, oidc_server, authentication_config) =
            oidc::start(&dir, &pki, options.oidc_port)?;
        let kubeconfig_path = options
            .kubeconfig_path
            .clone()
            .unwrap_or_else(|| dir.join("kubeconfig"));

        let audit = if options.audit_log {
            Some(write_audit_policy(&dir)?)
        } else {
            None
        };
        let etcd_data = dir.join("etcd");
        let etcd_data_existed = etcd_data.exists();
        let layout = Layout {
            binaries: &binaries,
            dir: &dir,
            pid_file: &pid_file,
            pki: &pki,
            pki_files: &pki_files,
            authentication_config: &authentication_config,
            kubeconfig_path: &kubeconfig_path,
            apiserver_port: options.apiserver_port,
            start_timeout: options.start_timeout,
            audit: audit.as_ref(),
            admission_plugins: &options.admission_plugins,
        };
        let mut attempt = 1;
        let (components, config) = loop {
            match layout.launch(deadline).await {
                Ok(running) => break running,
                Err(e) if e.is_port_clash() && attempt < START_ATTEMPTS => {
                    tracing::warn!(attempt, error = %e, "a port was taken meanwhile; retrying");
                    if !etcd_data_existed {
                        let _ = std::fs::remove_dir_all(&etcd_data);
                    }
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        };
        wait_oidc_trusted(&config, &oidc_issuer, deadline).await?;

        let startup = started.elapsed();
        tracing::info!(
            startup_ms = startup.as_millis() as u64,
            dir = %dir.display(),
            server = %config.cluster_url,
            "control plane ready"
        );
        Ok(Self {
            components,
            binaries,
            dir,
            temp,
            janitor,
            announce_kept,
            kubeconfig_path,
            audit_log_path: audit.map(|a| a.log),
            config,
            startup,
            oidc_issuer,
            _oidc_server: oidc_server,
        })
    }

    /// [`ControlPlane::start`] on a dedicated thread with its own tokio runtime, so it can be
    /// called from synchronous code and from inside any runtime alike (a runtime cannot
    /// `block_on` inside another one).
    pub fn start_blocking(options: ControlPlaneOptions) -> Result<Self, HarnessError> {
        std::thread::Builder::new()
            .name("control-plane-start".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| HarnessError::io("building a tokio runtime", e))?;
                runtime.block_on(Self::start(options))
            })
            .map_err(|e| HarnessError::io("spawning the start-up thread", e))?
            .join()
            .unwrap_or_else(|_| {
                Err(HarnessError::InvalidInput(
                    "the control-plane start-up thread panicked".to_owned(),
                ))
            })
    }

    /// An admin client (`system:masters`). Create one per tokio runtime (per test): a client's
    /// connection pool belongs to the runtime it was created in.
    pub async fn client(&self) -> Result<Client, HarnessError> {
        Ok(Client::try_from(self.config.clone())?)
    }

    /// A client that impersonates `user` in `groups` (the apiserver adds
    /// `system:authenticated`), so RBAC applies to it for real.
    pub async fn client_as_user(
        &self,
        user: &str,
        groups: &[&str],
    ) -> Result<Client, HarnessError> {
        let mut config = self.config.clone();
        config.auth_info.impersonate = Some(user.to_owned());
        config.auth_info.impersonate_groups =
            (!groups.is_empty()).then(|| groups.iter().map(|g| (*g).to_owned()).collect());
        Ok(Client::try_from(config)?)
    }

    /// A client that authenticates with bearer `token` alone (e.g. an ID token from
    /// [`Self::oidc_issuer`]), so the apiserver's authentication is exercised, not only RBAC.
    pub async fn client_with_token(&self, token: &str) -> Result<Client, HarnessError> {
        let mut config = self.config.clone();
        config.auth_info = kube::config::AuthInfo {
            token: Some(token.to_owned().into()),
            ..kube::config::AuthInfo::default()
        };
        Ok(Client::try_from(config)?)
    }

    /// A client that impersonates service account `namespace/name`, with the groups a real
    /// service-account token would carry.
    pub async fn client_as_service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Client, HarnessError> {
        let user = format!("system:serviceaccount:{namespace}:{name}");
        let namespace_group = format!("system:serviceaccounts:{namespace}");
        self.client_as_user(
            &user,
            &[
                "system:serviceaccounts",
                &namespace_group,
                "system:authenticated",
            ],
        )
        .await
    }

    /// The apiserver's audit log, when [`ControlPlaneOptions::audit_log`] asked for one.
    pub fn audit_log_path(&self) -> Option<&Path> {
        self.audit_log_path.as_deref()
    }

    /// The admin client configuration (e.g. to tweak timeouts before building a client).
    pub fn config(&self) -> &kube::Config {
        &self.config
    }

    /// The self-contained admin kubeconfig.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// `https://127.0.0.1:<port>/`
    pub fn server_url(&self) -> String {
        self.config.cluster_url.to_string()
    }

    /// The control plane's folder (PKI, etcd data, `logs/`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The binaries in use.
    pub fn binaries(&self) -> &Binaries {
        &self.binaries
    }

    /// The local OIDC issuer the apiserver trusts: mints ID tokens for any user and groups
    /// (Kubernetes names them with [`crate::OIDC_PREFIX`]).
    pub fn oidc_issuer(&self) -> &OidcIssuer {
        &self.oidc_issuer
    }

    /// How long [`ControlPlane::start`] took.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// `(component, pid, log file)` for etcd, kube-apiserver and kube-controller-manager.
    pub fn components(&self) -> Vec<(&'static str, u32, &Path)> {
        self.components
            .iter()
            .map(|c| (c.name(), c.pid(), c.log_path()))
            .collect()
    }

    /// `Err` (with the log tail) if a component has exited.
    pub fn check_running(&self) -> Result<(), HarnessError> {
        self.components
            .iter()
            .try_for_each(Component::check_running)
    }

    /// `kubectl` (the same-minor build) with `KUBECONFIG` pointing at this control plane.
    pub fn kubectl(&self) -> Command {
        let mut command = Command::new(&self.binaries.kubectl);
        command.env("KUBECONFIG", &self.kubeconfig_path);
        command
    }

    /// Server-side applies the CRDs, then waits until each is `Established` and every served
    /// version's resource shows up in discovery (only then can clients and KCM use it).
    pub async fn install_crds(
        &self,
        crds: &[CustomResourceDefinition],
    ) -> Result<(), HarnessError> {
        let client = self.client().await?;
        let api: Api<CustomResourceDefinition> = Api::all(client.clone());
        let apply = PatchParams::apply(FIELD_MANAGER).force();
        let mut names = Vec::with_capacity(crds.len());
        for crd in crds {
            let name = crd.metadata.name.as_deref().ok_or_else(|| {
                HarnessError::InvalidInput("a CustomResourceDefinition has no name".to_owned())
            })?;
            api.patch(name, &apply, &Patch::Apply(crd)).await?;
            names.push(name);
        }
        let timeout = Duration::from_secs(60);
        for (crd, name) in crds.iter().zip(names) {
            poll_until(
                &format!("CRD {name} to be Established"),
                timeout,
                || async {
                    let current = api.get(name).await?;
                    Ok(conditions::is_crd_established()
                        .matches_object(Some(&current))
                        .then_some(()))
                },
            )
            .await?;
            let plural = &crd.spec.names.plural;
            for version in crd.spec.versions.iter().filter(|v| v.served) {
                let group_version = format!("{}/{}", crd.spec.group, version.name);
                let what = format!("{plural} to be discoverable in {group_version}");
                poll_until(&what, timeout, || async {
                    let list = client.list_api_group_resources(&group_version).await?;
                    Ok(list
                        .resources
                        .iter()
                        .any(|r| &r.name == plural)
                        .then_some(()))
                })
                .await?;
            }
        }
        Ok(())
    }

    /// Creates a uniquely named namespace `<prefix>-xxxxx` (server-generated suffix), labelled
    /// [`TEST_NAMESPACE_LABEL`]`=true`, and returns its name. `prefix` is sanitized into a DNS
    /// label, so a test's function name is fine.
    pub async fn create_namespace(&self, prefix: &str) -> Result<String, HarnessError> {
        let namespace = Namespace {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}-", dns_label_prefix(prefix))),
                labels: Some(BTreeMap::from([(
                    TEST_NAMESPACE_LABEL.to_owned(),
                    "true".to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        let created = Api::<Namespace>::all(self.client().await?)
            .create(&PostParams::default(), &namespace)
            .await?;
        created.metadata.name.ok_or_else(|| {
            HarnessError::InvalidInput(
                "the apiserver returned a namespace without a name".to_owned(),
            )
        })
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // KCM first (it talks to the apiserver), then the apiserver, then its storage.
        for component in self.components.iter().rev() {
            component.stop();
        }
        if let Some(temp) = self.temp.take() {
            let _ = temp.close();
        }
        self.janitor = None;
        if self.announce_kept {
            eprintln!(
                "marketplace-harness: kept control plane folder {}",
                self.dir.display()
            );
        }
    }
}

/// Everything one start-up attempt needs.
struct Layout<'a> {
    binaries: &'a Binaries,
    dir: &'a Path,
    /// File of the attempt's component pids, in start order.
    pid_file: &'a Path,
    pki: &'a Pki,
    pki_files: &'a PkiFiles,
    /// The structured AuthenticationConfiguration trusting the local OIDC issuer.
    authentication_config: &'a Path,
    kubeconfig_path: &'a Path,
    apiserver_port: Option<u16>,
    start_timeout: Duration,
    audit: Option<&'a AuditFiles>,
    admission_plugins: &'a [String],
}

/// The audit policy the apiserver reads and the log it writes.
struct AuditFiles {
    policy: PathBuf,
    log: PathBuf,
}

/// Every request at the Metadata level (user, impersonated user, verb, object, answer); the
/// stage before the answer is left out, so each request is one event (a watch two: started,
/// ended).
const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
";

fn write_audit_policy(dir: &Path) -> Result<AuditFiles, HarnessError> {
    let policy = dir.join("audit-policy.yaml");
    std::fs::write(&policy, AUDIT_POLICY)
        .map_err(|e| HarnessError::io(format!("writing {}", policy.display()), e))?;
    Ok(AuditFiles {
        policy,
        log: dir.join("logs").join("audit.log"),
    })
}

/// Components of one attempt; on an error they are stopped in reverse order.
struct Started(Vec<Component>);

impl Drop for Started {
    fn drop(&mut self) {
        for component in self.0.iter().rev() {
            component.stop();
        }
    }
}

impl Layout<'_> {
    /// Starts etcd, kube-apiserver and KCM on fresh ports and waits until they serve.
    async fn launch(
        &self,
        deadline: Instant,
    ) -> Result<(Vec<Component>, kube::Config), HarnessError> {
        // Left over from an earlier run of a `--dir` control plane, or an earlier attempt.
        let _ = std::fs::remove_file(self.pid_file);
        let ports = free_ports(3)?;
        let (etcd_port, peer_port) = (ports[0], ports[1]);
        let api_port = self.apiserver_port.unwrap_or(ports[2]);
        let mut started = Started(Vec::with_capacity(3));

        let etcd = self.spawn(
            "etcd",
            &self.binaries.etcd,
            self.etcd_args(etcd_port, peer_port),
        )?;
        wait_for_port(&etcd, etcd_port, deadline, self.start_timeout).await?;
        started.0.push(etcd);

        let apiserver_args = self.apiserver_args(etcd_port, api_port);
        let apiserver = self.spawn(
            "kube-apiserver",
            &self.binaries.kube_apiserver,
            apiserver_args,
        )?;
        started.0.push(apiserver);

        let server = format!("https://127.0.0.1:{api_port}");
        let text = kubeconfig::render(&server, self.pki);
        write_private(self.kubeconfig_path, &text)?;
        let config = kubeconfig::client_config(&text).await?;
        let client = Client::try_from(config.clone())?;
        wait_ready(&client, &started.0, deadline, self.start_timeout).await?;

        let kcm = self.spawn(
            "kube-controller-manager",
            &self.binaries.kube_controller_manager,
            vec![
                format!("--kubeconfig={}", self.kubeconfig_path.display()),
                format!("--controllers={KCM_CONTROLLERS}"),
                "--leader-elect=false".to_owned(),
                "--secure-port=0".to_owned(),
            ],
        )?;
        started.0.push(kcm);
        wait_default_namespace(&client, &started.0, deadline, self.start_timeout).await?;
        started.0.iter().try_for_each(Component::check_running)?;

        Ok((std::mem::take(&mut started.0), config))
    }

    fn spawn(
        &self,
        name: &'static str,
        binary: &Path,
        args: Vec<String>,
    ) -> Result<Component, HarnessError> {
        let log = self.dir.join("logs").join(format!("{name}.log"));
        Component::spawn(name, binary, &args, log, self.pid_file)
    }

    /// envtest's etcd flags, with fsync off (tests do not need durability; it is much faster) and
    /// a larger space quota.
    fn etcd_args(&self, client_port: u16, peer_port: u16) -> Vec<String> {
        let client = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        vec![
            "--name=default".to_owned(),
            format!("--data-dir={}", self.dir.join("etcd").display()),
            format!("--listen-client-urls={client}"),
            format!("--advertise-client-urls={client}"),
            format!("--listen-peer-urls={peer}"),
            format!("--initial-advertise-peer-urls={peer}"),
            format!("--initial-cluster=default={peer}"),
            "--unsafe-no-fsync=true".to_owned(),
            // The scale benchmark's 50,000 subscriptions (with their Entitlements, Events and
            // revisions) outgrow etcd's default 2 GiB quota; production etcds commonly run 8.
            "--quota-backend-bytes=8589934592".to_owned(),
            "--log-level=warn".to_owned(),
        ]
    }

    /// envtest's kube-apiserver flags (controller-runtime `controlplane/apiserver.go`).
    fn apiserver_args(&self, etcd_port: u16, port: u16) -> Vec<String> {
        let f = self.pki_files;
        let mut args = vec![
            format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
            "--bind-address=127.0.0.1".to_owned(),
            format!("--secure-port={port}"),
            format!("--cert-dir={}", self.dir.join("pki").display()),
            format!("--tls-cert-file={}", f.apiserver_cert.display()),
            format!("--tls-private-key-file={}", f.apiserver_key.display()),
            format!("--client-ca-file={}", f.ca_cert.display()),
            format!("--service-account-issuer=https://127.0.0.1:{port}"),
            format!(
                "--service-account-key-file={}",
                f.service_account_pub.display()
            ),
            format!(
                "--service-account-signing-key-file={}",
                f.service_account_key.display()
            ),
            "--service-cluster-ip-range=10.0.0.0/24".to_owned(),
            // Service-account tokens and client certificates are authenticated as without it.
            format!(
                "--authentication-config={}",
                self.authentication_config.display()
            ),
            "--authorization-mode=RBAC".to_owned(),
            "--allow-privileged=true".to_owned(),
            // With it, every namespace would need a default ServiceAccount, which only the
            // serviceaccount controller creates (envtest disables it for the same reason).
            "--disable-admission-plugins=ServiceAccount".to_owned(),
        ];
        if let Some(audit) = self.audit {
            args.push(format!("--audit-policy-file={}", audit.policy.display()));
            args.push(format!("--audit-log-path={}", audit.log.display()));
            // Written before the answer, so a test reads every request it has made.
            args.push("--audit-log-mode=blocking".to_owned());
        }
        if !self.admission_plugins.is_empty() {
            args.push(format!(
                "--enable-admission-plugins={}",
                self.admission_plugins.join(",")
            ));
        }
        args
    }
}

/// Waits until etcd accepts TCP connections on its client port.
async fn wait_for_port(
    component: &Component,
    port: u16,
    deadline: Instant,
    after: Duration,
) -> Result<(), HarnessError> {
    loop {
        component.check_running()?;
        if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(timeout_with_log(
                format!("{} to listen on 127.0.0.1:{port}", component.name()),
                after,
                component,
                "",
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for `/readyz` = 200 (all post-start hooks done: RBAC bootstrap roles, CRD handling...).
/// `components` are etcd and the apiserver.
async fn wait_ready(
    client: &Client,
    components: &[Component],
    deadline: Instant,
    after: Duration,
) -> Result<(), HarnessError> {
    loop {
        components.iter().try_for_each(Component::check_running)?;
        let request = http::Request::get("/readyz")
            .body(Vec::new())
            .map_err(|e| HarnessError::InvalidInput(e.to_string()))?;
        let last = match tokio::time::timeout(Duration::from_secs(5), client.request_text(request))
            .await
        {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "/readyz did not answer within 5s".to_owned(),
        };
        if Instant::now() >= deadline {
            return Err(timeout_with_log(
                "kube-apiserver /readyz".to_owned(),
                after,
                &components[1],
                &format!("\nlast answer: {last}"),
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits for the `default` namespace, like Kubernetes' own integration test server does: it is
/// created by an apiserver controller shortly after `/readyz` and tests expect it.
/// `components` are etcd, the apiserver and KCM.
async fn wait_default_namespace(
    client: &Client,
    components: &[Component],
    deadline: Instant,
    after: Duration,
) -> Result<(), HarnessError> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    loop {
        components.iter().try_for_each(Component::check_running)?;
        let last = match namespaces.get_opt("default").await {
            Ok(Some(_)) => return Ok(()),
            Ok(None) => "not found".to_owned(),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(timeout_with_log(
                "the default namespace".to_owned(),
                after,
                &components[1],
                &format!("\nlast answer: {last}"),
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until the apiserver authenticates the local issuer's tokens (it loads the issuer's
/// keys in the background, retrying every 10 s), so tests never race it and a broken trust
/// fails the start-up, not some later test.
async fn wait_oidc_trusted(
    config: &kube::Config,
    issuer: &OidcIssuer,
    deadline: Instant,
) -> Result<(), HarnessError> {
    let client = Client::try_from(config.clone())?;
    let token = issuer.mint("harness-probe", &[], Duration::from_secs(300))?;
    let expected = format!("{}harness-probe", oidc::OIDC_PREFIX);
    let left = deadline.saturating_duration_since(Instant::now());
    poll_until(
        &format!(
            "the apiserver to accept tokens of the OIDC issuer {}",
            issuer.url()
        ),
        left.max(Duration::from_secs(1)),
        || async {
            let user = review_token(&client, &token).await?;
            Ok(user
                .is_some_and(|u| u.username.as_deref() == Some(&expected))
                .then_some(()))
        },
    )
    .await
}

fn timeout_with_log(
    what: String,
    after: Duration,
    component: &Component,
    extra: &str,
) -> HarnessError {
    HarnessError::Timeout {
        what,
        after,
        details: format!(
            "{extra}\nlast lines of {}:\n{}",
            component.log_path().display(),
            component.log_tail()
        ),
    }
}

/// Polls `check` until it yields `Some`, for at most `timeout`.
async fn poll_until<T, F, Fut>(
    what: &str,
    timeout: Duration,
    mut check: F,
) -> Result<T, HarnessError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, HarnessError>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last = format!("\nlast error: {e}"),
        }
        if Instant::now() >= deadline {
            return Err(HarnessError::Timeout {
                what: what.to_owned(),
                after: timeout,
                details: last,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Writes a file readable only by its owner (the kubeconfig holds the admin key).
pub(crate) fn write_private(path: &Path, text: &str) -> Result<(), HarnessError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| HarnessError::io(format!("creating {}", parent.display()), e))?;
    }
    std::fs::write(path, text)
        .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)))
        .map_err(|e| HarnessError::io(format!("writing {}", path.display()), e))
}

/// Lower-case alphanumerics and `-`, at most 40 characters, never empty; the server appends a
/// 5-character suffix to the `generateName`.
fn dns_label_prefix(prefix: &str) -> String {
    let mut label: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    label = label.trim_matches('-').to_owned();
    if label.is_empty() {
        label = "test".to_owned();
    } else if !label.starts_with(|c: char| c.is_ascii_lowercase()) {
        label.insert_str(0, "t-");
    }
    label
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binary folder whose etcd fails at once; the others are never reached.
    fn failing_bin_dir() -> TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, script) in [
            (
                "etcd",
                "#!/bin/sh\necho 'etcd: simulated start-up failure' >&2\nexit 2\n",
            ),
            ("kube-apiserver", "#!/bin/sh\nexit 1\n"),
            ("kube-controller-manager", "#!/bin/sh\nexit 1\n"),
            ("kubectl", "#!/bin/sh\nexit 1\n"),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, script).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir
    }

    #[tokio::test]
    async fn a_failing_component_is_reported_with_its_log() {
        let bin_dir = failing_bin_dir();
        let state = tempfile::tempdir().unwrap();
        let options = ControlPlaneOptions {
            bin_dir: Some(bin_dir.path().to_path_buf()),
            dir: Some(state.path().to_path_buf()),
            start_timeout: Duration::from_secs(20),
            ..ControlPlaneOptions::default()
        };
        let err = ControlPlane::start(options).await.unwrap_err();
        assert!(
            matches!(
                &err,
                HarnessError::ComponentExited {
                    component: "etcd",
                    ..
                }
            ),
            "{err}"
        );
        let text = err.to_string();
        assert!(text.contains("simulated start-up failure"), "{text}");
        assert!(text.contains("exit status: 2"), "{text}");
    }

    #[test]
    fn namespace_prefixes_become_dns_labels() {
        assert_eq!(
            dns_label_prefix("gc_of_owned_configmaps"),
            "gc-of-owned-configmaps"
        );
        assert_eq!(dns_label_prefix("__"), "test");
        assert_eq!(dns_label_prefix("9lives"), "t-9lives");
        assert!(dns_label_prefix(&"x".repeat(100)).len() <= 42);
    }
}
