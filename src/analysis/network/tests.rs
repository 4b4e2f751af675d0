//! The network analysis against hand-built and declared models.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::graph::DesiredResource;
use crate::model::options::ResourceOptions;
use crate::provider::ReadResult;
use crate::value::OutputExpr;

const VPC: &str = "net/vpc";

/// A VPC with two private subnets behind a NAT gateway, one public subnet, and two
/// groups `net/a` and `net/b` with only their default egress.
fn net() -> ModelBuilder {
    VpcModel::builder()
        .vpc(VPC, "10.0.0.0/16")
        .subnet("net/private-a", VPC, "10.0.0.0/20", false)
        .subnet("net/private-b", VPC, "10.0.16.0/20", false)
        .subnet("net/public-a", VPC, "10.0.48.0/24", true)
        .internet_gateway("net/igw", Some(VPC))
        .nat_gateway("net/nat", "net/public-a", true)
        .route_table("net/public-rt", VPC)
        .route(
            "net/public-rt",
            "net/public-default",
            "0.0.0.0/0",
            Target::InternetGateway("net/igw".into()),
        )
        .associate("net/public-a", "net/public-rt")
        .route_table("net/private-rt", VPC)
        .route(
            "net/private-rt",
            "net/private-default",
            "0.0.0.0/0",
            Target::NatGateway("net/nat".into()),
        )
        .associate("net/private-a", "net/private-rt")
        .associate("net/private-b", "net/private-rt")
        .group("net/a", VPC)
        .group("net/b", VPC)
}

fn ep(name: &str, groups: &[&str], subnets: &[&str]) -> Endpoint {
    Endpoint {
        name: name.into(),
        groups: groups.iter().map(|g| GroupId::new(*g)).collect(),
        subnets: subnets.iter().map(|s| SubnetId::new(*s)).collect(),
        public_ip: true,
    }
}

fn messages(r: &Reach) -> Vec<String> {
    r.blocks().iter().map(ToString::to_string).collect()
}

const TCP: Protocol = Protocol::Tcp;
const UDP: Protocol = Protocol::Udp;

#[test]
fn group_reference_ingress() {
    let m = net()
        .ingress(
            "net/a",
            "net/a-from-b",
            RuleProtocol::Tcp,
            (443, 443),
            Peer::group("net/b"),
        )
        .build()
        .unwrap();
    let a = ep("servers", &["net/a"], &["net/private-a"]);
    let b = ep("clients", &["net/b"], &["net/private-b"]);
    let r = m.reachable(&b, &a, TCP, 443);
    let Reach::Allowed { egress, ingress } = &r else {
        panic!("{r}")
    };
    assert_eq!(egress.address, "net/b");
    assert_eq!(ingress.address, "net/a-from-b");
    assert_eq!(ingress.description, "tcp 443 from net/b");
    // The other way round nothing admits it.
    let r = m.reachable(&a, &b, TCP, 443);
    assert_eq!(
        messages(&r),
        [
            "security group net/b (on clients) allows no ingress on tcp/443 from the groups of the servers [net/a]; \
          add an ingress rule to one of the destination's groups from one of the source's groups"
        ]
    );
}

#[test]
fn cidr_ingress_must_hold_every_subnet() {
    let m = net()
        .ingress(
            "net/a",
            "net/a-from-private-a",
            RuleProtocol::Tcp,
            (22, 22),
            Peer::cidr("10.0.0.0/20"),
        )
        .ingress(
            "net/b",
            "net/b-from-vpc",
            RuleProtocol::Tcp,
            (22, 22),
            Peer::cidr("10.0.0.0/16"),
        )
        .build()
        .unwrap();
    let a = ep("a", &["net/a"], &["net/private-a"]);
    let in_a = ep("c", &["net/b"], &["net/private-a"]);
    let in_both = ep("c", &["net/b"], &["net/private-a", "net/private-b"]);
    assert!(m.reachable(&in_a, &a, TCP, 22).is_allowed());
    // A node may land in private-b, outside 10.0.0.0/20.
    assert!(m.reachable(&in_both, &a, TCP, 22).is_blocked());
    let b = ep("b", &["net/b"], &["net/private-b"]);
    assert!(m.reachable(&in_both, &b, TCP, 22).is_allowed());
}

#[test]
fn restricted_egress() {
    let m = net()
        .group("net/r", VPC)
        .no_default_egress("net/r")
        .egress(
            "net/r",
            "net/r-to-b",
            RuleProtocol::All,
            (0, 0),
            Peer::cidr("10.0.16.0/20"),
        )
        .ingress(
            "net/a",
            "net/a-from-vpc",
            RuleProtocol::All,
            (0, 0),
            Peer::cidr("10.0.0.0/16"),
        )
        .build()
        .unwrap();
    let r = ep("restricted", &["net/r"], &["net/private-a"]);
    let in_b = ep("target b", &["net/a"], &["net/private-b"]);
    let in_a = ep("target a", &["net/a"], &["net/private-a"]);
    let ok = m.reachable(&r, &in_b, TCP, 80);
    assert!(
        matches!(&ok, Reach::Allowed { egress, .. } if egress.address == "net/r-to-b"),
        "{ok}"
    );
    let blocked = m.reachable(&r, &in_a, TCP, 80);
    assert_eq!(
        messages(&blocked),
        [
            "security group net/r (on restricted) allows no egress on tcp/80 to the groups of the target a [net/a] \
          or its subnets; add an egress rule to one of the source's groups to one of the destination's groups"
        ]
    );
    // And no way to the internet either.
    let out = m.internet_egress(&r, TCP, 443);
    assert!(
        messages(&out)[0].contains("allows no egress on tcp/443 to 0.0.0.0/0"),
        "{out}"
    );
}

#[test]
fn protocols_and_port_ranges() {
    let m = net()
        .ingress(
            "net/a",
            "net/range",
            RuleProtocol::Tcp,
            (1000, 2000),
            Peer::group("net/b"),
        )
        .ingress("net/a", "net/icmp", RuleProtocol::Icmp, (0, 0), Peer::group("net/b"))
        .build()
        .unwrap();
    let a = ep("a", &["net/a"], &["net/private-a"]);
    let b = ep("b", &["net/b"], &["net/private-b"]);
    assert!(m.reachable(&b, &a, TCP, 1000).is_allowed());
    assert!(m.reachable(&b, &a, TCP, 2000).is_allowed());
    assert!(m.reachable(&b, &a, TCP, 999).is_blocked());
    assert!(m.reachable(&b, &a, TCP, 2001).is_blocked());
    assert!(m.reachable(&b, &a, UDP, 1500).is_blocked());
}

