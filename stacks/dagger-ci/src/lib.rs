//! The flagship stack: GitHub Actions runners with a co-located Dagger Engine on EKS, with
//! Karpenter scaling NVMe runner nodes (the design in `docs/../shared/reference`, summarised
//! in this crate's README section of the project README).
//!
//! Two modes (`config::Mode`): on EKS spar creates the network, the cluster and Karpenter;
//! on any cluster from a kubeconfig it declares only the in-cluster parts, with runner
//! nodes the user labels and taints (`[runners]`), and makes no AWS call.
//!
//! Module map, in the order `define` declares them:
//! - [`config`]: the typed `config/<stack>.toml`.
//! - [`network`]: VPC, subnets, NAT, routes, node security group, S3 endpoint (EKS).
//! - [`cluster`]: cluster role, EKS cluster, add-ons, critical node group, Kubernetes provider
//!   (EKS); [`target`]: the cluster the in-cluster parts go to (EKS, or a kubeconfig).
//! - [`karpenter`]: node and controller roles, interruption queue and rules, chart, NodePool,
//!   EC2NodeClass (EKS).
//! - [`cert_manager`]: the cert-manager chart (legacy ARC, or on request).
//! - [`engine`]: the Dagger Engine DaemonSet.
//! - [`arc`]: Actions Runner Controller (scale sets, or legacy runner deployments).
//! - [`checks`]: the cross-resource invariants; [`cost`]: the `cost` command.
//! - [`secrets`], [`values`]: secret values from the environment; JSON with outputs.
//!
//! Every component is a plain type with a config struct (defaults = the reference design)
//! and a `declare` function, usable from other stacks.

pub mod arc;
pub mod cert_manager;
pub mod checks;
pub mod cluster;
pub mod config;
pub mod cost;
pub mod engine;
pub mod karpenter;
pub mod network;
pub mod secrets;
pub mod target;
pub mod values;

use spar::Stack;

use crate::arc::{Arc, ArcMode};
use crate::cert_manager::CertManager;
use crate::cluster::Cluster;
use crate::config::{Config, Mode, RunnersConfig};
use crate::engine::{DaggerEngine, EngineConfig};
use crate::karpenter::{Karpenter, Taint};
use crate::network::Network;
use crate::target::KubeTarget;

/// An error declaring the stack: a config value it cannot use, or an engine error.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("`{key}`: {message}")]
    Config { key: String, message: String },
    #[error(transparent)]
    Spar(#[from] spar::Error),
}

impl StackError {
    fn into_spar(self, s: &Stack) -> spar::Error {
        match self {
            StackError::Config { key, message } => s.config_error(&key, message),
            StackError::Spar(e) => e,
        }
    }
}

/// What every component declared: the facts the checks read.
pub struct Components {
    /// The AWS side (VPC, EKS cluster, node group, Karpenter); `None` on a cluster from a
    /// kubeconfig.
    pub eks: Option<EksParts>,
    /// The cluster the in-cluster parts are installed on.
    pub target: KubeTarget,
    /// On a cluster from a kubeconfig: the runner nodes as `[runners]` describes them.
    pub runner_nodes: Option<RunnersConfig>,
    pub cert_manager: Option<CertManager>,
    pub arc: Arc,
    pub engine: DaggerEngine,
}

/// What the stack declares on AWS: everything when it creates the cluster; Karpenter (and
/// lookups of the cluster) on a cluster that exists already.
pub struct EksParts {
    /// The VPC the stack creates; `None` on an existing cluster (its VPC is not the stack's).
    pub network: Option<Network>,
    pub cluster: Cluster,
    pub karpenter: Karpenter,
}

impl Components {
    /// The checks' view of the components and of every resource declared (`resources`:
    /// `Stack::resources`).
    pub fn declared<'a>(&'a self, resources: &'a [spar::graph::DesiredResource]) -> checks::Declared<'a> {
        checks::Declared {
            eks: self.eks.as_ref().map(|e| checks::EksDeclared {
                network: e.network.as_ref(),
                cluster: &e.cluster,
                karpenter: &e.karpenter,
            }),
            runner_nodes: self.runner_nodes.as_ref(),
            cert_manager: self.cert_manager.as_ref(),
            arc: &self.arc,
            engine: &self.engine,
            resources,
        }
    }
}

