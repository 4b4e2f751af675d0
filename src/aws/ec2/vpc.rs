//! `aws:ec2:Vpc`: a VPC with an IPv4 CIDR, DNS support/hostnames and tags.
//!
//! Rules kept here: the CIDR forces a replacement; DNS attributes and tags change in place
//! (one ModifyVpcAttribute per attribute, as the API demands); create waits until the VPC
//! is `available` and deletes it again if a later step fails, so a failed create leaves
//! nothing behind; delete retries `DependencyViolation` (ENIs and gateways going away)
//! within the delete timeout and returns once DescribeVpcs no longer finds it; `find`
//! finishes what an interrupted create left undone (the DNS attributes), since state
//! records the inputs asked for.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType, VpcAttributeName, VpcState};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{WAIT, from_tags, owner_filter, parse, sync_tags, tag_spec, validate_ipv4_cidr};
use crate::aws::call::{Poll, Retry, call, call_found, call0};
use crate::aws::context;
use crate::aws::lifecycle::{IfCancelled, created_or_undone, deleted_then_gone, kind_basics, provider, wait_ready};
use crate::declaration::Expr;
use crate::model::{Handle, Input, Output};
use crate::provider::{Created, OpContext, ProviderError, ReadResult, ResourceProvider, Schema};

pub const KIND: &str = "aws:ec2:Vpc";

/// A VPC. DNS support is on and DNS hostnames off by default, as in AWS.
#[derive(Debug, Clone, Serialize)]
pub struct Vpc {
    cidr_block: Input<String>,
    enable_dns_support: bool,
    enable_dns_hostnames: bool,
    tags: BTreeMap<String, Input<String>>,
}

impl Vpc {
    pub fn new(cidr_block: impl Into<Input<String>>) -> Self {
        Vpc {
            cidr_block: cidr_block.into(),
            enable_dns_support: true,
            enable_dns_hostnames: false,
            tags: BTreeMap::new(),
        }
    }
    pub fn dns_support(mut self, yes: bool) -> Self {
        self.enable_dns_support = yes;
        self
    }
    pub fn dns_hostnames(mut self, yes: bool) -> Self {
        self.enable_dns_hostnames = yes;
        self
    }
    pub fn tag(mut self, key: &str, value: impl Into<Input<String>>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }
}

impl Vpc {
    /// An existing VPC, by id or tags (`Vpc::lookup().tag("Name", "main")`), for
    /// [`crate::Stack::lookup`].
    pub fn lookup() -> crate::aws::lookup::Ec2Lookup<Vpc> {
        crate::aws::lookup::Ec2Lookup::for_kind(KIND, std::sync::Arc::new(VpcProvider::new()))
    }
}

impl Handle<Vpc> {
    /// The VPC id (`vpc-...`).
    pub fn vpc_id(&self) -> Output<String> {
        self.output("id")
    }
    pub fn arn(&self) -> Output<String> {
        self.output("arn")
    }
    pub fn cidr_block(&self) -> Output<String> {
        self.output("cidr_block")
    }
    /// The VPC's main route table.
    pub fn main_route_table_id(&self) -> Output<String> {
        self.output("main_route_table_id")
    }
    /// The VPC's `default` security group.
    pub fn default_security_group_id(&self) -> Output<String> {
        self.output("default_security_group_id")
    }
}

#[derive(Deserialize)]
struct VpcInputs {
    cidr_block: String,
    #[serde(default = "yes")]
    enable_dns_support: bool,
    #[serde(default)]
    enable_dns_hostnames: bool,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}

provider!(
    /// The provider of `aws:ec2:Vpc`.
    VpcProvider for Vpc (KIND),
    Schema::new().replace_on(&["cidr_block"])
);

fn flag(b: bool) -> AttributeBooleanValue {
    AttributeBooleanValue::builder().value(b).build()
}

async fn describe(ctx: &OpContext, id: &str) -> Result<Option<aws_sdk_ec2::types::Vpc>, ProviderError> {
    let ec2 = context::ec2().await;
    let out = call_found(ctx, "DescribeVpcs", || ec2.describe_vpcs().vpc_ids(id).send()).await?;
    Ok(out.and_then(|o| o.vpcs().first().cloned()))
}