#[test]
fn all_protocols() {
    let m = net()
        .ingress("net/a", "net/all", RuleProtocol::All, (0, 0), Peer::group("net/b"))
        .build()
        .unwrap();
    let a = ep("a", &["net/a"], &["net/private-a"]);
    let b = ep("b", &["net/b"], &["net/private-b"]);
    for (p, port) in [(UDP, 53), (TCP, 0), (TCP, 65535)] {
        assert!(m.reachable(&b, &a, p, port).is_allowed());
    }
    // Only from net/b.
    assert!(m.reachable(&a, &a, UDP, 53).is_blocked());
    assert_eq!(RuleProtocol::parse("-1"), Some(RuleProtocol::All));
    assert_eq!(RuleProtocol::parse("6"), Some(RuleProtocol::Tcp));
    assert_eq!(RuleProtocol::parse("17"), Some(RuleProtocol::Udp));
    assert_eq!(RuleProtocol::parse("TCP"), Some(RuleProtocol::Tcp));
    assert_eq!(RuleProtocol::parse("47"), Some(RuleProtocol::Other(47)));
    assert_eq!(RuleProtocol::parse("gre"), None);
}

#[test]
fn different_vpcs_are_blocked() {
    let m = net()
        .vpc("other/vpc", "10.1.0.0/16")
        .subnet("other/s", "other/vpc", "10.1.0.0/20", false)
        .group("other/g", "other/vpc")
        .ingress(
            "net/a",
            "net/from-anywhere",
            RuleProtocol::All,
            (0, 0),
            Peer::cidr("0.0.0.0/0"),
        )
        .build()
        .unwrap();
    let r = m.reachable(
        &ep("x", &["other/g"], &["other/s"]),
        &ep("y", &["net/a"], &["net/private-a"]),
        TCP,
        80,
    );
    assert!(
        messages(&r)[0].contains("x is in VPC other/vpc and y in VPC net/vpc"),
        "{r}"
    );
}

#[test]
fn cluster_security_group_attachment() {
    let m = net()
        .cluster("eks/c", "ci", &["net/private-a", "net/private-b"], &["net/a"])
        .launch_template("eks/lt", &["net/b"])
        .launch_template("eks/lt-plain", &[])
        .node_group("eks/plain", "eks/c", &["net/private-a"], None)
        .node_group("eks/templated", "eks/c", &["net/private-b"], Some("eks/lt"))
        .node_group("eks/lt-no-groups", "eks/c", &["net/private-b"], Some("eks/lt-plain"))
        .build()
        .unwrap();
    let csg = cluster_security_group("eks/c");
    assert_eq!(csg.as_str(), "eks/c#cluster-security-group");
    let g = &m.groups[&csg];
    assert_eq!(g.tags["kubernetes.io/cluster/ci"], Fact::Known("owned".into()));
    assert_eq!(g.tags["aws:eks:cluster-name"], Fact::Known("ci".into()));
    assert_eq!(g.vpc, Fact::Known(VPC.into()));

    let cp = m.control_plane("eks/c").unwrap();
    assert_eq!(cp.groups, [csg.clone(), GroupId::new("net/a")]);
    assert_eq!(cp.subnets.len(), 2);
    let plain = m.node_group("eks/plain").unwrap();
    assert_eq!(plain.groups, std::slice::from_ref(&csg));
    assert_eq!(m.node_group("eks/templated").unwrap().groups, [GroupId::new("net/b")]);
    assert_eq!(m.node_group("eks/lt-no-groups").unwrap().groups, [csg]);
    // The cluster group admits its own members: control plane to kubelet.
    assert!(m.reachable(&cp, &plain, TCP, 10250).is_allowed());
    let templated = m.node_group("eks/templated").unwrap();
    let r = m.reachable(&cp, &templated, TCP, 10250);
    assert!(r.is_blocked(), "{r}");
    assert!(matches!(
        m.node_group("nope"),
        Err(NetworkModelError::NoSuchNodeGroup(_))
    ));
    assert!(matches!(
        m.control_plane("nope"),
        Err(NetworkModelError::NoSuchCluster(_))
    ));
}

fn karpenter_model() -> VpcModel {
    net()
        .subnet_tag("net/private-a", "karpenter.sh/discovery", "ci")
        .subnet_tag("net/private-b", "karpenter.sh/discovery", "ci")
        .subnet_tag("net/public-a", "kubernetes.io/role/elb", "1")
        .group_tag("net/a", "karpenter.sh/discovery", "ci")
        .group_tag("net/a", "team", "ci")
        .group_tag("net/b", "team", "web")
        .group_name("net/b", "web")
        .cluster("eks/c", "ci", &["net/private-a"], &[])
        .build()
        .unwrap()
}

fn node_class(groups: Value, subnets: Value) -> Value {
    json!({"kind": "EC2NodeClass", "spec": {"securityGroupSelectorTerms": groups, "subnetSelectorTerms": subnets}})
}

