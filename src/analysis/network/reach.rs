//! The questions: can traffic flow between two endpoints, out to the internet, to an AWS
//! service; and, when it cannot, what blocks it.

use std::fmt;

use super::model::{
    Cidr, Direction, Endpoint, EndpointKind, Fact, GroupId, Peer, Protocol, RouteTable, Rule, RuleRef, Subnet,
    SubnetId, Target, VpcModel, main_route_table,
};

/// The answer to a question.
#[derive(Debug, Clone, PartialEq)]
pub enum Reach {
    /// Within the VPC: the egress rule of a source group and the ingress rule of a
    /// destination group that admit the traffic.
    Allowed { egress: RuleRef, ingress: RuleRef },
    /// Out of the endpoint's subnets: the egress rule that admits it, the ingress rule of
    /// an interface endpoint when it goes to one, and the way out (one per subnet, or the
    /// interface endpoint).
    Routed {
        egress: RuleRef,
        ingress: Option<RuleRef>,
        ways: Vec<Way>,
    },
    /// What blocks it, each naming the group, subnet or route table at fault and a fix.
    Blocked(Vec<Block>),
    /// No known rule or route decides it: these values, known only after apply (or
    /// declared outside this stack), might.
    Unknown(Vec<String>),
}

impl Reach {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Reach::Allowed { .. } | Reach::Routed { .. })
    }

    pub fn is_blocked(&self) -> bool {
        matches!(self, Reach::Blocked(_))
    }

    /// The blocks (empty unless blocked).
    pub fn blocks(&self) -> &[Block] {
        match self {
            Reach::Blocked(b) => b,
            _ => &[],
        }
    }
}

impl fmt::Display for Reach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reach::Allowed { egress, ingress } => write!(f, "allowed: egress by {egress}, ingress by {ingress}"),
            Reach::Routed { egress, ingress, ways } => {
                write!(f, "allowed: egress by {egress}")?;
                if let Some(i) = ingress {
                    write!(f, ", ingress by {i}")?;
                }
                let ways: Vec<String> = ways.iter().map(ToString::to_string).collect();
                write!(f, "; via {}", ways.join("; "))
            }
            Reach::Blocked(blocks) => {
                let b: Vec<String> = blocks.iter().map(ToString::to_string).collect();
                write!(f, "blocked: {}", b.join("; "))
            }
            Reach::Unknown(why) => write!(f, "unknown offline: {}", why.join("; ")),
        }
    }
}

/// How traffic leaves a subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Way {
    Nat {
        subnet: SubnetId,
        route_table: String,
        nat_gateway: String,
        internet_gateway: String,
    },
    PublicIp {
        subnet: SubnetId,
        route_table: String,
        internet_gateway: String,
    },
    GatewayEndpoint {
        subnet: SubnetId,
        route_table: String,
        endpoint: String,
    },
    InterfaceEndpoint {
        endpoint: String,
    },
}

impl fmt::Display for Way {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Way::Nat {
                subnet,
                route_table,
                nat_gateway,
                internet_gateway,
            } => write!(
                f,
                "subnet {subnet} -> route table {route_table} -> NAT gateway {nat_gateway} -> internet gateway {internet_gateway}"
            ),
            Way::PublicIp {
                subnet,
                route_table,
                internet_gateway,
            } => write!(
                f,
                "subnet {subnet} -> route table {route_table} -> internet gateway {internet_gateway} (public IP)"
            ),
            Way::GatewayEndpoint {
                subnet,
                route_table,
                endpoint,
            } => write!(
                f,
                "subnet {subnet} -> route table {route_table} -> gateway endpoint {endpoint}"
            ),
            Way::InterfaceEndpoint { endpoint } => write!(f, "interface endpoint {endpoint} (private DNS)"),
        }
    }
}