async fn attribute(ctx: &OpContext, id: &str, name: VpcAttributeName) -> Result<bool, ProviderError> {
    let ec2 = context::ec2().await;
    let out = call0(ctx, "DescribeVpcAttribute", || {
        ec2.describe_vpc_attribute().vpc_id(id).attribute(name.clone()).send()
    })
    .await?;
    let v = match name {
        VpcAttributeName::EnableDnsHostnames => out.enable_dns_hostnames(),
        _ => out.enable_dns_support(),
    };
    Ok(v.and_then(|v| v.value()).unwrap_or(false))
}

async fn set_attributes(
    ctx: &OpContext,
    id: &str,
    support: Option<bool>,
    hostnames: Option<bool>,
) -> Result<(), ProviderError> {
    let ec2 = context::ec2().await;
    // Eventual consistency: a VPC just made may not be visible to ModifyVpcAttribute yet.
    let retry = Retry::on(&["InvalidVpcID.NotFound"], Duration::from_secs(60));
    if let Some(b) = support {
        call(ctx, "ModifyVpcAttribute", retry, || {
            ec2.modify_vpc_attribute().vpc_id(id).enable_dns_support(flag(b)).send()
        })
        .await?;
    }
    if let Some(b) = hostnames {
        call(ctx, "ModifyVpcAttribute", retry, || {
            ec2.modify_vpc_attribute()
                .vpc_id(id)
                .enable_dns_hostnames(flag(b))
                .send()
        })
        .await?;
    }
    Ok(())
}

async fn outputs(ctx: &OpContext, vpc: &aws_sdk_ec2::types::Vpc) -> Result<Value, ProviderError> {
    let ec2 = context::ec2().await;
    let id = vpc.vpc_id().unwrap_or_default();
    let owner = vpc.owner_id().unwrap_or_default();
    let tables = call0(ctx, "DescribeRouteTables", || {
        ec2.describe_route_tables()
            .filters(super::filter("vpc-id", id))
            .filters(super::filter("association.main", "true"))
            .send()
    })
    .await?;
    let groups = call0(ctx, "DescribeSecurityGroups", || {
        ec2.describe_security_groups()
            .filters(super::filter("vpc-id", id))
            .filters(super::filter("group-name", "default"))
            .send()
    })
    .await?;
    Ok(json!({
        "id": id,
        "arn": super::arn(owner, "vpc", id).await,
        "cidr_block": vpc.cidr_block(),
        "owner_id": owner,
        "main_route_table_id": tables.route_tables().first().and_then(|t| t.route_table_id()),
        "default_security_group_id": groups.security_groups().first().and_then(|g| g.group_id()),
    }))
}

async fn wait_available(ctx: &OpContext, id: &str) -> Result<aws_sdk_ec2::types::Vpc, ProviderError> {
    wait_ready(
        ctx,
        "the VPC to be available",
        WAIT,
        || describe(ctx, id),
        |v| match v.state() {
            Some(VpcState::Available) => Ok(Poll::Ready(())),
            state => Ok(Poll::state(state)),
        },
    )
    .await
}

