//! Internet and NAT gateways, EIPs, route tables, routes, associations, security groups and
//! rules against the sandbox emulator: create, read back, in-place update, replace,
//! delete (in the right order, asserted from the steps spar ran, since the emulator skips
//! AWS's dependency checks), drift, import and adoption by the ownership tag.
#![cfg(feature = "aws")]

#[path = "support/aws.rs"]
mod support;

use std::sync::Arc;

use serde_json::json;
use spar::aws::ec2::{
    Eip, InternetGateway, NatGateway, Route, RouteTable, RouteTableAssociation, SecurityGroup, SecurityGroupRule,
    Subnet, Vpc,
};
use spar::plan::Op;
use spar::provider::{OpContext, ResourceProvider};
use support::{Recorder, Stage, ec2, op, quiet, run, staged, tag_map};

async fn igw(id: &str) -> Option<aws_sdk_ec2::types::InternetGateway> {
    ec2()
        .await
        .describe_internet_gateways()
        .internet_gateway_ids(id)
        .send()
        .await
        .ok()
        .and_then(|o| o.internet_gateways().first().cloned())
}

fn igw_vpcs(g: &aws_sdk_ec2::types::InternetGateway) -> Vec<String> {
    g.attachments()
        .iter()
        .filter_map(|a| a.vpc_id().map(String::from))
        .collect()
}

