//! The `Network` component: a VPC over several AZs with private subnets for nodes and pods,
//! public subnets for the NAT gateway, an internet gateway, NAT (one, or one per AZ), route
//! tables, the node security group and an S3 gateway endpoint.
//!
//! Rules kept here: subnet CIDRs are carved from the VPC CIDR deterministically (private
//! blocks first, public blocks after them), so adding an AZ never renumbers existing
//! subnets; private subnets carry `kubernetes.io/role/internal-elb` and the Karpenter
//! discovery tag, public ones `kubernetes.io/role/elb`; exactly one security group carries
//! the discovery tag; every private subnet routes `0.0.0.0/0` through a NAT gateway.

use std::collections::BTreeMap;

use ipnet::Ipv4Net;
use serde::Deserialize;
use spar::aws::ec2::{
    Eip, InternetGateway, NatGateway, Route, RouteTable, RouteTableAssociation, SecurityGroup, SecurityGroupRule,
    Subnet, Vpc, VpcEndpoint,
};
use spar::prelude::*;

use crate::StackError;
use crate::values::{Recorded, add_recorded};

/// `[network]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// The VPC CIDR.
    pub cidr: String,
    /// Availability zones (EKS needs at least two).
    pub azs: Vec<String>,
    /// Prefix length of each private subnet (nodes and pods: VPC CNI gives pods VPC IPs).
    pub private_prefix: u8,
    /// Prefix length of each public subnet.
    pub public_prefix: u8,
    /// `single` (one NAT gateway) or `per_az` (one per AZ, for HA).
    pub nat: NatMode,
    /// An S3 gateway endpoint on the private route tables (cuts NAT traffic).
    pub s3_endpoint: bool,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            cidr: "10.0.0.0/16".into(),
            azs: vec!["us-east-1a".into(), "us-east-1b".into(), "us-east-1c".into()],
            private_prefix: 20,
            public_prefix: 24,
            nat: NatMode::Single,
            s3_endpoint: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NatMode {
    Single,
    PerAz,
}

/// The subnet plan: CIDRs per AZ, computed before anything is declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetPlan {
    pub private: Vec<String>,
    pub public: Vec<String>,
}

