//! The model's data: security groups and their rules, subnets, route tables, gateways and
//! endpoints, EKS clusters and node groups; the programmatic builder; and the endpoints
//! (control plane, managed node group, Karpenter nodes) the questions are asked about.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use super::NetworkModelError;
use crate::value::{self, OutputExpr};

/// A value known offline, or one that exists only after apply (an output of another
/// resource, a secret, a transform): then what it is, for messages.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fact<T> {
    Known(T),
    Unknown(String),
}

impl<T> Fact<T> {
    pub fn known(&self) -> Option<&T> {
        match self {
            Fact::Known(t) => Some(t),
            Fact::Unknown(_) => None,
        }
    }
}

impl<T: fmt::Display> fmt::Display for Fact<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fact::Known(t) => t.fmt(f),
            Fact::Unknown(what) => write!(f, "({what})"),
        }
    }
}

/// An IPv4 CIDR block (host bits cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    addr: u32,
    len: u8,
}

impl Cidr {
    /// `0.0.0.0/0`.
    pub const ANY: Cidr = Cidr { addr: 0, len: 0 };

    pub fn new(addr: std::net::Ipv4Addr, len: u8) -> Option<Cidr> {
        (len <= 32).then(|| Cidr {
            addr: u32::from(addr) & mask(len),
            len,
        })
    }

    /// True when every address of `other` is in `self`.
    pub fn contains(&self, other: &Cidr) -> bool {
        self.len <= other.len && other.addr & mask(self.len) == self.addr
    }

    pub fn is_any(&self) -> bool {
        self.len == 0
    }
}

fn mask(len: u8) -> u32 {
    if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not an IPv4 CIDR such as 10.0.0.0/16");
        let (ip, len) = s.split_once('/').ok_or_else(bad)?;
        let ip: std::net::Ipv4Addr = ip.parse().map_err(|_| bad())?;
        let len: u8 = len.parse().map_err(|_| bad())?;
        Cidr::new(ip, len).ok_or_else(bad)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", std::net::Ipv4Addr::from(self.addr), self.len)
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                $name(id.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_string())
            }
        }
    };
}

id_type!(
    /// A security group: the declaring resource's address, `<cluster address>#cluster-security-group`
    /// for a group EKS creates, or the literal id (`sg-...`) of a group this stack does not
    /// declare (whose rules are then unknown).
    GroupId
);
id_type!(
    /// A subnet: the declaring resource's address, or a literal id (`subnet-...`) or the
    /// description of a value known only after apply (its CIDR and routes then unknown).
    SubnetId
);

/// The protocols questions are asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// A rule's protocol: `-1` (all), `tcp`, `udp`, `icmp` or another IP protocol number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleProtocol {
    All,
    Tcp,
    Udp,
    Icmp,
    Other(u8),
}

impl RuleProtocol {
    /// EC2's spellings: names (any case) or numbers (`6` is tcp, `17` udp, `1` icmp).
    pub fn parse(s: &str) -> Option<RuleProtocol> {
        Some(match s.to_ascii_lowercase().as_str() {
            "-1" | "all" => RuleProtocol::All,
            "tcp" | "6" => RuleProtocol::Tcp,
            "udp" | "17" => RuleProtocol::Udp,
            "icmp" | "1" => RuleProtocol::Icmp,
            other => RuleProtocol::Other(other.parse().ok()?),
        })
    }
}

impl fmt::Display for RuleProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleProtocol::All => f.write_str("all traffic"),
            RuleProtocol::Tcp => f.write_str("tcp"),
            RuleProtocol::Udp => f.write_str("udp"),
            RuleProtocol::Icmp => f.write_str("icmp"),
            RuleProtocol::Other(n) => write!(f, "protocol {n}"),
        }
    }
}

/// Which declared rule a verdict rests on: the declaring resource and a short description.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuleRef {
    pub address: String,
    pub description: String,
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.address, self.description)
    }
}

/// The other side of a rule: its source (ingress) or destination (egress).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    Cidr(Fact<Cidr>),
    Group(Fact<GroupId>),
}

impl Peer {
    /// A group peer (for hand-built models).
    pub fn group(id: &str) -> Peer {
        Peer::Group(Fact::Known(GroupId::new(id)))
    }
    /// A CIDR peer (for hand-built models); panics on a malformed CIDR.
    pub fn cidr(cidr: &str) -> Peer {
        Peer::Cidr(Fact::Known(cidr.parse().expect("a valid CIDR")))
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Cidr(c) => c.fmt(f),
            Peer::Group(g) => g.fmt(f),
        }
    }
}