/// One thing that blocks traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    NoGroups {
        endpoint: String,
    },
    NoSubnets {
        endpoint: String,
    },
    DifferentVpcs {
        from: String,
        from_vpc: String,
        to: String,
        to_vpc: String,
    },
    /// No group of the source (`on`) lets the traffic out to the destination.
    NoEgress {
        groups: Vec<GroupId>,
        on: String,
        to: String,
        to_groups: Vec<GroupId>,
        protocol: Protocol,
        port: u16,
    },
    /// No group of the destination (`on`) lets the traffic in from the source.
    NoIngress {
        groups: Vec<GroupId>,
        on: String,
        from: String,
        from_groups: Vec<GroupId>,
        protocol: Protocol,
        port: u16,
    },
    /// No group of `on` lets the traffic out to `0.0.0.0/0`.
    NoInternetEgress {
        groups: Vec<GroupId>,
        on: String,
        protocol: Protocol,
        port: u16,
    },
    NoDefaultRoute {
        subnet: SubnetId,
        route_table: String,
        /// The subnet maps public IPs (the fix is an internet gateway, not a NAT gateway).
        public: bool,
    },
    DefaultRouteGoesNowhere {
        subnet: SubnetId,
        route_table: String,
        target: String,
    },
    PrivateNat {
        subnet: SubnetId,
        route_table: String,
        nat_gateway: String,
    },
    NatWithoutInternet {
        subnet: SubnetId,
        nat_gateway: String,
        nat_subnet: SubnetId,
        route_table: String,
        lacks: String,
    },
    GatewayNotAttached {
        subnet: SubnetId,
        route_table: String,
        gateway: String,
        vpc: String,
    },
    NoPublicIp {
        subnet: SubnetId,
        route_table: String,
        gateway: String,
        endpoint: String,
        subnet_maps: bool,
    },
}

fn list(ids: &[GroupId]) -> String {
    let v: Vec<&str> = ids.iter().map(GroupId::as_str).collect();
    v.join(", ")
}

/// `security group X (on Y) allows` or `security groups X, Z (on Y) allow`.
fn groups_on(f: &mut fmt::Formatter<'_>, groups: &[GroupId], on: &str) -> fmt::Result {
    let (noun, verb) = if groups.len() == 1 {
        ("security group", "allows")
    } else {
        ("security groups", "allow")
    };
    write!(f, "{noun} {} (on {on}) {verb}", list(groups))
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Block::NoGroups { endpoint } => write!(f, "{endpoint} has no security groups; give it at least one"),
            Block::NoSubnets { endpoint } => write!(f, "{endpoint} has no subnets; give it at least one"),
            Block::DifferentVpcs {
                from,
                from_vpc,
                to,
                to_vpc,
            } => write!(
                f,
                "{from} is in VPC {from_vpc} and {to} in VPC {to_vpc}; traffic between VPCs needs peering or a \
                 transit gateway, which this analysis does not model"
            ),
            Block::NoEgress {
                groups,
                on,
                to,
                to_groups,
                protocol,
                port,
            } => {
                groups_on(f, groups, on)?;
                write!(
                    f,
                    " no egress on {protocol}/{port} to the groups of the {to} [{}] or its subnets; add an egress \
                     rule to one of the source's groups to one of the destination's groups",
                    list(to_groups)
                )
            }
            Block::NoIngress {
                groups,
                on,
                from,
                from_groups,
                protocol,
                port,
            } => {
                groups_on(f, groups, on)?;
                write!(
                    f,
                    " no ingress on {protocol}/{port} from the groups of the {from} [{}]; add an ingress rule to \
                     one of the destination's groups from one of the source's groups",
                    list(from_groups)
                )
            }
            Block::NoInternetEgress {
                groups,
                on,
                protocol,
                port,
            } => {
                groups_on(f, groups, on)?;
                write!(
                    f,
                    " no egress on {protocol}/{port} to 0.0.0.0/0; add an egress rule to 0.0.0.0/0 to one of them"
                )
            }
            Block::NoDefaultRoute {
                subnet,
                route_table,
                public,
            } => write!(
                f,
                "subnet {subnet}: route table {route_table} has no 0.0.0.0/0 route; add one to {}",
                if *public {
                    "an internet gateway"
                } else {
                    "a NAT gateway"
                }
            ),
            Block::DefaultRouteGoesNowhere {
                subnet,
                route_table,
                target,
            } => write!(
                f,
                "subnet {subnet}: route table {route_table} sends 0.0.0.0/0 to {target}, which does not reach the \
                 internet; route it to a NAT gateway or an internet gateway"
            ),
            Block::PrivateNat {
                subnet,
                route_table,
                nat_gateway,
            } => write!(
                f,
                "subnet {subnet}: route table {route_table} sends 0.0.0.0/0 to NAT gateway {nat_gateway}, a private \
                 NAT gateway with no internet access; use a public NAT gateway"
            ),
            Block::NatWithoutInternet {
                subnet,
                nat_gateway,
                nat_subnet,
                route_table,
                lacks,
            } => write!(
                f,
                "subnet {subnet}: its NAT gateway {nat_gateway} is in subnet {nat_subnet}, whose route table \
                 {route_table} {lacks}; add a 0.0.0.0/0 route to an internet gateway there (a NAT gateway belongs in \
                 a public subnet)"
            ),
            Block::GatewayNotAttached {
                subnet,
                route_table,
                gateway,
                vpc,
            } => write!(
                f,
                "subnet {subnet}: route table {route_table} sends 0.0.0.0/0 to internet gateway {gateway}, which is \
                 not attached to VPC {vpc}; attach it"
            ),
            Block::NoPublicIp {
                subnet,
                route_table,
                gateway,
                endpoint,
                subnet_maps,
            } => write!(
                f,
                "subnet {subnet}: route table {route_table} sends 0.0.0.0/0 to internet gateway {gateway}, but the \
                 {endpoint} would get no public IP there ({}); route through a NAT gateway instead, or give it public \
                 IPs",
                if *subnet_maps {
                    "the endpoint takes none"
                } else {
                    "the subnet does not map public IPs on launch"
                }
            ),
        }
    }
}