/// Declares the whole stack from its configuration.
pub fn define(s: &mut Stack) -> spar::Result<()> {
    let cfg: Config = s.config()?;
    let c = declare_components(s, &cfg)?;
    checks::declare(s, &c);
    let Components { eks, arc, engine, .. } = c;

    match &eks {
        Some(EksParts {
            network: Some(network),
            cluster,
            karpenter,
        }) => {
            let critical = cfg.critical_nodes.clone().unwrap_or_default();
            let karpenter_cfg = cfg.karpenter.clone().unwrap_or_default();
            let cost_input = cost::CostInput {
                cluster: cluster.name.clone(),
                support_type: cfg.cluster.support_type.clone(),
                critical_type: critical.instance_types[0].clone(),
                critical_nodes: critical.desired.max(0) as u32,
                critical_root_gib: cost::NODEGROUP_DEFAULT_DISK_GIB,
                nat_gateways: network.nat_gateways as u32,
                runner_root_gib: karpenter_cfg.node_class.root_volume_gib,
                pool_cpu_limit: karpenter_cfg.node_pool.limit_cpu,
                runner_groups: cfg
                    .arc
                    .runner_groups
                    .iter()
                    .map(|g| (g.name.clone(), g.min_runners, g.max_runners))
                    .collect(),
                cfg: cfg.cost.clone(),
            };
            // The runner pods, DaemonSets and node shapes are read from what was declared,
            // when the command runs (rendering local charts is not paid by every plan).
            let declared = s.resources().to_vec();
            s.command("cost", "estimate the stack's monthly cost", move || {
                cost::report(&cost_input, &declared)
            });
            s.export("vpc_id", network.vpc.vpc_id())?;
            export_eks(s, cluster, karpenter)?;
        }
        Some(EksParts {
            network: None,
            cluster,
            karpenter,
        }) => {
            s.command("cost", "estimate the stack's monthly cost", || {
                Err("cost estimates a cluster the stack creates; an existing cluster (cluster.existing) and its network are not the stack's to price".to_string())
            });
            s.export("vpc_id", cluster.eks.vpc_id())?;
            export_eks(s, cluster, karpenter)?;
        }
        None => s.command("cost", "estimate the stack's monthly cost", || {
            Err("cost estimates what the stack runs on AWS; on a cluster from a kubeconfig (cluster.kubeconfig) its nodes are not the stack's, so there is nothing to price".to_string())
        }),
    }
    s.export("engine_image", format!("registry.dagger.io/engine:v{}", engine.version))?;
    s.export("runner_host", engine.socket.runner_host())?;
    s.export("runner_scale_sets", &arc.scale_set_names)?;
    Ok(())
}

fn export_eks(s: &mut Stack, cluster: &Cluster, karpenter: &Karpenter) -> spar::Result<()> {
    s.export("cluster_name", &cluster.name)?;
    s.export("cluster_endpoint", cluster.eks.endpoint())?;
    s.export("cluster_version", cluster.eks.version())?;
    s.export("karpenter_node_role", &karpenter.node_role_name)?;
    s.export("interruption_queue", &karpenter.queue_name)?;
    Ok(())
}

fn config_error(key: &str, message: impl Into<String>) -> StackError {
    StackError::Config {
        key: key.into(),
        message: message.into(),
    }
}

/// For an existing cluster: the config with `cluster.name` set to the existing cluster's,
/// refusing what would configure a cluster or network the stack does not own.
fn existing_config(cfg: &Config) -> Result<Config, StackError> {
    let existing = cfg.cluster.existing.clone().unwrap_or_default();
    if existing.is_empty() {
        return Err(config_error("cluster.existing", "give the existing cluster's name"));
    }
    if !cfg.cluster.name.is_empty() && cfg.cluster.name != existing {
        return Err(config_error(
            "cluster.name",
            format!(
                "`{}` is not the existing cluster `{existing}`; leave it out (it is the existing cluster's)",
                cfg.cluster.name
            ),
        ));
    }
    if cfg.network.is_some() {
        return Err(config_error(
            "network",
            "configures a VPC the stack creates; an existing cluster (cluster.existing) keeps its own: remove the section",
        ));
    }
    if let Some(key) = cfg.cluster.eks_keys_set().into_iter().find(|k| *k != "cluster.tags") {
        return Err(config_error(
            key,
            "configures the EKS cluster itself, which an existing cluster (cluster.existing) keeps as it is: remove it",
        ));
    }
    let mut cfg = cfg.clone();
    cfg.cluster.name = existing;
    Ok(cfg)
}

