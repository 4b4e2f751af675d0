//! Lookups of AWS objects made elsewhere (with the SDK, as eksctl or the console would):
//! a VPC by tags, its subnets by VPC and tag, a security group by name and VPC, an EKS
//! cluster and an IAM role by name. Each is read at plan time (`<= read`), its outputs
//! feed a managed resource, nothing is changed; none or two matches fail the plan naming
//! the lookup. And a whole VPC network (route tables, routes, associations, gateways,
//! endpoints, security group rules, launch templates) looked up by the providers directly:
//! every match, each exactly as `read` reads it, nothing of another VPC.
#![cfg(feature = "aws")]

#[path = "support/aws.rs"]
mod support;

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use serde_json::json;
use spar::aws::ec2::{SecurityGroup, Subnet, Vpc};
use spar::aws::eks::Cluster;
use spar::aws::iam::Role;
use spar::aws::sqs::Queue;
use spar::plan::Op;
use spar::provider::{OpContext, ProviderError, ResourceProvider};
use support::{Stage, ec2, iam, op, run};

fn tagged(kind: ResourceType, pairs: &[(&str, &str)]) -> TagSpecification {
    let mut t = TagSpecification::builder().resource_type(kind);
    for (k, v) in pairs {
        t = t.tags(Tag::builder().key(*k).value(*v).build());
    }
    t.build()
}

#[test]
fn existing_objects_are_looked_up_read_and_never_changed() {
    run(async {
        // As eksctl would make them.
        let vpc = ec2()
            .await
            .create_vpc()
            .cidr_block("10.70.0.0/16")
            .tag_specifications(tagged(ResourceType::Vpc, &[("Name", "existing-vpc")]))
            .send()
            .await
            .unwrap();
        let vpc_id = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
        let mut subnets = Vec::new();
        for (cidr, az) in [("10.70.0.0/20", "us-east-1a"), ("10.70.16.0/20", "us-east-1b")] {
            let s = ec2()
                .await
                .create_subnet()
                .vpc_id(&vpc_id)
                .cidr_block(cidr)
                .availability_zone(az)
                .tag_specifications(tagged(ResourceType::Subnet, &[("tier", "private")]))
                .send()
                .await
                .unwrap();
            subnets.push(s.subnet().unwrap().subnet_id().unwrap().to_string());
        }
        let sg = ec2()
            .await
            .create_security_group()
            .group_name("existing-nodes")
            .description("nodes")
            .vpc_id(&vpc_id)
            .send()
            .await
            .unwrap();
        let sg_id = sg.group_id().unwrap().to_string();
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"eks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        let role = iam()
            .await
            .create_role()
            .role_name("existing-cluster-role")
            .assume_role_policy_document(trust)
            .send()
            .await
            .unwrap();
        let role_arn = role.role().unwrap().arn().to_string();
        let eks = &spar::aws::context::clients().await.eks;
        eks.create_cluster()
            .name("existing-cluster")
            .role_arn(&role_arn)
            .resources_vpc_config(
                aws_sdk_eks::types::VpcConfigRequest::builder()
                    .set_subnet_ids(Some(subnets.clone()))
                    .security_group_ids(&sg_id)
                    .build(),
            )
            .send()
            .await
            .unwrap();

        let s = Stage::new();
        let program = |st: &mut spar::Stack| {
            let vpc = st.lookup("found/vpc", Vpc::lookup().tag("Name", "existing-vpc"))?;
            let subnet = st.lookup(
                "found/subnet-a",
                Subnet::lookup()
                    .vpc_id(vpc.vpc_id())
                    .tag("tier", "private")
                    .id(subnets[0].as_str()),
            )?;
            let sg = st.lookup(
                "found/sg",
                SecurityGroup::lookup().vpc_id(vpc.vpc_id()).name("existing-nodes"),
            )?;
            let cluster = st.lookup("found/cluster", Cluster::lookup("existing-cluster"))?;
            let role = st.lookup("found/role", Role::lookup("existing-cluster-role"))?;
            // A managed resource fed by every lookup's outputs.
            st.add(
                "managed/queue",
                Queue::new()
                    .name("spar-lookup-queue")
                    .tag("vpc", vpc.vpc_id())
                    .tag("subnet", subnet.subnet_id())
                    .tag("sg", sg.group_id())
                    .tag("endpoint", cluster.endpoint())
                    .tag("cluster-sg", cluster.cluster_security_group_id())
                    .tag("role", role.arn()),
            )?;
            Ok(())
        };
        let plan = s.plan(program).await;
        for a in ["found/vpc", "found/subnet-a", "found/sg", "found/cluster", "found/role"] {
            assert_eq!(op(&plan, a), Op::Read, "{a}");
        }
        assert_eq!(op(&plan, "managed/queue"), Op::Create);
        let queue = plan
            .get(&"managed/queue".parse().unwrap())
            .unwrap()
            .after
            .clone()
            .unwrap();
        assert_eq!(queue["tags"]["vpc"], json!(vpc_id));
        assert_eq!(queue["tags"]["subnet"], json!(subnets[0]));
        assert_eq!(queue["tags"]["sg"], json!(sg_id));
        assert_eq!(queue["tags"]["role"], json!(role_arn));
        assert!(
            queue["tags"]["endpoint"].as_str().unwrap().starts_with("https://"),
            "{queue}"
        );
        assert!(
            queue["tags"]["cluster-sg"].as_str().unwrap().starts_with("sg-"),
            "{queue}"
        );
        let cluster = plan
            .get(&"found/cluster".parse().unwrap())
            .unwrap()
            .read
            .clone()
            .unwrap();
        assert_eq!(cluster["vpc_id"], json!(vpc_id));
        assert_eq!(cluster["subnet_ids"], json!(subnets));
        s.apply(program).await;
        assert!(!s.plan(program).await.has_changes());
        s.destroy().await;
        // Destroy deleted the queue and forgot the lookups; the objects stay.
        let c = eks.describe_cluster().name("existing-cluster").send().await.unwrap();
        assert!(c.cluster().is_some());
        assert!(
            iam()
                .await
                .get_role()
                .role_name("existing-cluster-role")
                .send()
                .await
                .is_ok()
        );
        assert!(s.snapshot().await.resources.is_empty());

        // Nothing, or two, match: the plan fails naming the lookup.
        let none = |st: &mut spar::Stack| {
            st.lookup("found/vpc", Vpc::lookup().tag("Name", "no-such-vpc"))?;
            Ok(())
        };
        let err = s
            .session(none)
            .plan(&spar::plan::diff::PlanOptions::default(), false)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("lookup `found/vpc` (aws:ec2:Vpc) found nothing matching"),
            "{err}"
        );
        let two = |st: &mut spar::Stack| {
            st.lookup(
                "found/subnets",
                Subnet::lookup().vpc_id(vpc_id.as_str()).tag("tier", "private"),
            )?;
            Ok(())
        };
        let err = s
            .session(two)
            .plan(&spar::plan::diff::PlanOptions::default(), false)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("lookup `found/subnets` (aws:ec2:Subnet) found 2 objects"),
            "{err}"
        );
        let err = s
            .session(|st: &mut spar::Stack| {
                st.lookup("found/cluster", Cluster::lookup("no-such-cluster"))?;
                Ok(())
            })
            .plan(&spar::plan::diff::PlanOptions::default(), false)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("lookup `found/cluster` (aws:eks:Cluster) found nothing"),
            "{err}"
        );
    });
}