/// Why one step fails: definitely, or for want of a value known only after apply.
enum Miss {
    Block(Block),
    Unknown(Vec<String>),
}

/// One side (egress of the source, ingress of the destination) of a flow.
enum Side {
    Allowed(RuleRef),
    Maybe(Vec<String>),
    Denied,
}

impl VpcModel {
    /// Whether `from` can open a `protocol` connection to `to` on `port` within the VPC.
    ///
    /// Allowed iff some group of `from` has an egress rule covering the traffic whose
    /// destination is a group `to` has or a CIDR holding every subnet of `to`, and some
    /// group of `to` has an ingress rule covering it whose source is a group `from` has or
    /// a CIDR holding every subnet of `from`. Return traffic is implicit (groups are
    /// stateful); the `local` route always applies; default network ACLs allow all.
    pub fn reachable(&self, from: &Endpoint, to: &Endpoint, protocol: Protocol, port: u16) -> Reach {
        let mut blocks = Vec::new();
        let mut unknowns = Vec::new();
        if let (Some(a), Some(b)) = (self.vpc_of(from), self.vpc_of(to))
            && a != b
        {
            blocks.push(Block::DifferentVpcs {
                from: from.name.clone(),
                from_vpc: a.to_string(),
                to: to.name.clone(),
                to_vpc: b.to_string(),
            });
        }
        let mut sides = [(from, to, Direction::Egress), (to, from, Direction::Ingress)].map(|(own, peer, dir)| {
            if own.groups.is_empty() {
                blocks.push(Block::NoGroups {
                    endpoint: own.name.clone(),
                });
                return None;
            }
            match self.side(own, peer, dir, protocol, port) {
                Side::Allowed(r) => Some(r),
                Side::Maybe(why) => {
                    unknowns.extend(why);
                    None
                }
                Side::Denied => {
                    blocks.push(match dir {
                        Direction::Egress => Block::NoEgress {
                            groups: own.groups.clone(),
                            on: own.name.clone(),
                            to: peer.name.clone(),
                            to_groups: peer.groups.clone(),
                            protocol,
                            port,
                        },
                        Direction::Ingress => Block::NoIngress {
                            groups: own.groups.clone(),
                            on: own.name.clone(),
                            from: peer.name.clone(),
                            from_groups: peer.groups.clone(),
                            protocol,
                            port,
                        },
                    });
                    None
                }
            }
        });
        if !blocks.is_empty() {
            return Reach::Blocked(blocks);
        }
        match (sides[0].take(), sides[1].take()) {
            (Some(egress), Some(ingress)) => Reach::Allowed { egress, ingress },
            _ => Reach::Unknown(dedup(unknowns)),
        }
    }

