//! Reading a [`VpcModel`] from the objects of a network, by their kind strings and the
//! input field names of the AWS kinds (`src/aws/ec2`, `src/aws/eks`): declared resources
//! ([`VpcModel::from_declared`]), objects read from the cloud by lookups
//! ([`VpcModel::from_reads`]: an existing VPC's), or both at once
//! ([`VpcModel::from_objects`]).
//!
//! Rules kept here: references are read with [`crate::value`]'s helpers; a plain
//! reference to a declared resource's id (`id`, `$id`, or the kind's own name for it)
//! resolves to that resource, a cluster's `cluster_security_group_id` to the group EKS
//! creates, a VPC's `main_route_table_id` to its main table; a literal id names the object
//! of that id when the model holds one (a read object's id is its cloud id), else something
//! this stack does not declare; anything else (a transform, a secret) is unknown, kept
//! with its description. Every declared group keeps AWS's default egress rule, because
//! `aws:ec2:SecurityGroup` never revokes it; rules are separate `SecurityGroupRule`s. A
//! read object is taken as the cloud has it: a group has exactly the rules read, a route
//! table exactly the routes read (a route to a target the model has no kind for, such as
//! peering or a transit gateway, is unknown), a subnet with no association uses the table
//! its VPC names as main, and a cluster's security group is the one EKS reports.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::NetworkModelError;
use super::model::{
    Cidr, Direction, EksCluster, EndpointKind, Fact, GroupId, InternetGateway, LaunchTemplate, NatGateway, NodeGroup,
    Peer, Reference, Route, Rule, RuleProtocol, RuleRef, SecurityGroup, Subnet, SubnetId, Target, Vpc, VpcEndpoint,
    VpcModel, cluster_security_group, main_route_table, reference, text_fact,
};
use crate::graph::DesiredResource;
use crate::provider::ReadResult;
use crate::value::OutputExpr;

const VPC: &str = "aws:ec2:Vpc";
const SUBNET: &str = "aws:ec2:Subnet";
const GROUP: &str = "aws:ec2:SecurityGroup";
const RULE: &str = "aws:ec2:SecurityGroupRule";
const TABLE: &str = "aws:ec2:RouteTable";
const ROUTE: &str = "aws:ec2:Route";
const ASSOCIATION: &str = "aws:ec2:RouteTableAssociation";
const IGW: &str = "aws:ec2:InternetGateway";
const NAT: &str = "aws:ec2:NatGateway";
const ENDPOINT: &str = "aws:ec2:VpcEndpoint";
const TEMPLATE: &str = "aws:ec2:LaunchTemplate";
const CLUSTER: &str = "aws:eks:Cluster";
const NODEGROUP: &str = "aws:eks:Nodegroup";

/// One object a model is read from: a declared resource (named by its address, its
/// inputs may hold references) or an object a lookup read (named by its cloud id, with
/// the inputs and outputs its kind read back).
#[derive(Debug, Clone, Copy)]
pub struct NetObject<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub inputs: &'a Value,
    /// The outputs read from the cloud; `None` for a declared resource.
    pub read: Option<&'a Value>,
}

impl<'a> NetObject<'a> {
    pub fn declared(r: &'a DesiredResource) -> Self {
        NetObject {
            id: r.address.as_str(),
            kind: &r.kind,
            inputs: &r.inputs,
            read: None,
        }
    }

    /// An object of `kind` as a lookup read it.
    pub fn read(kind: &'a str, r: &'a ReadResult) -> Self {
        NetObject {
            id: &r.id,
            kind,
            inputs: &r.inputs,
            read: Some(&r.outputs),
        }
    }
}

impl VpcModel {
    /// Reads the network kinds among `resources` (other kinds are ignored). Values known
    /// only after apply are kept as [`Fact::Unknown`]; malformed inputs (a CIDR that does
    /// not parse, a rule with no or two peers, a bad port range) are errors.
    pub fn from_declared(resources: &[DesiredResource]) -> Result<VpcModel, NetworkModelError> {
        let objects: Vec<NetObject<'_>> = resources.iter().map(NetObject::declared).collect();
        Self::from_objects(&objects)
    }