/// Ingress or egress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Ingress,
    Egress,
}

/// One permission of a security group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub source: RuleRef,
    pub protocol: RuleProtocol,
    /// Inclusive; meaningful for tcp and udp only.
    pub from_port: u16,
    pub to_port: u16,
    pub peer: Peer,
}

impl Rule {
    /// A rule of `protocol` over `from_port..=to_port` (ignored unless tcp or udp).
    pub fn new(source: RuleRef, protocol: RuleProtocol, from_port: u16, to_port: u16, peer: Peer) -> Rule {
        Rule {
            source,
            protocol,
            from_port,
            to_port,
            peer,
        }
    }

    /// True when the rule admits `protocol` on `port`.
    pub fn covers(&self, protocol: Protocol, port: u16) -> bool {
        match (self.protocol, protocol) {
            (RuleProtocol::All, _) => true,
            (RuleProtocol::Tcp, Protocol::Tcp) | (RuleProtocol::Udp, Protocol::Udp) => {
                (self.from_port..=self.to_port).contains(&port)
            }
            _ => false,
        }
    }

    /// `tcp 443 from 10.0.0.0/16` and the like.
    pub fn summary(&self, direction: Direction) -> String {
        let what = match self.protocol {
            RuleProtocol::Tcp | RuleProtocol::Udp if self.from_port == self.to_port => {
                format!("{} {}", self.protocol, self.from_port)
            }
            RuleProtocol::Tcp | RuleProtocol::Udp => {
                format!("{} {}-{}", self.protocol, self.from_port, self.to_port)
            }
            other => other.to_string(),
        };
        let dir = match direction {
            Direction::Ingress => "from",
            Direction::Egress => "to",
        };
        format!("{what} {dir} {}", self.peer)
    }
}

/// A security group and its rules.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityGroup {
    pub id: GroupId,
    /// The `name` input (a generated name is unknown offline).
    pub name: Fact<String>,
    pub vpc: Fact<String>,
    pub tags: BTreeMap<String, Fact<String>>,
    pub ingress: Vec<Rule>,
    pub egress: Vec<Rule>,
    /// Not declared in this stack (named by a literal id): other rules may exist.
    pub external: bool,
}

impl SecurityGroup {
    pub fn rules(&self, direction: Direction) -> &[Rule] {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }

    /// The egress rule AWS gives every new group (all traffic to `0.0.0.0/0`).
    pub fn default_egress(group: &GroupId) -> Rule {
        Rule::new(
            RuleRef {
                address: group.to_string(),
                description: "AWS's default egress rule: all traffic to 0.0.0.0/0".into(),
            },
            RuleProtocol::All,
            0,
            65535,
            Peer::Cidr(Fact::Known(Cidr::ANY)),
        )
    }
}

/// A subnet.
#[derive(Debug, Clone, PartialEq)]
pub struct Subnet {
    pub id: SubnetId,
    pub vpc: Fact<String>,
    pub cidr: Fact<Cidr>,
    pub az: Option<Fact<String>>,
    pub map_public_ip: bool,
    pub tags: BTreeMap<String, Fact<String>>,
}

/// A VPC. Its main route table is `<vpc>#main-route-table` and holds only `local`.
#[derive(Debug, Clone, PartialEq)]
pub struct Vpc {
    pub id: String,
    pub cidr: Fact<Cidr>,
}

/// Where a route sends traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Within the VPC.
    Local,
    InternetGateway(String),
    NatGateway(String),
    VpcEndpoint(String),
    /// A gateway this stack does not declare, or an id known only after apply.
    Unknown(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Local => f.write_str("local"),
            Target::InternetGateway(g) => write!(f, "internet gateway {g}"),
            Target::NatGateway(g) => write!(f, "NAT gateway {g}"),
            Target::VpcEndpoint(e) => write!(f, "VPC endpoint {e}"),
            Target::Unknown(what) => write!(f, "({what})"),
        }
    }
}

/// A route: destination CIDR to target.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The declaring resource (the table's own id for `local`).
    pub source: String,
    pub destination: Fact<Cidr>,
    pub target: Target,
}

/// A route table. Gateway endpoints' routes are not listed here: see [`VpcEndpoint`].
#[derive(Debug, Clone, PartialEq)]
pub struct RouteTable {
    pub id: String,
    pub vpc: Fact<String>,
    /// The VPC's main table (used by subnets with no association).
    pub main: bool,
    pub routes: Vec<Route>,
}

/// A NAT gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct NatGateway {
    pub id: String,
    pub subnet: SubnetId,
    /// `public` connectivity (a private NAT gateway has no way to the internet).
    pub public: bool,
}

