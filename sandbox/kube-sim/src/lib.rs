//! spar-kube-sim: an in-memory Kubernetes API server for spar's local sandbox.
//!
//! This module owns the public API: [`SimConfig`] (what to start), [`Simulator::start`]
//! (bind, load schemas, spawn the HTTP server and the simulated controllers) and
//! [`SimHandle`] (the bound address, a kubeconfig for clients, shutdown).
//!
//! It speaks the real Kubernetes REST API over plain HTTP on 127.0.0.1 for what spar (through
//! the `kube` crate) and `kubectl` use: discovery, OpenAPI v3 paths, CRUD, watch, server-side
//! apply with managed fields, merge/JSON/strategic patches, the `scale` subresource, JSON and
//! (for built-in kinds) Kubernetes protobuf bodies and answers, dry-run, finalizers, namespace and
//! CRD lifecycles, strict validation against the official Kubernetes JSON schemas
//! (`kubernetes-validate`) and CRD schemas including their CEL rules
//! (`x-kubernetes-validations`); and a cluster that runs: Nodes (static, or joined
//! from the AWS emulator's managed node groups), controllers that make Pods, a scheduler
//! that binds them with kube-scheduler's filters, kubelets that start them, and a
//! Karpenter that adds nodes (the `cluster` module).
//!
//! ```no_run
//! # async fn demo() -> Result<(), spar_kube_sim::SimError> {
//! let sim = spar_kube_sim::Simulator::start(spar_kube_sim::SimConfig::default()).await?;
//! println!("API server at {}", sim.url());
//! // a kube client: kube::Client::try_from(kube::Config::new(sim.url().parse()?))
//! // kubectl: write sim.kubeconfig() to a file and set KUBECONFIG
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! See `README.md` beside this crate for what is faithful and what is simplified.

pub mod apply;
pub mod cel_library;
pub mod cel_rules;
pub mod cel_value;
pub mod cloud;
pub mod cluster;
pub mod controller;
pub mod crd;
pub mod defaults;
pub mod discovery;
pub mod error;
pub mod fieldset;
pub mod http;
pub mod kinds;
pub mod managed;
pub mod openapi;
pub mod ops;
pub mod patch;
pub mod protobuf;
pub mod scale;
pub mod schema;
pub mod selectors;
pub mod store;
pub mod table;
pub mod validation;

pub use error::{ApiError, SimError};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// Default Kubernetes version the simulator claims and validates against.
pub const DEFAULT_K8S_VERSION: &str = "1.35";

/// What to start.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Directory with `_definitions.json` (a `kubernetes-validate` `vX.Y.0-local-strict` dir).
    /// None: look in `<repo>/.venv/lib/python3*/site-packages/kubernetes_validate/...`.
    pub schema_dir: Option<PathBuf>,
    /// Delay between a workload spec change and its status reporting ready.
    pub ready_delay: Duration,
    /// Kubernetes version served by `/version` and used to pick the schemas.
    pub k8s_version: String,
    /// Static nodes that exist from the start (`sim-node-1`..), untainted, of
    /// `node_instance_type`; the sandbox uses 0 and gets its nodes from the AWS emulator.
    pub nodes: u32,
    /// The instance type of the static nodes (a name in the `spar-scheduling` table).
    pub node_instance_type: String,
    /// The sandbox AWS emulator to take managed node groups and add-ons from.
    pub aws_endpoint: Option<String>,
    /// Only this EKS cluster's node groups and add-ons (None: every cluster's).
    pub eks_cluster: Option<String>,
}

/// The static nodes' default instance type: 8 vCPUs, 32 GiB.
pub const DEFAULT_NODE_INSTANCE_TYPE: &str = "m6i.2xlarge";

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            port: 0,
            schema_dir: None,
            ready_delay: Duration::from_millis(0),
            k8s_version: DEFAULT_K8S_VERSION.into(),
            nodes: 1,
            node_instance_type: DEFAULT_NODE_INSTANCE_TYPE.into(),
            aws_endpoint: None,
            eks_cluster: None,
        }
    }
}

/// The repository root, found by walking up from this crate (or the working directory) to the
/// directory holding `.venv`.
fn repo_candidates() -> Vec<PathBuf> {
    let mut out = vec![];
    let mut push_ancestors = |start: &Path| {
        for a in start.ancestors() {
            if a.join(".venv").is_dir() {
                out.push(a.to_path_buf());
            }
        }
    };
    push_ancestors(Path::new(env!("CARGO_MANIFEST_DIR")));
    if let Ok(cwd) = std::env::current_dir() {
        push_ancestors(&cwd);
    }
    if let Ok(exe) = std::env::current_exe() {
        push_ancestors(&exe);
    }
    out
}