    /// Reads the network that lookups found: each object with its kind (an existing
    /// VPC's subnets, route tables, routes, associations, gateways, endpoints, groups and
    /// their rules, its cluster and node groups, their launch templates).
    pub fn from_reads(reads: &[(&str, &ReadResult)]) -> Result<VpcModel, NetworkModelError> {
        let objects: Vec<NetObject<'_>> = reads.iter().map(|(kind, r)| NetObject::read(kind, r)).collect();
        Self::from_objects(&objects)
    }

    /// Reads declared and read objects together (see the module's rules for each).
    pub fn from_objects(objects: &[NetObject<'_>]) -> Result<VpcModel, NetworkModelError> {
        let cx = Cx {
            kinds: objects.iter().map(|r| (r.id, r.kind)).collect(),
        };
        let of = |kind: &'static str| objects.iter().filter(move |r| r.kind == kind).map(|o| Res(*o));
        let mut m = VpcModel::default();

        for r in of(VPC) {
            let cidr = r.cidr("cidr_block")?;
            m.add_vpc(Vpc { id: r.address(), cidr });
        }
        for r in of(SUBNET) {
            let id = SubnetId(r.address());
            m.subnets.insert(
                id.clone(),
                Subnet {
                    id,
                    vpc: cx.vpc(r.get("vpc_id")),
                    cidr: r.cidr("cidr_block")?,
                    az: r.get("availability_zone").map(text_fact),
                    map_public_ip: r.flag("map_public_ip_on_launch", false),
                    tags: r.tags(),
                },
            );
        }
        for r in of(GROUP) {
            let id = GroupId(r.address());
            let name = match r.get("name") {
                Some(v) => text_fact(v),
                None => Fact::Unknown(format!("the name spar generates for {id}")),
            };
            // A read group's rules, the default egress one included if it is still
            // there, are read as `SecurityGroupRule`s.
            let egress = match r.is_read() {
                true => Vec::new(),
                false => vec![SecurityGroup::default_egress(&id)],
            };
            m.groups.insert(
                id.clone(),
                SecurityGroup {
                    egress,
                    id,
                    name,
                    vpc: cx.vpc(r.get("vpc_id")),
                    tags: r.tags(),
                    ingress: Vec::new(),
                    external: false,
                },
            );
        }
        for r in of(TABLE) {
            m.add_route_table(&r.address(), cx.vpc(r.get("vpc_id")));
            if r.is_read() {
                // Its `local` route is read with the others.
                if let Some(t) = m.route_tables.get_mut(&r.address()) {
                    t.routes.clear();
                }
            }
        }
        for r in of(IGW) {
            m.internet_gateways.insert(
                r.address(),
                InternetGateway {
                    id: r.address(),
                    vpc: r.get("vpc_id").map(|v| cx.vpc(Some(v))),
                },
            );
        }
        for r in of(NAT) {
            let public = r.get("connectivity_type").and_then(Value::as_str).unwrap_or("public") == "public";
            m.nat_gateways.insert(
                r.address(),
                NatGateway {
                    id: r.address(),
                    subnet: cx.subnet(r.get("subnet_id")),
                    public,
                },
            );
        }
        for r in of(TEMPLATE) {
            m.launch_templates.insert(
                r.address(),
                LaunchTemplate {
                    id: r.address(),
                    groups: r.items("security_group_ids").iter().map(|v| cx.group_id(v)).collect(),
                },
            );
        }
        for r in of(ENDPOINT) {
            // `aws:ec2:VpcEndpoint` declares gateway endpoints; interface fields are read
            // when present (AWS's names), so hand-written inputs can model them.
            let interface = r
                .get("vpc_endpoint_type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("interface"));
            let kind = if interface {
                EndpointKind::Interface {
                    subnets: r.items("subnet_ids").iter().map(|v| cx.subnet(Some(v))).collect(),
                    groups: r.items("security_group_ids").iter().map(|v| cx.group_id(v)).collect(),
                    private_dns: r.flag("private_dns_enabled", true),
                }
            } else {
                let route_tables = r
                    .items("route_table_ids")
                    .iter()
                    .filter_map(|v| cx.route_table(v).known().cloned())
                    .collect();
                EndpointKind::Gateway { route_tables }
            };
            m.endpoints.insert(
                r.address(),
                VpcEndpoint {
                    id: r.address(),
                    vpc: cx.vpc(r.get("vpc_id")),
                    service: r
                        .get("service_name")
                        .map(text_fact)
                        .unwrap_or(Fact::Unknown("no service".into())),
                    kind,
                },
            );
        }
        for r in of(CLUSTER) {
            let id = r.address();
            let name = match r.get("name") {
                Some(v) => text_fact(v),
                None => Fact::Unknown(format!("the name spar generates for {id}")),
            };
            // A read cluster's group is the one EKS reports; when that group was read
            // too, its rules are the ones read, not EKS's defaults.
            let cluster_group = match r.output("cluster_security_group_id").and_then(Value::as_str) {
                Some(g) => GroupId(g.to_string()),
                None => cluster_security_group(&id),
            };
            m.add_cluster(EksCluster {
                name,
                subnets: r.items("subnet_ids").iter().map(|v| cx.subnet(Some(v))).collect(),
                additional_groups: r.items("security_group_ids").iter().map(|v| cx.group_id(v)).collect(),
                cluster_group,
                id,
            });
        }

        for r in of(RULE) {
            cx.rule(&r, &mut m)?;
        }
        for r in of(ROUTE) {
            let table = cx.route_table(r.get("route_table_id").unwrap_or(&Value::Null));
            let target = match (r.get("gateway_id"), r.get("nat_gateway_id")) {
                (Some(g), None) => cx.gateway(g),
                (None, Some(n)) => cx.nat(n),
                (None, None) if r.is_read() => Target::Unknown(format!(
                    "route {} goes to a target this analysis does not model (peering, transit gateway, instance)",
                    r.address()
                )),
                _ => {
                    return Err(r.bad(
                        "gateway_id",
                        "a route needs exactly one target: gateway_id or nat_gateway_id",
                    ));
                }
            };
            let destination = r.cidr("destination_cidr_block")?;
            // A route in a table this stack does not declare only matters to subnets
            // associated with that table, whose routes are unknown anyway.
            if let Some(t) = table.known().and_then(|t| m.route_tables.get_mut(t)) {
                t.routes.push(Route {
                    source: r.address(),
                    destination,
                    target,
                });
            }
        }
        for r in of(ASSOCIATION) {
            let table = cx.route_table(r.get("route_table_id").unwrap_or(&Value::Null));
            let subnet = cx.subnet(r.get("subnet_id"));
            if let Some(first) = m.associations.get(&subnet) {
                return Err(NetworkModelError::DuplicateAssociation {
                    subnet: subnet.to_string(),
                    first: first.to_string(),
                    second: table.to_string(),
                });
            }
            m.associations.insert(subnet, table);
        }
        // A read VPC names its main table: its subnets without an association use it.
        for r in of(VPC).filter(|r| r.is_read()) {
            let vpc = r.address();
            let main = match r.output("main_route_table_id").and_then(Value::as_str) {
                Some(t) if m.route_tables.contains_key(t) => Fact::Known(t.to_string()),
                Some(t) => Fact::Unknown(format!("main route table {t} of {vpc}, not read")),
                None => Fact::Unknown(format!("the main route table of {vpc}, not read")),
            };
            if let Fact::Known(t) = &main
                && let Some(table) = m.route_tables.get_mut(t)
            {
                table.main = true;
            }
            m.route_tables.remove(&main_route_table(&vpc));
            let unassociated: Vec<SubnetId> = m
                .subnets
                .values()
                .filter(|s| s.vpc.known() == Some(&vpc) && !m.associations.contains_key(&s.id))
                .map(|s| s.id.clone())
                .collect();
            for s in unassociated {
                m.associations.insert(s, main.clone());
            }
        }
        for r in of(NODEGROUP) {
            let cluster = match reference(r.get("cluster_name").unwrap_or(&Value::Null)) {
                Reference::Output(a, _) if cx.kind(&a) == Some(CLUSTER) => Fact::Known(a),
                Reference::Literal(name) => match m.clusters.values().find(|c| c.name.known() == Some(&name)) {
                    Some(c) => Fact::Known(c.id.clone()),
                    None => Fact::Unknown(format!("cluster `{name}`, not declared here")),
                },
                Reference::Output(a, path) => Fact::Unknown(format!("output `{path}` of {a}")),
                Reference::Opaque(what) => Fact::Unknown(what),
            };
            let launch_template = r
                .get("launch_template")
                .map(|lt| cx.template(lt.get("id").unwrap_or(&Value::Null)));
            m.node_groups.insert(
                r.address(),
                NodeGroup {
                    id: r.address(),
                    cluster,
                    subnets: r.items("subnet_ids").iter().map(|v| cx.subnet(Some(v))).collect(),
                    launch_template,
                },
            );
        }
        Ok(m)
    }
}

/// One object's inputs (and outputs, when read).
#[derive(Clone, Copy)]
struct Res<'a>(NetObject<'a>);

impl<'a> Res<'a> {
    fn address(&self) -> String {
        self.0.id.to_string()
    }

