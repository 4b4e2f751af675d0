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

/// The endpoints of each node shape, by shape name.
fn shape_endpoints(model: &VpcModel, c: &Ctx<'_>, a: &Analysis, v: &mut Verdict) -> Vec<(String, Endpoint)> {
    let mut out = Vec::new();
    let res = c.d.resources;
    for shape in &a.gathered.shapes {
        let e = match shape.kind {
            ShapeKind::ManagedNodeGroup => {
                let Some(r) = res
                    .iter()
                    .find(|r| r.kind == "aws:eks:Nodegroup" && r.inputs["name"] == shape.name.as_str())
                else {
                    continue;
                };
                model.node_group(r.address.as_str()).map(|mut e| {
                    e.name = format!("node group {}", shape.name);
                    e
                })
            }
            ShapeKind::NodePool => {
                let pool = res
                    .iter()
                    .map(|r| &r.inputs["manifest"])
                    .find(|m| m["kind"] == "NodePool" && m["metadata"]["name"] == shape.name.as_str());
                let class = pool.and_then(|p| p["spec"]["template"]["spec"]["nodeClassRef"]["name"].as_str());
                let manifest: Option<&Value> = class.and_then(|n| {
                    res.iter()
                        .map(|r| &r.inputs["manifest"])
                        .find(|m| m["kind"] == "EC2NodeClass" && m["metadata"]["name"] == n)
                });
                let Some(m) = manifest else {
                    v.failures.push(format!(
                        "NodePool {} names EC2NodeClass {class:?}, which the stack does not declare",
                        shape.name
                    ));
                    continue;
                };
                model.karpenter_nodes(&format!("NodePool {} nodes", shape.name), m)
            }
        };
        match e {
            Ok(e) => out.push((shape.name.clone(), e)),
            Err(err) => v.failures.push(format!("node shape {}: {err}", shape.name)),
        }
    }
    out
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

/// `network-paths`.
pub(super) fn paths(c: &Ctx<'_>, e: &EksDeclared<'_>, _net: &crate::network::Network) -> Verdict {
    let mut v = Verdict::default();
    let model = match VpcModel::from_declared(c.d.resources) {
        Ok(m) => m,
        Err(e) => {
            v.failures.push(format!("the declared network cannot be read: {e}"));
            return v;
        }
    };
    let a = c.analysis();
    let shapes = shape_endpoints(&model, c, a, &mut v);
    let by_name = |n: &str| shapes.iter().find(|(s, _)| s == n).map(|(_, e)| e);
    let clusters: Vec<&str> =
        c.d.resources
            .iter()
            .filter(|r| r.kind == "aws:eks:Cluster")
            .map(|r| r.address.as_str())
            .collect();
    // Where CoreDNS, the webhooks and Karpenter's controller run.
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
    let dns_hosts = hosts_of(&|w| w.template.owner == "Deployment kube-system/coredns");
    if dns_hosts.is_empty() {
        v.failures
            .push("CoreDNS runs on no node shape (see placement-controllers), so no name resolves".to_string());
    }
    for (_, from) in &shapes {
        for h in &dns_hosts {
            let Some(to) = by_name(h) else { continue };
            for (p, proto) in [("udp/53", Protocol::Udp), ("tcp/53", Protocol::Tcp)] {
                let r = model.reachable(from, to, proto, 53);
                record(&mut v, &format!("DNS {p}"), from, &format!("CoreDNS on {}", to.name), r);
            }
        }
    }
    for cluster in &clusters {
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
        for w in a.gathered.workloads.iter().filter(|w| w.webhook_port.is_some()) {
            let port = w.webhook_port.expect("filtered");
            for h in a.hosts(w) {
                let Some(to) = by_name(&h) else { continue };
                record(
                    &mut v,
                    &format!("webhook tcp/{port}"),
                    &cp,
                    &format!("{} on {}", w.template.owner, to.name),
                    model.reachable(&cp, to, Protocol::Tcp, port),
                );
            }
        }
    }
    for (name, e) in &shapes {
        if a.gathered
            .shapes
            .iter()
            .any(|s| &s.name == name && s.kind == ShapeKind::NodePool)
        {
            record(
                &mut v,
                "internet tcp/443",
                e,
                "the internet (GitHub, registries, Dagger Cloud)",
                model.internet_egress(e, Protocol::Tcp, 443),
            );
        }
    }
    let karpenter_hosts = hosts_of(&|w| {
        w.role == Role::Controller
            && w.address.ends_with("karpenter/chart")
            && w.template.owner.starts_with("Deployment")
    });
    for h in karpenter_hosts {
        let Some(from) = by_name(&h) else { continue };
        for svc in KARPENTER_SERVICES {
            record(
                &mut v,
                &format!("Karpenter to AWS {svc}"),
                from,
                &format!("{svc}.{}.amazonaws.com", e.cluster.region),
                model.aws_service(from, svc, &e.cluster.region),
            );
        }
    }
    v
}
