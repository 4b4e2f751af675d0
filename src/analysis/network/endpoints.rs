//! Where the questions start and end: a [`VpcModel`]'s endpoints (an EKS control plane, a
//! managed node group, the nodes of a Karpenter EC2NodeClass, resolved through its
//! selector terms) and the adds that keep the model whole (a VPC with its main route table,
//! a cluster with its cluster security group).

use super::NetworkModelError;
use crate::value;
use serde_json::Value;
use std::collections::BTreeMap;

use super::builder::ModelBuilder;
use super::model::*;

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
        // A group already in the model was read from the cloud: its rules are the real ones.
        self.groups.entry(g).or_insert(group);
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