#[test]
fn karpenter_selectors() {
    let m = karpenter_model();
    let subnets = json!([{"tags": {"karpenter.sh/discovery": "ci"}}]);
    let names = |e: &Endpoint| e.groups.iter().map(ToString::to_string).collect::<Vec<_>>();

    let e = m
        .karpenter_nodes(
            "runners",
            &node_class(json!([{"tags": {"karpenter.sh/discovery": "ci"}}]), subnets.clone()),
        )
        .unwrap();
    assert_eq!(names(&e), ["net/a"]);
    assert_eq!(
        e.subnets,
        [SubnetId::new("net/private-a"), SubnetId::new("net/private-b")]
    );
    assert!(e.public_ip);

    // `*` matches any value; the cluster group has `aws:eks:cluster-name` too.
    let e = m
        .karpenter_nodes(
            "runners",
            &node_class(json!([{"tags": {"team": "*"}}]), subnets.clone()),
        )
        .unwrap();
    assert_eq!(names(&e), ["net/a", "net/b"]);

    // Fields of a term are ANDed.
    let e = m
        .karpenter_nodes(
            "runners",
            &node_class(json!([{"tags": {"team": "*"}, "name": "web"}]), subnets.clone()),
        )
        .unwrap();
    assert_eq!(names(&e), ["net/b"]);

    // An id by output reference, ORed with a tag term.
    let csg = OutputExpr::Ref {
        address: "eks/c".parse().unwrap(),
        path: "cluster_security_group_id".into(),
    }
    .to_value();
    let sg = OutputExpr::Ref {
        address: "net/b".parse().unwrap(),
        path: "id".into(),
    }
    .to_value();
    let e = m
        .karpenter_nodes(
            "runners",
            &node_class(
                json!([{"tags": {"karpenter.sh/discovery": "ci"}}, {"id": csg}, {"id": sg}]),
                subnets.clone(),
            ),
        )
        .unwrap();
    assert_eq!(names(&e), ["net/a", "eks/c#cluster-security-group", "net/b"]);

    // A literal id of a group not declared here is kept (its rules unknown).
    let e = m
        .karpenter_nodes("runners", &node_class(json!([{"id": "sg-0123abcd"}]), subnets.clone()))
        .unwrap();
    assert_eq!(names(&e), ["sg-0123abcd"]);

    // Subnets by tag `*`, and by id.
    let e = m
        .karpenter_nodes(
            "runners",
            &node_class(
                json!([{"name": "web"}]),
                json!([{"tags": {"kubernetes.io/role/elb": "*"}}, {"id": "net/private-b"}]),
            ),
        )
        .unwrap();
    assert_eq!(
        e.subnets,
        [SubnetId::new("net/public-a"), SubnetId::new("net/private-b")]
    );

    // Nothing matched: an error naming the terms.
    let err = m
        .karpenter_nodes(
            "runners",
            &node_class(
                json!([{"tags": {"karpenter.sh/discovery": "other"}}, {"id": csg_of("eks/none")}]),
                subnets.clone(),
            ),
        )
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, NetworkModelError::SelectorMatchesNothing { .. }));
    assert!(
        text.contains("securityGroupSelectorTerms") && text.contains("\"karpenter.sh/discovery\":\"other\""),
        "{text}"
    );
    assert!(text.contains("(known after apply)"), "{text}");
    let err = m
        .karpenter_nodes(
            "runners",
            &node_class(json!([{"name": "web"}]), json!([{"tags": {"zone": "*"}}])),
        )
        .unwrap_err();
    assert!(err.to_string().contains("subnetSelectorTerms"), "{err}");
    let err = m
        .karpenter_nodes("runners", &node_class(json!([{"alias": "x"}]), subnets))
        .unwrap_err();
    assert!(matches!(err, NetworkModelError::UnsupportedSelector { .. }), "{err}");
}

fn csg_of(cluster: &str) -> Value {
    OutputExpr::Ref {
        address: cluster.parse().unwrap(),
        path: "cluster_security_group_id".into(),
    }
    .to_value()
}

#[test]
fn nat_path() {
    let m = net().build().unwrap();
    let nodes = ep("nodes", &["net/a"], &["net/private-a", "net/private-b"]);
    let r = m.internet_egress(&nodes, TCP, 443);
    let Reach::Routed { egress, ways, .. } = &r else {
        panic!("{r}")
    };
    assert_eq!(egress.address, "net/a");
    assert_eq!(ways.len(), 2);
    assert_eq!(
        ways[0].to_string(),
        "subnet net/private-a -> route table net/private-rt -> NAT gateway net/nat -> internet gateway net/igw"
    );
}

#[test]
fn missing_default_route() {
    let m = net()
        .subnet("net/private-c", VPC, "10.0.32.0/20", false)
        .route_table("net/private-rt-c", VPC)
        .associate("net/private-c", "net/private-rt-c")
        .subnet("net/orphan", VPC, "10.0.64.0/20", false)
        .build()
        .unwrap();
    let nodes = ep("nodes", &["net/a"], &["net/private-a", "net/private-c", "net/orphan"]);
    let r = m.internet_egress(&nodes, TCP, 443);
    assert_eq!(
        messages(&r),
        [
            "subnet net/private-c: route table net/private-rt-c has no 0.0.0.0/0 route; add one to a NAT gateway",
            // A subnet with no association uses the main table: only `local`.
            "subnet net/orphan: route table net/vpc#main-route-table has no 0.0.0.0/0 route; add one to a NAT gateway",
        ]
    );
}

#[test]
fn nat_in_a_subnet_without_internet_route() {
    let m = net().nat_gateway("net/nat", "net/private-b", true).build().unwrap();
    let r = m.internet_egress(&ep("nodes", &["net/a"], &["net/private-a"]), UDP, 123);
    assert_eq!(
        messages(&r),
        [
            "subnet net/private-a: its NAT gateway net/nat is in subnet net/private-b, whose route table net/private-rt \
          sends 0.0.0.0/0 to NAT gateway net/nat, not an internet gateway; add a 0.0.0.0/0 route to an internet \
          gateway there (a NAT gateway belongs in a public subnet)"
        ]
    );
    let m = net().nat_gateway("net/nat", "net/public-a", false).build().unwrap();
    let r = m.internet_egress(&ep("nodes", &["net/a"], &["net/private-a"]), TCP, 443);
    assert!(messages(&r)[0].contains("a private NAT gateway"), "{r}");
    let m = net().internet_gateway("net/igw", None).build().unwrap();
    let r = m.internet_egress(&ep("nodes", &["net/a"], &["net/private-a"]), TCP, 443);
    assert!(messages(&r)[0].contains("not attached to VPC net/vpc"), "{r}");
}

#[test]
fn public_subnet_with_internet_gateway() {
    let m = net()
        .subnet("net/public-b", VPC, "10.0.49.0/24", false)
        .associate("net/public-b", "net/public-rt")
        .build()
        .unwrap();
    let lb = ep("bastion", &["net/a"], &["net/public-a"]);
    let r = m.internet_egress(&lb, TCP, 443);
    assert!(
        matches!(&r, Reach::Routed { ways, .. } if matches!(&ways[0], Way::PublicIp { internet_gateway, .. } if internet_gateway == "net/igw")),
        "{r}"
    );
    let no_ip = Endpoint { public_ip: false, ..lb };
    assert!(messages(&m.internet_egress(&no_ip, TCP, 443))[0].contains("the endpoint takes none"));
    let r = m.internet_egress(&ep("x", &["net/a"], &["net/public-b"]), TCP, 443);
    assert!(messages(&r)[0].contains("does not map public IPs on launch"), "{r}");
}