/// An internet gateway and the VPC it is attached to.
#[derive(Debug, Clone, PartialEq)]
pub struct InternetGateway {
    pub id: String,
    pub vpc: Option<Fact<String>>,
}

/// The kind of a VPC endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum EndpointKind {
    /// A route to the service's prefix list in each of these tables.
    Gateway { route_tables: Vec<String> },
    /// Network interfaces in these subnets with these groups.
    Interface {
        subnets: Vec<SubnetId>,
        groups: Vec<GroupId>,
        private_dns: bool,
    },
}

/// A VPC endpoint for `service` (`com.amazonaws.<region>.<service>`).
#[derive(Debug, Clone, PartialEq)]
pub struct VpcEndpoint {
    pub id: String,
    pub vpc: Fact<String>,
    pub service: Fact<String>,
    pub kind: EndpointKind,
}

/// An EKS cluster and the security group EKS creates for it.
#[derive(Debug, Clone, PartialEq)]
pub struct EksCluster {
    pub id: String,
    pub name: Fact<String>,
    pub subnets: Vec<SubnetId>,
    /// The declared `security_group_ids` (on the control plane's network interfaces).
    pub additional_groups: Vec<GroupId>,
    /// `<id>#cluster-security-group`.
    pub cluster_group: GroupId,
}

/// An EKS managed node group.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeGroup {
    pub id: String,
    /// The cluster's address.
    pub cluster: Fact<String>,
    pub subnets: Vec<SubnetId>,
    /// The launch template's address, when the group has one.
    pub launch_template: Option<Fact<String>>,
}

/// A launch template's security groups (empty: it names none).
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchTemplate {
    pub id: String,
    pub groups: Vec<GroupId>,
}

/// What traffic can reach: network interfaces with these groups, in any of these subnets
/// (a pod with the VPC CNI is an endpoint of its node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// For messages: `runner nodes`, `node group cluster/critical-nodes`.
    pub name: String,
    pub groups: Vec<GroupId>,
    pub subnets: Vec<SubnetId>,
    /// Takes a public IPv4 address where its subnet maps one.
    pub public_ip: bool,
}

/// The network declared by a stack: every VPC's groups, subnets, routes and gateways.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VpcModel {
    pub vpcs: BTreeMap<String, Vpc>,
    pub groups: BTreeMap<GroupId, SecurityGroup>,
    pub subnets: BTreeMap<SubnetId, Subnet>,
    pub route_tables: BTreeMap<String, RouteTable>,
    /// Subnet to route table (a subnet without one uses its VPC's main table).
    pub associations: BTreeMap<SubnetId, Fact<String>>,
    pub nat_gateways: BTreeMap<String, NatGateway>,
    pub internet_gateways: BTreeMap<String, InternetGateway>,
    pub endpoints: BTreeMap<String, VpcEndpoint>,
    pub launch_templates: BTreeMap<String, LaunchTemplate>,
    pub clusters: BTreeMap<String, EksCluster>,
    pub node_groups: BTreeMap<String, NodeGroup>,
    /// Rules whose group is known only after apply: they may belong to any group, so a
    /// path they could open is answered `Unknown`, never `Blocked`.
    pub unattached_rules: Vec<(Direction, Rule, String)>,
}

/// The id of `vpc`'s main route table.
pub fn main_route_table(vpc: &str) -> String {
    format!("{vpc}#main-route-table")
}

/// The id of the security group EKS creates for `cluster`.
pub fn cluster_security_group(cluster: &str) -> GroupId {
    GroupId(format!("{cluster}#cluster-security-group"))
}

impl VpcModel {
    /// A builder for hand-made models.
    pub fn builder() -> ModelBuilder {
        ModelBuilder::default()
    }

    /// Adds `vpc` and its main route table (only `local`).
    pub fn add_vpc(&mut self, vpc: Vpc) {
        let main = main_route_table(&vpc.id);
        self.route_tables.insert(
            main.clone(),
            RouteTable {
                id: main.clone(),
                vpc: Fact::Known(vpc.id.clone()),
                main: true,
                routes: vec![Route {
                    source: main,
                    destination: vpc.cidr.clone(),
                    target: Target::Local,
                }],
            },
        );
        self.vpcs.insert(vpc.id.clone(), vpc);
    }

