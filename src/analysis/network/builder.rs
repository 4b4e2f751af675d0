//! The programmatic builder of a [`VpcModel`], for tests and for callers without a declared
//! graph.

use super::NetworkModelError;
use std::collections::BTreeMap;

use super::model::*;

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