/// The ids of what [`network`] made in one VPC.
struct Network {
    vpc: String,
    subnets: [String; 2],
    main_table: String,
    public_table: String,
    private_table: String,
    associations: [String; 2],
    igw: String,
    nat: String,
    web_group: String,
    lb_group: String,
    default_group: String,
    from_lb_rule: String,
    cidr_rule: String,
    endpoint: String,
    template: String,
}

/// A VPC as eksctl or Terraform would make it, with the SDK: two subnets, a public route
/// table (default route to an internet gateway) and a private one (default route to a NAT
/// gateway), each associated with a subnet, a security group with an ingress rule from
/// another group and one from a CIDR, a gateway endpoint for S3 and a launch template
/// naming the group. `n` keeps names and CIDRs apart between calls.
async fn network(n: u8) -> Network {
    let ec2 = ec2().await;
    let label = format!("lookups-{n}");
    let tag = |kind| tagged(kind, &[("net", label.as_str())]);
    let vpc = ec2
        .create_vpc()
        .cidr_block(format!("10.{n}.0.0/16"))
        .tag_specifications(tag(ResourceType::Vpc))
        .send()
        .await
        .unwrap();
    let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    let mut subnets = Vec::new();
    for (i, az) in ["us-east-1a", "us-east-1b"].iter().enumerate() {
        let s = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(format!("10.{n}.{}.0/24", i))
            .availability_zone(*az)
            .send()
            .await
            .unwrap();
        subnets.push(s.subnet().unwrap().subnet_id().unwrap().to_string());
    }
    let main = ec2
        .describe_route_tables()
        .filters(filter("vpc-id", &vpc))
        .filters(filter("association.main", "true"))
        .send()
        .await
        .unwrap();
    let main_table = main.route_tables()[0].route_table_id().unwrap().to_string();
    let igw = ec2
        .create_internet_gateway()
        .tag_specifications(tag(ResourceType::InternetGateway))
        .send()
        .await
        .unwrap();
    let igw = igw
        .internet_gateway()
        .unwrap()
        .internet_gateway_id()
        .unwrap()
        .to_string();
    ec2.attach_internet_gateway()
        .internet_gateway_id(&igw)
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap();
    let eip = ec2
        .allocate_address()
        .domain(aws_sdk_ec2::types::DomainType::Vpc)
        .send()
        .await
        .unwrap();
    let nat = ec2
        .create_nat_gateway()
        .subnet_id(&subnets[0])
        .allocation_id(eip.allocation_id().unwrap())
        .send()
        .await
        .unwrap();
    let nat = nat.nat_gateway().unwrap().nat_gateway_id().unwrap().to_string();
    let mut tables = Vec::new();
    let mut associations = Vec::new();
    for (subnet, via_nat) in [(&subnets[0], false), (&subnets[1], true)] {
        let t = ec2
            .create_route_table()
            .vpc_id(&vpc)
            .tag_specifications(tag(ResourceType::RouteTable))
            .send()
            .await
            .unwrap();
        let t = t.route_table().unwrap().route_table_id().unwrap().to_string();
        let route = ec2
            .create_route()
            .route_table_id(&t)
            .destination_cidr_block("0.0.0.0/0");
        let route = if via_nat {
            route.nat_gateway_id(&nat)
        } else {
            route.gateway_id(&igw)
        };
        route.send().await.unwrap();
        let a = ec2
            .associate_route_table()
            .route_table_id(&t)
            .subnet_id(subnet)
            .send()
            .await
            .unwrap();
        associations.push(a.association_id().unwrap().to_string());
        tables.push(t);
    }
    let group = |name: &str| {
        ec2.create_security_group()
            .group_name(format!("lookups-{n}-{name}"))
            .description(name)
            .vpc_id(&vpc)
            .send()
    };
    let web_group = group("web").await.unwrap().group_id().unwrap().to_string();
    let lb_group = group("lb").await.unwrap().group_id().unwrap().to_string();
    let default_group = ec2
        .describe_security_groups()
        .filters(filter("vpc-id", &vpc))
        .filters(filter("group-name", "default"))
        .send()
        .await
        .unwrap()
        .security_groups()[0]
        .group_id()
        .unwrap()
        .to_string();
    let ingress = |p: aws_sdk_ec2::types::IpPermission| {
        ec2.authorize_security_group_ingress()
            .group_id(&web_group)
            .ip_permissions(p)
            .send()
    };
    let from_lb = ingress(
        aws_sdk_ec2::types::IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(8080)
            .to_port(8080)
            .user_id_group_pairs(
                aws_sdk_ec2::types::UserIdGroupPair::builder()
                    .group_id(&lb_group)
                    .build(),
            )
            .build(),
    )
    .await
    .unwrap();
    let from_lb_rule = from_lb.security_group_rules()[0]
        .security_group_rule_id()
        .unwrap()
        .to_string();
    let cidr = ingress(
        aws_sdk_ec2::types::IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(443)
            .to_port(443)
            .ip_ranges(aws_sdk_ec2::types::IpRange::builder().cidr_ip("192.0.2.0/24").build())
            .build(),
    )
    .await
    .unwrap();
    let cidr_rule = cidr.security_group_rules()[0]
        .security_group_rule_id()
        .unwrap()
        .to_string();
    let endpoint = ec2
        .create_vpc_endpoint()
        .vpc_endpoint_type(aws_sdk_ec2::types::VpcEndpointType::Gateway)
        .vpc_id(&vpc)
        .service_name("com.amazonaws.us-east-1.s3")
        .route_table_ids(&tables[1])
        .send()
        .await
        .unwrap();
    let endpoint = endpoint.vpc_endpoint().unwrap().vpc_endpoint_id().unwrap().to_string();
    let template = ec2
        .create_launch_template()
        .launch_template_name(format!("lookups-{n}-nodes"))
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .security_group_ids(&web_group)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let template = template
        .launch_template()
        .unwrap()
        .launch_template_id()
        .unwrap()
        .to_string();
    let [public_table, private_table] = <[String; 2]>::try_from(tables).unwrap();
    Network {
        vpc,
        subnets: subnets.try_into().unwrap(),
        main_table,
        public_table,
        private_table,
        associations: associations.try_into().unwrap(),
        igw,
        nat,
        web_group,
        lb_group,
        default_group,
        from_lb_rule,
        cidr_rule,
        endpoint,
        template,
    }
}