#[test]
fn internet_gateway_attach_move_drift_delete() {
    run(async {
        let s = Stage::new();
        let program = |to_b: bool, env: &'static str| {
            move |st: &mut spar::Stack| {
                let a = st.add("igw_vpc_a", Vpc::new("10.30.0.0/16"))?;
                let b = st.add("igw_vpc_b", Vpc::new("10.31.0.0/16"))?;
                let vpc = if to_b { b.vpc_id() } else { a.vpc_id() };
                st.add("igw", InternetGateway::new(vpc).tag("env", env))?;
                Ok(())
            }
        };
        s.apply(program(false, "dev")).await;
        let id = s.id("igw").await;
        let vpc_a = s.id("igw_vpc_a").await;
        let vpc_b = s.id("igw_vpc_b").await;
        let g = igw(&id).await.unwrap();
        assert_eq!(igw_vpcs(&g), vec![vpc_a.clone()]);
        assert_eq!(tag_map(g.tags()).get("spar:address").map(String::as_str), Some("igw"));
        assert!(quiet(&s.plan(program(false, "dev")).await));

        // In place: move to the other VPC and retag.
        let plan = s.apply(program(true, "prod")).await;
        assert_eq!(op(&plan, "igw"), Op::Update);
        assert_eq!(s.id("igw").await, id);
        let g = igw(&id).await.unwrap();
        assert_eq!(igw_vpcs(&g), vec![vpc_b.clone()]);
        assert_eq!(tag_map(g.tags()).get("env").map(String::as_str), Some("prod"));

        // Drift: detached out of band, then re-attached by the next apply.
        ec2()
            .await
            .detach_internet_gateway()
            .internet_gateway_id(&id)
            .vpc_id(&vpc_b)
            .send()
            .await
            .unwrap();
        let r = s.session(program(true, "prod")).refresh(4).await.unwrap();
        assert_eq!(r.drifted.len(), 1, "{r:?}");
        assert_eq!(r.drifted[0].1[0].path.to_string(), "vpc_id");
        s.apply(program(true, "prod")).await;
        assert_eq!(igw_vpcs(&igw(&id).await.unwrap()), vec![vpc_b.clone()]);

        // Delete: the gateway (detached first) goes before its VPC.
        let rec = Arc::new(Recorder::default());
        s.apply_recorded(|_| Ok(()), true, rec.clone()).await;
        rec.before(("igw", "delete"), ("igw_vpc_b", "delete"));
        assert!(igw(&id).await.is_none());

        // Find adopts a gateway carrying the ownership tag.
        let made = ec2()
            .await
            .create_internet_gateway()
            .tag_specifications(
                aws_sdk_ec2::types::TagSpecification::builder()
                    .resource_type(aws_sdk_ec2::types::ResourceType::InternetGateway)
                    .tags(
                        aws_sdk_ec2::types::Tag::builder()
                            .key("spar:address")
                            .value("igw_found")
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let made_id = made
            .internet_gateway()
            .unwrap()
            .internet_gateway_id()
            .unwrap()
            .to_string();
        let p = spar::aws::ec2::gateway::InternetGatewayProvider::new();
        let ctx = OpContext::detached("igw_found".parse().unwrap());
        assert_eq!(p.find(&ctx, &json!({})).await.unwrap().unwrap().id, made_id);
        // Import reads it as a detached gateway with no user tags.
        let live = p
            .read(&ctx, &made_id, &serde_json::Value::Null, &serde_json::Value::Null)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(live.inputs, json!({"vpc_id": null, "tags": {}}));
        // Imported into state, it is what a program declaring a detached gateway plans
        // nothing for; destroy deletes it.
        let detached = |st: &mut spar::Stack| {
            st.add("igw_found", InternetGateway::detached())?;
            Ok(())
        };
        let imported = s
            .session(detached)
            .import("aws:ec2:InternetGateway", &"igw_found".parse().unwrap(), &made_id)
            .await
            .unwrap();
        support::assert_declarable(&imported);
        assert!(quiet(&s.plan(detached).await));
        s.destroy().await;
        assert!(igw(&made_id).await.is_none());
    });
}

async fn nat(id: &str) -> Option<aws_sdk_ec2::types::NatGateway> {
    ec2()
        .await
        .describe_nat_gateways()
        .nat_gateway_ids(id)
        .send()
        .await
        .ok()
        .and_then(|o| o.nat_gateways().first().cloned())
        .filter(|n| n.state() != Some(&aws_sdk_ec2::types::NatGatewayState::Deleted))
}

async fn eip(id: &str) -> Option<aws_sdk_ec2::types::Address> {
    ec2()
        .await
        .describe_addresses()
        .allocation_ids(id)
        .send()
        .await
        .ok()
        .and_then(|o| o.addresses().first().cloned())
}

async fn route_table(id: &str) -> Option<aws_sdk_ec2::types::RouteTable> {
    ec2()
        .await
        .describe_route_tables()
        .route_table_ids(id)
        .send()
        .await
        .ok()
        .and_then(|o| o.route_tables().first().cloned())
}

/// The flagship's egress shape: public subnet with an IGW route, a NAT gateway with an EIP
/// there, a private subnet routed through the NAT gateway.
fn egress(private_via_nat: bool, eip_tag: &'static str) -> impl FnOnce(&mut spar::Stack) -> spar::Result<()> {
    move |st: &mut spar::Stack| {
        let vpc = st.add("eg/vpc", Vpc::new("10.40.0.0/16"))?;
        let igw = st.add("eg/igw", InternetGateway::new(vpc.vpc_id()))?;
        let public = st.add(
            "eg/public",
            Subnet::new(vpc.vpc_id(), "10.40.0.0/24")
                .az("us-east-1a")
                .map_public_ip(true),
        )?;
        let private = st.add(
            "eg/private",
            Subnet::new(vpc.vpc_id(), "10.40.16.0/20").az("us-east-1a"),
        )?;
        let ip = st.add("eg/eip", Eip::new().tag("use", eip_tag))?;
        let natgw = st.add("eg/nat", NatGateway::public(public.subnet_id(), ip.allocation_id()))?;
        let public_rt = st.add("eg/public_rt", RouteTable::new(vpc.vpc_id()))?;
        st.add(
            "eg/public_default",
            Route::new(public_rt.route_table_id(), "0.0.0.0/0").via_gateway(igw.gateway_id()),
        )?;
        st.add(
            "eg/public_assoc",
            RouteTableAssociation::new(public_rt.route_table_id(), public.subnet_id()),
        )?;
        let private_rt = st.add("eg/private_rt", RouteTable::new(vpc.vpc_id()).tag("tier", "private"))?;
        let route = Route::new(private_rt.route_table_id(), "0.0.0.0/0");
        let route = if private_via_nat {
            route.via_nat_gateway(natgw.nat_gateway_id())
        } else {
            route.via_gateway(igw.gateway_id())
        };
        st.add("eg/private_default", route)?;
        st.add(
            "eg/private_assoc",
            RouteTableAssociation::new(private_rt.route_table_id(), private.subnet_id()),
        )?;
        Ok(())
    }
}

#[test]
fn egress_nat_routes_associations_in_order() {
    run(async {
        let s = Stage::new();
        let rec = Arc::new(Recorder::default());
        s.apply_recorded(egress(true, "nat"), false, rec.clone()).await;
        // Creation order: the EIP and public subnet before the NAT gateway, the NAT
        // gateway (available) before the route through it.
        rec.before(("eg/eip", "create"), ("eg/nat", "create"));
        rec.before(("eg/public", "create"), ("eg/nat", "create"));
        rec.before(("eg/nat", "create"), ("eg/private_default", "create"));

        let nat_id = s.id("eg/nat").await;
        let eip_id = s.id("eg/eip").await;
        let n = nat(&nat_id).await.unwrap();
        assert_eq!(n.state(), Some(&aws_sdk_ec2::types::NatGatewayState::Available));
        assert_eq!(n.nat_gateway_addresses()[0].allocation_id(), Some(eip_id.as_str()));
        assert_eq!(
            tag_map(n.tags()).get("spar:address").map(String::as_str),
            Some("eg/nat")
        );
        let out = s.outputs("eg/nat").await;
        assert_eq!(out["public_ip"], s.outputs("eg/eip").await["public_ip"]);
        let private_rt = s.id("eg/private_rt").await;
        let t = route_table(&private_rt).await.unwrap();
        let default = t
            .routes()
            .iter()
            .find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
            .unwrap();
        assert_eq!(default.nat_gateway_id(), Some(nat_id.as_str()));
        assert_eq!(t.associations().len(), 1);
        assert_eq!(t.associations()[0].subnet_id(), Some(s.id("eg/private").await.as_str()));
        assert_eq!(s.id("eg/private_default").await, format!("{private_rt}_0.0.0.0/0"));

        // Read back: nothing to do.
        let plan = s.plan(egress(true, "nat")).await;
        assert!(
            quiet(&plan),
            "{:#?}",
            plan.changes.iter().filter(|c| c.op != Op::Same).collect::<Vec<_>>()
        );

        // In place: the private route moves to the IGW (ReplaceRoute), the EIP is retagged.
        let plan = s.apply(egress(false, "spare")).await;
        assert_eq!(op(&plan, "eg/private_default"), Op::Update);
        assert_eq!(op(&plan, "eg/eip"), Op::Update);
        let t = route_table(&private_rt).await.unwrap();
        let default = t
            .routes()
            .iter()
            .find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
            .unwrap();
        assert_eq!(default.gateway_id(), Some(s.id("eg/igw").await.as_str()));
        assert_eq!(
            tag_map(eip(&eip_id).await.unwrap().tags())
                .get("use")
                .map(String::as_str),
            Some("spare")
        );

        // Drift: the route deleted out of band reads as gone and is made again.
        ec2()
            .await
            .delete_route()
            .route_table_id(&private_rt)
            .destination_cidr_block("0.0.0.0/0")
            .send()
            .await
            .unwrap();
        let r = s.session(egress(false, "spare")).refresh(4).await.unwrap();
        assert_eq!(
            r.gone.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            vec!["eg/private_default"]
        );
        let plan = s.apply(egress(true, "spare")).await;
        assert_eq!(op(&plan, "eg/private_default"), Op::Create);

        // Find: the route and the association are adopted by what they are.
        let rp = spar::aws::ec2::route::RouteProvider::new();
        let ctx = OpContext::detached("eg/private_default".parse().unwrap());
        let want = json!({"route_table_id": private_rt, "destination_cidr_block": "0.0.0.0/0", "gateway_id": null, "nat_gateway_id": nat_id});
        assert_eq!(
            rp.find(&ctx, &want).await.unwrap().unwrap().id,
            format!("{private_rt}_0.0.0.0/0")
        );
        let ap = spar::aws::ec2::route::RouteTableAssociationProvider::new();
        let actx = OpContext::detached("eg/private_assoc".parse().unwrap());
        let assoc = json!({"route_table_id": private_rt, "subnet_id": s.id("eg/private").await});
        assert_eq!(
            ap.find(&actx, &assoc).await.unwrap().unwrap().id,
            s.id("eg/private_assoc").await
        );
        // NAT gateway found by its tag.
        let np = spar::aws::ec2::gateway::NatGatewayProvider::new();
        let nctx = staged("eg/nat");
        assert_eq!(np.find(&nctx, &json!({})).await.unwrap().unwrap().id, nat_id);
        assert!(np.find(&staged("eg/other"), &json!({})).await.unwrap().is_none());

        // Delete order, which the emulator would not enforce: the route through the NAT
        // gateway, then the NAT gateway (waited until deleted), then its subnet and EIP;
        // associations before their route tables and subnets; the IGW before the VPC.
        let rec = Arc::new(Recorder::default());
        s.apply_recorded(|_| Ok(()), true, rec.clone()).await;
        rec.before(("eg/private_default", "delete"), ("eg/nat", "delete"));
        rec.before(("eg/nat", "delete"), ("eg/public", "delete"));
        rec.before(("eg/nat", "delete"), ("eg/eip", "delete"));
        rec.before(("eg/private_assoc", "delete"), ("eg/private_rt", "delete"));
        rec.before(("eg/private_assoc", "delete"), ("eg/private", "delete"));
        rec.before(("eg/public_default", "delete"), ("eg/igw", "delete"));
        rec.before(("eg/igw", "delete"), ("eg/vpc", "delete"));
        rec.before(("eg/public", "delete"), ("eg/vpc", "delete"));
        assert!(nat(&nat_id).await.is_none());
        assert!(eip(&eip_id).await.is_none());
        assert!(route_table(&private_rt).await.is_none());
    });
}

#[test]
fn association_and_eip_replace_and_import() {
    run(async {
        let s = Stage::new();
        let program = |second_table: bool| {
            move |st: &mut spar::Stack| {
                let vpc = st.add("as/vpc", Vpc::new("10.41.0.0/16"))?;
                let sn = st.add("as/sn", Subnet::new(vpc.vpc_id(), "10.41.1.0/24"))?;
                let a = st.add("as/rt_a", RouteTable::new(vpc.vpc_id()))?;
                let b = st.add("as/rt_b", RouteTable::new(vpc.vpc_id()))?;
                let rt = if second_table {
                    b.route_table_id()
                } else {
                    a.route_table_id()
                };
                st.add("as/assoc", RouteTableAssociation::new(rt, sn.subnet_id()))?;
                Ok(())
            }
        };
        s.apply(program(false)).await;
        let first = s.id("as/assoc").await;
        // Replace: a subnet has one association, so the old one goes first.
        let plan = s.apply(program(true)).await;
        let change = plan.get(&"as/assoc".parse().unwrap()).unwrap();
        assert_eq!(change.op, Op::Replace);
        assert!(change.delete_before_replace);
        let second = s.id("as/assoc").await;
        assert_ne!(first, second);
        let b = route_table(&s.id("as/rt_b").await).await.unwrap();
        assert_eq!(b.associations()[0].route_table_association_id(), Some(second.as_str()));
        assert!(
            route_table(&s.id("as/rt_a").await)
                .await
                .unwrap()
                .associations()
                .is_empty()
        );

        // Import an EIP made out of band.
        let made = ec2()
            .await
            .allocate_address()
            .domain(aws_sdk_ec2::types::DomainType::Vpc)
            .send()
            .await
            .unwrap();
        let alloc = made.allocation_id().unwrap().to_string();
        let imported = s
            .session(program(true))
            .import("aws:ec2:Eip", &"as/ip".parse().unwrap(), &alloc)
            .await
            .unwrap();
        support::assert_declarable(&imported);
        assert_eq!(imported.inputs, json!({"tags": {}}));
        assert_eq!(imported.outputs["public_ip"], made.public_ip().unwrap());
        let plan = s
            .apply(|st: &mut spar::Stack| {
                program(true)(st)?;
                st.add("as/ip", Eip::new().tag("imported", "yes"))?;
                Ok(())
            })
            .await;
        assert_eq!(op(&plan, "as/ip"), Op::Update);
        assert_eq!(
            tag_map(eip(&alloc).await.unwrap().tags())
                .get("imported")
                .map(String::as_str),
            Some("yes")
        );
        s.destroy().await;
        assert!(eip(&alloc).await.is_none());
    });
}

async fn rule(id: &str) -> Option<aws_sdk_ec2::types::SecurityGroupRule> {
    ec2()
        .await
        .describe_security_group_rules()
        .security_group_rule_ids(id)
        .send()
        .await
        .ok()
        .and_then(|o| o.security_group_rules().first().cloned())
}

async fn group(id: &str) -> Option<aws_sdk_ec2::types::SecurityGroup> {
    ec2()
        .await
        .describe_security_groups()
        .group_ids(id)
        .send()
        .await
        .ok()
        .and_then(|o| o.security_groups().first().cloned())
}

#[test]
fn security_group_and_rules() {
    run(async {
        let s = Stage::new();
        let program = |port: i32, desc: &'static str, discovery: &'static str| {
            move |st: &mut spar::Stack| {
                let vpc = st.add("sg/vpc", Vpc::new("10.50.0.0/16"))?;
                let nodes = st.add(
                    "sg/nodes",
                    SecurityGroup::new(vpc.vpc_id())
                        .description("nodes")
                        .tag("karpenter.sh/discovery", discovery),
                )?;
                let lb = st.add(
                    "sg/lb",
                    SecurityGroup::new(vpc.vpc_id()).name("sg-test-lb").description("lb"),
                )?;
                st.add(
                    "sg/https",
                    SecurityGroupRule::ingress(nodes.group_id())
                        .tcp(port)
                        .cidr("10.0.0.0/8")
                        .description(desc),
                )?;
                st.add(
                    "sg/from_lb",
                    SecurityGroupRule::ingress(nodes.group_id())
                        .protocol("tcp", 30000, 32767)
                        .group(lb.group_id()),
                )?;
                st.add(
                    "sg/egress_dns",
                    SecurityGroupRule::egress(lb.group_id())
                        .protocol("udp", 53, 53)
                        .cidr("0.0.0.0/0"),
                )?;
                Ok(())
            }
        };
        s.apply(program(443, "https", "c1")).await;
        let nodes = s.id("sg/nodes").await;
        let g = group(&nodes).await.unwrap();
        let name = g.group_name().unwrap().to_string();
        assert!(name.starts_with("nodes-") && name.len() == "nodes-".len() + 8, "{name}");
        assert_eq!(
            group(&s.id("sg/lb").await).await.unwrap().group_name(),
            Some("sg-test-lb")
        );
        assert_eq!(
            tag_map(g.tags()).get("karpenter.sh/discovery").map(String::as_str),
            Some("c1")
        );
        let https = s.id("sg/https").await;
        let r = rule(&https).await.unwrap();
        assert_eq!(
            (r.from_port(), r.to_port(), r.cidr_ipv4()),
            (Some(443), Some(443), Some("10.0.0.0/8"))
        );
        assert_eq!(
            tag_map(r.tags()).get("spar:address").map(String::as_str),
            Some("sg/https")
        );
        let from_lb = rule(&s.id("sg/from_lb").await).await.unwrap();
        assert_eq!(
            from_lb.referenced_group_info().and_then(|g| g.group_id()),
            Some(s.id("sg/lb").await.as_str())
        );
        let plan = s.plan(program(443, "https", "c1")).await;
        assert!(
            quiet(&plan),
            "{:#?}",
            plan.changes.iter().filter(|c| c.op != Op::Same).collect::<Vec<_>>()
        );

        // In place: rule description, group tags.
        let plan = s.apply(program(443, "tls", "c2")).await;
        assert_eq!(op(&plan, "sg/https"), Op::Update);
        assert_eq!(op(&plan, "sg/nodes"), Op::Update);
        assert_eq!(s.id("sg/https").await, https);
        assert_eq!(rule(&https).await.unwrap().description(), Some("tls"));

        // Replace: a new port makes a new rule.
        let plan = s.apply(program(8443, "tls", "c2")).await;
        assert_eq!(op(&plan, "sg/https"), Op::Replace);
        let https2 = s.id("sg/https").await;
        assert_ne!(https2, https);
        assert!(rule(&https).await.is_none());

        // Drift: the rule revoked out of band is gone; the group's tag changed shows as drift.
        ec2()
            .await
            .revoke_security_group_ingress()
            .group_id(&nodes)
            .security_group_rule_ids(&https2)
            .send()
            .await
            .unwrap();
        ec2()
            .await
            .create_tags()
            .resources(&nodes)
            .tags(
                aws_sdk_ec2::types::Tag::builder()
                    .key("karpenter.sh/discovery")
                    .value("other")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let r = s.session(program(8443, "tls", "c2")).refresh(4).await.unwrap();
        assert_eq!(
            r.gone.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            vec!["sg/https"]
        );
        assert_eq!(
            r.drifted.iter().map(|(a, _)| a.to_string()).collect::<Vec<_>>(),
            vec!["sg/nodes"]
        );
        s.apply(program(8443, "tls", "c2")).await;
        assert_eq!(
            tag_map(group(&nodes).await.unwrap().tags())
                .get("karpenter.sh/discovery")
                .map(String::as_str),
            Some("c2")
        );

        // Find: a rule by the ownership tag inside its group, a group by its tag.
        let rp = spar::aws::ec2::security_group::SecurityGroupRuleProvider::new();
        let ctx = staged("sg/https");
        let found = rp
            .find(&ctx, &json!({"security_group_id": nodes}))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, s.id("sg/https").await);
        let gp = spar::aws::ec2::security_group::SecurityGroupProvider::new();
        let found = gp.find(&staged("sg/nodes"), &json!({})).await.unwrap().unwrap();
        assert_eq!(found.id, nodes);

        // Delete: rules before their groups (the emulator would delete a referenced group).
        let rec = Arc::new(Recorder::default());
        s.apply_recorded(|_| Ok(()), true, rec.clone()).await;
        rec.before(("sg/from_lb", "delete"), ("sg/lb", "delete"));
        rec.before(("sg/from_lb", "delete"), ("sg/nodes", "delete"));
        rec.before(("sg/https", "delete"), ("sg/nodes", "delete"));
        rec.before(("sg/nodes", "delete"), ("sg/vpc", "delete"));
        assert!(group(&nodes).await.is_none());
    });
}

async fn endpoint(id: &str) -> Option<aws_sdk_ec2::types::VpcEndpoint> {
    ec2()
        .await
        .describe_vpc_endpoints()
        .vpc_endpoint_ids(id)
        .send()
        .await
        .ok()
        .and_then(|o| o.vpc_endpoints().first().cloned())
        .filter(|e| !e.state().is_some_and(|s| s.as_str().eq_ignore_ascii_case("deleted")))
}

/// The S3 route of a gateway endpoint in a route table, if there is one.
async fn s3_route(table: &str, endpoint: &str) -> bool {
    route_table(table)
        .await
        .unwrap()
        .routes()
        .iter()
        .any(|r| r.gateway_id() == Some(endpoint) && r.destination_prefix_list_id().is_some())
}

#[test]
fn s3_gateway_endpoint() {
    use spar::aws::ec2::VpcEndpoint;
    run(async {
        let s = Stage::new();
        // `imported`: also declares `ep/imported`, an S3 endpoint for the first table only.
        let program = |both: bool, service: &'static str, imported: bool| {
            move |st: &mut spar::Stack| {
                let vpc = st.add("ep/vpc", Vpc::new("10.70.0.0/16"))?;
                let a = st.add("ep/rt_a", RouteTable::new(vpc.vpc_id()))?;
                let b = st.add("ep/rt_b", RouteTable::new(vpc.vpc_id()))?;
                let mut tables = vec![a.route_table_id().into()];
                if both {
                    tables.push(b.route_table_id().into());
                }
                st.add(
                    "ep/s3",
                    VpcEndpoint::gateway(vpc.vpc_id(), format!("com.amazonaws.us-east-1.{service}"), tables)
                        .tag("k", "v"),
                )?;
                if imported {
                    st.add(
                        "ep/imported",
                        VpcEndpoint::gateway(
                            vpc.vpc_id(),
                            "com.amazonaws.us-east-1.s3",
                            vec![a.route_table_id().into()],
                        ),
                    )?;
                }
                Ok(())
            }
        };
        s.apply(program(false, "s3", false)).await;
        let id = s.id("ep/s3").await;
        let (rt_a, rt_b) = (s.id("ep/rt_a").await, s.id("ep/rt_b").await);
        let e = endpoint(&id).await.unwrap();
        assert_eq!(e.route_table_ids(), std::slice::from_ref(&rt_a));
        assert_eq!(tag_map(e.tags()).get("spar:address").map(String::as_str), Some("ep/s3"));
        assert!(s3_route(&rt_a, &id).await);
        assert!(quiet(&s.plan(program(false, "s3", false)).await));

        // In place: a second route table (ModifyVpcEndpoint), which gets the S3 route.
        let plan = s.apply(program(true, "s3", false)).await;
        assert_eq!(op(&plan, "ep/s3"), Op::Update);
        assert_eq!(s.id("ep/s3").await, id);
        let mut tables = endpoint(&id).await.unwrap().route_table_ids().to_vec();
        tables.sort();
        let mut want = vec![rt_a.clone(), rt_b.clone()];
        want.sort();
        assert_eq!(tables, want);
        assert!(s3_route(&rt_b, &id).await);
        assert!(quiet(&s.plan(program(true, "s3", false)).await));

        // Drift: a table removed out of band shows as drift and is added back.
        ec2()
            .await
            .modify_vpc_endpoint()
            .vpc_endpoint_id(&id)
            .remove_route_table_ids(&rt_b)
            .send()
            .await
            .unwrap();
        let r = s.session(program(true, "s3", false)).refresh(4).await.unwrap();
        assert_eq!(
            r.drifted.iter().map(|(a, _)| a.to_string()).collect::<Vec<_>>(),
            vec!["ep/s3"],
            "{r:?}"
        );
        assert!(
            r.drifted[0]
                .1
                .iter()
                .all(|c| c.path.to_string().starts_with("route_table_ids")),
            "{r:?}"
        );
        let plan = s.apply(program(true, "s3", false)).await;
        assert_eq!(op(&plan, "ep/s3"), Op::Update);
        assert_eq!(endpoint(&id).await.unwrap().route_table_ids().len(), 2);
        assert!(s3_route(&rt_b, &id).await);

        let found = spar::aws::ec2::endpoint::VpcEndpointProvider::new()
            .find(&staged("ep/s3"), &json!({}))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, id);

        // Replace: another service is another endpoint; the old one is deleted.
        let plan = s.apply(program(true, "dynamodb", false)).await;
        assert_eq!(op(&plan, "ep/s3"), Op::Replace);
        let id2 = s.id("ep/s3").await;
        assert_ne!(id2, id);
        assert!(endpoint(&id).await.is_none());
        assert!(!s3_route(&rt_a, &id).await);
        assert_eq!(
            endpoint(&id2).await.unwrap().service_name(),
            Some("com.amazonaws.us-east-1.dynamodb")
        );

        // Import: an endpoint made out of band reads back as the program declares it.
        let vpc = s.id("ep/vpc").await;
        let made = ec2()
            .await
            .create_vpc_endpoint()
            .vpc_endpoint_type(aws_sdk_ec2::types::VpcEndpointType::Gateway)
            .vpc_id(&vpc)
            .service_name("com.amazonaws.us-east-1.s3")
            .route_table_ids(&rt_a)
            .send()
            .await
            .unwrap();
        let made_id = made.vpc_endpoint().unwrap().vpc_endpoint_id().unwrap().to_string();
        let imported = s
            .session(program(true, "dynamodb", true))
            .import("aws:ec2:VpcEndpoint", &"ep/imported".parse().unwrap(), &made_id)
            .await
            .unwrap();
        support::assert_declarable(&imported);
        assert_eq!(
            imported.inputs,
            json!({"vpc_id": vpc, "service_name": "com.amazonaws.us-east-1.s3",
                   "route_table_ids": [rt_a], "tags": {}})
        );
        let plan = s.plan(program(true, "dynamodb", true)).await;
        assert!(
            quiet(&plan),
            "{:#?}",
            plan.changes.iter().filter(|c| c.op != Op::Same).collect::<Vec<_>>()
        );

        // Delete: the endpoints before their route tables and VPC.
        let rec = Arc::new(Recorder::default());
        s.apply_recorded(|_| Ok(()), true, rec.clone()).await;
        rec.before(("ep/s3", "delete"), ("ep/rt_a", "delete"));
        rec.before(("ep/s3", "delete"), ("ep/vpc", "delete"));
        rec.before(("ep/imported", "delete"), ("ep/rt_a", "delete"));
        assert!(endpoint(&id2).await.is_none());
        assert!(endpoint(&made_id).await.is_none());
    });
}