/// Carves private and public subnets for `cfg.azs` out of `cfg.cidr`.
pub fn subnet_plan(cfg: &NetworkConfig) -> Result<SubnetPlan, StackError> {
    let bad = |key: &str, msg: String| StackError::Config {
        key: format!("network.{key}"),
        message: msg,
    };
    let vpc: Ipv4Net = cfg.cidr.parse().map_err(|_| {
        bad(
            "cidr",
            format!("`{}` is not an IPv4 CIDR such as 10.0.0.0/16", cfg.cidr),
        )
    })?;
    if vpc.network() != vpc.addr() {
        return Err(bad(
            "cidr",
            format!("`{}` has host bits set; did you mean {}?", cfg.cidr, vpc.trunc()),
        ));
    }
    if !(16..=28).contains(&vpc.prefix_len()) {
        return Err(bad(
            "cidr",
            format!(
                "a VPC CIDR must be /16 to /28 (AWS's limits), not /{}",
                vpc.prefix_len()
            ),
        ));
    }
    if cfg.azs.len() < 2 {
        return Err(bad(
            "azs",
            format!("EKS needs subnets in at least 2 AZs; {} given", cfg.azs.len()),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = cfg.azs.iter().find(|a| !seen.insert(a.as_str())) {
        return Err(bad("azs", format!("`{dup}` is listed twice")));
    }
    for (key, p) in [
        ("private_prefix", cfg.private_prefix),
        ("public_prefix", cfg.public_prefix),
    ] {
        if p <= vpc.prefix_len() || p > 28 {
            return Err(bad(
                key,
                format!(
                    "/{p} must be longer than the VPC's /{} and at most /28",
                    vpc.prefix_len()
                ),
            ));
        }
    }
    let n = cfg.azs.len();
    let private: Vec<Ipv4Net> = vpc
        .subnets(cfg.private_prefix)
        .map_err(|e| bad("private_prefix", e.to_string()))?
        .take(n)
        .collect();
    // Public subnets start at the first private-sized block after the private ones.
    let rest = vpc
        .subnets(cfg.private_prefix)
        .map_err(|e| bad("private_prefix", e.to_string()))?
        .nth(n)
        .ok_or_else(|| {
            bad(
                "cidr",
                format!(
                    "{} has no room for {n} private /{} subnets plus public ones",
                    cfg.cidr, cfg.private_prefix
                ),
            )
        })?;
    let public: Vec<Ipv4Net> = if cfg.public_prefix >= rest.prefix_len() {
        rest.subnets(cfg.public_prefix)
            .map_err(|e| bad("public_prefix", e.to_string()))?
            .take(n)
            .collect()
    } else {
        Vec::new()
    };
    if private.len() < n || public.len() < n {
        return Err(bad(
            "cidr",
            format!(
                "{} has no room for {n} private /{} and {n} public /{} subnets",
                cfg.cidr, cfg.private_prefix, cfg.public_prefix
            ),
        ));
    }
    Ok(SubnetPlan {
        private: private.iter().map(ToString::to_string).collect(),
        public: public.iter().map(ToString::to_string).collect(),
    })
}

/// What the network declared (handles, and the facts the checks read).
pub struct Network {
    pub vpc: Handle<Vpc>,
    pub private_subnets: Vec<Handle<Subnet>>,
    pub public_subnets: Vec<Handle<Subnet>>,
    pub node_security_group: Handle<SecurityGroup>,
    /// Tags declared on each private subnet.
    pub private_subnet_tags: Vec<BTreeMap<String, String>>,
    /// Tags of every security group declared, by address.
    pub security_group_tags: Vec<(String, BTreeMap<String, String>)>,
    /// Every subnet, public and private, as declared (the checks find the ones Karpenter
    /// selects by their tags).
    pub subnets: Vec<Recorded>,
    /// Every route-table association as declared.
    pub route_table_associations: Vec<Recorded>,
    /// Every route as declared.
    pub routes: Vec<Recorded>,
    /// Every NAT gateway as declared.
    pub nat_gateway_decls: Vec<Recorded>,
    /// The internet gateway as declared.
    pub internet_gateways: Vec<Recorded>,
    /// How many NAT gateways (for the cost estimate).
    pub nat_gateways: usize,
}

fn tagged<T>(mut r: T, tags: &BTreeMap<String, String>, tag: impl Fn(T, &str, &str) -> T) -> T {
    for (k, v) in tags {
        r = tag(r, k, v);
    }
    r
}

impl Network {
    /// Declares the network of `cluster` under the current component.
    pub fn declare(
        s: &mut Stack,
        cluster: &str,
        region: &str,
        cfg: &NetworkConfig,
        tags: &BTreeMap<String, String>,
    ) -> Result<Network, StackError> {
        let plan = subnet_plan(cfg)?;
        let discovery = ("karpenter.sh/discovery".to_string(), cluster.to_string());
        let cluster_tag = (format!("kubernetes.io/cluster/{cluster}"), "shared".to_string());
        let named = |suffix: &str| format!("{cluster}-{suffix}");

        let vpc = s.add(
            "vpc",
            tagged(
                Vpc::new(cfg.cidr.as_str())
                    .dns_support(true)
                    .dns_hostnames(true)
                    .tag("Name", named("vpc")),
                tags,
                |r, k, v| r.tag(k, v),
            ),
        )?;
        let mut subnets = Vec::new();
        let mut route_table_associations = Vec::new();
        let mut routes = Vec::new();
        let mut nat_gateway_decls = Vec::new();
        let mut internet_gateways = Vec::new();
        let igw = add_recorded(
            s,
            "igw",
            tagged(
                InternetGateway::new(vpc.vpc_id()).tag("Name", named("igw")),
                tags,
                |r, k, v| r.tag(k, v),
            ),
            ResourceOptions::new(),
            &mut internet_gateways,
        )?;

        let mut public_subnets = Vec::new();
        let mut private_subnets = Vec::new();
        let mut private_subnet_tags = Vec::new();
        for (i, az) in cfg.azs.iter().enumerate() {
            let pub_tags: BTreeMap<String, String> = tags
                .clone()
                .into_iter()
                .chain([
                    ("Name".to_string(), named(&format!("public-{az}"))),
                    ("kubernetes.io/role/elb".to_string(), "1".to_string()),
                    cluster_tag.clone(),
                ])
                .collect();
            public_subnets.push(add_recorded(
                s,
                &format!("public-{az}"),
                tagged(
                    Subnet::new(vpc.vpc_id(), plan.public[i].as_str())
                        .az(az.as_str())
                        .map_public_ip(true),
                    &pub_tags,
                    |r, k, v| r.tag(k, v),
                ),
                ResourceOptions::new(),
                &mut subnets,
            )?);
            let priv_tags: BTreeMap<String, String> = tags
                .clone()
                .into_iter()
                .chain([
                    ("Name".to_string(), named(&format!("private-{az}"))),
                    ("kubernetes.io/role/internal-elb".to_string(), "1".to_string()),
                    discovery.clone(),
                    cluster_tag.clone(),
                ])
                .collect();
            private_subnets.push(add_recorded(
                s,
                &format!("private-{az}"),
                tagged(
                    Subnet::new(vpc.vpc_id(), plan.private[i].as_str()).az(az.as_str()),
                    &priv_tags,
                    |r, k, v| r.tag(k, v),
                ),
                ResourceOptions::new(),
                &mut subnets,
            )?);
            private_subnet_tags.push(priv_tags);
        }

        // Public route table: the internet through the IGW.
        let public_rt = s.add(
            "public-rt",
            tagged(
                RouteTable::new(vpc.vpc_id()).tag("Name", named("public")),
                tags,
                |r, k, v| r.tag(k, v),
            ),
        )?;
        add_recorded(
            s,
            "public-default",
            Route::new(public_rt.route_table_id(), "0.0.0.0/0").via_gateway(igw.gateway_id()),
            ResourceOptions::new(),
            &mut routes,
        )?;
        for (az, sn) in cfg.azs.iter().zip(&public_subnets) {
            add_recorded(
                s,
                &format!("public-rt-{az}"),
                RouteTableAssociation::new(public_rt.route_table_id(), sn.subnet_id()),
                ResourceOptions::new(),
                &mut route_table_associations,
            )?;
        }

        // NAT: one in the first AZ, or one per AZ.
        let nat_azs: Vec<usize> = match cfg.nat {
            NatMode::Single => vec![0],
            NatMode::PerAz => (0..cfg.azs.len()).collect(),
        };
        let mut nats = Vec::new();
        for &i in &nat_azs {
            let az = &cfg.azs[i];
            let eip = s.add(
                &format!("nat-eip-{az}"),
                tagged(Eip::new().tag("Name", named(&format!("nat-{az}"))), tags, |r, k, v| {
                    r.tag(k, v)
                }),
            )?;
            // The NAT gateway needs the IGW attached before it can route out.
            let nat = add_recorded(
                s,
                &format!("nat-{az}"),
                tagged(
                    NatGateway::public(public_subnets[i].subnet_id(), eip.allocation_id())
                        .tag("Name", named(&format!("nat-{az}"))),
                    tags,
                    |r, k, v| r.tag(k, v),
                ),
                ResourceOptions::new().depends_on(igw.address()),
                &mut nat_gateway_decls,
            )?;
            nats.push(nat);
        }

        // Private route tables: one per NAT gateway; each AZ uses its own or the single one.
        let mut private_rts = Vec::new();
        for (n, &i) in nat_azs.iter().enumerate() {
            let az = &cfg.azs[i];
            let rt = s.add(
                &format!("private-rt-{az}"),
                tagged(
                    RouteTable::new(vpc.vpc_id()).tag("Name", named(&format!("private-{az}"))),
                    tags,
                    |r, k, v| r.tag(k, v),
                ),
            )?;
            add_recorded(
                s,
                &format!("private-default-{az}"),
                Route::new(rt.route_table_id(), "0.0.0.0/0").via_nat_gateway(nats[n].nat_gateway_id()),
                ResourceOptions::new(),
                &mut routes,
            )?;
            private_rts.push(rt);
        }
        for (i, (az, sn)) in cfg.azs.iter().zip(&private_subnets).enumerate() {
            let rt = if private_rts.len() == 1 {
                &private_rts[0]
            } else {
                &private_rts[i]
            };
            add_recorded(
                s,
                &format!("private-rt-{az}-assoc"),
                RouteTableAssociation::new(rt.route_table_id(), sn.subnet_id()),
                ResourceOptions::new(),
                &mut route_table_associations,
            )?;
        }

        if cfg.s3_endpoint {
            s.add(
                "s3-endpoint",
                tagged(
                    VpcEndpoint::gateway(
                        vpc.vpc_id(),
                        format!("com.amazonaws.{region}.s3"),
                        private_rts.iter().map(|rt| rt.route_table_id().into()).collect(),
                    )
                    .tag("Name", named("s3")),
                    tags,
                    |r, k, v| r.tag(k, v),
                ),
            )?;
        }

        // The node security group: the one group Karpenter discovers.
        let sg_tags: BTreeMap<String, String> = tags
            .clone()
            .into_iter()
            .chain([("Name".to_string(), named("nodes")), discovery.clone()])
            .collect();
        let node_sg = s.add(
            "node-sg",
            tagged(
                SecurityGroup::new(vpc.vpc_id())
                    .name(named("nodes"))
                    .description("EKS nodes: managed node group and Karpenter runner nodes"),
                &sg_tags,
                |r, k, v| r.tag(k, v),
            ),
        )?;
        s.add(
            "node-sg-self",
            SecurityGroupRule::ingress(node_sg.group_id())
                .protocol("-1", 0, 0)
                .group(node_sg.group_id()),
        )?;
        // Egress: a new group already allows all outbound traffic (GitHub, registries, AWS
        // APIs), on AWS as in the emulator; declaring that rule again is a duplicate.

        Ok(Network {
            vpc,
            private_subnets,
            public_subnets,
            security_group_tags: vec![(node_sg.address().to_string(), sg_tags)],
            node_security_group: node_sg,
            private_subnet_tags,
            subnets,
            route_table_associations,
            routes,
            nat_gateway_decls,
            internet_gateways,
            nat_gateways: nat_azs.len(),
        })
    }

    pub fn private_subnet_ids(&self) -> Vec<Input<String>> {
        self.private_subnets.iter().map(|s| s.subnet_id().into()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_layout() {
        let p = subnet_plan(&NetworkConfig::default()).unwrap();
        assert_eq!(p.private, ["10.0.0.0/20", "10.0.16.0/20", "10.0.32.0/20"]);
        assert_eq!(p.public, ["10.0.48.0/24", "10.0.49.0/24", "10.0.50.0/24"]);
    }

    #[test]
    fn bad_cidrs_name_the_key() {
        for (cidr, want) in [
            ("10.0.0.0/33", "not an IPv4 CIDR"),
            ("10.0.0.1/16", "host bits"),
            ("10.0.0.0/8", "/16 to /28"),
            ("10.0.0.0/19", "no room"),
        ] {
            let cfg = NetworkConfig {
                cidr: cidr.into(),
                ..NetworkConfig::default()
            };
            let e = subnet_plan(&cfg).unwrap_err().to_string();
            assert!(e.contains("network.cidr") && e.contains(want), "{cidr}: {e}");
        }
        let cfg = NetworkConfig {
            azs: vec!["us-east-1a".into()],
            ..NetworkConfig::default()
        };
        assert!(subnet_plan(&cfg).unwrap_err().to_string().contains("network.azs"));
    }
}
