//! `aws:ec2:Subnet`: a subnet of a VPC in one availability zone.
//!
//! Rules kept here: the VPC, the CIDR and the AZ force a replacement, deleting first (the
//! new subnet's CIDR would overlap the old one's in the same VPC); `map_public_ip` and
//! tags change in place; an AZ left unset is AWS's choice and reads back as unset (the AZ
//! chosen is the `availability_zone` output), so it is never drift; create waits for
//! `available` and removes the subnet again if a later step fails; delete retries
//! `DependencyViolation` (ENIs of NAT gateways and load balancers going away) within the
//! delete timeout and returns once the subnet is gone; `find` finishes what an interrupted
//! create left undone (`map_public_ip`), since state records the inputs asked for.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType, SubnetState};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{WAIT, from_tags, owner_filter, parse, sync_tags, tag_spec, unless_unset, validate_ipv4_cidr};
use crate::aws::call::{Poll, Retry, call, call_found, call0, ok_if_gone};
use crate::aws::context;
use crate::aws::lifecycle::{
    IfCancelled, created_or_undone, kind_basics, provider, still_listed, wait_gone, wait_ready,
};
use crate::model::{Handle, Input, Output};
use crate::provider::{Created, OpContext, ProviderError, ReadResult, ResourceProvider, Schema};

pub const KIND: &str = "aws:ec2:Subnet";

/// A subnet.
#[derive(Debug, Clone, Serialize)]
pub struct Subnet {
    vpc_id: Input<String>,
    cidr_block: Input<String>,
    availability_zone: Option<Input<String>>,
    map_public_ip_on_launch: bool,
    tags: BTreeMap<String, Input<String>>,
}

impl Subnet {
    pub fn new(vpc_id: impl Into<Input<String>>, cidr_block: impl Into<Input<String>>) -> Self {
        Subnet {
            vpc_id: vpc_id.into(),
            cidr_block: cidr_block.into(),
            availability_zone: None,
            map_public_ip_on_launch: false,
            tags: BTreeMap::new(),
        }
    }
    /// The availability zone (`us-east-1a`); AWS chooses when unset.
    pub fn az(mut self, az: impl Into<Input<String>>) -> Self {
        self.availability_zone = Some(az.into());
        self
    }
    /// Gives instances launched here a public IPv4 address.
    pub fn map_public_ip(mut self, yes: bool) -> Self {
        self.map_public_ip_on_launch = yes;
        self
    }
    pub fn tag(mut self, key: &str, value: impl Into<Input<String>>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }
}

impl Subnet {
    /// An existing subnet, by id, or by tags and VPC
    /// (`Subnet::lookup().vpc_id(vpc.vpc_id()).tag("kubernetes.io/role/internal-elb", "1")`).
    pub fn lookup() -> crate::aws::lookup::Ec2Lookup<Subnet> {
        crate::aws::lookup::Ec2Lookup::for_kind(KIND, std::sync::Arc::new(SubnetProvider::new()))
    }
}

impl Handle<Subnet> {
    /// The subnet id (`subnet-...`).
    pub fn subnet_id(&self) -> Output<String> {
        self.output("id")
    }
    pub fn arn(&self) -> Output<String> {
        self.output("arn")
    }
    /// The AZ the subnet is in (chosen by AWS when not given).
    pub fn availability_zone(&self) -> Output<String> {
        self.output("availability_zone")
    }
    pub fn vpc_id(&self) -> Output<String> {
        self.output("vpc_id")
    }
}

#[derive(Deserialize)]
struct SubnetInputs {
    vpc_id: String,
    cidr_block: String,
    #[serde(default)]
    availability_zone: Option<String>,
    #[serde(default)]
    map_public_ip_on_launch: bool,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

provider!(
    /// The provider of `aws:ec2:Subnet`.
    SubnetProvider for Subnet (KIND),
    Schema::new()
        .replace_on(&["vpc_id", "cidr_block", "availability_zone"])
        .delete_before_replace(true)
);

async fn describe(ctx: &OpContext, id: &str) -> Result<Option<aws_sdk_ec2::types::Subnet>, ProviderError> {
    let ec2 = context::ec2().await;
    let out = call_found(ctx, "DescribeSubnets", || ec2.describe_subnets().subnet_ids(id).send()).await?;
    Ok(out.and_then(|o| o.subnets().first().cloned()))
}

fn outputs(s: &aws_sdk_ec2::types::Subnet) -> Value {
    json!({
        "id": s.subnet_id(),
        "arn": s.subnet_arn(),
        "availability_zone": s.availability_zone(),
        "availability_zone_id": s.availability_zone_id(),
        "cidr_block": s.cidr_block(),
        "vpc_id": s.vpc_id(),
        "owner_id": s.owner_id(),
    })
}

async fn set_map_public_ip(ctx: &OpContext, id: &str, yes: bool) -> Result<(), ProviderError> {
    let ec2 = context::ec2().await;
    call(
        ctx,
        "ModifySubnetAttribute",
        Retry::on(&["InvalidSubnetID.NotFound"], Duration::from_secs(60)),
        || {
            ec2.modify_subnet_attribute()
                .subnet_id(id)
                .map_public_ip_on_launch(AttributeBooleanValue::builder().value(yes).build())
                .send()
        },
    )
    .await?;
    Ok(())
}

#[async_trait]
impl ResourceProvider for SubnetProvider {
    kind_basics!(KIND, declare);

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i: SubnetInputs = parse(inputs)?;
        validate_ipv4_cidr("cidr_block", &i.cidr_block)?;
        let ec2 = context::ec2().await;
        let out = call(
            ctx,
            "CreateSubnet",
            // A VPC made a moment ago may not be visible everywhere yet.
            Retry::on(&["InvalidVpcID.NotFound"], Duration::from_secs(60)),
            || {
                ec2.create_subnet()
                    .vpc_id(&i.vpc_id)
                    .cidr_block(&i.cidr_block)
                    .set_availability_zone(i.availability_zone.clone())
                    .tag_specifications(tag_spec(ResourceType::Subnet, ctx, &i.tags))
                    .send()
            },
        )
        .await?;
        let id = out.subnet().and_then(|s| s.subnet_id()).unwrap_or_default().to_string();
        let finish = async {
            let id = id.as_str();
            if i.map_public_ip_on_launch {
                set_map_public_ip(ctx, id, true).await?;
            }
            let available = |s: &aws_sdk_ec2::types::Subnet| match s.state() {
                Some(SubnetState::Available) => Ok(Poll::Ready(())),
                state => Ok(Poll::state(state)),
            };
            wait_ready(ctx, "the subnet to be available", WAIT, || describe(ctx, id), available)
                .await
                .map(|s| outputs(&s))
        };
        let outputs = finish.await;
        created_or_undone(self, ctx, inputs, id, outputs, IfCancelled::Undo).await
    }