/// A VPC with a subnet, an EIP and an internet gateway made by spar; with `imported`, also a
/// route table, its default route, its association with the subnet, a NAT gateway, a
/// security group and a rule of it, in the shape of the objects the test makes out of band.
/// `changed` changes a replace-forcing field of several of them.
fn out_of_band(imported: bool, changed: bool) -> impl FnOnce(&mut spar::Stack) -> spar::Result<()> {
    move |st: &mut spar::Stack| {
        let vpc = st.add("ob/vpc", Vpc::new("10.42.0.0/16"))?;
        let sn = st.add("ob/sn", Subnet::new(vpc.vpc_id(), "10.42.1.0/24").az("us-east-1a"))?;
        let ip = st.add("ob/eip", Eip::new().tag("use", "nat"))?;
        let ip2 = st.add("ob/eip2", Eip::new())?;
        let igw = st.add("ob/igw", InternetGateway::new(vpc.vpc_id()))?;
        if !imported {
            return Ok(());
        }
        let rt = st.add("ob/rt", RouteTable::new(vpc.vpc_id()).tag("tier", "public"))?;
        let destination = if changed { "10.99.0.0/16" } else { "0.0.0.0/0" };
        st.add(
            "ob/default",
            Route::new(rt.route_table_id(), destination).via_gateway(igw.gateway_id()),
        )?;
        st.add(
            "ob/assoc",
            RouteTableAssociation::new(rt.route_table_id(), sn.subnet_id()),
        )?;
        let alloc = if changed {
            ip2.allocation_id()
        } else {
            ip.allocation_id()
        };
        st.add("ob/nat", NatGateway::public(sn.subnet_id(), alloc).tag("team", "net"))?;
        let sg = st.add(
            "ob/sg",
            SecurityGroup::new(vpc.vpc_id())
                .name("spar-test-oob-sg")
                .description(if changed { "oob, changed" } else { "oob" })
                .tag("team", "net"),
        )?;
        st.add(
            "ob/https",
            SecurityGroupRule::ingress(sg.group_id())
                .tcp(443)
                .cidr("10.0.0.0/8")
                .description("https"),
        )?;
        Ok(())
    }
}