/// On a cluster from a kubeconfig: refuses what configures AWS, and places the runners and
/// the engine by `[runners]`, returning the ARC and engine configs to declare.
fn kubeconfig_placement(
    cfg: &Config,
) -> Result<(RunnersConfig, crate::arc::ArcConfig, crate::engine::EngineConfig), StackError> {
    if let Some(key) = cfg.aws_sections().first() {
        return Err(config_error(
            key,
            "configures AWS objects, which a cluster from a kubeconfig (cluster.kubeconfig) does not have; remove the section",
        ));
    }
    if let Some(key) = cfg.cluster.eks_keys_set().first() {
        return Err(config_error(
            key,
            "configures the EKS cluster and its AWS objects; a cluster from a kubeconfig (cluster.kubeconfig) has none: remove it",
        ));
    }
    let runners = cfg.runners.clone().ok_or_else(|| {
        config_error(
            "runners",
            "a cluster from a kubeconfig needs [runners] node_selector = { ... } (the labels of the nodes runners run on) and, usually, taint = { key, value, effect }",
        )
    })?;
    if runners.node_selector.is_empty() {
        return Err(config_error(
            "runners.node_selector",
            "list at least one label of the runner nodes: the engine DaemonSet runs where it matches, and runners next to it",
        ));
    }
    if let Some(t) = &runners.taint
        && !["NoSchedule", "NoExecute", "PreferNoSchedule"].contains(&t.effect.as_str())
    {
        return Err(config_error(
            "runners.taint.effect",
            format!("`{}` is not NoSchedule, NoExecute or PreferNoSchedule", t.effect),
        ));
    }
    // `[runners]` is the one place runner placement is set; the per-component settings
    // keep their defaults (a changed one would silently disagree with it).
    let (arc_default, engine_default) = (
        crate::arc::ArcConfig::runner_placement_default(),
        EngineConfig::default(),
    );
    if (cfg.arc.runner_tolerations.clone(), cfg.arc.runner_node_selector.clone()) != arc_default {
        return Err(config_error(
            "arc.runner_tolerations",
            "on a cluster from a kubeconfig, runner placement is set once, in [runners]; remove arc.runner_tolerations and arc.runner_node_selector",
        ));
    }
    if cfg.engine.tolerations != engine_default.tolerations
        || cfg.engine.node_label != engine_default.node_label
        || !cfg.engine.node_selector.is_empty()
    {
        return Err(config_error(
            "engine.tolerations",
            "on a cluster from a kubeconfig, the engine's placement comes from [runners]; remove engine.tolerations, engine.node_label and engine.node_selector",
        ));
    }
    let taints: Vec<Taint> = runners.taint.iter().cloned().collect();
    let mut arc = cfg.arc.clone();
    arc.runner_tolerations = taints.clone();
    arc.runner_node_selector = runners.node_selector.clone();
    let mut engine = cfg.engine.clone();
    engine.tolerations = taints;
    engine.node_selector = runners.node_selector.clone();
    Ok((runners, arc, engine))
}