#[async_trait]
impl ResourceProvider for VpcProvider {
    kind_basics!(KIND, declare);

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i: VpcInputs = parse(inputs)?;
        validate_ipv4_cidr("cidr_block", &i.cidr_block)?;
        let ec2 = context::ec2().await;
        let out = call0(ctx, "CreateVpc", || {
            ec2.create_vpc()
                .cidr_block(&i.cidr_block)
                .tag_specifications(tag_spec(ResourceType::Vpc, ctx, &i.tags))
                .send()
        })
        .await?;
        let id = out.vpc().and_then(|v| v.vpc_id()).unwrap_or_default().to_string();
        let finish = async {
            let vpc = wait_available(ctx, &id).await?;
            set_attributes(
                ctx,
                &id,
                (!i.enable_dns_support).then_some(false),
                i.enable_dns_hostnames.then_some(true),
            )
            .await?;
            outputs(ctx, &vpc).await
        };
        let outputs = finish.await;
        created_or_undone(self, ctx, inputs, id, outputs, IfCancelled::Undo).await
    }

    async fn lookup(&self, ctx: &OpContext, query: &Value) -> Result<Vec<ReadResult>, ProviderError> {
        let Some(q) = crate::aws::lookup::Ec2Query::for_lookup(query, KIND, &["name"])? else {
            return Ok(Vec::new());
        };
        let ec2 = &context::clients().await.ec2;
        let out = call0(ctx, "DescribeVpcs", || {
            ec2.describe_vpcs()
                .set_vpc_ids(q.object_ids())
                .set_filters(Some(q.filters()))
                .send()
        })
        .await?;
        let ids: Vec<String> = out.vpcs().iter().filter_map(|v| v.vpc_id().map(String::from)).collect();
        crate::aws::lookup::read_each(self, ctx, ids).await
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        _inputs: &Value,
        _outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        let Some(vpc) = describe(ctx, id).await? else {
            return Ok(None);
        };
        let support = attribute(ctx, id, VpcAttributeName::EnableDnsSupport).await?;
        let hostnames = attribute(ctx, id, VpcAttributeName::EnableDnsHostnames).await?;
        Ok(Some(ReadResult {
            id: id.to_string(),
            inputs: json!({
                "cidr_block": vpc.cidr_block(),
                "enable_dns_support": support,
                "enable_dns_hostnames": hostnames,
                "tags": from_tags(vpc.tags()),
            }),
            outputs: outputs(ctx, &vpc).await?,
        }))
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        old: &Value,
        new: &Value,
        old_outputs: &Value,
    ) -> Result<Value, ProviderError> {
        let o: VpcInputs = parse(old)?;
        let n: VpcInputs = parse(new)?;
        // Hostnames need support: turn support on first, hostnames off first.
        if n.enable_dns_support && !o.enable_dns_support {
            set_attributes(ctx, id, Some(true), None).await?;
        }
        if n.enable_dns_hostnames != o.enable_dns_hostnames {
            set_attributes(ctx, id, None, Some(n.enable_dns_hostnames)).await?;
        }
        if !n.enable_dns_support && o.enable_dns_support {
            set_attributes(ctx, id, Some(false), None).await?;
        }
        sync_tags(ctx, id, &o.tags, &n.tags).await?;
        Ok(old_outputs.clone())
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _inputs: &Value, _outputs: &Value) -> Result<(), ProviderError> {
        let ec2 = context::ec2().await;
        let retry = Retry::within(ctx, &["DependencyViolation"], Duration::from_secs(300));
        let deleted = call(ctx, "DeleteVpc", retry, || ec2.delete_vpc().vpc_id(id).send()).await;
        deleted_then_gone(ctx, "the VPC", WAIT, deleted, || describe(ctx, id)).await
    }

    async fn find(&self, ctx: &OpContext, inputs: &Value) -> Result<Option<Created>, ProviderError> {
        let ec2 = context::ec2().await;
        let out = call0(ctx, "DescribeVpcs", || {
            ec2.describe_vpcs().filters(owner_filter(&ctx.address)).send()
        })
        .await?;
        let Some(vpc) = out.vpcs().iter().find(|v| super::adoptable(ctx, v.tags(), v.vpc_id())) else {
            return Ok(None);
        };
        let id = vpc.vpc_id().unwrap_or_default().to_string();
        // A create interrupted before ModifyVpcAttribute left the DNS attributes at AWS's
        // defaults, and state will record the inputs it was asked for: finish the create
        // (found by the crash test: `plan --refresh` showed enable_dns_hostnames drift).
        let vpc = match parse::<VpcInputs>(inputs) {
            Ok(i) => {
                let vpc = wait_available(ctx, &id).await?;
                let support = attribute(ctx, &id, VpcAttributeName::EnableDnsSupport).await?;
                let hostnames = attribute(ctx, &id, VpcAttributeName::EnableDnsHostnames).await?;
                if !i.enable_dns_support && support {
                    set_attributes(ctx, &id, Some(false), None).await?;
                }
                if i.enable_dns_hostnames && !hostnames {
                    set_attributes(ctx, &id, None, Some(true)).await?;
                }
                vpc
            }
            Err(_) => vpc.clone(),
        };
        Ok(Some(Created {
            outputs: outputs(ctx, &vpc).await?,
            id,
        }))
    }
}

/// `ec2::Vpc::new(cidr)` with the DNS attributes that differ from the defaults and the tags.
fn declare(i: &Value) -> Option<Expr> {
    use crate::declaration::{bool_at, only_keys, str_at, string};
    if !only_keys(i, &["cidr_block", "enable_dns_support", "enable_dns_hostnames", "tags"]) {
        return None;
    }
    let support = bool_at(i, "enable_dns_support", true)?;
    let hostnames = bool_at(i, "enable_dns_hostnames", false)?;
    Expr::new("ec2::Vpc::new", &[string(str_at(i, "cidr_block")?)])
        .call_if(!support, "dns_support", &["false".into()])
        .call_if(hostnames, "dns_hostnames", &["true".into()])
        .tags(i)
}
