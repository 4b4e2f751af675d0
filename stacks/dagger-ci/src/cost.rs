//! `cargo run -- cost`: the stack's monthly cost estimate, with the price table it used.
//!
//! Rules kept here: prices are us-east-1 on-demand list prices with their source and date
//! (the reference design, section 9); a type missing from the table is an error naming the
//! config key, never a guess; the runner pool is costed at its minimum, at a typical load
//! and at the NodePool's CPU limit, in nodes of one configured instance type.

use std::fmt::Write as _;

use serde::Deserialize;

pub const PRICES_DATE: &str = "2026-07-20";
pub const PRICES_SOURCE: &str =
    "karpenter-provider-aws pkg/providers/pricing/zz_generated.pricing_aws.go (us-east-1, on-demand)";

/// (instance type, vCPU, GiB, local NVMe GB, $/h).
pub const INSTANCE_PRICES: [(&str, u32, u32, u32, f64); 8] = [
    ("c6id.2xlarge", 8, 16, 474, 0.4032),
    ("c6id.4xlarge", 16, 32, 950, 0.8064),
    ("m6id.4xlarge", 16, 64, 950, 0.9492),
    ("c7gd.4xlarge", 16, 32, 950, 0.7258),
    ("i4i.2xlarge", 8, 64, 1875, 0.686),
    ("r6id.4xlarge", 16, 128, 950, 1.2096),
    ("m7g.large", 2, 8, 0, 0.0816),
    ("t4g.large", 2, 8, 0, 0.0672),
];
pub const EKS_STANDARD_PER_HOUR: f64 = 0.10;
pub const EKS_EXTENDED_PER_HOUR: f64 = 0.60;
/// NAT gateway per hour and per GB processed (unconfirmed in the reference).
pub const NAT_PER_HOUR: f64 = 0.045;
pub const NAT_PER_GB: f64 = 0.045;
/// A public IPv4 address per hour (unconfirmed in the reference).
pub const IPV4_PER_HOUR: f64 = 0.005;

/// `[cost]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CostConfig {
    /// The runner node type the pool is costed in.
    pub runner_instance_type: String,
    /// Runners busy at a typical moment (default: half of every group's maximum).
    pub typical_busy_runners: Option<u32>,
    /// vCPU one runner requests when its group names none.
    pub runner_vcpu: f64,
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

/// What the estimate needs from the stack.
#[derive(Debug, Clone)]
pub struct CostInput {
    pub cluster: String,
    pub support_type: String,
    pub critical_type: String,
    pub critical_nodes: u32,
    pub nat_gateways: u32,
    /// (group, min, max, vCPU per runner).
    pub runner_groups: Vec<(String, u32, u32, f64)>,
    pub pool_cpu_limit: u32,
    pub cfg: CostConfig,
}

fn price(t: &str) -> Option<(u32, f64)> {
    INSTANCE_PRICES.iter().find(|p| p.0 == t).map(|p| (p.1, p.4))
}

/// A Kubernetes CPU quantity (`2`, `500m`, `1.5`) in cores.
pub fn cpu_cores(q: &str) -> Option<f64> {
    match q.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().ok().map(|m| m / 1000.0),
        None => q.parse().ok(),
    }
}