    /// Adds a route table with its `local` route.
    pub fn add_route_table(&mut self, id: &str, vpc: Fact<String>) {
        let cidr = match &vpc {
            Fact::Known(v) => match self.vpcs.get(v) {
                Some(v) => v.cidr.clone(),
                None => Fact::Unknown(format!("the CIDR of VPC {v}, not declared here")),
            },
            Fact::Unknown(what) => Fact::Unknown(format!("the CIDR of the VPC {what}")),
        };
        self.route_tables.insert(
            id.to_string(),
            RouteTable {
                id: id.to_string(),
                vpc,
                main: false,
                routes: vec![Route {
                    source: id.to_string(),
                    destination: cidr,
                    target: Target::Local,
                }],
            },
        );
    }

    /// Adds the security group EKS creates for `cluster` (EKS user guide, "View Amazon EKS
    /// security group requirements for clusters": inbound all from itself, outbound all to
    /// 0.0.0.0/0 and to itself; tagged `kubernetes.io/cluster/<name>=owned` and
    /// `aws:eks:cluster-name=<name>`), and the cluster.
    pub fn add_cluster(&mut self, cluster: EksCluster) {
        let g = cluster.cluster_group.clone();
        let name = match &cluster.name {
            Fact::Known(n) => n.clone(),
            Fact::Unknown(what) => format!("({what})"),
        };
        let vpc = cluster
            .subnets
            .iter()
            .find_map(|s| self.subnets.get(s).map(|s| s.vpc.clone()))
            .unwrap_or_else(|| Fact::Unknown(format!("the VPC of cluster {}", cluster.id)));
        let eks = |description: &str| RuleRef {
            address: g.to_string(),
            description: format!("EKS default: {description}"),
        };
        let all = |source, peer| Rule::new(source, RuleProtocol::All, 0, 65535, peer);
        let own = || Peer::Group(Fact::Known(g.clone()));
        let group = SecurityGroup {
            id: g.clone(),
            name: Fact::Unknown(format!(
                "the name EKS gives the cluster security group of {}",
                cluster.id
            )),
            vpc,
            tags: BTreeMap::from([
                (format!("kubernetes.io/cluster/{name}"), Fact::Known("owned".into())),
                ("aws:eks:cluster-name".into(), cluster.name.clone()),
            ]),
            ingress: vec![all(eks("all traffic from itself"), own())],
            egress: vec![
                all(eks("all traffic to 0.0.0.0/0"), Peer::Cidr(Fact::Known(Cidr::ANY))),
                all(eks("all traffic to itself"), own()),
            ],
            external: false,
        };
        self.groups.insert(g, group);
        self.clusters.insert(cluster.id.clone(), cluster);
    }

    /// The EKS control plane's network interfaces: the cluster security group and the
    /// cluster's additional groups, in the cluster's subnets.
    pub fn control_plane(&self, cluster: &str) -> Result<Endpoint, NetworkModelError> {
        let c = self
            .clusters
            .get(cluster)
            .ok_or_else(|| NetworkModelError::NoSuchCluster(cluster.to_string()))?;
        let mut groups = vec![c.cluster_group.clone()];
        for g in &c.additional_groups {
            push_unique(&mut groups, g.clone());
        }
        Ok(Endpoint {
            name: format!("control plane of {cluster}"),
            groups,
            subnets: c.subnets.clone(),
            public_ip: false,
        })
    }

    /// A managed node group's nodes: the groups its launch template names, or else the
    /// cluster security group; in its subnets; taking a public IP where the subnet maps one
    /// (as EKS launches managed nodes).
    pub fn node_group(&self, node_group: &str) -> Result<Endpoint, NetworkModelError> {
        let ng = self
            .node_groups
            .get(node_group)
            .ok_or_else(|| NetworkModelError::NoSuchNodeGroup(node_group.to_string()))?;
        let unresolved = |why: String| NetworkModelError::UnresolvedNodeGroup {
            node_group: node_group.to_string(),
            why,
        };
        let template_groups = match &ng.launch_template {
            None => Vec::new(),
            Some(Fact::Known(lt)) => match self.launch_templates.get(lt) {
                Some(t) => t.groups.clone(),
                None => return Err(unresolved(format!("its launch template {lt} is not declared here"))),
            },
            Some(Fact::Unknown(what)) => return Err(unresolved(format!("its launch template is {what}"))),
        };
        let groups = if template_groups.is_empty() {
            let cluster = match &ng.cluster {
                Fact::Known(c) => c,
                Fact::Unknown(what) => return Err(unresolved(format!("its cluster is {what}"))),
            };
            let c = self
                .clusters
                .get(cluster)
                .ok_or_else(|| unresolved(format!("its cluster {cluster} is not declared here")))?;
            vec![c.cluster_group.clone()]
        } else {
            template_groups
        };
        Ok(Endpoint {
            name: format!("node group {node_group}"),
            groups,
            subnets: ng.subnets.clone(),
            public_ip: true,
        })
    }