#[test]
fn s3_gateway_endpoint() {
    let m = net()
        .gateway_endpoint("net/s3", VPC, "com.amazonaws.us-east-1.s3", &["net/private-rt"])
        .build()
        .unwrap();
    let nodes = ep("nodes", &["net/a"], &["net/private-a", "net/private-b"]);
    let r = m.aws_service(&nodes, "s3", "us-east-1");
    let Reach::Routed { ways, .. } = &r else { panic!("{r}") };
    assert!(
        ways.iter()
            .all(|w| matches!(w, Way::GatewayEndpoint { endpoint, .. } if endpoint == "net/s3")),
        "{r}"
    );
    // Another service, or another region, goes through the NAT gateway.
    for (svc, region) in [("sts", "us-east-1"), ("s3", "eu-west-1")] {
        let r = m.aws_service(&nodes, svc, region);
        assert!(
            matches!(&r, Reach::Routed { ways, .. } if matches!(ways[0], Way::Nat { .. })),
            "{r}"
        );
    }
    // Without a NAT route the endpoint still serves S3, but nothing serves STS.
    let m = net()
        .gateway_endpoint("net/s3", VPC, "com.amazonaws.us-east-1.s3", &["net/isolated-rt"])
        .route_table("net/isolated-rt", VPC)
        .associate("net/private-a", "net/isolated-rt")
        .build();
    let m = m.unwrap();
    let iso = ep("iso", &["net/a"], &["net/private-a"]);
    assert!(m.aws_service(&iso, "s3", "us-east-1").is_allowed());
    assert!(m.aws_service(&iso, "sts", "us-east-1").is_blocked());
}

#[test]
fn interface_endpoint() {
    let base = || {
        net()
            .group("net/endpoints", VPC)
            .interface_endpoint(
                "net/sts",
                VPC,
                "com.amazonaws.us-east-1.sts",
                &["net/private-a", "net/private-b"],
                &["net/endpoints"],
                true,
            )
            .route_table("net/isolated-rt", VPC)
            .associate("net/private-a", "net/isolated-rt")
    };
    let nodes = ep("nodes", &["net/a"], &["net/private-a"]);
    let m = base()
        .ingress(
            "net/endpoints",
            "net/https-from-vpc",
            RuleProtocol::Tcp,
            (443, 443),
            Peer::cidr("10.0.0.0/16"),
        )
        .build()
        .unwrap();
    let r = m.aws_service(&nodes, "sts", "us-east-1");
    let Reach::Routed { ingress, ways, .. } = &r else {
        panic!("{r}")
    };
    assert_eq!(ingress.as_ref().unwrap().address, "net/https-from-vpc");
    assert_eq!(
        ways,
        &[Way::InterfaceEndpoint {
            endpoint: "net/sts".into()
        }]
    );
    // With private DNS the endpoint is the only way: its group must admit 443.
    let m = base().build().unwrap();
    let r = m.aws_service(&nodes, "sts", "us-east-1");
    assert_eq!(
        messages(&r),
        [
            "security group net/endpoints (on interface endpoint net/sts) allows no ingress on tcp/443 from the \
          groups of the nodes [net/a]; add an ingress rule to one of the destination's groups from one of the \
          source's groups"
        ]
    );
}

#[test]
fn unknown_values_are_never_allowed() {
    let m = net()
        .subnet_unknown_cidr("net/later", VPC)
        .ingress(
            "net/a",
            "net/a-from-private",
            RuleProtocol::All,
            (0, 0),
            Peer::cidr("10.0.0.0/20"),
        )
        .build()
        .unwrap();
    let a = ep("a", &["net/a"], &["net/private-a"]);
    let r = m.reachable(&ep("later", &["net/b"], &["net/later"]), &a, TCP, 80);
    assert!(
        matches!(&r, Reach::Unknown(why) if why[0].contains("the CIDR of subnet net/later")),
        "{r}"
    );
    let r = m.reachable(&ep("ext", &["sg-123"], &["net/private-a"]), &a, TCP, 80);
    assert!(
        matches!(&r, Reach::Unknown(why) if why[0].contains("sg-123 is not declared")),
        "{r}"
    );
}

// ------------------------------------------------------------ from_declared

fn res(address: &str, kind: &str, inputs: Value) -> DesiredResource {
    DesiredResource::new(
        address.parse().unwrap(),
        kind.into(),
        inputs,
        ResourceOptions::default(),
    )
}

fn out(address: &str, path: &str) -> Value {
    OutputExpr::Ref {
        address: address.parse().unwrap(),
        path: path.into(),
    }
    .to_value()
}

const AZS: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];

