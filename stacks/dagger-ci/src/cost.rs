//! `cargo run -- cost`: the stack's monthly cost estimate, with the prices it used.
//!
//! Rules kept here:
//! - Instance prices are the us-east-1 on-demand list prices of the library's instance-type
//!   table (`spar::analysis::instance_types`, Karpenter's static price list, its source
//!   printed); a type with no price there is an error naming the config key, never a guess.
//! - Runner nodes are counted by packing the runner pods, as ARC makes them from the
//!   declared scale sets (CPU and memory requests), onto nodes of `cost.runner_instance_type`
//!   after the DaemonSets that land there (the Dagger engine's requests, the EKS node
//!   agents) and within the node's allocatable, with the library's scheduling module
//!   (`Placer::nodes_needed`), at the groups' minimum and at a typical load; and at the
//!   NodePool's CPU limit.
//! - NAT: every gateway is paid by the hour; the data processed (`cost.nat_gb_per_month`,
//!   the stack's total) is paid once per GB, whichever gateway carries it.
//! - Root volumes (gp3) are costed for every node: the critical node group's disk and the
//!   EC2NodeClass's root volume on runner nodes.

use std::fmt::Write as _;

use serde::Deserialize;
use spar::analysis::instance_types::{self, PRICE_SOURCE};
use spar::analysis::scheduling::{NodesNeeded, Placer, PodRequirements, PodTemplate, ShapeKind, WorkloadKind};
use spar::graph::DesiredResource;

use crate::checks::workloads::{Role, gather};

pub const EKS_STANDARD_PER_HOUR: f64 = 0.10;
pub const EKS_EXTENDED_PER_HOUR: f64 = 0.60;
/// NAT gateway per hour and per GB processed (us-east-1; unconfirmed offline).
pub const NAT_PER_HOUR: f64 = 0.045;
pub const NAT_PER_GB: f64 = 0.045;
/// A public IPv4 address per hour (unconfirmed offline).
pub const IPV4_PER_HOUR: f64 = 0.005;
/// gp3 storage per GB-month (us-east-1; unconfirmed offline). The baseline 3,000 IOPS and
/// 125 MiB/s are included; the stack asks for no more.
pub const GP3_PER_GB_MONTH: f64 = 0.08;
/// The disk of a managed node group's nodes when it has no launch template (EKS
/// CreateNodegroup `diskSize` default for Linux AMIs).
pub const NODEGROUP_DEFAULT_DISK_GIB: u32 = 20;

/// `[cost]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CostConfig {
    /// The runner node type the pool is costed in (one the NodePool admits).
    pub runner_instance_type: String,
    /// Runners busy at a typical moment, shared among the groups in proportion to their
    /// maxima (default: half of every group's maximum, at least its minimum).
    pub typical_busy_runners: Option<u32>,
    /// vCPU a runner is assumed to use when its pod requests none.
    pub runner_vcpu: f64,
    /// GB the NAT gateways process a month, all of them together.
    pub nat_gb_per_month: f64,
    pub hours_per_month: f64,
}

impl Default for CostConfig {
    fn default() -> Self {
        CostConfig {
            runner_instance_type: "c6id.4xlarge".into(),
            typical_busy_runners: None,
            runner_vcpu: 2.0,
            nat_gb_per_month: 100.0,
            hours_per_month: 730.0,
        }
    }
}

/// What the estimate needs from the stack, besides the declared resources.
#[derive(Debug, Clone)]
pub struct CostInput {
    pub cluster: String,
    pub support_type: String,
    pub critical_type: String,
    pub critical_nodes: u32,
    /// Each critical node's root volume (GiB).
    pub critical_root_gib: u32,
    pub nat_gateways: u32,
    /// Each runner node's root volume (GiB, the EC2NodeClass's).
    pub runner_root_gib: u32,
    pub pool_cpu_limit: u32,
    /// (runner group, min runners, max runners).
    pub runner_groups: Vec<(String, u32, u32)>,
    pub cfg: CostConfig,
}

