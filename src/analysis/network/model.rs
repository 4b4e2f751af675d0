//! The model's data: security groups and their rules, subnets, route tables, gateways and
//! endpoints, EKS clusters and node groups, and the [`VpcModel`] holding them (its
//! endpoints are in `endpoints.rs`, its builder in `builder.rs`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde_json::Value;

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

/// Every tag of the selector `v` (an object) is on `tags` with the same value, or any
/// value for `*`.
pub(super) fn tags_match(tags: &BTreeMap<String, Fact<String>>, v: &Value) -> bool {
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
    // Markers first: a plain reference is a string too.
    match value::marker(v) {
        Some("output") => match OutputExpr::from_marker(v) {
            Some(OutputExpr::Ref { address, path }) => Reference::Output(address.as_str().to_string(), path),
            Some(OutputExpr::Known(Value::String(s))) => Reference::Literal(s),
            Some(e) => Reference::Opaque(describe(&e)),
            None => Reference::Opaque("an output reference".into()),
        },
        Some("secret") | Some("encrypted") => Reference::Opaque("a secret value".into()),
        Some(_) => Reference::Opaque("a value known after apply".into()),
        None => match v {
            Value::String(s) => Reference::Literal(s.clone()),
            Value::Null => Reference::Opaque("no value".into()),
            other => Reference::Opaque(other.to_string()),
        },
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