    /// Whether `from` can reach the internet over `protocol` on `port`: an egress rule to
    /// `0.0.0.0/0` covering it, and from EVERY subnet of `from` (it may land in any) a
    /// `0.0.0.0/0` route either to a public NAT gateway whose own subnet routes
    /// `0.0.0.0/0` to an internet gateway attached to the VPC, or, where the subnet maps
    /// public IPs and `from` takes one, straight to such an internet gateway.
    pub fn internet_egress(&self, from: &Endpoint, protocol: Protocol, port: u16) -> Reach {
        let egress = self.internet_rule(from, protocol, port);
        let mut ways = Vec::with_capacity(from.subnets.len());
        let mut misses = Vec::new();
        if from.subnets.is_empty() {
            misses.push(Miss::Block(Block::NoSubnets {
                endpoint: from.name.clone(),
            }));
        }
        for s in &from.subnets {
            match self.subnet_to_internet(from, s) {
                Ok(w) => ways.push(w),
                Err(m) => misses.push(m),
            }
        }
        finish(egress, None, ways, misses)
    }

    /// Whether `from` can reach the AWS `service` (`s3`, `sts`, ...) in `region` on
    /// tcp/443, and which way: an interface endpoint with private DNS in the VPC (then
    /// its groups decide, as in [`reachable`](Self::reachable)); else, per subnet, a
    /// gateway endpoint on the subnet's route table (`s3`, `dynamodb`; egress to
    /// `0.0.0.0/0` covers the service's prefix list), or the internet.
    pub fn aws_service(&self, from: &Endpoint, service: &str, region: &str) -> Reach {
        let name = format!("com.amazonaws.{region}.{service}");
        let vpc = self.vpc_of(from);
        let mut unsure = Vec::new();
        let in_vpc = self.endpoints.values().filter(|e| match (&e.vpc, vpc) {
            (Fact::Known(ev), Some(v)) => ev == v,
            _ => true,
        });
        let mut gateways = Vec::new();
        for e in in_vpc {
            match &e.service {
                Fact::Known(s) if *s == name => {}
                Fact::Known(_) => continue,
                Fact::Unknown(what) => {
                    unsure.push(format!("VPC endpoint {} is for service {what}", e.id));
                    continue;
                }
            }
            match &e.kind {
                EndpointKind::Interface {
                    subnets,
                    groups,
                    private_dns: true,
                } => {
                    let ep = Endpoint {
                        name: format!("interface endpoint {}", e.id),
                        groups: groups.clone(),
                        subnets: subnets.clone(),
                        public_ip: false,
                    };
                    return match self.reachable(from, &ep, Protocol::Tcp, 443) {
                        Reach::Allowed { egress, ingress } => Reach::Routed {
                            egress,
                            ingress: Some(ingress),
                            ways: vec![Way::InterfaceEndpoint { endpoint: e.id.clone() }],
                        },
                        other => other,
                    };
                }
                EndpointKind::Interface { .. } => {}
                EndpointKind::Gateway { route_tables } => gateways.push((e.id.as_str(), route_tables)),
            }
        }
        let egress = self.internet_rule(from, Protocol::Tcp, 443);
        let mut ways = Vec::with_capacity(from.subnets.len());
        let mut misses = Vec::new();
        if from.subnets.is_empty() {
            misses.push(Miss::Block(Block::NoSubnets {
                endpoint: from.name.clone(),
            }));
        }
        for s in &from.subnets {
            let via_gateway = self.subnet_and_table(s).ok().and_then(|(_, t)| {
                gateways
                    .iter()
                    .find(|(_, tables)| tables.contains(&t.id))
                    .map(|(e, _)| Way::GatewayEndpoint {
                        subnet: s.clone(),
                        route_table: t.id.clone(),
                        endpoint: e.to_string(),
                    })
            });
            match via_gateway.map(Ok).unwrap_or_else(|| self.subnet_to_internet(from, s)) {
                Ok(w) => ways.push(w),
                Err(Miss::Block(b)) if !unsure.is_empty() => {
                    let mut why = vec![b.to_string()];
                    why.extend(unsure.iter().cloned());
                    misses.push(Miss::Unknown(why));
                }
                Err(m) => misses.push(m),
            }
        }
        finish(egress, None, ways, misses)
    }