/// The flagship's network and cluster as `Network::declare` and `Cluster::declare`
/// declare them (one NAT gateway), plus other kinds the model ignores.
fn flagship() -> Vec<DesiredResource> {
    let vpc = || out("network/vpc", "id");
    let mut r = vec![
        res(
            "network/vpc",
            "aws:ec2:Vpc",
            json!({"cidr_block": "10.0.0.0/16", "enable_dns_support": true, "enable_dns_hostnames": true, "tags": {"Name": "ci-vpc"}}),
        ),
        res(
            "network/igw",
            "aws:ec2:InternetGateway",
            json!({"vpc_id": vpc(), "tags": {"Name": "ci-igw"}}),
        ),
    ];
    for (i, az) in AZS.iter().enumerate() {
        r.push(res(
            &format!("network/public-{az}"),
            "aws:ec2:Subnet",
            json!({"vpc_id": vpc(), "cidr_block": format!("10.0.{}.0/24", 48 + i), "availability_zone": az,
                   "map_public_ip_on_launch": true,
                   "tags": {"kubernetes.io/role/elb": "1", "kubernetes.io/cluster/ci": "shared"}}),
        ));
        r.push(res(
            &format!("network/private-{az}"),
            "aws:ec2:Subnet",
            json!({"vpc_id": vpc(), "cidr_block": format!("10.0.{}.0/20", 16 * i), "availability_zone": az,
                   "map_public_ip_on_launch": false,
                   "tags": {"kubernetes.io/role/internal-elb": "1", "karpenter.sh/discovery": "ci", "kubernetes.io/cluster/ci": "shared"}}),
        ));
    }
    r.push(res(
        "network/public-rt",
        "aws:ec2:RouteTable",
        json!({"vpc_id": vpc(), "tags": {}}),
    ));
    r.push(res(
        "network/public-default",
        "aws:ec2:Route",
        json!({"route_table_id": out("network/public-rt", "id"), "destination_cidr_block": "0.0.0.0/0",
               "gateway_id": out("network/igw", "id"), "nat_gateway_id": null}),
    ));
    for az in AZS {
        r.push(res(
            &format!("network/public-rt-{az}"),
            "aws:ec2:RouteTableAssociation",
            json!({"route_table_id": out("network/public-rt", "id"), "subnet_id": out(&format!("network/public-{az}"), "id")}),
        ));
    }
    r.push(res("network/nat-eip-us-east-1a", "aws:ec2:Eip", json!({"tags": {}})));
    r.push(res(
        "network/nat-us-east-1a",
        "aws:ec2:NatGateway",
        json!({"subnet_id": out("network/public-us-east-1a", "id"), "allocation_id": out("network/nat-eip-us-east-1a", "id"),
               "connectivity_type": "public", "tags": {}}),
    ));
    r.push(res(
        "network/private-rt-us-east-1a",
        "aws:ec2:RouteTable",
        json!({"vpc_id": vpc(), "tags": {}}),
    ));
    r.push(res(
        "network/private-default-us-east-1a",
        "aws:ec2:Route",
        json!({"route_table_id": out("network/private-rt-us-east-1a", "id"), "destination_cidr_block": "0.0.0.0/0",
               "gateway_id": null, "nat_gateway_id": out("network/nat-us-east-1a", "id")}),
    ));
    for az in AZS {
        r.push(res(
            &format!("network/private-rt-{az}-assoc"),
            "aws:ec2:RouteTableAssociation",
            json!({"route_table_id": out("network/private-rt-us-east-1a", "id"), "subnet_id": out(&format!("network/private-{az}"), "id")}),
        ));
    }
    r.push(res(
        "network/s3-endpoint",
        "aws:ec2:VpcEndpoint",
        json!({"vpc_id": vpc(), "service_name": "com.amazonaws.us-east-1.s3",
               "route_table_ids": [out("network/private-rt-us-east-1a", "id")], "tags": {}}),
    ));
    r.push(res(
        "network/node-sg",
        "aws:ec2:SecurityGroup",
        json!({"vpc_id": vpc(), "name": "ci-nodes", "description": "EKS nodes",
               "tags": {"Name": "ci-nodes", "karpenter.sh/discovery": "ci"}}),
    ));
    r.push(res(
        "network/node-sg-self",
        "aws:ec2:SecurityGroupRule",
        json!({"security_group_id": out("network/node-sg", "id"), "type": "ingress", "protocol": "-1",
               "from_port": -1, "to_port": -1, "cidr_ipv4": null,
               "source_security_group_id": out("network/node-sg", "id"), "description": null, "tags": {}}),
    ));
    let private: Vec<Value> = AZS
        .iter()
        .map(|az| out(&format!("network/private-{az}"), "id"))
        .collect();
    r.push(res(
        "cluster/cluster-role",
        "aws:iam:Role",
        json!({"name": "ci-cluster"}),
    ));
    r.push(res(
        "cluster/eks",
        "aws:eks:Cluster",
        json!({"name": "ci", "version": "1.33", "role_arn": out("cluster/cluster-role", "arn"), "subnet_ids": private,
               "security_group_ids": [out("network/node-sg", "id")], "endpoint_public_access": true,
               "endpoint_private_access": true, "public_access_cidrs": ["0.0.0.0/0"], "authentication_mode": "API",
               "bootstrap_cluster_creator_admin_permissions": true, "support_type": "STANDARD",
               "secrets_encryption_key_arn": null, "tags": {}}),
    ));
    r.push(res(
        "cluster/critical-node-role",
        "aws:iam:Role",
        json!({"name": "ci-critical-nodes"}),
    ));
    r.push(res(
        "cluster/critical-nodes",
        "aws:eks:Nodegroup",
        json!({"cluster_name": out("cluster/eks", "name"), "name": "critical", "node_role_arn": out("cluster/critical-node-role", "arn"),
               "subnet_ids": private, "instance_types": ["m7g.large"], "ami_type": "AL2023_ARM_64_STANDARD",
               "capacity_type": "ON_DEMAND", "min_size": 2, "max_size": 3, "desired_size": 2, "labels": {},
               "taints": [], "version": null, "update_config": null, "launch_template": null, "tags": {}}),
    ));
    // Roles, add-ons, charts, queues...: ignored kinds, as many as the flagship has.
    while r.len() < 70 {
        let n = r.len();
        r.push(res(
            &format!("other/r{n}"),
            "kubernetes:Object",
            json!({"spec": {"n": n}}),
        ));
    }
    r
}

fn runner_class(with_cluster_group: bool) -> Value {
    let mut groups = vec![json!({"tags": {"karpenter.sh/discovery": "ci"}})];
    if with_cluster_group {
        groups.push(json!({"id": csg_of("cluster/eks")}));
    }
    json!({
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": "runners"},
        "spec": {
            "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "ci"}}],
            "securityGroupSelectorTerms": groups,
        }
    })
}