/// A Kubernetes CPU quantity (`2`, `500m`, `1.5`) in cores.
pub fn cpu_cores(q: &str) -> Option<f64> {
    match q.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().ok().map(|m| m / 1000.0),
        None => q.parse().ok(),
    }
}

fn hourly(key: &str, name: &str) -> Result<(u32, f64), String> {
    let t = instance_types::instance_type(name)
        .ok_or_else(|| format!("{key}: `{name}` is not in spar's instance-type table"))?;
    let usd = t
        .on_demand_usd_hour()
        .ok_or_else(|| format!("{key}: `{name}` has no on-demand price in spar's instance-type table"))?;
    Ok((t.vcpu, usd))
}

/// The runner pods of each configured group with how many of them run at each load.
struct RunnerLoad {
    /// The NodePool the runners land on.
    pool: String,
    requirements: Vec<PodRequirements>,
    daemonsets: Vec<PodTemplate>,
    shapes: Vec<spar::analysis::scheduling::NodeShape>,
}

fn runner_load(i: &CostInput, resources: &[DesiredResource]) -> Result<RunnerLoad, String> {
    let g = gather(resources);
    let daemonsets: Vec<PodTemplate> = g
        .workloads
        .iter()
        .filter(|w| w.template.kind == WorkloadKind::DaemonSet)
        .map(|w| w.template.clone())
        .collect();
    let placer = Placer::new(&g.shapes, &daemonsets).map_err(|e| e.to_string())?;
    let mut pool = None;
    let mut requirements = Vec::new();
    for (name, _, _) in &i.runner_groups {
        let w = g
            .workloads
            .iter()
            .find(|w| matches!(&w.role, Role::Runner { group, .. } if group == name))
            .ok_or_else(|| format!("runner group `{name}`: the stack declares no runner pods for it"))?;
        let mut req = PodRequirements::from_template(&w.template).map_err(|e| e.to_string())?;
        if req.requests.milli_cpu == 0 {
            req.requests.milli_cpu = (i.cfg.runner_vcpu * 1000.0).round() as u64;
        }
        let placed = placer.place_requirements(name, &req);
        let on_pool = g
            .shapes
            .iter()
            .find(|s| s.kind == ShapeKind::NodePool && placed.fits_on(&s.name))
            .ok_or_else(|| format!("runner group `{name}` fits on no NodePool (`check` says why)"))?;
        pool.get_or_insert_with(|| on_pool.name.clone());
        requirements.push(req);
    }
    Ok(RunnerLoad {
        pool: pool.unwrap_or_default(),
        requirements,
        daemonsets,
        shapes: g.shapes,
    })
}

impl RunnerLoad {
    fn nodes(&self, instance_type: &str, runners: &[u64]) -> Result<u64, String> {
        if runners.iter().all(|&n| n == 0) {
            return Ok(0);
        }
        let placer = Placer::new(&self.shapes, &self.daemonsets).map_err(|e| e.to_string())?;
        let pods: Vec<(&PodRequirements, u64)> = self.requirements.iter().zip(runners.iter().copied()).collect();
        match placer.nodes_needed(&self.pool, instance_type, &pods) {
            NodesNeeded::Nodes(n) => Ok(n),
            NodesNeeded::NoSuchType => Err(format!(
                "cost.runner_instance_type: NodePool `{}` does not admit `{instance_type}`",
                self.pool
            )),
            NodesNeeded::DoesNotFit { group, reason } => Err(format!(
                "cost.runner_instance_type: a runner of group {} does not fit on `{instance_type}` after the DaemonSets: {}",
                group + 1,
                reason.detail()
            )),
        }
    }
}

