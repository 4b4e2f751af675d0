//! `network-paths`: every path the platform needs is open in the declared VPC
//! (`spar::analysis::network`), from the node shapes the stack declares and the nodes its
//! workloads land on (the placement analysis):
//!
//! - DNS, udp/53 and tcp/53, from every node shape to every shape CoreDNS may run on;
//! - the control plane to kubelet (tcp/10250) on every node shape;
//! - every node shape to the control plane (tcp/443);
//! - the control plane to each admission webhook's pod port, on the shapes its pods run on
//!   (cert-manager's; the summerwind controller's; Karpenter 1.14 and ARC's scale-set
//!   controller run none);
//! - runner nodes (runners and the engine) to the internet on tcp/443 (GitHub, image
//!   registries, Dagger Cloud);
//! - Karpenter's controller to the AWS APIs it calls (ec2, ssm, sqs, sts, eks: Karpenter's
//!   private-cluster guide), through an endpoint or NAT.

use serde_json::Value;
use spar::analysis::network::{Endpoint, Protocol, Reach, VpcModel, Way};
use spar::analysis::scheduling::ShapeKind;
use spar::graph::DesiredResource;

use super::placement::Analysis;
use super::workloads::Role;
use super::{Ctx, EksDeclared, Verdict};

/// The AWS APIs Karpenter's controller calls.
pub const KARPENTER_SERVICES: [&str; 5] = ["ec2", "ssm", "sqs", "sts", "eks"];

fn short(r: &Reach) -> String {
    match r {
        Reach::Allowed { egress, ingress } => format!("egress {}, ingress {}", egress.address, ingress.address),
        Reach::Routed { ways, .. } => {
            let mut via: Vec<String> = ways
                .iter()
                .map(|w| match w {
                    Way::Nat { nat_gateway, .. } => format!("NAT {nat_gateway}"),
                    Way::PublicIp { internet_gateway, .. } => format!("public IP, {internet_gateway}"),
                    Way::GatewayEndpoint { endpoint, .. } | Way::InterfaceEndpoint { endpoint } => {
                        format!("endpoint {endpoint}")
                    }
                })
                .collect();
            via.sort();
            via.dedup();
            format!("via {}", via.join(", "))
        }
        other => other.to_string(),
    }
}

/// Where a node shape's nodes sit in the network model.
#[derive(Debug, Clone)]
pub(super) enum ShapeSource {
    /// A managed node group: its id in the model (a declared group's address, a looked-up
    /// one's `cluster:name`), or why it is not there.
    NodeGroup(Result<String, String>),
    /// A Karpenter NodePool: the EC2NodeClass manifest its nodes are launched from, or why
    /// there is none.
    NodePool(Result<Value, String>),
}

/// The paths `network-paths` asks about, from where the workloads land: made from the
/// declarations (and, on an existing cluster, the node group read when planning), then
/// judged against a network model (declared, or read by lookups).
#[derive(Debug, Clone)]
pub(super) struct Questions {
    shapes: Vec<(String, ShapeSource)>,
    dns_hosts: Vec<String>,
    /// Each admission webhook: its owner, port and the shapes its pods run on.
    webhooks: Vec<(String, u16, Vec<String>)>,
    /// The NodePool shapes: runner nodes, which need the internet.
    pools: Vec<String>,
    karpenter_hosts: Vec<String>,
    region: String,
}

/// The EC2NodeClass manifest each NodePool of `resources` names, by pool name.
pub(super) fn node_classes(resources: &[DesiredResource]) -> Vec<(String, Result<Value, String>)> {
    let manifests: Vec<&Value> = resources
        .iter()
        .filter(|r| !r.lookup)
        .map(|r| &r.inputs["manifest"])
        .collect();
    manifests
        .iter()
        .filter(|m| m["kind"] == "NodePool")
        .map(|pool| {
            let name = pool["metadata"]["name"].as_str().unwrap_or_default().to_string();
            let class = pool["spec"]["template"]["spec"]["nodeClassRef"]["name"].as_str();
            let manifest = class
                .and_then(|n| {
                    manifests
                        .iter()
                        .find(|m| m["kind"] == "EC2NodeClass" && m["metadata"]["name"] == n)
                })
                .map(|m| (*m).clone())
                .ok_or_else(|| {
                    format!("NodePool {name} names EC2NodeClass {class:?}, which the stack does not declare")
                });
            (name, manifest)
        })
        .collect()
}