fn filter(name: &str, value: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder().name(name).values(value).build()
}

/// Runs `provider`'s lookup of `query` (a program's query builder, serialized as the engine
/// hands it over) and checks that it found exactly `want` (ids), that each result is what
/// `read` answers for its id, and that the same query narrowed to `ids: []` finds nothing.
async fn check_lookup(
    provider: &dyn ResourceProvider,
    query: serde_json::Value,
    want: &[&str],
) -> Vec<spar::provider::ReadResult> {
    let ctx = OpContext::detached("lookups/check".parse().unwrap());
    let kind = provider.kind().to_string();
    let found = provider.lookup(&ctx, &query).await.unwrap();
    let ids: BTreeSet<&str> = found.iter().map(|r| r.id.as_str()).collect();
    let want_ids: BTreeSet<&str> = want.iter().copied().collect();
    assert_eq!(ids, want_ids, "{kind} lookup of {query}");
    assert_eq!(found.len(), want.len(), "{kind}: an object found twice");
    for r in &found {
        let read = provider
            .read(&ctx, &r.id, &serde_json::Value::Null, &serde_json::Value::Null)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{kind} {} reads as gone", r.id));
        assert_eq!(r, &read, "{kind} {}: the lookup's result is not read's", r.id);
    }
    let mut none = query.clone();
    none["ids"] = json!([]);
    none.as_object_mut().unwrap().remove("id");
    assert_eq!(provider.lookup(&ctx, &none).await.unwrap(), vec![], "{kind} ids: []");
    found
}