    /// The first known VPC of the endpoint's subnets.
    fn vpc_of(&self, e: &Endpoint) -> Option<&str> {
        e.subnets
            .iter()
            .find_map(|s| self.subnets.get(s).and_then(|s| s.vpc.known()))
            .map(String::as_str)
    }

    /// Whether some group of `own` lets the traffic out (`Egress`) to `peer` or in
    /// (`Ingress`) from `peer`.
    fn side(&self, own: &Endpoint, peer: &Endpoint, dir: Direction, protocol: Protocol, port: u16) -> Side {
        let mut maybe = Vec::new();
        let mut cidr_rules: Vec<(&Rule, Cidr)> = Vec::new();
        for g in &own.groups {
            let Some(group) = self.groups.get(g) else {
                maybe.push(format!(
                    "security group {g} is not declared in this stack; its rules are unknown"
                ));
                continue;
            };
            if group.external {
                maybe.push(format!(
                    "security group {g} is not declared in this stack; it may have rules besides those declared here"
                ));
            }
            for r in group.rules(dir) {
                if !r.covers(protocol, port) {
                    continue;
                }
                match &r.peer {
                    Peer::Group(Fact::Known(pg)) => {
                        if peer.groups.contains(pg) {
                            return Side::Allowed(r.source.clone());
                        }
                    }
                    Peer::Group(Fact::Unknown(what)) => {
                        maybe.push(format!("rule {} names the group {what}", r.source.address));
                    }
                    Peer::Cidr(Fact::Known(c)) => cidr_rules.push((r, *c)),
                    Peer::Cidr(Fact::Unknown(what)) => {
                        maybe.push(format!("rule {} names the CIDR {what}", r.source.address));
                    }
                }
            }
        }
        let any = cidr_rules.iter().find(|(_, c)| c.is_any()).map(|(r, _)| *r);
        if let Some(r) = any {
            return Side::Allowed(r.source.clone());
        }
        // Every subnet the peer may be in must fall in some rule's CIDR.
        if !cidr_rules.is_empty() && !peer.subnets.is_empty() {
            let mut first: Option<&Rule> = None;
            let mut all = true;
            for s in &peer.subnets {
                match self.subnets.get(s).map(|s| &s.cidr) {
                    Some(Fact::Known(sc)) => match cidr_rules.iter().find(|(_, c)| c.contains(sc)) {
                        Some((r, _)) => {
                            first.get_or_insert(r);
                        }
                        None => all = false,
                    },
                    Some(Fact::Unknown(what)) => {
                        all = false;
                        maybe.push(format!("the CIDR of subnet {s} is {what}"));
                    }
                    None => {
                        all = false;
                        maybe.push(format!("subnet {s} is not declared in this stack; its CIDR is unknown"));
                    }
                }
            }
            if all && let Some(r) = first {
                return Side::Allowed(r.source.clone());
            }
        }
        for (d, r, what) in &self.unattached_rules {
            if *d == dir && r.covers(protocol, port) {
                maybe.push(format!("rule {} belongs to the group {what}", r.source.address));
            }
        }
        if maybe.is_empty() {
            Side::Denied
        } else {
            Side::Maybe(maybe)
        }
    }