    /// The nodes Karpenter launches for an EC2NodeClass (`ec2nodeclass_manifest`, the
    /// whole object or its `spec`): the groups and subnets its selector terms select.
    ///
    /// Terms are ORed, the fields of one term ANDed (Karpenter docs, "NodeClasses",
    /// `spec.securityGroupSelectorTerms` and `spec.subnetSelectorTerms`). Fields: `tags`
    /// (every tag must match; the value `*` matches any value), `id` (a literal id, or an
    /// output reference to a group's `id` / a cluster's `cluster_security_group_id` / a
    /// subnet's `id`) and, for groups, `name` (the group's `name` input). Terms with no
    /// filter are skipped, as Karpenter does. A literal `sg-...` id of a group not declared
    /// here is kept as a group with unknown rules. A tag whose value is known only after
    /// apply matches only the same output (or `*`).
    pub fn karpenter_nodes(&self, name: &str, ec2nodeclass_manifest: &Value) -> Result<Endpoint, NetworkModelError> {
        let spec = ec2nodeclass_manifest.get("spec").unwrap_or(ec2nodeclass_manifest);
        let terms = |field: &str| -> Result<&Vec<Value>, NetworkModelError> {
            spec.get(field)
                .and_then(Value::as_array)
                .ok_or_else(|| NetworkModelError::BadManifest {
                    name: name.to_string(),
                    problem: format!("spec.{field} is not a list of selector terms"),
                })
        };
        let sg_field = "securityGroupSelectorTerms";
        let sg_terms = terms(sg_field)?;
        let mut groups: Vec<GroupId> = Vec::new();
        let mut any_term = false;
        for (i, term) in sg_terms.iter().enumerate() {
            let fields = term_fields(name, sg_field, i, term, &["tags", "id", "name"])?;
            if fields.is_empty() {
                continue;
            }
            any_term = true;
            let mut matched = false;
            for g in self.groups.values() {
                if fields.iter().all(|(k, v)| self.group_field_matches(g, k, v)) {
                    push_unique(&mut groups, g.id.clone());
                    matched = true;
                }
            }
            // A literal id of a group this stack does not declare: kept, its rules unknown.
            if !matched
                && let [("id", Value::String(id))] = fields.as_slice()
                && id.starts_with("sg-")
            {
                push_unique(&mut groups, GroupId(id.clone()));
            }
        }
        if groups.is_empty() {
            return Err(nothing(name, sg_field, sg_terms, any_term, "security group"));
        }
        let sn_field = "subnetSelectorTerms";
        let sn_terms = terms(sn_field)?;
        let mut subnets: Vec<SubnetId> = Vec::new();
        let mut any_term = false;
        for (i, term) in sn_terms.iter().enumerate() {
            let fields = term_fields(name, sn_field, i, term, &["tags", "id"])?;
            if fields.is_empty() {
                continue;
            }
            any_term = true;
            let mut matched = false;
            for s in self.subnets.values() {
                if fields.iter().all(|(k, v)| Self::subnet_field_matches(s, k, v)) {
                    push_unique(&mut subnets, s.id.clone());
                    matched = true;
                }
            }
            if !matched
                && let [("id", Value::String(id))] = fields.as_slice()
                && id.starts_with("subnet-")
            {
                push_unique(&mut subnets, SubnetId(id.clone()));
            }
        }
        if subnets.is_empty() {
            return Err(nothing(name, sn_field, sn_terms, any_term, "subnet"));
        }
        Ok(Endpoint {
            name: name.to_string(),
            groups,
            subnets,
            public_ip: spec.get("associatePublicIPAddress").and_then(Value::as_bool) != Some(false),
        })
    }

    fn group_field_matches(&self, g: &SecurityGroup, key: &str, v: &Value) -> bool {
        match key {
            "tags" => tags_match(&g.tags, v),
            "name" => v.as_str().is_some_and(|n| g.name.known().is_some_and(|gn| gn == n)),
            "id" => self.selected_group(v).is_some_and(|id| id == g.id),
            _ => false,
        }
    }

    fn subnet_field_matches(s: &Subnet, key: &str, v: &Value) -> bool {
        match key {
            "tags" => tags_match(&s.tags, v),
            "id" => match reference(v) {
                Reference::Literal(id) => s.id.0 == id,
                Reference::Output(a, path) => matches!(path.as_str(), "id" | "$id" | "subnet_id") && s.id.0 == a,
                Reference::Opaque(_) => false,
            },
            _ => false,
        }
    }