/// Busy runners per group at a typical moment.
fn typical_runners(i: &CostInput) -> Vec<u64> {
    match i.cfg.typical_busy_runners {
        Some(n) => {
            let total_max: u64 = i.runner_groups.iter().map(|g| u64::from(g.2)).sum();
            let mut share: Vec<u64> = i
                .runner_groups
                .iter()
                .map(|g| u64::from(n) * u64::from(g.2) / total_max.max(1))
                .collect();
            // What rounding down left over goes to the groups in order, within their maxima.
            let mut left = u64::from(n).saturating_sub(share.iter().sum());
            for (s, g) in share.iter_mut().zip(&i.runner_groups) {
                let room = u64::from(g.2).saturating_sub(*s).min(left);
                *s += room;
                left -= room;
            }
            share
        }
        None => i
            .runner_groups
            .iter()
            .map(|g| u64::from(g.2.div_ceil(2).max(g.1)))
            .collect(),
    }
}

/// The estimate as text; `resources` are the declared resources (runner pods, DaemonSets
/// and node shapes are read from them).
pub fn report(i: &CostInput, resources: &[DesiredResource]) -> Result<String, String> {
    let h = i.cfg.hours_per_month;
    let months = h / 730.0;
    let (_, critical_price) = hourly("critical_nodes.instance_types", &i.critical_type)?;
    let runner_type = i.cfg.runner_instance_type.as_str();
    let (node_vcpu, runner_price) = hourly("cost.runner_instance_type", runner_type)?;
    let control = if i.support_type == "EXTENDED" {
        EKS_EXTENDED_PER_HOUR
    } else {
        EKS_STANDARD_PER_HOUR
    };
    let load = runner_load(i, resources)?;
    let minimum: Vec<u64> = i.runner_groups.iter().map(|g| u64::from(g.1)).collect();
    let typical = typical_runners(i);
    let limit_nodes = u64::from(i.pool_cpu_limit / node_vcpu.max(1));
    let disk = |gib: u32| f64::from(gib) * GP3_PER_GB_MONTH * months;

    let rows: Vec<(String, f64)> = vec![
        (
            format!("EKS control plane ({})", i.support_type.to_lowercase()),
            control * h,
        ),
        (
            format!(
                "critical nodes: {} x {} (+{} GiB gp3 each)",
                i.critical_nodes, i.critical_type, i.critical_root_gib
            ),
            f64::from(i.critical_nodes) * (critical_price * h + disk(i.critical_root_gib)),
        ),
        (
            format!(
                "NAT gateways: {} (+{} GB processed in all)",
                i.nat_gateways, i.cfg.nat_gb_per_month
            ),
            f64::from(i.nat_gateways) * NAT_PER_HOUR * h + NAT_PER_GB * i.cfg.nat_gb_per_month,
        ),
        (
            format!("public IPv4 addresses: {}", i.nat_gateways),
            f64::from(i.nat_gateways) * IPV4_PER_HOUR * h,
        ),
    ];
    let fixed: f64 = rows.iter().map(|r| r.1).sum();
    let mut out = String::new();
    let _ = writeln!(out, "Monthly cost estimate for `{}` ({h} hours a month)\n", i.cluster);
    let _ = writeln!(out, "Always on:");
    for (what, usd) in &rows {
        let _ = writeln!(out, "  {what:<60} {usd:>10.2} USD");
    }
    let _ = writeln!(out, "  {:<60} {fixed:>10.2} USD\n", "subtotal");
    let _ = writeln!(
        out,
        "Runner pool ({runner_type} nodes of NodePool {}, {node_vcpu} vCPU each, {runner_price:.4} USD/h + {} GiB gp3):",
        load.pool, i.runner_root_gib
    );
    let per_node = runner_price * h + disk(i.runner_root_gib);
    let describe = |runners: &[u64]| {
        i.runner_groups
            .iter()
            .zip(runners)
            .map(|(g, n)| format!("{n} {}", g.0))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (what, nodes) in [
        (
            format!("at minimum ({})", describe(&minimum)),
            load.nodes(runner_type, &minimum)?,
        ),
        (
            format!("typical load ({})", describe(&typical)),
            load.nodes(runner_type, &typical)?,
        ),
        (
            format!("at the NodePool limit ({} vCPU)", i.pool_cpu_limit),
            limit_nodes,
        ),
    ] {
        let usd = nodes as f64 * per_node;
        let _ = writeln!(
            out,
            "  {:<60} {usd:>10.2} USD  (total {:.2} USD)",
            format!("{what}: {nodes} nodes"),
            fixed + usd
        );
    }
    let _ = writeln!(
        out,
        "\nRunner nodes are counted by packing each group's runner pods (their CPU and memory requests) onto {runner_type} after the DaemonSets that land there ({}), within its allocatable.",
        daemonset_names(&load)
    );
    let _ = writeln!(out, "\nPrices used:");
    for t in [i.critical_type.as_str(), runner_type] {
        if let Some(it) = instance_types::instance_type(t) {
            let _ = writeln!(
                out,
                "  {:<14} {:>3} vCPU {:>6.1} GiB  {:.4} USD/h",
                it.name,
                it.vcpu,
                it.memory_mib as f64 / 1024.0,
                it.on_demand_usd_hour().unwrap_or_default()
            );
        }
    }
    let _ = writeln!(out, "  (instances: {PRICE_SOURCE})");
    let _ = writeln!(
        out,
        "  EKS control plane {EKS_STANDARD_PER_HOUR:.2} USD/h standard, {EKS_EXTENDED_PER_HOUR:.2} extended; NAT {NAT_PER_HOUR} USD/h + {NAT_PER_GB} USD/GB; IPv4 {IPV4_PER_HOUR} USD/h; gp3 {GP3_PER_GB_MONTH} USD/GB-month (the last three unconfirmed offline)."
    );
    Ok(out)
}

fn daemonset_names(load: &RunnerLoad) -> String {
    let Ok(placer) = Placer::new(&load.shapes, &load.daemonsets) else {
        return String::new();
    };
    let Some(req) = load.requirements.first() else {
        return String::new();
    };
    let p = placer.place_requirements("runner", req);
    p.shape(&load.pool).map(|s| s.daemonsets.join(", ")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_quantities() {
        assert_eq!(cpu_cores("2"), Some(2.0));
        assert_eq!(cpu_cores("500m"), Some(0.5));
        assert_eq!(cpu_cores("x"), None);
    }

    fn input() -> CostInput {
        CostInput {
            cluster: "c".into(),
            support_type: "STANDARD".into(),
            critical_type: "m7g.large".into(),
            critical_nodes: 2,
            critical_root_gib: 20,
            nat_gateways: 1,
            runner_root_gib: 50,
            pool_cpu_limit: 256,
            runner_groups: vec![("small".into(), 2, 40), ("large".into(), 1, 16)],
            cfg: CostConfig::default(),
        }
    }

    #[test]
    fn typical_load_is_shared_in_proportion_to_the_maxima() {
        let mut i = input();
        assert_eq!(typical_runners(&i), vec![20, 8]);
        i.cfg.typical_busy_runners = Some(20);
        // 20*40/56 = 14, 20*16/56 = 5, the one left over to the first group.
        assert_eq!(typical_runners(&i), vec![15, 5]);
    }

    #[test]
    fn types_without_a_price_name_the_key() {
        let mut i = input();
        i.cfg.runner_instance_type = "x9.huge".into();
        let e = report(&i, &[]).unwrap_err();
        assert!(e.starts_with("cost.runner_instance_type: `x9.huge`"), "{e}");
        let mut i = input();
        i.critical_type = "m7g.huge".into();
        let e = report(&i, &[]).unwrap_err();
        assert!(e.starts_with("critical_nodes.instance_types: `m7g.huge`"), "{e}");
    }
}
