//! The flagship stack: GitHub Actions runners with a co-located Dagger Engine on EKS, with
//! Karpenter scaling NVMe runner nodes (the design in `docs/../shared/reference`, summarised
//! in this crate's README section of the project README).
//!
//! Module map, in the order `define` declares them:
//! - [`config`]: the typed `config/<stack>.toml`.
//! - [`network`]: VPC, subnets, NAT, routes, node security group, S3 endpoint.
//! - [`cluster`]: cluster role, EKS cluster, add-ons, critical node group, Kubernetes provider.
//! - [`karpenter`]: node and controller roles, interruption queue and rules, chart, NodePool,
//!   EC2NodeClass.
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
pub mod values;

use spar::Stack;

use crate::arc::{Arc, ArcMode};
use crate::cert_manager::CertManager;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::engine::DaggerEngine;
use crate::karpenter::Karpenter;
use crate::network::Network;

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
    pub network: Network,
    pub cluster: Cluster,
    pub karpenter: Karpenter,
    pub cert_manager: Option<CertManager>,
    pub arc: Arc,
    pub engine: DaggerEngine,
}

impl Components {
    /// The checks' view of the components and of every resource declared (`resources`:
    /// `Stack::resources`).
    pub fn declared<'a>(&'a self, resources: &'a [spar::graph::DesiredResource]) -> checks::Declared<'a> {
        checks::Declared {
            network: &self.network,
            cluster: &self.cluster,
            karpenter: &self.karpenter,
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
    let Components {
        network,
        cluster,
        karpenter,
        arc,
        engine,
        ..
    } = c;

    let cost_input = cost::CostInput {
        cluster: cluster.name.clone(),
        support_type: cfg.cluster.support_type.clone(),
        critical_type: cfg.critical_nodes.instance_types[0].clone(),
        critical_nodes: cfg.critical_nodes.desired.max(0) as u32,
        critical_root_gib: cost::NODEGROUP_DEFAULT_DISK_GIB,
        nat_gateways: network.nat_gateways as u32,
        runner_root_gib: cfg.karpenter.node_class.root_volume_gib,
        pool_cpu_limit: cfg.karpenter.node_pool.limit_cpu,
        runner_groups: cfg
            .arc
            .runner_groups
            .iter()
            .map(|g| (g.name.clone(), g.min_runners, g.max_runners))
            .collect(),
        cfg: cfg.cost.clone(),
    };
    // The runner pods, DaemonSets and node shapes are read from what was declared, when
    // the command runs (rendering local charts is not paid by every plan).
    let declared = s.resources().to_vec();
    s.command("cost", "estimate the stack's monthly cost", move || {
        cost::report(&cost_input, &declared)
    });

    s.export("cluster_name", &cluster.name)?;
    s.export("cluster_endpoint", cluster.eks.endpoint())?;
    s.export("cluster_version", cluster.eks.version())?;
    s.export("vpc_id", network.vpc.vpc_id())?;
    s.export("karpenter_node_role", &karpenter.node_role_name)?;
    s.export("interruption_queue", &karpenter.queue_name)?;
    s.export("engine_image", format!("registry.dagger.io/engine:v{}", engine.version))?;
    s.export("runner_host", engine.socket.runner_host())?;
    s.export("runner_scale_sets", &arc.scale_set_names)?;
    Ok(())
}

/// Declares every component of the stack (without the checks, the cost command and the
/// outputs, which [`define`] adds).
pub fn declare_components(s: &mut Stack, cfg: &Config) -> spar::Result<Components> {
    let tags = cfg.cluster.tags.clone();
    let network = s.component("network", |s| {
        Network::declare(s, &cfg.cluster.name, &cfg.cluster.region, &cfg.network, &tags).map_err(|e| e.into_spar(s))
    })?;
    let cluster = s.component("cluster", |s| {
        Cluster::declare(s, &cfg.cluster, &cfg.critical_nodes, &network).map_err(|e| e.into_spar(s))
    })?;
    let karpenter = s.component("karpenter", |s| {
        Karpenter::declare(s, &cfg.karpenter, &cluster, &cfg.charts, &tags).map_err(|e| e.into_spar(s))
    })?;
    let wants_cert_manager = cfg.cert_manager.enabled.unwrap_or(cfg.arc.mode == ArcMode::Legacy);
    let cert_manager = if wants_cert_manager {
        Some(s.component("cert-manager", |s| {
            CertManager::declare(s, &cfg.cert_manager, &cluster, &cfg.charts).map_err(|e| e.into_spar(s))
        })?)
    } else {
        None
    };
    let raid0 = karpenter.node_class["spec"]["instanceStorePolicy"] == "RAID0";
    let engine = s.component("dagger", |s| {
        DaggerEngine::declare(s, &cfg.engine, &cluster, raid0).map_err(|e| e.into_spar(s))
    })?;
    let arc = s.component("arc", |s| {
        Arc::declare(
            s,
            &cfg.arc,
            &cluster,
            &engine,
            &cfg.charts,
            cert_manager.as_ref().map(|c| c.chart.address()),
        )
        .map_err(|e| e.into_spar(s))
    })?;
    Ok(Components {
        network,
        cluster,
        karpenter,
        cert_manager,
        arc,
        engine,
    })
}
