//! The stack's configuration: `config/<stack>.toml` read into typed structs.
//!
//! Rules kept here: every section has defaults that reproduce the reference design
//! (`dagger-on-eks.md`), so a config file states only what differs; unknown keys are errors
//! (a misspelt key must not be silently ignored); values that the type system cannot check
//! (CIDRs, versions, sizes) are validated by the component that uses them, with the key
//! named in the error.

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub cluster: ClusterConfig,
    /// The AWS parts: absent sections take the reference design's defaults on EKS, and
    /// must be absent on a cluster from a kubeconfig (see [`Config::aws_sections`]).
    pub network: Option<crate::network::NetworkConfig>,
    pub critical_nodes: Option<crate::cluster::CriticalNodesConfig>,
    pub karpenter: Option<crate::karpenter::KarpenterConfig>,
    /// On a cluster from a kubeconfig: the nodes runners run on.
    pub runners: Option<RunnersConfig>,
    #[serde(default)]
    pub cert_manager: crate::cert_manager::CertManagerConfig,
    pub arc: crate::arc::ArcConfig,
    #[serde(default)]
    pub engine: crate::engine::EngineConfig,
    #[serde(default)]
    pub charts: ChartsConfig,
    #[serde(default)]
    pub cost: crate::cost::CostConfig,
}

/// `[cluster]`: the EKS cluster every other part names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The EKS cluster name: used in every name, discovery tag and policy condition
    /// (with `existing`, it may be left out: it is the existing cluster's).
    #[serde(default)]
    pub name: String,
    /// An EKS cluster that already exists (made with eksctl, Terraform or the console), by
    /// name: looked up with its VPC, cluster security group and OIDC issuer, never changed
    /// or deleted; the stack declares only what goes on top (Karpenter, cert-manager when
    /// needed, ARC, the engine). `[critical_nodes] node_group` names its node group for
    /// the controllers.
    #[serde(default)]
    pub existing: Option<String>,
    /// The AWS region (for service names and EKS tokens).
    #[serde(default = "default_region")]
    pub region: String,
    /// The Kubernetes version.
    #[serde(default = "default_version")]
    pub version: String,
    /// `API` or `API_AND_CONFIG_MAP` (access entries need one of them).
    #[serde(default = "default_auth_mode")]
    pub authentication_mode: String,
    /// `STANDARD` or `EXTENDED` support.
    #[serde(default = "default_support")]
    pub support_type: String,
    /// Whether the public endpoint is on, and who may reach it.
    #[serde(default = "yes")]
    pub public_endpoint: bool,
    #[serde(default)]
    pub public_access_cidrs: Vec<String>,
    /// Tags on every AWS object of the stack (besides `spar:address` and `spar:stack`).
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    /// A KMS key (`arn:aws:kms:<region>:<account>:key/<id>`, or an `...:alias/<name>`
    /// ARN) in the cluster's region for envelope encryption of Kubernetes secrets; unset,
    /// secrets are not envelope-encrypted. Setting it on a running cluster is an in-place
    /// update; changing or removing it replaces the cluster (EKS can do neither).
    #[serde(default)]
    pub secrets_encryption_key_arn: Option<String>,
    /// Any Kubernetes cluster (GKE, AKS, on-premises, kind) instead of an EKS cluster: only
    /// the in-cluster parts are declared, and no AWS call is made.
    #[serde(default)]
    pub kubeconfig: Option<crate::target::KubeconfigConfig>,
}

impl ClusterConfig {
    /// The keys set here that configure an EKS cluster and its AWS objects (refused where
    /// the stack does not create the cluster).
    pub fn eks_keys_set(&self) -> Vec<&'static str> {
        [
            (
                "cluster.secrets_encryption_key_arn",
                self.secrets_encryption_key_arn.is_some(),
            ),
            ("cluster.public_access_cidrs", !self.public_access_cidrs.is_empty()),
            ("cluster.tags", !self.tags.is_empty()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect()
    }
}

/// `[runners]`, on a cluster from a kubeconfig: the nodes the runners and the engine run on,
/// chosen by the user's own labels and taint (on EKS, Karpenter's NodePool makes them).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RunnersConfig {
    /// Labels every runner node carries: the runner pods select them and the engine
    /// DaemonSet requires them (so it runs on every runner node and nowhere else).
    pub node_selector: std::collections::BTreeMap<String, String>,
    /// The taint that keeps other pods off the runner nodes; runners and the engine
    /// tolerate it.
    #[serde(default)]
    pub taint: Option<crate::karpenter::Taint>,
}

/// Where the stack runs, as the config says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// spar creates the VPC, the EKS cluster, its node group and Karpenter.
    Eks,
    /// An EKS cluster that exists already: Karpenter and what goes on top.
    ExistingEks,
    /// A cluster from a kubeconfig: only the in-cluster parts.
    Kubeconfig,
}

impl Config {
    pub fn mode(&self) -> Mode {
        if self.cluster.kubeconfig.is_some() {
            Mode::Kubeconfig
        } else if self.cluster.existing.is_some() {
            Mode::ExistingEks
        } else {
            Mode::Eks
        }
    }

    /// The sections that configure AWS objects, by key, when present.
    pub fn aws_sections(&self) -> Vec<&'static str> {
        let mut present = Vec::new();
        if self.network.is_some() {
            present.push("network");
        }
        if self.critical_nodes.is_some() {
            present.push("critical_nodes");
        }
        if self.karpenter.is_some() {
            present.push("karpenter");
        }
        present
    }
}

/// `[charts]`: where Helm charts come from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartsConfig {
    /// A directory holding charts by name (`<dir>/karpenter`, ...) used instead of the
    /// upstream OCI references; the sandbox points this at its own stand-in charts.
    #[serde(default)]
    pub local_dir: Option<String>,
    /// The `helm template`-compatible command (default: `SPAR_HELM`, else `helm`).
    #[serde(default)]
    pub helm: Option<String>,
    /// How long installing or upgrading a chart waits for its objects to be ready (its
    /// Deployments rolled out, a runner scale set's minimum runners running) before the
    /// apply fails; default: spar's, 10 minutes.
    #[serde(default)]
    pub wait_timeout_seconds: Option<u64>,
}

impl ChartsConfig {
    /// The chart reference for `name`: the local stand-in when configured, else `upstream`.
    pub fn reference(&self, name: &str, upstream: &str) -> String {
        match &self.local_dir {
            Some(dir) => format!("{}/{name}", dir.trim_end_matches('/')),
            None => upstream.to_string(),
        }
    }

    /// `opts` with this config's wait timeout on create and update.
    pub fn wait(&self, opts: spar::ResourceOptions) -> spar::ResourceOptions {
        match self.wait_timeout_seconds {
            Some(s) => opts
                .create_timeout(std::time::Duration::from_secs(s))
                .update_timeout(std::time::Duration::from_secs(s)),
            None => opts,
        }
    }

    /// The chart version to pass (none for local charts, whose version is their own).
    pub fn version(&self, v: &str) -> Option<String> {
        self.local_dir.is_none().then(|| v.to_string())
    }
}

/// Where a secret value comes from. Never the value itself in a config file.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum SecretSource {
    /// An environment variable.
    Env(String),
    /// A file (relative to the working directory).
    File(String),
    /// A random value generated once and kept (encrypted) in state: for sandboxes only.
    Random(u32),
}

fn default_region() -> String {
    "us-east-1".into()
}
fn default_version() -> String {
    "1.35".into()
}
fn default_auth_mode() -> String {
    "API".into()
}
fn default_support() -> String {
    "STANDARD".into()
}
pub(crate) fn yes() -> bool {
    true
}