    /// The group an `id` selector value names, when it names one of this model's groups.
    fn selected_group(&self, v: &Value) -> Option<GroupId> {
        match reference(v) {
            Reference::Literal(id) => Some(GroupId(id)),
            Reference::Output(a, path) => {
                let g = GroupId(a.clone());
                if matches!(path.as_str(), "id" | "$id" | "group_id") && self.groups.contains_key(&g) {
                    Some(g)
                } else if path == "cluster_security_group_id" {
                    self.clusters.get(&a).map(|c| c.cluster_group.clone())
                } else {
                    None
                }
            }
            Reference::Opaque(_) => None,
        }
    }
}

/// The filters of one selector term (an empty `tags` map is no filter).
fn term_fields<'v>(
    name: &str,
    field: &str,
    index: usize,
    term: &'v Value,
    supported: &[&str],
) -> Result<Vec<(&'v str, &'v Value)>, NetworkModelError> {
    let Some(m) = term.as_object() else {
        return Err(NetworkModelError::BadManifest {
            name: name.to_string(),
            problem: format!("spec.{field}[{index}] is not an object"),
        });
    };
    let mut out = Vec::with_capacity(m.len());
    for (k, v) in m {
        if !supported.contains(&k.as_str()) {
            return Err(NetworkModelError::UnsupportedSelector {
                name: name.to_string(),
                field: field.to_string(),
                index,
                key: k.clone(),
                supported: supported.join(", "),
            });
        }
        let empty =
            v.is_null() || v.as_str() == Some("") || (k == "tags" && v.as_object().is_some_and(|t| t.is_empty()));
        if !empty {
            out.push((k.as_str(), v));
        }
    }
    Ok(out)
}

fn nothing(name: &str, field: &str, terms: &[Value], any_term: bool, what: &str) -> NetworkModelError {
    let shown = serde_json::to_string(&value::redact(&Value::Array(terms.to_vec()))).unwrap_or_default();
    NetworkModelError::SelectorMatchesNothing {
        name: name.to_string(),
        field: field.to_string(),
        terms: if any_term {
            shown
        } else {
            format!("{shown} (no term has a filter)")
        },
        what: what.to_string(),
    }
}

/// Every tag of the selector `v` (an object) is on `tags` with the same value, or any
/// value for `*`.
fn tags_match(tags: &BTreeMap<String, Fact<String>>, v: &Value) -> bool {
    let Some(want) = v.as_object() else {
        return false;
    };
    want.iter().all(|(k, wv)| match tags.get(k) {
        None => false,
        Some(_) if wv.as_str() == Some("*") => true,
        Some(have) => &text_fact(wv) == have,
    })
}

pub(crate) fn push_unique<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

/// What an input value is, as far as references go.
pub(crate) enum Reference {
    /// A plain string (or a known value embedded in an expression).
    Literal(String),
    /// A plain reference to `path` of the resource at the address.
    Output(String, String),
    /// Anything else (a transform, a secret, a non-string): described for messages.
    Opaque(String),
}

pub(crate) fn reference(v: &Value) -> Reference {
    if let Some(s) = v.as_str() {
        return Reference::Literal(s.to_string());
    }
    match value::marker(v) {
        Some("output") => match OutputExpr::from_marker(v) {
            Some(OutputExpr::Ref { address, path }) => Reference::Output(address.as_str().to_string(), path),
            Some(OutputExpr::Known(Value::String(s))) => Reference::Literal(s),
            Some(e) => Reference::Opaque(describe(&e)),
            None => Reference::Opaque("an output reference".into()),
        },
        Some("secret") | Some("encrypted") => Reference::Opaque("a secret value".into()),
        Some(_) => Reference::Opaque("a value known after apply".into()),
        None if v.is_null() => Reference::Opaque("no value".into()),
        None => Reference::Opaque(v.to_string()),
    }
}

/// A stable description of an output expression (equal expressions describe equally).
pub(crate) fn describe(e: &OutputExpr) -> String {
    match e {
        OutputExpr::Ref { address, path } => format!("output `{path}` of {address}"),
        OutputExpr::Map { of, .. } => format!("a transform of {}", describe(of)),
        OutputExpr::All(items) => {
            let parts: Vec<String> = items.iter().map(describe).collect();
            format!("a list of [{}]", parts.join(", "))
        }
        OutputExpr::Known(v) => v.to_string(),
    }
}