/// The estimate as text.
pub fn report(i: &CostInput) -> Result<String, String> {
    let h = i.cfg.hours_per_month;
    let (_, critical_price) = price(&i.critical_type).ok_or_else(|| {
        format!(
            "critical_nodes.instance_types: `{}` is not in the price table (known: {})",
            i.critical_type,
            known()
        )
    })?;
    let (node_vcpu, runner_price) = price(&i.cfg.runner_instance_type).ok_or_else(|| {
        format!(
            "cost.runner_instance_type: `{}` is not in the price table (known: {})",
            i.cfg.runner_instance_type,
            known()
        )
    })?;
    let control = if i.support_type == "EXTENDED" {
        EKS_EXTENDED_PER_HOUR
    } else {
        EKS_STANDARD_PER_HOUR
    };
    let nodes_for = |runners: f64| (runners / node_vcpu as f64).ceil();
    let vcpu_of = |pick: &dyn Fn(u32, u32) -> f64| -> f64 {
        i.runner_groups
            .iter()
            .map(|(_, min, max, cpu)| pick(*min, *max) * cpu)
            .sum()
    };
    let min_vcpu = vcpu_of(&|min, _| min as f64);
    let typical_vcpu = match i.cfg.typical_busy_runners {
        Some(n) => {
            let avg = vcpu_of(&|_, max| max as f64) / i.runner_groups.iter().map(|g| g.2 as f64).sum::<f64>().max(1.0);
            n as f64 * avg
        }
        None => vcpu_of(&|min, max| (max as f64 / 2.0).max(min as f64)),
    };
    let limit_nodes = (i.pool_cpu_limit as f64 / node_vcpu as f64).floor();

    let mut rows: Vec<(String, f64)> = vec![
        (
            format!("EKS control plane ({})", i.support_type.to_lowercase()),
            control * h,
        ),
        (
            format!("critical nodes: {} x {}", i.critical_nodes, i.critical_type),
            i.critical_nodes as f64 * critical_price * h,
        ),
        (
            format!(
                "NAT gateways: {} (+{} GB processed)",
                i.nat_gateways, i.cfg.nat_gb_per_month
            ),
            i.nat_gateways as f64 * (NAT_PER_HOUR * h + NAT_PER_GB * i.cfg.nat_gb_per_month),
        ),
        (
            format!("public IPv4 addresses: {}", i.nat_gateways),
            i.nat_gateways as f64 * IPV4_PER_HOUR * h,
        ),
    ];
    let fixed: f64 = rows.iter().map(|r| r.1).sum();
    let mut out = String::new();
    let _ = writeln!(out, "Monthly cost estimate for `{}` ({h} hours a month)\n", i.cluster);
    let _ = writeln!(out, "Always on:");
    for (what, usd) in rows.drain(..) {
        let _ = writeln!(out, "  {what:<52} {usd:>10.2} USD");
    }
    let _ = writeln!(out, "  {:<52} {fixed:>10.2} USD\n", "subtotal");
    let _ = writeln!(
        out,
        "Runner pool ({} nodes, {node_vcpu} vCPU each, {:.4} USD/h):",
        i.cfg.runner_instance_type, runner_price
    );
    for (what, nodes) in [
        (format!("at minimum ({min_vcpu} vCPU of runners)"), nodes_for(min_vcpu)),
        (
            format!("typical load ({typical_vcpu} vCPU of runners)"),
            nodes_for(typical_vcpu),
        ),
        (
            format!("at the NodePool limit ({} vCPU)", i.pool_cpu_limit),
            limit_nodes,
        ),
    ] {
        let usd = nodes * runner_price * h;
        let _ = writeln!(
            out,
            "  {:<52} {usd:>10.2} USD  (total {:.2} USD)",
            format!("{what}: {nodes} nodes"),
            fixed + usd
        );
    }
    let _ = writeln!(out, "\nPrices used ({PRICES_SOURCE}, {PRICES_DATE}):");
    for (t, cpu, mem, nvme, usd) in INSTANCE_PRICES {
        let disk = if nvme > 0 {
            format!("{nvme} GB NVMe")
        } else {
            "-".to_string()
        };
        let _ = writeln!(out, "  {t:<14} {cpu:>3} vCPU {mem:>4} GiB  {disk:<13} {usd:.4} USD/h");
    }
    let _ = writeln!(
        out,
        "  EKS control plane {EKS_STANDARD_PER_HOUR:.2} USD/h standard, {EKS_EXTENDED_PER_HOUR:.2} extended; NAT {NAT_PER_HOUR} USD/h + {NAT_PER_GB} USD/GB and IPv4 {IPV4_PER_HOUR} USD/h (both unconfirmed)."
    );
    Ok(out)
}

fn known() -> String {
    INSTANCE_PRICES.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> CostInput {
        CostInput {
            cluster: "c".into(),
            support_type: "STANDARD".into(),
            critical_type: "m7g.large".into(),
            critical_nodes: 2,
            nat_gateways: 1,
            runner_groups: vec![("small".into(), 0, 10, 2.0), ("large".into(), 1, 4, 8.0)],
            pool_cpu_limit: 256,
            cfg: CostConfig::default(),
        }
    }

    #[test]
    fn the_reference_stack_costs_what_the_table_says() {
        let r = report(&input()).unwrap();
        // 0.10*730 + 2*0.0816*730 + (0.045*730 + 0.045*100) + 0.005*730 = 73 + 119.136 + 37.35 + 3.65
        assert!(r.contains("233.14 USD"), "{r}");
        // Minimum: 1 large runner = 8 vCPU -> 1 node of 16 vCPU: 0.8064*730 = 588.67.
        assert!(r.contains("at minimum (8 vCPU of runners): 1 nodes"), "{r}");
        assert!(r.contains("588.67 USD"), "{r}");
        // Limit: 256/16 = 16 nodes.
        assert!(r.contains("16 nodes"), "{r}");
        assert!(r.contains(PRICES_DATE));
    }

    #[test]
    fn unknown_types_name_the_key() {
        let mut i = input();
        i.cfg.runner_instance_type = "x9.huge".into();
        assert!(report(&i).unwrap_err().contains("cost.runner_instance_type"));
    }

    #[test]
    fn cpu_quantities() {
        assert_eq!(cpu_cores("2"), Some(2.0));
        assert_eq!(cpu_cores("500m"), Some(0.5));
        assert_eq!(cpu_cores("x"), None);
    }
}