fn tag(key: &str, value: &str) -> aws_sdk_ec2::types::Tag {
    aws_sdk_ec2::types::Tag::builder().key(key).value(value).build()
}

fn tagged(kind: aws_sdk_ec2::types::ResourceType, key: &str, value: &str) -> aws_sdk_ec2::types::TagSpecification {
    aws_sdk_ec2::types::TagSpecification::builder()
        .resource_type(kind)
        .tags(tag(key, value))
        .build()
}

#[test]
fn network_objects_made_out_of_band_import_drift_replace() {
    use aws_sdk_ec2::types::ResourceType as T;
    run(async {
        let s = Stage::new();
        s.apply(out_of_band(false, false)).await;
        let (vpc, sn, igw) = (s.id("ob/vpc").await, s.id("ob/sn").await, s.id("ob/igw").await);
        let alloc = s.id("ob/eip").await;
        let ec2 = ec2().await;

        // Made out of band with the SDK.
        let rt = ec2
            .create_route_table()
            .vpc_id(&vpc)
            .tag_specifications(tagged(T::RouteTable, "tier", "public"))
            .send()
            .await
            .unwrap()
            .route_table()
            .and_then(|t| t.route_table_id())
            .unwrap()
            .to_string();
        ec2.create_route()
            .route_table_id(&rt)
            .destination_cidr_block("0.0.0.0/0")
            .gateway_id(&igw)
            .send()
            .await
            .unwrap();
        let assoc = ec2
            .associate_route_table()
            .route_table_id(&rt)
            .subnet_id(&sn)
            .send()
            .await
            .unwrap()
            .association_id()
            .unwrap()
            .to_string();
        let nat_id = ec2
            .create_nat_gateway()
            .subnet_id(&sn)
            .allocation_id(&alloc)
            .tag_specifications(tagged(T::Natgateway, "team", "net"))
            .send()
            .await
            .unwrap()
            .nat_gateway()
            .and_then(|n| n.nat_gateway_id())
            .unwrap()
            .to_string();
        let sg = ec2
            .create_security_group()
            .vpc_id(&vpc)
            .group_name("spar-test-oob-sg")
            .description("oob")
            .tag_specifications(tagged(T::SecurityGroup, "team", "net"))
            .send()
            .await
            .unwrap()
            .group_id()
            .unwrap()
            .to_string();
        let rule = ec2
            .authorize_security_group_ingress()
            .group_id(&sg)
            .ip_permissions(
                aws_sdk_ec2::types::IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(443)
                    .to_port(443)
                    .ip_ranges(
                        aws_sdk_ec2::types::IpRange::builder()
                            .cidr_ip("10.0.0.0/8")
                            .description("https")
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .security_group_rules()[0]
            .security_group_rule_id()
            .unwrap()
            .to_string();

        // Import each through its provider's read; the program declaring them plans nothing.
        for (kind, address, id) in [
            ("aws:ec2:RouteTable", "ob/rt", rt.clone()),
            ("aws:ec2:Route", "ob/default", format!("{rt}_0.0.0.0/0")),
            ("aws:ec2:RouteTableAssociation", "ob/assoc", assoc.clone()),
            ("aws:ec2:NatGateway", "ob/nat", nat_id.clone()),
            ("aws:ec2:SecurityGroup", "ob/sg", sg.clone()),
            ("aws:ec2:SecurityGroupRule", "ob/https", rule.clone()),
        ] {
            let imported = s
                .session(out_of_band(true, false))
                .import(kind, &address.parse().unwrap(), &id)
                .await
                .unwrap_or_else(|e| panic!("import {address}: {e}"));
            assert_eq!(imported.id, id, "{address}");
            support::assert_declarable(&imported);
        }
        assert_eq!(
            s.snapshot().await.get(&"ob/nat".parse().unwrap()).unwrap().inputs,
            json!({"subnet_id": sn, "allocation_id": alloc, "connectivity_type": "public", "tags": {"team": "net"}})
        );
        let plan = s.plan(out_of_band(true, false)).await;
        assert!(
            quiet(&plan),
            "{:#?}",
            plan.changes.iter().filter(|c| c.op != Op::Same).collect::<Vec<_>>()
        );

        // Drift: tags changed on the EIP, route table and NAT gateway, the rule's description
        // changed, the association removed, all out of band.
        for id in [&alloc, &rt, &nat_id] {
            ec2.create_tags()
                .resources(id.as_str())
                .tags(tag("drift", "yes"))
                .send()
                .await
                .unwrap();
        }
        ec2.modify_security_group_rules()
            .group_id(&sg)
            .security_group_rules(
                aws_sdk_ec2::types::SecurityGroupRuleUpdate::builder()
                    .security_group_rule_id(&rule)
                    .security_group_rule(
                        aws_sdk_ec2::types::SecurityGroupRuleRequest::builder()
                            .ip_protocol("tcp")
                            .from_port(443)
                            .to_port(443)
                            .cidr_ipv4("10.0.0.0/8")
                            .description("changed")
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
        ec2.disassociate_route_table()
            .association_id(&assoc)
            .send()
            .await
            .unwrap();
        let r = s.session(out_of_band(true, false)).refresh(4).await.unwrap();
        let mut drifted: Vec<String> = r.drifted.iter().map(|(a, _)| a.to_string()).collect();
        drifted.sort();
        assert_eq!(drifted, ["ob/eip", "ob/https", "ob/nat", "ob/rt"], "{r:?}");
        assert_eq!(
            r.gone.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            ["ob/assoc"],
            "{r:?}"
        );
        let plan = s.apply(out_of_band(true, false)).await;
        for a in ["ob/eip", "ob/https", "ob/nat", "ob/rt"] {
            assert_eq!(op(&plan, a), Op::Update, "{a}");
        }
        assert_eq!(op(&plan, "ob/assoc"), Op::Create);
        assert!(!tag_map(route_table(&rt).await.unwrap().tags()).contains_key("drift"));
        assert!(!tag_map(nat_gw(&nat_id).await.tags()).contains_key("drift"));
        assert_eq!(rule_of(&rule).await.description(), Some("https"));
        assert_eq!(route_table(&rt).await.unwrap().associations().len(), 1);
        let r = s.session(out_of_band(true, false)).refresh(4).await.unwrap();
        assert!(r.drifted.is_empty() && r.gone.is_empty(), "{r:?}");

        // Replace: the route's destination, the NAT gateway's EIP, the group's description
        // (a fixed name, so the old group, and its rule, go first).
        let plan = s.apply(out_of_band(true, true)).await;
        for a in ["ob/default", "ob/nat", "ob/sg", "ob/https"] {
            assert_eq!(op(&plan, a), Op::Replace, "{a}");
        }
        assert!(plan.get(&"ob/sg".parse().unwrap()).unwrap().delete_before_replace);
        let routes = route_table(&rt).await.unwrap();
        let dests: Vec<_> = routes
            .routes()
            .iter()
            .filter(|r| r.gateway_id() == Some(igw.as_str()))
            .filter_map(|r| r.destination_cidr_block())
            .collect();
        assert_eq!(dests, ["10.99.0.0/16"]);
        let nat2 = s.id("ob/nat").await;
        assert_ne!(nat2, nat_id);
        assert!(nat(&nat_id).await.is_none());
        assert_eq!(
            nat_gw(&nat2).await.nat_gateway_addresses()[0].allocation_id(),
            Some(s.id("ob/eip2").await.as_str())
        );
        let sg2 = s.id("ob/sg").await;
        assert_ne!(sg2, sg);
        assert!(group(&sg).await.is_none());
        assert_eq!(group(&sg2).await.unwrap().description(), Some("oob, changed"));
        assert!(quiet(&s.plan(out_of_band(true, true)).await));

        s.destroy().await;
        assert!(route_table(&rt).await.is_none());
        assert!(group(&sg2).await.is_none());
    });
}

async fn nat_gw(id: &str) -> aws_sdk_ec2::types::NatGateway {
    nat(id).await.unwrap_or_else(|| panic!("NAT gateway {id}"))
}

async fn rule_of(id: &str) -> aws_sdk_ec2::types::SecurityGroupRule {
    rule(id).await.unwrap_or_else(|| panic!("rule {id}"))
}

#[test]
fn route_table_moves_vpc_by_replace() {
    run(async {
        let s = Stage::new();
        let program = |second: bool| {
            move |st: &mut spar::Stack| {
                let a = st.add("rtx/vpc_a", Vpc::new("10.43.0.0/16"))?;
                let b = st.add("rtx/vpc_b", Vpc::new("10.44.0.0/16"))?;
                let vpc = if second { b.vpc_id() } else { a.vpc_id() };
                st.add("rtx/rt", RouteTable::new(vpc).tag("tier", "x"))?;
                Ok(())
            }
        };
        s.apply(program(false)).await;
        let first = s.id("rtx/rt").await;
        let plan = s.apply(program(true)).await;
        assert_eq!(op(&plan, "rtx/rt"), Op::Replace);
        let second = s.id("rtx/rt").await;
        assert_ne!(first, second);
        assert!(route_table(&first).await.is_none());
        let t = route_table(&second).await.unwrap();
        assert_eq!(t.vpc_id(), Some(s.id("rtx/vpc_b").await.as_str()));
        assert_eq!(tag_map(t.tags()).get("tier").map(String::as_str), Some("x"));
        assert!(quiet(&s.plan(program(true)).await));
        s.destroy().await;
        assert!(route_table(&second).await.is_none());
    });
}