    /// The egress rule of a group of `from` that lets the traffic out to `0.0.0.0/0`.
    fn internet_rule(&self, from: &Endpoint, protocol: Protocol, port: u16) -> Result<RuleRef, Miss> {
        if from.groups.is_empty() {
            return Err(Miss::Block(Block::NoGroups {
                endpoint: from.name.clone(),
            }));
        }
        let mut maybe = Vec::new();
        for g in &from.groups {
            let Some(group) = self.groups.get(g) else {
                maybe.push(format!(
                    "security group {g} is not declared in this stack; its rules are unknown"
                ));
                continue;
            };
            if group.external {
                maybe.push(format!(
                    "security group {g} is not declared in this stack; it may have rules besides those declared here"
                ));
            }
            for r in group.egress.iter().filter(|r| r.covers(protocol, port)) {
                match &r.peer {
                    Peer::Cidr(Fact::Known(c)) if c.is_any() => return Ok(r.source.clone()),
                    Peer::Cidr(Fact::Unknown(what)) => {
                        maybe.push(format!("rule {} names the CIDR {what}", r.source.address));
                    }
                    _ => {}
                }
            }
        }
        for (d, r, what) in &self.unattached_rules {
            if *d == Direction::Egress && r.covers(protocol, port) {
                maybe.push(format!("rule {} belongs to the group {what}", r.source.address));
            }
        }
        if maybe.is_empty() {
            Err(Miss::Block(Block::NoInternetEgress {
                groups: from.groups.clone(),
                on: from.name.clone(),
                protocol,
                port,
            }))
        } else {
            Err(Miss::Unknown(maybe))
        }
    }

    /// A subnet and the route table it uses (its association, or its VPC's main table).
    fn subnet_and_table(&self, id: &SubnetId) -> Result<(&Subnet, &RouteTable), Miss> {
        let unknown = |why: String| Miss::Unknown(vec![why]);
        let s = self.subnets.get(id).ok_or_else(|| {
            unknown(format!(
                "subnet {id} is not declared in this stack; its routes are unknown"
            ))
        })?;
        let table = match self.associations.get(id) {
            Some(Fact::Known(t)) => t.clone(),
            Some(Fact::Unknown(what)) => return Err(unknown(format!("subnet {id} uses route table {what}"))),
            None => match &s.vpc {
                Fact::Known(v) => main_route_table(v),
                Fact::Unknown(what) => return Err(unknown(format!("subnet {id} is in the VPC {what}"))),
            },
        };
        let t = self.route_tables.get(&table).ok_or_else(|| {
            unknown(format!(
                "route table {table} of subnet {id} is not declared in this stack"
            ))
        })?;
        Ok((s, t))
    }