impl Questions {
    /// The questions where `a` places the workloads; `node_group` gives a managed node
    /// group's id in the model from its name; `classes` is [`node_classes`].
    pub(super) fn new(
        a: &Analysis,
        classes: &[(String, Result<Value, String>)],
        region: &str,
        node_group: impl Fn(&str) -> Result<String, String>,
    ) -> Questions {
        let shapes = a
            .gathered
            .shapes
            .iter()
            .map(|shape| {
                let source = match shape.kind {
                    ShapeKind::ManagedNodeGroup => ShapeSource::NodeGroup(node_group(&shape.name)),
                    ShapeKind::NodePool => ShapeSource::NodePool(
                        classes
                            .iter()
                            .find(|(n, _)| n == &shape.name)
                            .map(|(_, m)| m.clone())
                            .unwrap_or_else(|| Err(format!("NodePool {} is not declared", shape.name))),
                    ),
                };
                (shape.name.clone(), source)
            })
            .collect();
        let hosts_of = |pred: &dyn Fn(&super::workloads::Workload) -> bool| -> Vec<String> {
            let mut hs: Vec<String> = a
                .gathered
                .workloads
                .iter()
                .filter(|w| pred(w))
                .flat_map(|w| a.hosts(w))
                .collect();
            hs.sort();
            hs.dedup();
            hs
        };
        Questions {
            shapes,
            dns_hosts: hosts_of(&|w| w.template.owner == "Deployment kube-system/coredns"),
            webhooks: a
                .gathered
                .workloads
                .iter()
                .filter_map(|w| Some((w.template.owner.clone(), w.webhook_port?, a.hosts(w))))
                .collect(),
            pools: a
                .gathered
                .shapes
                .iter()
                .filter(|s| s.kind == ShapeKind::NodePool)
                .map(|s| s.name.clone())
                .collect(),
            karpenter_hosts: hosts_of(&|w| {
                w.role == Role::Controller
                    && w.address.ends_with("karpenter/chart")
                    && w.template.owner.starts_with("Deployment")
            }),
            region: region.to_string(),
        }
    }

    /// The endpoints of each node shape, by shape name.
    fn endpoints(&self, model: &VpcModel, v: &mut Verdict) -> Vec<(String, Endpoint)> {
        let mut out = Vec::new();
        for (name, source) in &self.shapes {
            let e = match source {
                ShapeSource::NodeGroup(Ok(id)) => model.node_group(id).map(|mut e| {
                    e.name = format!("node group {name}");
                    e
                }),
                ShapeSource::NodePool(Ok(m)) => model.karpenter_nodes(&format!("NodePool {name} nodes"), m),
                ShapeSource::NodeGroup(Err(why)) | ShapeSource::NodePool(Err(why)) => {
                    v.failures.push(why.clone());
                    continue;
                }
            };
            match e {
                Ok(e) => out.push((name.clone(), e)),
                Err(err) => v.failures.push(format!("node shape {name}: {err}")),
            }
        }
        out
    }