    async fn lookup(&self, ctx: &OpContext, query: &Value) -> Result<Vec<ReadResult>, ProviderError> {
        let Some(q) = crate::aws::lookup::Ec2Query::for_lookup(query, KIND, &["name"])? else {
            return Ok(Vec::new());
        };
        let ec2 = &context::clients().await.ec2;
        let out = call0(ctx, "DescribeSubnets", || {
            ec2.describe_subnets()
                .set_subnet_ids(q.object_ids())
                .set_filters(Some(q.filters()))
                .send()
        })
        .await?;
        let ids: Vec<String> = out
            .subnets()
            .iter()
            .filter_map(|v| v.subnet_id().map(String::from))
            .collect();
        crate::aws::lookup::read_each(self, ctx, ids).await
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        inputs: &Value,
        _outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        let Some(s) = describe(ctx, id).await? else {
            return Ok(None);
        };
        Ok(Some(ReadResult {
            id: id.to_string(),
            inputs: json!({
                "vpc_id": s.vpc_id(),
                "cidr_block": s.cidr_block(),
                "availability_zone": unless_unset(inputs, "availability_zone", json!(s.availability_zone())),
                "map_public_ip_on_launch": s.map_public_ip_on_launch().unwrap_or(false),
                "tags": from_tags(s.tags()),
            }),
            outputs: outputs(&s),
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
        let o: SubnetInputs = parse(old)?;
        let n: SubnetInputs = parse(new)?;
        if o.map_public_ip_on_launch != n.map_public_ip_on_launch {
            set_map_public_ip(ctx, id, n.map_public_ip_on_launch).await?;
        }
        sync_tags(ctx, id, &o.tags, &n.tags).await?;
        Ok(old_outputs.clone())
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _inputs: &Value, _outputs: &Value) -> Result<(), ProviderError> {
        let ec2 = context::ec2().await;
        let retry = Retry::within(ctx, &["DependencyViolation"], Duration::from_secs(600));
        ok_if_gone(call(ctx, "DeleteSubnet", retry, || ec2.delete_subnet().subnet_id(id).send()).await)?;
        wait_gone(
            ctx,
            "the subnet to be deleted",
            WAIT,
            || describe(ctx, id),
            still_listed,
        )
        .await
    }

    async fn find(&self, ctx: &OpContext, inputs: &Value) -> Result<Option<Created>, ProviderError> {
        let ec2 = context::ec2().await;
        let out = call0(ctx, "DescribeSubnets", || {
            ec2.describe_subnets().filters(owner_filter(&ctx.address)).send()
        })
        .await?;
        let Some(s) = out
            .subnets()
            .iter()
            .find(|s| super::adoptable(ctx, s.tags(), s.subnet_id()))
        else {
            return Ok(None);
        };
        let id = s.subnet_id().unwrap_or_default().to_string();
        // A create interrupted before ModifySubnetAttribute left public IPs off, and state
        // will record the inputs it was asked for: finish the create, as for the VPC.
        if let Ok(i) = parse::<SubnetInputs>(inputs)
            && i.map_public_ip_on_launch
            && s.map_public_ip_on_launch() != Some(true)
        {
            set_map_public_ip(ctx, &id, true).await?;
        }
        Ok(Some(Created {
            id,
            outputs: outputs(s),
        }))
    }
}

/// `ec2::Subnet::new(vpc_id, cidr)` with its AZ, public IPs and tags.
fn declare(i: &Value) -> Option<crate::declaration::Expr> {
    use crate::declaration::{Expr, bool_at, only_keys, str_at, string};
    if !only_keys(
        i,
        &[
            "vpc_id",
            "cidr_block",
            "availability_zone",
            "map_public_ip_on_launch",
            "tags",
        ],
    ) {
        return None;
    }
    Expr::new(
        "ec2::Subnet::new",
        &[string(str_at(i, "vpc_id")?), string(str_at(i, "cidr_block")?)],
    )
    .str_setter(i, "availability_zone", "az")?
    .call_if(
        bool_at(i, "map_public_ip_on_launch", false)?,
        "map_public_ip",
        &["true".into()],
    )
    .tags(i)
}