    /// The target of `table`'s `0.0.0.0/0` route.
    fn default_route<'t>(&self, subnet: &SubnetId, table: &'t RouteTable, public: bool) -> Result<&'t Target, Miss> {
        if let Some(r) = table.routes.iter().find(|r| r.destination == Fact::Known(Cidr::ANY)) {
            return Ok(&r.target);
        }
        let unknown: Vec<String> = table
            .routes
            .iter()
            .filter_map(|r| match &r.destination {
                Fact::Unknown(what) => Some(format!("route {} of route table {} is for {what}", r.source, table.id)),
                Fact::Known(_) => None,
            })
            .collect();
        if unknown.is_empty() {
            Err(Miss::Block(Block::NoDefaultRoute {
                subnet: subnet.clone(),
                route_table: table.id.clone(),
                public,
            }))
        } else {
            Err(Miss::Unknown(unknown))
        }
    }

    /// Checks that internet gateway `g` is attached to `vpc`.
    fn attached(&self, g: &str, vpc: &Fact<String>, subnet: &SubnetId, table: &str) -> Result<(), Miss> {
        let unknown = |why: String| Miss::Unknown(vec![why]);
        let gw = self
            .internet_gateways
            .get(g)
            .ok_or_else(|| unknown(format!("internet gateway {g} is not declared in this stack")))?;
        let not_attached = |vpc: &str| {
            Miss::Block(Block::GatewayNotAttached {
                subnet: subnet.clone(),
                route_table: table.to_string(),
                gateway: g.to_string(),
                vpc: vpc.to_string(),
            })
        };
        match (vpc, &gw.vpc) {
            (Fact::Unknown(what), _) => Err(unknown(format!("subnet {subnet} is in the VPC {what}"))),
            (Fact::Known(v), None) => Err(not_attached(v)),
            (Fact::Known(_), Some(Fact::Unknown(what))) => {
                Err(unknown(format!("internet gateway {g} is attached to the VPC {what}")))
            }
            (Fact::Known(v), Some(Fact::Known(gv))) if v != gv => Err(not_attached(v)),
            _ => Ok(()),
        }
    }

    /// The way from subnet `id` to the internet for `from`.
    fn subnet_to_internet(&self, from: &Endpoint, id: &SubnetId) -> Result<Way, Miss> {
        let (s, t) = self.subnet_and_table(id)?;
        match self.default_route(id, t, s.map_public_ip && from.public_ip)? {
            Target::NatGateway(n) => {
                let nat = self
                    .nat_gateways
                    .get(n)
                    .ok_or_else(|| Miss::Unknown(vec![format!("NAT gateway {n} is not declared in this stack")]))?;
                if !nat.public {
                    return Err(Miss::Block(Block::PrivateNat {
                        subnet: id.clone(),
                        route_table: t.id.clone(),
                        nat_gateway: n.clone(),
                    }));
                }
                let (ns, nt) = self.subnet_and_table(&nat.subnet)?;
                let lacks = |lacks: String| {
                    Miss::Block(Block::NatWithoutInternet {
                        subnet: id.clone(),
                        nat_gateway: n.clone(),
                        nat_subnet: nat.subnet.clone(),
                        route_table: nt.id.clone(),
                        lacks,
                    })
                };
                let target = match self.default_route(&nat.subnet, nt, true) {
                    Ok(target) => target,
                    Err(Miss::Block(_)) => return Err(lacks("has no 0.0.0.0/0 route".into())),
                    Err(m) => return Err(m),
                };
                match target {
                    Target::InternetGateway(g) => {
                        self.attached(g, &ns.vpc, &nat.subnet, &nt.id)?;
                        Ok(Way::Nat {
                            subnet: id.clone(),
                            route_table: t.id.clone(),
                            nat_gateway: n.clone(),
                            internet_gateway: g.clone(),
                        })
                    }
                    Target::Unknown(what) => Err(Miss::Unknown(vec![format!(
                        "route table {} sends 0.0.0.0/0 to {what}",
                        nt.id
                    )])),
                    other => Err(lacks(format!("sends 0.0.0.0/0 to {other}, not an internet gateway"))),
                }
            }
            Target::InternetGateway(g) => {
                self.attached(g, &s.vpc, id, &t.id)?;
                if s.map_public_ip && from.public_ip {
                    Ok(Way::PublicIp {
                        subnet: id.clone(),
                        route_table: t.id.clone(),
                        internet_gateway: g.clone(),
                    })
                } else {
                    Err(Miss::Block(Block::NoPublicIp {
                        subnet: id.clone(),
                        route_table: t.id.clone(),
                        gateway: g.clone(),
                        endpoint: from.name.clone(),
                        subnet_maps: s.map_public_ip,
                    }))
                }
            }
            Target::Unknown(what) => Err(Miss::Unknown(vec![format!(
                "route table {} sends 0.0.0.0/0 to {what}",
                t.id
            )])),
            other => Err(Miss::Block(Block::DefaultRouteGoesNowhere {
                subnet: id.clone(),
                route_table: t.id.clone(),
                target: other.to_string(),
            })),
        }
    }
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::with_capacity(v.len());
    v.retain(|x| seen.insert(x.clone()));
    v
}

/// A routed answer from the egress verdict and each subnet's way out: blocked when
/// anything is definitely blocked, unknown when something is unknown, else routed.
fn finish(egress: Result<RuleRef, Miss>, ingress: Option<RuleRef>, ways: Vec<Way>, misses: Vec<Miss>) -> Reach {
    let mut blocks = Vec::new();
    let mut unknowns = Vec::new();
    let egress = match egress {
        Ok(r) => Some(r),
        Err(m) => {
            match m {
                Miss::Block(b) => blocks.push(b),
                Miss::Unknown(u) => unknowns.extend(u),
            }
            None
        }
    };
    for m in misses {
        match m {
            Miss::Block(b) => {
                if !blocks.contains(&b) {
                    blocks.push(b);
                }
            }
            Miss::Unknown(u) => unknowns.extend(u),
        }
    }
    if !blocks.is_empty() {
        return Reach::Blocked(blocks);
    }
    match egress {
        Some(egress) if unknowns.is_empty() => Reach::Routed { egress, ingress, ways },
        _ => Reach::Unknown(dedup(unknowns)),
    }
}