    /// Every path asked, answered in `model`, whose EKS clusters are `clusters` (ids).
    pub(super) fn judge(&self, model: &VpcModel, clusters: &[String]) -> Verdict {
        let mut v = Verdict::default();
        let shapes = self.endpoints(model, &mut v);
        let by_name = |n: &str| shapes.iter().find(|(s, _)| s == n).map(|(_, e)| e);
        if self.dns_hosts.is_empty() {
            v.failures
                .push("CoreDNS runs on no node shape (see placement-controllers), so no name resolves".to_string());
        }
        for (_, from) in &shapes {
            for h in &self.dns_hosts {
                let Some(to) = by_name(h) else { continue };
                for (p, proto) in [("udp/53", Protocol::Udp), ("tcp/53", Protocol::Tcp)] {
                    let r = model.reachable(from, to, proto, 53);
                    record(&mut v, &format!("DNS {p}"), from, &format!("CoreDNS on {}", to.name), r);
                }
            }
        }
        for cluster in clusters {
            let cp = match model.control_plane(cluster) {
                Ok(e) => e,
                Err(e) => {
                    v.failures.push(format!("control plane of {cluster}: {e}"));
                    continue;
                }
            };
            for (_, node) in &shapes {
                record(
                    &mut v,
                    "kubelet tcp/10250",
                    &cp,
                    &node.name,
                    model.reachable(&cp, node, Protocol::Tcp, 10250),
                );
                record(
                    &mut v,
                    "API server tcp/443",
                    node,
                    &cp.name,
                    model.reachable(node, &cp, Protocol::Tcp, 443),
                );
            }
            for (owner, port, hosts) in &self.webhooks {
                for h in hosts {
                    let Some(to) = by_name(h) else { continue };
                    record(
                        &mut v,
                        &format!("webhook tcp/{port}"),
                        &cp,
                        &format!("{owner} on {}", to.name),
                        model.reachable(&cp, to, Protocol::Tcp, *port),
                    );
                }
            }
        }
        for (name, e) in &shapes {
            if self.pools.contains(name) {
                record(
                    &mut v,
                    "internet tcp/443",
                    e,
                    "the internet (GitHub, registries, Dagger Cloud)",
                    model.internet_egress(e, Protocol::Tcp, 443),
                );
            }
        }
        for h in &self.karpenter_hosts {
            let Some(from) = by_name(h) else { continue };
            for svc in KARPENTER_SERVICES {
                record(
                    &mut v,
                    &format!("Karpenter to AWS {svc}"),
                    from,
                    &format!("{svc}.{}.amazonaws.com", self.region),
                    model.aws_service(from, svc, &self.region),
                );
            }
        }
        v
    }
}

fn record(v: &mut Verdict, what: &str, from: &Endpoint, to: &str, r: Reach) {
    match &r {
        Reach::Allowed { .. } | Reach::Routed { .. } => {
            v.evidence.push(format!("{what}: {} -> {to}: {}", from.name, short(&r)))
        }
        Reach::Blocked(_) => v.failures.push(format!("{what} from {} to {to} is {r}", from.name)),
        Reach::Unknown(_) => v.failures.push(format!(
            "{what} from {} to {to} cannot be decided before apply ({r}); declare the value, or waive network-paths",
            from.name
        )),
    }
}

/// `network-paths`, on the VPC the stack declares.
pub(super) fn paths(c: &Ctx<'_>, e: &EksDeclared<'_>, _net: &crate::network::Network) -> Verdict {
    let model = match VpcModel::from_declared(c.d.resources) {
        Ok(m) => m,
        Err(e) => {
            return Verdict {
                failures: vec![format!("the declared network cannot be read: {e}")],
                evidence: Vec::new(),
            };
        }
    };
    let res = c.d.resources;
    let questions = Questions::new(c.analysis(), &node_classes(res), &e.cluster.region, |name| {
        res.iter()
            .find(|r| r.kind == "aws:eks:Nodegroup" && !r.lookup && r.inputs["name"] == name)
            .map(|r| r.address.to_string())
            .ok_or_else(|| format!("node group {name} is not declared"))
    });
    let clusters: Vec<String> = res
        .iter()
        .filter(|r| r.kind == "aws:eks:Cluster" && !r.lookup)
        .map(|r| r.address.to_string())
        .collect();
    questions.judge(&model, &clusters)
}