    fn is_read(&self) -> bool {
        self.0.read.is_some()
    }

    /// The input `field`, unless absent or null.
    fn get(&self, field: &str) -> Option<&'a Value> {
        self.0.inputs.get(field).filter(|v| !v.is_null())
    }

    /// The read output `field` (none for a declared resource).
    fn output(&self, field: &str) -> Option<&'a Value> {
        self.0.read.and_then(|o| o.get(field)).filter(|v| !v.is_null())
    }

    fn bad(&self, field: &str, problem: impl Into<String>) -> NetworkModelError {
        NetworkModelError::BadInput {
            address: self.address(),
            kind: self.0.kind.to_string(),
            field: field.to_string(),
            problem: problem.into(),
        }
    }

    fn flag(&self, field: &str, default: bool) -> bool {
        self.get(field).and_then(Value::as_bool).unwrap_or(default)
    }

    fn cidr(&self, field: &str) -> Result<Fact<Cidr>, NetworkModelError> {
        match reference(self.get(field).unwrap_or(&Value::Null)) {
            Reference::Literal(s) => s.parse().map(Fact::Known).map_err(|p: String| self.bad(field, p)),
            Reference::Output(a, path) => Ok(Fact::Unknown(format!("output `{path}` of {a}"))),
            Reference::Opaque(what) => Ok(Fact::Unknown(what)),
        }
    }

    fn tags(&self) -> BTreeMap<String, Fact<String>> {
        match self.get("tags").and_then(Value::as_object) {
            Some(m) => m.iter().map(|(k, v)| (k.clone(), text_fact(v))).collect(),
            None => BTreeMap::new(),
        }
    }

    /// The elements of a list input: an array, or an output expression listing several
    /// outputs; a list known only after apply as a whole is one unknown element.
    fn items(&self, field: &str) -> Vec<Value> {
        match self.get(field) {
            None => Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(v) => match OutputExpr::from_marker(v) {
                Some(OutputExpr::All(items)) => items.iter().map(OutputExpr::to_value).collect(),
                Some(OutputExpr::Known(Value::Array(a))) => a,
                _ => vec![v.clone()],
            },
        }
    }
}