#[test]
fn flagship_dns_from_runners_to_critical_nodes_is_blocked() {
    let m = VpcModel::from_declared(&flagship()).unwrap();
    let runners = m.karpenter_nodes("runner nodes", &runner_class(false)).unwrap();
    assert_eq!(runners.groups, [GroupId::new("network/node-sg")]);
    assert_eq!(runners.subnets.len(), 3);
    let critical = m.node_group("cluster/critical-nodes").unwrap();
    assert_eq!(critical.groups, [GroupId::new("cluster/eks#cluster-security-group")]);

    // CoreDNS runs on the critical nodes, which only the cluster group admits.
    let r = m.reachable(&runners, &critical, UDP, 53);
    assert_eq!(
        messages(&r),
        [
            "security group cluster/eks#cluster-security-group (on node group cluster/critical-nodes) allows no \
          ingress on udp/53 from the groups of the runner nodes [network/node-sg]; add an ingress rule to one of \
          the destination's groups from one of the source's groups"
        ]
    );
    // Kubelet on the runners, from the control plane (which has node-sg too): allowed.
    let cp = m.control_plane("cluster/eks").unwrap();
    let r = m.reachable(&cp, &runners, TCP, 10250);
    let Reach::Allowed { ingress, .. } = &r else {
        panic!("{r}")
    };
    assert_eq!(ingress.address, "network/node-sg-self");
    assert_eq!(ingress.description, "all traffic from network/node-sg");

    // Out: through the single NAT gateway from every private subnet; S3 via the endpoint.
    let r = m.internet_egress(&runners, TCP, 443);
    assert!(matches!(&r, Reach::Routed { ways, .. } if ways.len() == 3), "{r}");
    let r = m.aws_service(&runners, "s3", "us-east-1");
    assert!(
        matches!(&r, Reach::Routed { ways, .. } if matches!(ways[2], Way::GatewayEndpoint { .. })),
        "{r}"
    );
}

#[test]
fn flagship_fixed_by_selecting_the_cluster_group() {
    let m = VpcModel::from_declared(&flagship()).unwrap();
    let runners = m.karpenter_nodes("runner nodes", &runner_class(true)).unwrap();
    assert_eq!(
        runners.groups,
        [
            GroupId::new("network/node-sg"),
            GroupId::new("cluster/eks#cluster-security-group")
        ]
    );
    let critical = m.node_group("cluster/critical-nodes").unwrap();
    for (from, to) in [(&runners, &critical), (&critical, &runners)] {
        let r = m.reachable(from, to, UDP, 53);
        let Reach::Allowed { ingress, .. } = &r else {
            panic!("{r}")
        };
        assert_eq!(ingress.address, "cluster/eks#cluster-security-group");
    }
}

#[test]
fn from_declared_reads_unknowns_and_refuses_bad_inputs() {
    let mut rs = flagship();
    // A rule on a group passed through a transform, and a CIDR known after apply.
    rs.push(res(
        "network/later",
        "aws:ec2:SecurityGroupRule",
        json!({"security_group_id": OutputExpr::Map { transform: 0, of: Box::new(OutputExpr::Ref { address: "network/node-sg".parse().unwrap(), path: "id".into() }) }.to_value(),
               "type": "ingress", "protocol": "udp", "from_port": 53, "to_port": 53,
               "cidr_ipv4": out("network/vpc", "cidr_block"), "source_security_group_id": null}),
    ));
    let m = VpcModel::from_declared(&rs).unwrap();
    assert_eq!(m.unattached_rules.len(), 1);
    let runners = m.karpenter_nodes("runner nodes", &runner_class(false)).unwrap();
    let critical = m.node_group("cluster/critical-nodes").unwrap();
    let r = m.reachable(&runners, &critical, UDP, 53);
    assert!(
        matches!(&r, Reach::Unknown(why) if why.iter().any(|w| w.contains("a transform of output `id` of network/node-sg"))),
        "{r}"
    );

    let bad = |extra: DesiredResource| {
        let mut rs = flagship();
        rs.push(extra);
        VpcModel::from_declared(&rs).unwrap_err().to_string()
    };
    let e = bad(res(
        "network/x",
        "aws:ec2:Subnet",
        json!({"vpc_id": "vpc-1", "cidr_block": "10.0.300.0/24"}),
    ));
    assert!(
        e.contains("`network/x` (aws:ec2:Subnet): `cidr_block`: `10.0.300.0/24` is not an IPv4 CIDR"),
        "{e}"
    );
    let e = bad(res(
        "network/dup",
        "aws:ec2:RouteTableAssociation",
        json!({"route_table_id": out("network/public-rt", "id"), "subnet_id": out("network/private-us-east-1a", "id")}),
    ));
    assert!(
        e.contains("subnet `network/private-us-east-1a` is associated with route tables"),
        "{e}"
    );
    let e = bad(res(
        "network/two-peers",
        "aws:ec2:SecurityGroupRule",
        json!({"security_group_id": "sg-1", "type": "ingress", "protocol": "tcp", "from_port": 1, "to_port": 2,
               "cidr_ipv4": "10.0.0.0/8", "source_security_group_id": "sg-2"}),
    ));
    assert!(
        e.contains("exactly one of cidr_ipv4 and source_security_group_id"),
        "{e}"
    );
    let e = bad(res(
        "network/ports",
        "aws:ec2:SecurityGroupRule",
        json!({"security_group_id": "sg-1", "type": "ingress", "protocol": "tcp", "from_port": 443, "to_port": 80,
               "cidr_ipv4": "10.0.0.0/8"}),
    ));
    assert!(e.contains("not a port range"), "{e}");
}

#[test]
fn flagship_is_analysed_quickly() {
    let rs = flagship();
    let start = std::time::Instant::now();
    let m = VpcModel::from_declared(&rs).unwrap();
    let runners = m.karpenter_nodes("runner nodes", &runner_class(true)).unwrap();
    let critical = m.node_group("cluster/critical-nodes").unwrap();
    let cp = m.control_plane("cluster/eks").unwrap();
    let answers = [
        m.reachable(&runners, &critical, UDP, 53),
        m.reachable(&cp, &runners, TCP, 10250),
        m.internet_egress(&runners, TCP, 443),
        m.aws_service(&runners, "s3", "us-east-1"),
        m.aws_service(&runners, "sts", "us-east-1"),
    ];
    let took = start.elapsed();
    assert!(answers.iter().all(Reach::is_allowed));
    // Generous for an unoptimized build on a busy machine; typically well under 1 ms.
    assert!(took < std::time::Duration::from_millis(50), "took {took:?}");
}

// ------------------------------------------------------------ properties

const CIDRS: [&str; 5] = [
    "10.0.0.0/24",
    "10.0.1.0/24",
    "10.0.0.0/16",
    "0.0.0.0/0",
    "192.168.0.0/16",
];
const GROUPS: [&str; 3] = ["p/g0", "p/g1", "p/g2"];
const SUBNETS: [&str; 3] = ["p/s0", "p/s1", "p/s2"];

const RANGES: [(u16, u16); 5] = [(22, 22), (53, 53), (443, 443), (0, 1000), (50, 450)];
/// Ports asked about: in some ranges, in none.
const PORTS: [u16; 5] = [22, 53, 443, 500, 2000];