/// A string input as a fact: known when literal, else described.
pub(crate) fn text_fact(v: &Value) -> Fact<String> {
    match reference(v) {
        Reference::Literal(s) => Fact::Known(s),
        Reference::Output(a, path) => Fact::Unknown(format!("output `{path}` of {a}")),
        Reference::Opaque(what) => Fact::Unknown(what),
    }
}

// ---------------------------------------------------------------- builder

/// Builds a [`VpcModel`] by hand (tests, and callers without a declared graph). Methods
/// take addresses as plain strings; `build` reports the first malformed CIDR.
#[derive(Debug, Default)]
pub struct ModelBuilder {
    model: VpcModel,
    error: Option<NetworkModelError>,
}

impl ModelBuilder {
    fn cidr(&mut self, what: &str, cidr: &str) -> Fact<Cidr> {
        match cidr.parse() {
            Ok(c) => Fact::Known(c),
            Err(problem) => {
                self.error.get_or_insert(NetworkModelError::BadInput {
                    address: what.to_string(),
                    kind: "builder".into(),
                    field: "cidr".into(),
                    problem,
                });
                Fact::Unknown(format!("malformed CIDR `{cidr}`"))
            }
        }
    }

    pub fn vpc(mut self, id: &str, cidr: &str) -> Self {
        let cidr = self.cidr(id, cidr);
        self.model.add_vpc(Vpc { id: id.into(), cidr });
        self
    }

    pub fn subnet(mut self, id: &str, vpc: &str, cidr: &str, map_public_ip: bool) -> Self {
        let cidr = self.cidr(id, cidr);
        self.model.subnets.insert(
            SubnetId::new(id),
            Subnet {
                id: SubnetId::new(id),
                vpc: Fact::Known(vpc.into()),
                cidr,
                az: None,
                map_public_ip,
                tags: BTreeMap::new(),
            },
        );
        self
    }

    /// A subnet whose CIDR is known only after apply.
    pub fn subnet_unknown_cidr(mut self, id: &str, vpc: &str) -> Self {
        self.model.subnets.insert(
            SubnetId::new(id),
            Subnet {
                id: SubnetId::new(id),
                vpc: Fact::Known(vpc.into()),
                cidr: Fact::Unknown(format!("the CIDR of {id}")),
                az: None,
                map_public_ip: false,
                tags: BTreeMap::new(),
            },
        );
        self
    }

    pub fn subnet_tag(mut self, subnet: &str, key: &str, value: &str) -> Self {
        if let Some(s) = self.model.subnets.get_mut(&SubnetId::new(subnet)) {
            s.tags.insert(key.into(), Fact::Known(value.into()));
        }
        self
    }

    /// A group with AWS's default egress rule, as `aws:ec2:SecurityGroup` keeps it.
    pub fn group(mut self, id: &str, vpc: &str) -> Self {
        let gid = GroupId::new(id);
        self.model.groups.insert(
            gid.clone(),
            SecurityGroup {
                id: gid.clone(),
                name: Fact::Unknown(format!("the generated name of {id}")),
                vpc: Fact::Known(vpc.into()),
                tags: BTreeMap::new(),
                ingress: Vec::new(),
                egress: vec![SecurityGroup::default_egress(&gid)],
                external: false,
            },
        );
        self
    }

    /// Drops a group's default egress rule (a group whose default rule was revoked).
    pub fn no_default_egress(mut self, group: &str) -> Self {
        if let Some(g) = self.model.groups.get_mut(&GroupId::new(group)) {
            g.egress.retain(|r| r.source.address != group);
        }
        self
    }

    pub fn group_name(mut self, group: &str, name: &str) -> Self {
        if let Some(g) = self.model.groups.get_mut(&GroupId::new(group)) {
            g.name = Fact::Known(name.into());
        }
        self
    }

    pub fn group_tag(mut self, group: &str, key: &str, value: &str) -> Self {
        if let Some(g) = self.model.groups.get_mut(&GroupId::new(group)) {
            g.tags.insert(key.into(), Fact::Known(value.into()));
        }
        self
    }

    /// A rule `address` on `group`; `from_port..=to_port` matter for tcp and udp only.
    pub fn rule(
        mut self,
        group: &str,
        direction: Direction,
        address: &str,
        protocol: RuleProtocol,
        ports: (u16, u16),
        peer: Peer,
    ) -> Self {
        let rule = Rule::new(
            RuleRef {
                address: address.into(),
                description: String::new(),
            },
            protocol,
            ports.0,
            ports.1,
            peer,
        );
        let rule = Rule {
            source: RuleRef {
                address: address.into(),
                description: rule.summary(direction),
            },
            ..rule
        };
        if let Some(g) = self.model.groups.get_mut(&GroupId::new(group)) {
            match direction {
                Direction::Ingress => g.ingress.push(rule),
                Direction::Egress => g.egress.push(rule),
            }
        }
        self
    }