#[test]
fn a_vpcs_whole_network_is_looked_up_every_match_as_read_reads_it() {
    use spar::aws::ec2::gateway::{InternetGatewayProvider, NatGatewayProvider};
    use spar::aws::ec2::route::{RouteProvider, RouteTableAssociationProvider, RouteTableProvider};
    use spar::aws::ec2::security_group::SecurityGroupRuleProvider;
    use spar::aws::ec2::{
        InternetGateway, LaunchTemplate, NatGateway, Route, RouteTable, RouteTableAssociation, SecurityGroupRule,
        VpcEndpoint,
    };
    run(async {
        let net = network(71).await;
        // Another VPC with the same objects: none of them may be found.
        let other = network(72).await;
        let by_vpc = |v: &str| serde_json::to_value(RouteTable::lookup().vpc_id(v)).unwrap();
        assert_eq!(by_vpc(&net.vpc), json!({"vpc_id": net.vpc}));

        check_lookup(
            &RouteTableProvider::new(),
            by_vpc(&net.vpc),
            &[&net.main_table, &net.public_table, &net.private_table],
        )
        .await;
        check_lookup(
            &RouteTableProvider::new(),
            serde_json::to_value(RouteTable::lookup().ids(vec![net.public_table.clone()])).unwrap(),
            &[&net.public_table],
        )
        .await;

        let local = "10.71.0.0/16";
        let route = |t: &str, d: &str| format!("{t}_{d}");
        let routes = check_lookup(
            &RouteProvider::new(),
            serde_json::to_value(Route::lookup().vpc_id(net.vpc.as_str())).unwrap(),
            &[
                &route(&net.main_table, local),
                &route(&net.public_table, local),
                &route(&net.public_table, "0.0.0.0/0"),
                &route(&net.private_table, local),
                &route(&net.private_table, "0.0.0.0/0"),
            ],
        )
        .await;
        let inputs_of =
            |id: &str, rs: &[spar::provider::ReadResult]| rs.iter().find(|r| r.id == id).unwrap().inputs.clone();
        assert_eq!(
            inputs_of(&route(&net.public_table, "0.0.0.0/0"), &routes)["gateway_id"],
            json!(net.igw)
        );
        assert_eq!(
            inputs_of(&route(&net.private_table, "0.0.0.0/0"), &routes)["nat_gateway_id"],
            json!(net.nat)
        );
        assert_eq!(
            inputs_of(&route(&net.main_table, local), &routes)["gateway_id"],
            json!("local")
        );
        // By the route tables' ids.
        check_lookup(
            &RouteProvider::new(),
            serde_json::to_value(Route::lookup().id(net.public_table.as_str())).unwrap(),
            &[&route(&net.public_table, local), &route(&net.public_table, "0.0.0.0/0")],
        )
        .await;

        let associations = check_lookup(
            &RouteTableAssociationProvider::new(),
            serde_json::to_value(RouteTableAssociation::lookup().vpc_id(net.vpc.as_str())).unwrap(),
            &[&net.associations[0], &net.associations[1]],
        )
        .await;
        assert_eq!(
            inputs_of(&net.associations[1], &associations),
            json!({"route_table_id": net.private_table, "subnet_id": net.subnets[1]})
        );

        check_lookup(
            &InternetGatewayProvider::new(),
            serde_json::to_value(InternetGateway::lookup().vpc_id(net.vpc.as_str())).unwrap(),
            &[&net.igw],
        )
        .await;
        check_lookup(
            &InternetGatewayProvider::new(),
            serde_json::to_value(
                InternetGateway::lookup()
                    .tag("net", "lookups-72")
                    .ids(vec![other.igw.clone()]),
            )
            .unwrap(),
            &[&other.igw],
        )
        .await;
        check_lookup(
            &NatGatewayProvider::new(),
            serde_json::to_value(NatGateway::lookup().vpc_id(net.vpc.as_str())).unwrap(),
            &[&net.nat],
        )
        .await;
        check_lookup(
            &spar::aws::ec2::endpoint::VpcEndpointProvider::new(),
            serde_json::to_value(VpcEndpoint::lookup().vpc_id(net.vpc.as_str())).unwrap(),
            &[&net.endpoint],
        )
        .await;

        // Every rule of the VPC's three groups (the default group's included), as EC2 lists
        // them group by group.
        let mut want_rules = Vec::new();
        for g in [&net.default_group, &net.web_group, &net.lb_group] {
            let out = ec2()
                .await
                .describe_security_group_rules()
                .filters(filter("group-id", g))
                .send()
                .await
                .unwrap();
            want_rules.extend(
                out.security_group_rules()
                    .iter()
                    .map(|r| r.security_group_rule_id().unwrap().to_string()),
            );
        }
        let want: Vec<&str> = want_rules.iter().map(String::as_str).collect();
        let rules = check_lookup(
            &SecurityGroupRuleProvider::new(),
            serde_json::to_value(SecurityGroupRule::lookup().vpc_id(net.vpc.as_str())).unwrap(),
            &want,
        )
        .await;
        assert_eq!(
            inputs_of(&net.from_lb_rule, &rules)["source_security_group_id"],
            json!(net.lb_group)
        );
        assert_eq!(inputs_of(&net.cidr_rule, &rules)["cidr_ipv4"], json!("192.0.2.0/24"));
        // The egress-all rule every new group is given.
        assert!(
            rules
                .iter()
                .any(|r| r.inputs["security_group_id"] == json!(net.web_group)
                    && r.inputs["type"] == json!("egress")
                    && r.inputs["protocol"] == json!("-1")
                    && r.inputs["cidr_ipv4"] == json!("0.0.0.0/0")),
            "{rules:#?}"
        );
        // One group's rules, by its id.
        let web_rules: Vec<&str> = rules
            .iter()
            .filter(|r| r.inputs["security_group_id"] == json!(net.web_group))
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(web_rules.len(), 3, "{rules:#?}");
        check_lookup(
            &SecurityGroupRuleProvider::new(),
            serde_json::to_value(SecurityGroupRule::lookup().id(net.web_group.as_str())).unwrap(),
            &web_rules,
        )
        .await;

        let templates = check_lookup(
            &spar::aws::ec2::launch_template::LaunchTemplateProvider::new(),
            serde_json::to_value(LaunchTemplate::lookup().ids(vec![net.template.clone()])).unwrap(),
            &[&net.template],
        )
        .await;
        assert_eq!(templates[0].inputs["security_group_ids"], json!([net.web_group]));

        // The existing EC2 lookups take `ids` too.
        check_lookup(
            &spar::aws::ec2::subnet::SubnetProvider::new(),
            serde_json::to_value(spar::aws::ec2::Subnet::lookup().vpc_id(net.vpc.as_str())).unwrap(),
            &[&net.subnets[0], &net.subnets[1]],
        )
        .await;

        // `id` and `ids` together, and a filter the kind does not have, are refused.
        let ctx = OpContext::detached("lookups/check".parse().unwrap());
        let both = json!({"id": net.vpc, "ids": [net.vpc]});
        let err = RouteTableProvider::new().lookup(&ctx, &both).await.unwrap_err();
        assert!(matches!(err, ProviderError::InvalidInput(_)), "{err:?}");
        assert!(err.to_string().contains("`id` or `ids`"), "{err}");
        let err = NatGatewayProvider::new()
            .lookup(&ctx, &json!({"name": "x"}))
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::InvalidInput(_)), "{err:?}");
    });
}