/// (group, egress?, protocol, port range, peer: 0-2 a group, 3-7 a CIDR)
type RuleSpec = (usize, bool, u8, usize, usize);

fn rule_spec() -> impl Strategy<Value = RuleSpec> {
    (0..3usize, any::<bool>(), 0..5u8, 0..RANGES.len(), 0..8usize)
}

fn to_rule(i: usize, (_, egress, p, range, peer): RuleSpec) -> (Direction, Rule) {
    let protocol = [
        RuleProtocol::All,
        RuleProtocol::Tcp,
        RuleProtocol::Udp,
        RuleProtocol::Icmp,
        RuleProtocol::All,
    ][p as usize];
    let (from, to) = RANGES[range];
    let peer = if peer < 3 {
        Peer::group(GROUPS[peer])
    } else {
        Peer::cidr(CIDRS[peer - 3])
    };
    let source = RuleRef {
        address: format!("p/rule{i}"),
        description: String::new(),
    };
    let dir = if egress { Direction::Egress } else { Direction::Ingress };
    (dir, Rule::new(source, protocol, from, to, peer))
}

fn add(m: &mut VpcModel, spec: RuleSpec, i: usize) {
    let (dir, rule) = to_rule(i, spec);
    let g = m.groups.get_mut(&GroupId::new(GROUPS[spec.0])).unwrap();
    match dir {
        Direction::Ingress => g.ingress.push(rule),
        Direction::Egress => g.egress.push(rule),
    }
}

fn prop_model(defaults: [bool; 3], rules: &[RuleSpec]) -> VpcModel {
    let mut b = VpcModel::builder().vpc("p/vpc", "10.0.0.0/16");
    for (i, s) in SUBNETS.iter().enumerate() {
        b = b.subnet(s, "p/vpc", &format!("10.0.{i}.0/24"), false);
    }
    for (g, keep) in GROUPS.iter().zip(defaults) {
        b = b.group(g, "p/vpc");
        if !keep {
            b = b.no_default_egress(g);
        }
    }
    let mut m = b.build().unwrap();
    for (i, r) in rules.iter().enumerate() {
        add(&mut m, *r, i);
    }
    m
}

fn pick<'a>(mask: u8, from: &[&'a str]) -> Vec<&'a str> {
    let v: Vec<&str> = from
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, s)| *s)
        .collect();
    if v.is_empty() { vec![from[0]] } else { v }
}