    pub fn ingress(self, group: &str, address: &str, protocol: RuleProtocol, ports: (u16, u16), peer: Peer) -> Self {
        self.rule(group, Direction::Ingress, address, protocol, ports, peer)
    }

    pub fn egress(self, group: &str, address: &str, protocol: RuleProtocol, ports: (u16, u16), peer: Peer) -> Self {
        self.rule(group, Direction::Egress, address, protocol, ports, peer)
    }

    pub fn route_table(mut self, id: &str, vpc: &str) -> Self {
        self.model.add_route_table(id, Fact::Known(vpc.into()));
        self
    }

    pub fn route(mut self, table: &str, address: &str, destination: &str, target: Target) -> Self {
        let destination = self.cidr(address, destination);
        if let Some(t) = self.model.route_tables.get_mut(table) {
            t.routes.push(Route {
                source: address.into(),
                destination,
                target,
            });
        }
        self
    }

    pub fn associate(mut self, subnet: &str, table: &str) -> Self {
        self.model
            .associations
            .insert(SubnetId::new(subnet), Fact::Known(table.into()));
        self
    }

    /// An internet gateway attached to `vpc` (or to none).
    pub fn internet_gateway(mut self, id: &str, vpc: Option<&str>) -> Self {
        self.model.internet_gateways.insert(
            id.into(),
            InternetGateway {
                id: id.into(),
                vpc: vpc.map(|v| Fact::Known(v.into())),
            },
        );
        self
    }

    pub fn nat_gateway(mut self, id: &str, subnet: &str, public: bool) -> Self {
        self.model.nat_gateways.insert(
            id.into(),
            NatGateway {
                id: id.into(),
                subnet: SubnetId::new(subnet),
                public,
            },
        );
        self
    }

    pub fn gateway_endpoint(mut self, id: &str, vpc: &str, service: &str, route_tables: &[&str]) -> Self {
        self.model.endpoints.insert(
            id.into(),
            VpcEndpoint {
                id: id.into(),
                vpc: Fact::Known(vpc.into()),
                service: Fact::Known(service.into()),
                kind: EndpointKind::Gateway {
                    route_tables: route_tables.iter().map(|t| t.to_string()).collect(),
                },
            },
        );
        self
    }

    pub fn interface_endpoint(
        mut self,
        id: &str,
        vpc: &str,
        service: &str,
        subnets: &[&str],
        groups: &[&str],
        private_dns: bool,
    ) -> Self {
        self.model.endpoints.insert(
            id.into(),
            VpcEndpoint {
                id: id.into(),
                vpc: Fact::Known(vpc.into()),
                service: Fact::Known(service.into()),
                kind: EndpointKind::Interface {
                    subnets: subnets.iter().map(|s| SubnetId::new(*s)).collect(),
                    groups: groups.iter().map(|g| GroupId::new(*g)).collect(),
                    private_dns,
                },
            },
        );
        self
    }

    /// An EKS cluster named `name` (and its cluster security group); add its subnets first.
    pub fn cluster(mut self, id: &str, name: &str, subnets: &[&str], additional_groups: &[&str]) -> Self {
        self.model.add_cluster(EksCluster {
            id: id.into(),
            name: Fact::Known(name.into()),
            subnets: subnets.iter().map(|s| SubnetId::new(*s)).collect(),
            additional_groups: additional_groups.iter().map(|g| GroupId::new(*g)).collect(),
            cluster_group: cluster_security_group(id),
        });
        self
    }

    pub fn launch_template(mut self, id: &str, groups: &[&str]) -> Self {
        self.model.launch_templates.insert(
            id.into(),
            LaunchTemplate {
                id: id.into(),
                groups: groups.iter().map(|g| GroupId::new(*g)).collect(),
            },
        );
        self
    }

    pub fn node_group(mut self, id: &str, cluster: &str, subnets: &[&str], launch_template: Option<&str>) -> Self {
        self.model.node_groups.insert(
            id.into(),
            NodeGroup {
                id: id.into(),
                cluster: Fact::Known(cluster.into()),
                subnets: subnets.iter().map(|s| SubnetId::new(*s)).collect(),
                launch_template: launch_template.map(|t| Fact::Known(t.into())),
            },
        );
        self
    }

    pub fn build(self) -> Result<VpcModel, NetworkModelError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.model),
        }
    }
}