/// Resolution of references against the declared kinds.
struct Cx<'a> {
    kinds: HashMap<&'a str, &'a str>,
}

fn unknown(r: Reference) -> String {
    match r {
        Reference::Literal(s) => format!("`{s}`, not declared here"),
        Reference::Output(a, path) => format!("output `{path}` of {a}"),
        Reference::Opaque(what) => what,
    }
}

impl Cx<'_> {
    fn kind(&self, address: &str) -> Option<&str> {
        self.kinds.get(address).copied()
    }

    /// The resource at `address` when it is of `kind` and `path` is one of its id outputs.
    fn id_of(&self, address: &str, path: &str, kind: &str, own: &str) -> bool {
        self.kind(address) == Some(kind) && (path == "id" || path == "$id" || path == own)
    }

    fn vpc(&self, v: Option<&Value>) -> Fact<String> {
        match reference(v.unwrap_or(&Value::Null)) {
            Reference::Literal(s) => Fact::Known(s),
            Reference::Output(a, path) if self.id_of(&a, &path, VPC, "vpc_id") => Fact::Known(a),
            // Another resource's `vpc_id` output (a subnet's, a group's): the same VPC.
            Reference::Output(a, path) if path == "vpc_id" => Fact::Unknown(format!("the VPC of {a}")),
            other => Fact::Unknown(unknown(other)),
        }
    }

    fn group(&self, v: &Value) -> Fact<GroupId> {
        match reference(v) {
            Reference::Literal(s) => Fact::Known(GroupId(s)),
            Reference::Output(a, path) if self.id_of(&a, &path, GROUP, "group_id") => Fact::Known(GroupId(a)),
            Reference::Output(a, path) if path == "cluster_security_group_id" && self.kind(&a) == Some(CLUSTER) => {
                Fact::Known(cluster_security_group(&a))
            }
            other => Fact::Unknown(unknown(other)),
        }
    }

    /// A group of an endpoint: an unknown one gets its description as id, in parentheses.
    fn group_id(&self, v: &Value) -> GroupId {
        match self.group(v) {
            Fact::Known(g) => g,
            Fact::Unknown(what) => GroupId(format!("({what})")),
        }
    }

    fn subnet(&self, v: Option<&Value>) -> SubnetId {
        match reference(v.unwrap_or(&Value::Null)) {
            Reference::Literal(s) => SubnetId(s),
            Reference::Output(a, path) if self.id_of(&a, &path, SUBNET, "subnet_id") => SubnetId(a),
            other => SubnetId(format!("({})", unknown(other))),
        }
    }

    fn route_table(&self, v: &Value) -> Fact<String> {
        match reference(v) {
            Reference::Literal(s) => Fact::Known(s),
            Reference::Output(a, path) if self.id_of(&a, &path, TABLE, "route_table_id") => Fact::Known(a),
            Reference::Output(a, path) if path == "main_route_table_id" && self.kind(&a) == Some(VPC) => {
                Fact::Known(main_route_table(&a))
            }
            other => Fact::Unknown(unknown(other)),
        }
    }

    fn template(&self, v: &Value) -> Fact<String> {
        match reference(v) {
            Reference::Output(a, path) if self.id_of(&a, &path, TEMPLATE, "template_id") => Fact::Known(a),
            Reference::Literal(s) => Fact::Known(s),
            other => Fact::Unknown(unknown(other)),
        }
    }

    /// A route's `gateway_id`: an internet gateway or a gateway endpoint.
    fn gateway(&self, v: &Value) -> Target {
        match reference(v) {
            Reference::Literal(s) if s == "local" => Target::Local,
            Reference::Literal(s) if self.kind(&s) == Some(IGW) => Target::InternetGateway(s),
            Reference::Literal(s) if self.kind(&s) == Some(ENDPOINT) => Target::VpcEndpoint(s),
            Reference::Output(a, path) if self.id_of(&a, &path, IGW, "gateway_id") => Target::InternetGateway(a),
            Reference::Output(a, path) if self.id_of(&a, &path, ENDPOINT, "endpoint_id") => Target::VpcEndpoint(a),
            other => Target::Unknown(unknown(other)),
        }
    }

    fn nat(&self, v: &Value) -> Target {
        match reference(v) {
            Reference::Literal(s) if self.kind(&s) == Some(NAT) => Target::NatGateway(s),
            Reference::Output(a, path) if self.id_of(&a, &path, NAT, "nat_gateway_id") => Target::NatGateway(a),
            other => Target::Unknown(unknown(other)),
        }
    }

    fn rule(&self, r: &Res<'_>, m: &mut VpcModel) -> Result<(), NetworkModelError> {
        let direction = match r.get("type").and_then(Value::as_str) {
            Some("ingress") => Direction::Ingress,
            Some("egress") => Direction::Egress,
            other => {
                return Err(r.bad("type", format!("is {other:?}; it must be \"ingress\" or \"egress\"")));
            }
        };
        let text = r.get("protocol").and_then(Value::as_str).unwrap_or("-1");
        let protocol = RuleProtocol::parse(text).ok_or_else(|| {
            r.bad(
                "protocol",
                format!("`{text}` is not -1, tcp, udp, icmp or a protocol number"),
            )
        })?;
        let (from_port, to_port) = match protocol {
            RuleProtocol::Tcp | RuleProtocol::Udp => {
                let port = |f: &str| r.get(f).and_then(Value::as_i64).and_then(|p| u16::try_from(p).ok());
                match (port("from_port"), port("to_port")) {
                    (Some(a), Some(b)) if a <= b => (a, b),
                    _ => {
                        return Err(r.bad(
                            "from_port",
                            format!(
                                "from_port {} and to_port {} are not a port range (0-65535, from <= to)",
                                r.get("from_port").unwrap_or(&Value::Null),
                                r.get("to_port").unwrap_or(&Value::Null)
                            ),
                        ));
                    }
                }
            }
            _ => (0, 65535),
        };
        let peer = match (r.get("cidr_ipv4"), r.get("source_security_group_id")) {
            (Some(_), None) => Peer::Cidr(r.cidr("cidr_ipv4")?),
            (None, Some(g)) => Peer::Group(self.group(g)),
            // A read rule to an IPv6 range or a prefix list: not modelled (see the
            // analysis's limits), so it allows nothing here.
            (None, None) if r.is_read() => return Ok(()),
            _ => {
                return Err(r.bad(
                    "cidr_ipv4",
                    "a rule needs exactly one of cidr_ipv4 and source_security_group_id",
                ));
            }
        };
        let mut rule = Rule::new(
            RuleRef {
                address: r.address(),
                description: String::new(),
            },
            protocol,
            from_port,
            to_port,
            peer,
        );
        rule.source.description = match r.get("description").and_then(Value::as_str) {
            Some(d) if !d.is_empty() => d.to_string(),
            _ => rule.summary(direction),
        };
        match self.group(r.get("security_group_id").unwrap_or(&Value::Null)) {
            Fact::Known(g) => {
                // A literal id: a group this stack does not declare, with other rules unknown.
                let group = m.groups.entry(g.clone()).or_insert_with(|| SecurityGroup {
                    name: Fact::Unknown(format!("the name of {g}")),
                    vpc: Fact::Unknown(format!("the VPC of {g}")),
                    id: g,
                    tags: BTreeMap::new(),
                    ingress: Vec::new(),
                    egress: Vec::new(),
                    external: true,
                });
                match direction {
                    Direction::Ingress => group.ingress.push(rule),
                    Direction::Egress => group.egress.push(rule),
                }
            }
            Fact::Unknown(what) => m.unattached_rules.push((direction, rule, what)),
        }
        Ok(())
    }
}