fn endpoints(masks: (u8, u8, u8, u8)) -> (Endpoint, Endpoint) {
    (
        ep("from", &pick(masks.0, &GROUPS), &pick(masks.1, &SUBNETS)),
        ep("to", &pick(masks.2, &GROUPS), &pick(masks.3, &SUBNETS)),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn adding_a_rule_never_blocks_a_reachable_path(
        defaults in any::<[bool; 3]>(),
        rules in prop::collection::vec(rule_spec(), 0..16),
        extra in rule_spec(),
        masks in (1..8u8, 1..8u8, 1..8u8, 1..8u8),
        udp in any::<bool>(),
        port in prop::sample::select(PORTS.to_vec()),
    ) {
        let mut m = prop_model(defaults, &rules);
        let (from, to) = endpoints(masks);
        let protocol = if udp { UDP } else { TCP };
        let before = m.reachable(&from, &to, protocol, port);
        add(&mut m, extra, 99);
        let after = m.reachable(&from, &to, protocol, port);
        prop_assert!(!before.is_allowed() || after.is_allowed(), "before: {}\nafter: {}", before, after);
        prop_assert!(!matches!(before, Reach::Unknown(_)));
    }

    #[test]
    fn removing_a_rule_never_opens_a_blocked_path(
        defaults in any::<[bool; 3]>(),
        rules in prop::collection::vec(rule_spec(), 1..16),
        remove in any::<prop::sample::Index>(),
        masks in (1..8u8, 1..8u8, 1..8u8, 1..8u8),
        udp in any::<bool>(),
        port in prop::sample::select(PORTS.to_vec()),
    ) {
        let (from, to) = endpoints(masks);
        let protocol = if udp { UDP } else { TCP };
        let before = prop_model(defaults, &rules).reachable(&from, &to, protocol, port);
        let mut fewer = rules.clone();
        fewer.remove(remove.index(rules.len()));
        let after = prop_model(defaults, &fewer).reachable(&from, &to, protocol, port);
        prop_assert!(before.is_allowed() || !after.is_allowed(), "before: {}\nafter: {}", before, after);
    }
}

/// An existing VPC as lookups read it (the AWS kinds' `read` shapes, cloud ids): a main
/// table with only `local`, a private table routing to a NAT gateway, a public one to an
/// internet gateway; the cluster security group with EKS's rules as read; a node group
/// without a launch template in the private subnet.
fn existing_vpc() -> Vec<(&'static str, ReadResult)> {
    let read = |id: &str, inputs: Value, outputs: Value| ReadResult {
        id: id.into(),
        inputs,
        outputs,
    };
    let rule = |id: &str, group: &str, direction: &str, peer: (&str, &str)| {
        let mut i =
            json!({"security_group_id": group, "type": direction, "protocol": "-1", "from_port": -1, "to_port": -1});
        i[peer.0] = json!(peer.1);
        ("aws:ec2:SecurityGroupRule", read(id, i, json!({"id": id})))
    };
    let route = |table: &str, dest: &str, target: (&str, &str)| {
        let mut i = json!({"route_table_id": table, "destination_cidr_block": dest});
        i[target.0] = json!(target.1);
        (
            "aws:ec2:Route",
            read(&format!("{table}_{dest}"), i, json!({"state": "active"})),
        )
    };
    vec![
        (
            "aws:ec2:Vpc",
            read(
                "vpc-1",
                json!({"cidr_block": "10.9.0.0/16"}),
                json!({"main_route_table_id": "rtb-main"}),
            ),
        ),
        (
            "aws:ec2:Subnet",
            read(
                "subnet-priv",
                json!({"vpc_id": "vpc-1", "cidr_block": "10.9.0.0/20", "map_public_ip_on_launch": false}),
                json!({}),
            ),
        ),
        (
            "aws:ec2:Subnet",
            read(
                "subnet-other",
                json!({"vpc_id": "vpc-1", "cidr_block": "10.9.16.0/20", "map_public_ip_on_launch": false}),
                json!({}),
            ),
        ),
        (
            "aws:ec2:Subnet",
            read(
                "subnet-pub",
                json!({"vpc_id": "vpc-1", "cidr_block": "10.9.64.0/20", "map_public_ip_on_launch": true}),
                json!({}),
            ),
        ),
        (
            "aws:ec2:RouteTable",
            read("rtb-main", json!({"vpc_id": "vpc-1"}), json!({})),
        ),
        (
            "aws:ec2:RouteTable",
            read("rtb-priv", json!({"vpc_id": "vpc-1"}), json!({})),
        ),
        (
            "aws:ec2:RouteTable",
            read("rtb-pub", json!({"vpc_id": "vpc-1"}), json!({})),
        ),
        route("rtb-main", "10.9.0.0/16", ("gateway_id", "local")),
        route("rtb-priv", "10.9.0.0/16", ("gateway_id", "local")),
        route("rtb-priv", "0.0.0.0/0", ("nat_gateway_id", "nat-1")),
        route("rtb-pub", "10.9.0.0/16", ("gateway_id", "local")),
        route("rtb-pub", "0.0.0.0/0", ("gateway_id", "igw-1")),
        (
            "aws:ec2:RouteTableAssociation",
            read(
                "rtbassoc-1",
                json!({"route_table_id": "rtb-priv", "subnet_id": "subnet-priv"}),
                json!({}),
            ),
        ),
        (
            "aws:ec2:RouteTableAssociation",
            read(
                "rtbassoc-2",
                json!({"route_table_id": "rtb-pub", "subnet_id": "subnet-pub"}),
                json!({}),
            ),
        ),
        (
            "aws:ec2:InternetGateway",
            read("igw-1", json!({"vpc_id": "vpc-1"}), json!({})),
        ),
        (
            "aws:ec2:NatGateway",
            read(
                "nat-1",
                json!({"subnet_id": "subnet-pub", "connectivity_type": "public"}),
                json!({}),
            ),
        ),
        (
            "aws:ec2:SecurityGroup",
            read(
                "sg-cluster",
                json!({"vpc_id": "vpc-1", "name": "eks-cluster-sg-existing"}),
                json!({}),
            ),
        ),
        rule(
            "sgr-1",
            "sg-cluster",
            "ingress",
            ("source_security_group_id", "sg-cluster"),
        ),
        rule("sgr-2", "sg-cluster", "egress", ("cidr_ipv4", "0.0.0.0/0")),
        (
            "aws:eks:Cluster",
            read(
                "existing",
                json!({"name": "existing", "subnet_ids": ["subnet-priv", "subnet-other"], "security_group_ids": []}),
                json!({"cluster_security_group_id": "sg-cluster"}),
            ),
        ),
        (
            "aws:eks:Nodegroup",
            read(
                "existing:system",
                json!({"cluster_name": "existing", "subnet_ids": ["subnet-priv"], "launch_template": null}),
                json!({}),
            ),
        ),
    ]
}

fn model_of(reads: &[(&'static str, ReadResult)]) -> VpcModel {
    let refs: Vec<(&str, &ReadResult)> = reads.iter().map(|(k, r)| (*k, r)).collect();
    VpcModel::from_reads(&refs).unwrap()
}

#[test]
fn an_existing_vpc_read_by_lookups_answers_with_what_the_cloud_has() {
    let reads = existing_vpc();
    let m = model_of(&reads);
    let nodes = m.node_group("existing:system").unwrap();
    assert_eq!(nodes.groups, [GroupId::new("sg-cluster")], "the group EKS reports");
    let cp = m.control_plane("existing").unwrap();
    assert!(m.reachable(&nodes, &cp, TCP, 443).is_allowed());
    match m.internet_egress(&nodes, TCP, 443) {
        Reach::Routed { ways, .. } => assert!(
            matches!(&ways[..], [Way::Nat { nat_gateway, .. }] if nat_gateway == "nat-1"),
            "{ways:?}"
        ),
        other => panic!("{other:?}"),
    }
    // The subnet with no association uses the table the VPC names as main (only `local`).
    let other = Endpoint {
        name: "other".into(),
        groups: vec![GroupId::new("sg-cluster")],
        subnets: vec![SubnetId::new("subnet-other")],
        public_ip: false,
    };
    let r = m.internet_egress(&other, TCP, 443);
    assert!(r.is_blocked(), "{r}");
    assert!(r.to_string().contains("rtb-main"), "{r}");
}

#[test]
fn a_read_group_has_only_the_rules_read_and_a_read_table_only_its_routes() {
    // The cluster group's self rule removed outside spar: nodes no longer reach the API
    // server; EKS's default rules must not stand in for the ones read.
    let mut reads = existing_vpc();
    reads.retain(|(_, r)| r.id != "sgr-1");
    let m = model_of(&reads);
    let nodes = m.node_group("existing:system").unwrap();
    let cp = m.control_plane("existing").unwrap();
    let r = m.reachable(&nodes, &cp, TCP, 443);
    assert!(r.is_blocked(), "{r}");
    assert!(messages(&r).iter().any(|b| b.contains("sg-cluster")), "{r}");

    // The NAT route deleted outside spar: no way out for the private subnet.
    let mut reads = existing_vpc();
    reads.retain(|(_, r)| r.id != "rtb-priv_0.0.0.0/0");
    let m = model_of(&reads);
    let nodes = m.node_group("existing:system").unwrap();
    let r = m.internet_egress(&nodes, TCP, 443);
    assert!(r.is_blocked(), "{r}");
    assert!(r.to_string().contains("rtb-priv"), "{r}");

    // A route to a target with no kind here (peering) is unknown, never a way out.
    let mut reads = existing_vpc();
    for (_, r) in reads.iter_mut().filter(|(_, r)| r.id == "rtb-priv_0.0.0.0/0") {
        r.inputs = json!({"route_table_id": "rtb-priv", "destination_cidr_block": "0.0.0.0/0"});
    }
    let m = model_of(&reads);
    let nodes = m.node_group("existing:system").unwrap();
    let r = m.internet_egress(&nodes, TCP, 443);
    assert!(matches!(r, Reach::Unknown(_)), "{r}");
}