/// Declares every component of the stack (without the checks, the cost command and the
/// outputs, which [`define`] adds).
pub fn declare_components(s: &mut Stack, cfg: &Config) -> spar::Result<Components> {
    let tags = cfg.cluster.tags.clone();
    if cfg.mode() == Mode::Eks && cfg.cluster.name.is_empty() {
        return Err(config_error("cluster.name", "give the EKS cluster's name").into_spar(s));
    }
    let (eks, target, runner_nodes, arc_cfg, engine_cfg, raid0) = match (cfg.mode(), &cfg.cluster.kubeconfig) {
        (Mode::Kubeconfig, Some(kubeconfig)) => {
            let (runners, arc, engine) = kubeconfig_placement(cfg).map_err(|e| e.into_spar(s))?;
            let target = s.component("cluster", |s| KubeTarget::from_kubeconfig(s, kubeconfig))?;
            (None, target, Some(runners), arc, engine, false)
        }
        (Mode::ExistingEks, _) => {
            let existing = existing_config(cfg).map_err(|e| e.into_spar(s))?;
            let cfg = &existing;
            let critical = cfg.critical_nodes.clone().unwrap_or_default();
            let karpenter_cfg = cfg.karpenter.clone().unwrap_or_default();
            let pod_identity = karpenter_cfg.identity == crate::karpenter::Identity::PodIdentity;
            let cluster = s.component("cluster", |s| {
                Cluster::existing(s, &cfg.cluster, &critical, pod_identity).map_err(|e| e.into_spar(s))
            })?;
            let karpenter = s.component("karpenter", |s| {
                Karpenter::declare(s, &karpenter_cfg, &cluster, &cfg.charts, &tags).map_err(|e| e.into_spar(s))
            })?;
            let raid0 = karpenter.node_class["spec"]["instanceStorePolicy"] == "RAID0";
            let target = cluster.target();
            (
                Some(EksParts {
                    network: None,
                    cluster,
                    karpenter,
                }),
                target,
                None,
                cfg.arc.clone(),
                cfg.engine.clone(),
                raid0,
            )
        }
        _ => {
            if let Some(group) = cfg.critical_nodes.as_ref().and_then(|c| c.node_group.as_ref()) {
                return Err(config_error(
                    "critical_nodes.node_group",
                    format!("`{group}` names a node group of an existing cluster (cluster.existing); this stack creates its own"),
                )
                .into_spar(s));
            }
            if cfg.runners.is_some() {
                return Err(config_error(
                    "runners",
                    "on EKS the runner nodes are Karpenter's NodePool (karpenter.node_pool labels and taints); [runners] is for a cluster from a kubeconfig (cluster.kubeconfig)",
                )
                .into_spar(s));
            }
            let network_cfg = cfg.network.clone().unwrap_or_default();
            let critical = cfg.critical_nodes.clone().unwrap_or_default();
            let karpenter_cfg = cfg.karpenter.clone().unwrap_or_default();
            let network = s.component("network", |s| {
                Network::declare(s, &cfg.cluster.name, &cfg.cluster.region, &network_cfg, &tags)
                    .map_err(|e| e.into_spar(s))
            })?;
            let cluster = s.component("cluster", |s| {
                Cluster::declare(s, &cfg.cluster, &critical, &network).map_err(|e| e.into_spar(s))
            })?;
            let karpenter = s.component("karpenter", |s| {
                Karpenter::declare(s, &karpenter_cfg, &cluster, &cfg.charts, &tags).map_err(|e| e.into_spar(s))
            })?;
            let raid0 = karpenter.node_class["spec"]["instanceStorePolicy"] == "RAID0";
            let target = cluster.target();
            (
                Some(EksParts {
                    network: Some(network),
                    cluster,
                    karpenter,
                }),
                target,
                None,
                cfg.arc.clone(),
                cfg.engine.clone(),
                raid0,
            )
        }
    };
    let wants_cert_manager = cfg.cert_manager.enabled.unwrap_or(cfg.arc.mode == ArcMode::Legacy);
    let cert_manager = if wants_cert_manager {
        Some(s.component("cert-manager", |s| {
            CertManager::declare(s, &cfg.cert_manager, &target, &cfg.charts).map_err(|e| e.into_spar(s))
        })?)
    } else {
        None
    };
    let engine = s.component("dagger", |s| {
        DaggerEngine::declare(s, &engine_cfg, &target, raid0).map_err(|e| e.into_spar(s))
    })?;
    let arc = s.component("arc", |s| {
        Arc::declare(
            s,
            &arc_cfg,
            &target,
            &engine,
            &cfg.charts,
            cert_manager.as_ref().map(|c| c.chart.address()),
        )
        .map_err(|e| e.into_spar(s))
    })?;
    Ok(Components {
        eks,
        target,
        runner_nodes,
        cert_manager,
        arc,
        engine,
    })
}