/// Where the schemas for `k8s_version` are, per the rules of [`SimConfig::schema_dir`].
/// `SPAR_KUBE_SIM_SCHEMAS` overrides the search.
pub fn locate_schemas(k8s_version: &str) -> Result<PathBuf, SimError> {
    if let Ok(dir) = std::env::var("SPAR_KUBE_SIM_SCHEMAS")
        && !dir.is_empty()
    {
        return Ok(PathBuf::from(dir));
    }
    for repo in repo_candidates() {
        if let Some(d) = schema::find_schema_dir(&repo, k8s_version) {
            return Ok(d);
        }
    }
    Err(SimError::SchemasNotFound(format!(
        "no kubernetes_validate/kubernetes-json-schema/v{}.0-local-strict under any <repo>/.venv/lib/python3*/site-packages; install `kubernetes-validate==1.37.0` into the repo's .venv (sandbox/requirements.txt) or pass --schemas DIR / SPAR_KUBE_SIM_SCHEMAS",
        k8s_version.trim_start_matches('v')
    )))
}

/// The simulator.
pub struct Simulator;

impl Simulator {
    /// Bind, load schemas and start serving. Must be called inside a tokio runtime.
    pub async fn start(cfg: SimConfig) -> Result<SimHandle, SimError> {
        let dir = match &cfg.schema_dir {
            Some(d) => d.clone(),
            None => locate_schemas(&cfg.k8s_version)?,
        };
        let schemas = Arc::new(schema::Schemas::load(&dir)?);
        let proto = Arc::new(protobuf::Table::new(Some(&schemas)));
        let addr_text = format!("127.0.0.1:{}", cfg.port);
        let listener = tokio::net::TcpListener::bind(&addr_text)
            .await
            .map_err(|source| SimError::Bind {
                addr: addr_text.clone(),
                source,
            })?;
        let addr = listener.local_addr()?;
        let settings = ops::Settings {
            ready_delay: cfg.ready_delay,
            nodes: cfg.nodes,
            node_instance_type: cfg.node_instance_type.clone(),
            k8s_version: cfg.k8s_version.clone(),
        };
        let state = Arc::new(Mutex::new(ops::State::new(settings, schemas)));
        let notify = Arc::new(Notify::new());
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(http::Shared {
            state: state.clone(),
            notify: notify.clone(),
            server_addr: addr.to_string(),
            k8s_version: cfg.k8s_version.trim_start_matches('v').to_string(),
            shutdown: shutdown_rx.clone(),
            proto,
        });
        let cloud = cfg.aws_endpoint.clone().map(|endpoint| {
            tokio::spawn(cloud::run(
                endpoint,
                cfg.eks_cluster.clone(),
                state.clone(),
                notify.clone(),
                shutdown_rx.clone(),
            ))
        });
        let controllers = tokio::spawn(controller::run(state.clone(), notify, shutdown_rx.clone()));
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let shared = shared.clone();
            async move { http::handle(shared, req).await }
        });
        let mut stop = shutdown_rx;
        // Every accepted connection writes as soon as it has something, as the real API
        // server's do (Go's net package sets TCP_NODELAY on every TCP connection by default):
        // with Nagle's algorithm on, a watch event written after a small earlier write
        // waited for the client's delayed acknowledgement, about 40 ms.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
            let _ = tcp.set_nodelay(true);
        });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|v| *v).await;
                })
                .await;
        });
        Ok(SimHandle {
            addr,
            schema_dir: dir,
            shutdown: shutdown_tx,
            server,
            controllers,
            cloud,
        })
    }
}

/// A running simulator.
pub struct SimHandle {
    addr: SocketAddr,
    schema_dir: PathBuf,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    controllers: tokio::task::JoinHandle<()>,
    cloud: Option<tokio::task::JoinHandle<()>>,
}

impl SimHandle {
    /// The bound address (always 127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The schema directory in use.
    pub fn schema_dir(&self) -> &Path {
        &self.schema_dir
    }

    /// A kubeconfig (YAML) whose current context points at the simulator (no auth).
    pub fn kubeconfig(&self) -> String {
        kubeconfig_for(&self.url())
    }

    /// Stop serving and wait for the tasks to end.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        let _ = self.controllers.await;
        if let Some(c) = self.cloud {
            let _ = c.await;
        }
    }
}

/// A kubeconfig for a simulator at `url`: cluster/context/user `spar-kube-sim`, namespace default.
pub fn kubeconfig_for(url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: spar-kube-sim\n  cluster:\n    server: {url}\ncontexts:\n- name: spar-kube-sim\n  context:\n    cluster: spar-kube-sim\n    user: spar-kube-sim\n    namespace: default\ncurrent-context: spar-kube-sim\nusers:\n- name: spar-kube-sim\n  user: {{}}\npreferences: {{}}\n"
    )
}
