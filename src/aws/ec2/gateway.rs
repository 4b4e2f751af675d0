//! `aws:ec2:InternetGateway` (with its VPC attachment), `aws:ec2:Eip` and
//! `aws:ec2:NatGateway`.
//!
//! Rules kept here: the internet gateway's VPC is an in-place change (detach, then
//! attach); its delete detaches first, retrying `DependencyViolation` (public addresses
//! still mapped in the VPC) within the delete timeout; an EIP is always a VPC address and
//! its release retries while AWS still sees it in use; a NAT gateway's create waits until
//! it is `available` (a `failed` one is deleted and its failure message returned), and its
//! delete waits until it is `deleted`, so the subnet and EIP it holds can go after it
//! (the engine orders them, since the NAT gateway references both); a gateway in state
//! `deleted`/`deleting` reads as gone; `find` finishes what an interrupted create left
//! undone (the internet gateway's attachment, a NAT gateway still pending), since state
//! records the inputs asked for.
//!
//! Lookups: internet gateways by `id`/`ids`, tags and `vpc_id` (the `attachment.vpc-id`
//! filter); NAT gateways by `id`/`ids`, tags and `vpc_id`, leaving out those `deleted`,
//! `deleting` or `failed`; both in one paged Describe call, each match built from its answer
//! as `read` builds it.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::types::{ConnectivityType, DomainType, NatGatewayState, ResourceType};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::declaration::{Expr, only_keys, str_at, string};

use super::{WAIT, from_tags, owner_filter, parse, sync_tags, tag_spec, update_tags};
use crate::aws::call::{Poll, Retry, all_pages, call, call_found, call0, ok_if_gone};
use crate::aws::context;
use crate::aws::lifecycle::{
    IfCancelled, created_or_undone, deleted_then_gone, kind_basics, provider, wait_gone, wait_ready,
};
use crate::model::{Handle, Input, Output};
use crate::provider::{Created, OpContext, ProviderError, ReadResult, ResourceProvider, Schema};

pub const IGW_KIND: &str = "aws:ec2:InternetGateway";
pub const EIP_KIND: &str = "aws:ec2:Eip";
pub const NAT_KIND: &str = "aws:ec2:NatGateway";

// ---------------------------------------------------------------- InternetGateway

/// An internet gateway, attached to `vpc_id` when given.
#[derive(Debug, Clone, Serialize)]
pub struct InternetGateway {
    vpc_id: Option<Input<String>>,
    tags: BTreeMap<String, Input<String>>,
}

impl InternetGateway {
    /// An internet gateway attached to `vpc_id`.
    pub fn new(vpc_id: impl Into<Input<String>>) -> Self {
        InternetGateway {
            vpc_id: Some(vpc_id.into()),
            tags: BTreeMap::new(),
        }
    }
    /// An internet gateway attached to no VPC.
    pub fn detached() -> Self {
        InternetGateway {
            vpc_id: None,
            tags: BTreeMap::new(),
        }
    }
    pub fn tag(mut self, key: &str, value: impl Into<Input<String>>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }
}

impl InternetGateway {
    /// Existing internet gateways, by id or ids, by the VPC they are attached to, or by
    /// tags (`InternetGateway::lookup().vpc_id(vpc.vpc_id())`).
    pub fn lookup() -> crate::aws::lookup::Ec2Lookup<InternetGateway> {
        crate::aws::lookup::Ec2Lookup::for_kind(IGW_KIND, std::sync::Arc::new(InternetGatewayProvider::new()))
    }
}

impl Handle<InternetGateway> {
    /// The gateway id (`igw-...`).
    pub fn gateway_id(&self) -> Output<String> {
        self.output("id")
    }
    pub fn arn(&self) -> Output<String> {
        self.output("arn")
    }
}

#[derive(Deserialize)]
struct IgwInputs {
    #[serde(default)]
    vpc_id: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

provider!(
    /// The provider of `aws:ec2:InternetGateway`.
    InternetGatewayProvider for InternetGateway (IGW_KIND),
    Schema::new()
);

async fn describe_igw(ctx: &OpContext, id: &str) -> Result<Option<aws_sdk_ec2::types::InternetGateway>, ProviderError> {
    let ec2 = context::ec2().await;
    let out = call_found(ctx, "DescribeInternetGateways", || {
        ec2.describe_internet_gateways().internet_gateway_ids(id).send()
    })
    .await?;
    Ok(out.and_then(|o| o.internet_gateways().first().cloned()))
}

fn attached_vpcs(g: &aws_sdk_ec2::types::InternetGateway) -> Vec<String> {
    g.attachments()
        .iter()
        .filter(|a| !matches!(a.state().map(|s| s.as_str()), Some("detached" | "detaching")))
        .filter_map(|a| a.vpc_id().map(str::to_string))
        .collect()
}

async fn igw_outputs(g: &aws_sdk_ec2::types::InternetGateway) -> Value {
    let id = g.internet_gateway_id().unwrap_or_default();
    let owner = g.owner_id().unwrap_or_default();
    json!({
        "id": id,
        "arn": super::arn(owner, "internet-gateway", id).await,
        "owner_id": owner,
    })
}

/// What `read` answers for gateway `g`.
async fn igw_read(g: &aws_sdk_ec2::types::InternetGateway) -> ReadResult {
    ReadResult {
        id: g.internet_gateway_id().unwrap_or_default().to_string(),
        inputs: json!({
            "vpc_id": attached_vpcs(g).first(),
            "tags": from_tags(g.tags()),
        }),
        outputs: igw_outputs(g).await,
    }
}

async fn attach(ctx: &OpContext, id: &str, vpc: &str) -> Result<(), ProviderError> {
    let ec2 = context::ec2().await;
    call(
        ctx,
        "AttachInternetGateway",
        Retry::on(
            &["InvalidVpcID.NotFound", "InvalidInternetGatewayID.NotFound"],
            Duration::from_secs(60),
        ),
        || ec2.attach_internet_gateway().internet_gateway_id(id).vpc_id(vpc).send(),
    )
    .await?;
    Ok(())
}

async fn detach(ctx: &OpContext, id: &str, vpc: &str) -> Result<(), ProviderError> {
    let ec2 = context::ec2().await;
    let retry = Retry::within(ctx, &["DependencyViolation"], Duration::from_secs(600));
    let r = call(ctx, "DetachInternetGateway", retry, || {
        ec2.detach_internet_gateway().internet_gateway_id(id).vpc_id(vpc).send()
    })
    .await;
    match r {
        Err(e) if e.is("Gateway.NotAttached") => Ok(()),
        r => ok_if_gone(r),
    }
}

#[async_trait]
impl ResourceProvider for InternetGatewayProvider {
    kind_basics!(IGW_KIND, declare_igw);

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i: IgwInputs = parse(inputs)?;
        let ec2 = context::ec2().await;
        let out = call0(ctx, "CreateInternetGateway", || {
            ec2.create_internet_gateway()
                .tag_specifications(tag_spec(ResourceType::InternetGateway, ctx, &i.tags))
                .send()
        })
        .await?;
        let g = out
            .internet_gateway()
            .cloned()
            .unwrap_or_else(|| aws_sdk_ec2::types::InternetGateway::builder().build());
        let id = g.internet_gateway_id().unwrap_or_default().to_string();
        let finish = async {
            if let Some(vpc) = &i.vpc_id {
                attach(ctx, &id, vpc).await?;
            }
            Ok(igw_outputs(&g).await)
        };
        let outputs = finish.await;
        created_or_undone(self, ctx, inputs, id, outputs, IfCancelled::Undo).await
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        _inputs: &Value,
        _outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        let Some(g) = describe_igw(ctx, id).await? else {
            return Ok(None);
        };
        Ok(Some(ReadResult {
            id: id.to_string(),
            ..igw_read(&g).await
        }))
    }

    async fn lookup(&self, ctx: &OpContext, query: &Value) -> Result<Vec<ReadResult>, ProviderError> {
        let Some(q) = crate::aws::lookup::Ec2Query::for_lookup(query, IGW_KIND, &["name"])? else {
            return Ok(Vec::new());
        };
        let ec2 = context::ec2().await;
        let gateways = all_pages(
            ctx,
            "DescribeInternetGateways",
            |token| {
                ec2.describe_internet_gateways()
                    .set_internet_gateway_ids(q.object_ids())
                    // Internet gateways name their VPC filter after the attachment.
                    .set_filters(Some(q.filters_with("attachment.vpc-id")))
                    .set_next_token(token)
                    .send()
            },
            |out| (out.internet_gateways().to_vec(), out.next_token().map(String::from)),
        )
        .await?;
        let mut found = Vec::with_capacity(gateways.len());
        for g in &gateways {
            found.push(igw_read(g).await);
        }
        Ok(found)
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        old: &Value,
        new: &Value,
        old_outputs: &Value,
    ) -> Result<Value, ProviderError> {
        let o: IgwInputs = parse(old)?;
        let n: IgwInputs = parse(new)?;
        if o.vpc_id != n.vpc_id {
            if let Some(g) = describe_igw(ctx, id).await? {
                for vpc in attached_vpcs(&g) {
                    detach(ctx, id, &vpc).await?;
                }
            }
            if let Some(vpc) = &n.vpc_id {
                attach(ctx, id, vpc).await?;
            }
        }
        sync_tags(ctx, id, &o.tags, &n.tags).await?;
        Ok(old_outputs.clone())
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _inputs: &Value, _outputs: &Value) -> Result<(), ProviderError> {
        let Some(g) = describe_igw(ctx, id).await? else {
            return Ok(());
        };
        for vpc in attached_vpcs(&g) {
            detach(ctx, id, &vpc).await?;
        }
        let ec2 = context::ec2().await;
        let retry = Retry::within(ctx, &["DependencyViolation"], Duration::from_secs(600));
        let deleted = call(ctx, "DeleteInternetGateway", retry, || {
            ec2.delete_internet_gateway().internet_gateway_id(id).send()
        })
        .await;
        deleted_then_gone(ctx, "the internet gateway", WAIT, deleted, || describe_igw(ctx, id)).await
    }

    async fn find(&self, ctx: &OpContext, inputs: &Value) -> Result<Option<Created>, ProviderError> {
        let ec2 = context::ec2().await;
        let out = call0(ctx, "DescribeInternetGateways", || {
            ec2.describe_internet_gateways()
                .filters(owner_filter(&ctx.address))
                .send()
        })
        .await?;
        let Some(g) = out
            .internet_gateways()
            .iter()
            .find(|g| super::adoptable(ctx, g.tags(), g.internet_gateway_id()))
        else {
            return Ok(None);
        };
        let id = g.internet_gateway_id().unwrap_or_default().to_string();
        // A create interrupted between CreateInternetGateway and AttachInternetGateway left
        // the gateway detached, and state will record the inputs it was asked for: attach it,
        // as create would have (found by the crash test: the adopted gateway stayed detached
        // while plans showed no changes).
        if let Ok(i) = parse::<IgwInputs>(inputs)
            && let Some(vpc) = &i.vpc_id
            && !attached_vpcs(g).contains(vpc)
        {
            attach(ctx, &id, vpc).await?;
        }
        Ok(Some(Created {
            id,
            outputs: igw_outputs(g).await,
        }))
    }
}

// ---------------------------------------------------------------- Eip

/// An Elastic IP address in the VPC domain.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Eip {
    tags: BTreeMap<String, Input<String>>,
}

impl Eip {
    pub fn new() -> Self {
        Eip::default()
    }
    pub fn tag(mut self, key: &str, value: impl Into<Input<String>>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }
}

impl Handle<Eip> {
    /// The allocation id (`eipalloc-...`), also the resource id.
    pub fn allocation_id(&self) -> Output<String> {
        self.output("id")
    }
    pub fn public_ip(&self) -> Output<String> {
        self.output("public_ip")
    }
}

#[derive(Deserialize)]
struct EipInputs {
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

provider!(
    /// The provider of `aws:ec2:Eip`.
    EipProvider for Eip (EIP_KIND),
    Schema::new()
);

async fn describe_eip(ctx: &OpContext, id: &str) -> Result<Option<aws_sdk_ec2::types::Address>, ProviderError> {
    let ec2 = context::ec2().await;
    let out = call_found(ctx, "DescribeAddresses", || {
        ec2.describe_addresses().allocation_ids(id).send()
    })
    .await?;
    Ok(out.and_then(|o| o.addresses().first().cloned()))
}

fn eip_outputs(a: &aws_sdk_ec2::types::Address) -> Value {
    json!({
        "id": a.allocation_id(),
        "public_ip": a.public_ip(),
        "association_id": a.association_id(),
    })
}

#[async_trait]
impl ResourceProvider for EipProvider {
    kind_basics!(EIP_KIND, declare_eip);

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i: EipInputs = parse(inputs)?;
        let ec2 = context::ec2().await;
        let out = call0(ctx, "AllocateAddress", || {
            ec2.allocate_address()
                .domain(DomainType::Vpc)
                .tag_specifications(tag_spec(ResourceType::ElasticIp, ctx, &i.tags))
                .send()
        })
        .await?;
        Ok(Created {
            id: out.allocation_id().unwrap_or_default().to_string(),
            outputs: json!({
                "id": out.allocation_id(),
                "public_ip": out.public_ip(),
                "association_id": null,
            }),
        })
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        _inputs: &Value,
        _outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        Ok(describe_eip(ctx, id).await?.map(|a| ReadResult {
            id: id.to_string(),
            inputs: json!({"tags": from_tags(a.tags())}),
            outputs: eip_outputs(&a),
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
        update_tags(ctx, id, old, new, old_outputs).await
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _inputs: &Value, _outputs: &Value) -> Result<(), ProviderError> {
        let ec2 = context::ec2().await;
        let retry = Retry::within(
            ctx,
            &["InvalidIPAddress.InUse", "AuthFailure"],
            Duration::from_secs(300),
        );
        ok_if_gone(
            call(ctx, "ReleaseAddress", retry, || {
                ec2.release_address().allocation_id(id).send()
            })
            .await,
        )?;
        wait_gone(
            ctx,
            "the address to be released",
            WAIT,
            || describe_eip(ctx, id),
            |_| Poll::Pending("still allocated".into()),
        )
        .await
    }

    async fn find(&self, ctx: &OpContext, _inputs: &Value) -> Result<Option<Created>, ProviderError> {
        let ec2 = context::ec2().await;
        let out = call0(ctx, "DescribeAddresses", || {
            ec2.describe_addresses().filters(owner_filter(&ctx.address)).send()
        })
        .await?;
        Ok(out
            .addresses()
            .iter()
            .find(|a| super::adoptable(ctx, a.tags(), a.allocation_id()))
            .map(|a| Created {
                id: a.allocation_id().unwrap_or_default().to_string(),
                outputs: eip_outputs(a),
            }))
    }
}

// ---------------------------------------------------------------- NatGateway

/// A NAT gateway in `subnet_id`; public ones take an EIP's allocation id.
#[derive(Debug, Clone, Serialize)]
pub struct NatGateway {
    subnet_id: Input<String>,
    allocation_id: Option<Input<String>>,
    connectivity_type: String,
    tags: BTreeMap<String, Input<String>>,
}

impl NatGateway {
    /// A public NAT gateway in `subnet_id` with the EIP `allocation_id`.
    pub fn public(subnet_id: impl Into<Input<String>>, allocation_id: impl Into<Input<String>>) -> Self {
        NatGateway {
            subnet_id: subnet_id.into(),
            allocation_id: Some(allocation_id.into()),
            connectivity_type: "public".into(),
            tags: BTreeMap::new(),
        }
    }
    /// A private NAT gateway (no internet access) in `subnet_id`.
    pub fn private(subnet_id: impl Into<Input<String>>) -> Self {
        NatGateway {
            subnet_id: subnet_id.into(),
            allocation_id: None,
            connectivity_type: "private".into(),
            tags: BTreeMap::new(),
        }
    }
    pub fn tag(mut self, key: &str, value: impl Into<Input<String>>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }
}

impl NatGateway {
    /// Existing NAT gateways, by id or ids, by VPC, or by tags
    /// (`NatGateway::lookup().vpc_id(vpc.vpc_id())`); those `deleted`, `deleting` or
    /// `failed` are not matches.
    pub fn lookup() -> crate::aws::lookup::Ec2Lookup<NatGateway> {
        crate::aws::lookup::Ec2Lookup::for_kind(NAT_KIND, std::sync::Arc::new(NatGatewayProvider::new()))
    }
}

impl Handle<NatGateway> {
    /// The NAT gateway id (`nat-...`).
    pub fn nat_gateway_id(&self) -> Output<String> {
        self.output("id")
    }
    pub fn public_ip(&self) -> Output<String> {
        self.output("public_ip")
    }
    pub fn private_ip(&self) -> Output<String> {
        self.output("private_ip")
    }
}

#[derive(Deserialize)]
struct NatInputs {
    subnet_id: String,
    #[serde(default)]
    allocation_id: Option<String>,
    #[serde(default = "public")]
    connectivity_type: String,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

fn public() -> String {
    "public".into()
}

provider!(
    /// The provider of `aws:ec2:NatGateway`.
    NatGatewayProvider for NatGateway (NAT_KIND),
    Schema::new()
        .replace_on(&["subnet_id", "allocation_id", "connectivity_type"])
);

async fn describe_nat(ctx: &OpContext, id: &str) -> Result<Option<aws_sdk_ec2::types::NatGateway>, ProviderError> {
    let ec2 = context::ec2().await;
    let out = call_found(ctx, "DescribeNatGateways", || {
        ec2.describe_nat_gateways().nat_gateway_ids(id).send()
    })
    .await?;
    Ok(out.and_then(|o| o.nat_gateways().first().cloned()))
}

fn is_gone(n: &aws_sdk_ec2::types::NatGateway) -> bool {
    matches!(n.state(), Some(NatGatewayState::Deleted | NatGatewayState::Deleting))
}

fn nat_outputs(n: &aws_sdk_ec2::types::NatGateway) -> Value {
    let addr = n.nat_gateway_addresses().first();
    json!({
        "id": n.nat_gateway_id(),
        "subnet_id": n.subnet_id(),
        "vpc_id": n.vpc_id(),
        "public_ip": addr.and_then(|a| a.public_ip()),
        "private_ip": addr.and_then(|a| a.private_ip()),
        "network_interface_id": addr.and_then(|a| a.network_interface_id()),
    })
}

/// What `read` answers for NAT gateway `n`.
fn nat_read(n: &aws_sdk_ec2::types::NatGateway) -> ReadResult {
    ReadResult {
        id: n.nat_gateway_id().unwrap_or_default().to_string(),
        inputs: json!({
            "subnet_id": n.subnet_id(),
            "allocation_id": n.nat_gateway_addresses().first().and_then(|a| a.allocation_id()),
            "connectivity_type": n.connectivity_type().map(|c| c.as_str()).unwrap_or("public"),
            "tags": from_tags(n.tags()),
        }),
        outputs: nat_outputs(n),
    }
}

async fn wait_nat_available(ctx: &OpContext, id: &str) -> Result<aws_sdk_ec2::types::NatGateway, ProviderError> {
    wait_ready(
        ctx,
        "the NAT gateway to be available",
        WAIT,
        || describe_nat(ctx, id),
        |n| match n.state() {
            Some(NatGatewayState::Available) => Ok(Poll::Ready(())),
            Some(NatGatewayState::Failed) => Err(ProviderError::msg(format!(
                "NAT gateway {id} failed: {}: {}",
                n.failure_code().unwrap_or("unknown"),
                n.failure_message().unwrap_or("no message")
            ))),
            state => Ok(Poll::state(state)),
        },
    )
    .await
}

#[async_trait]
impl ResourceProvider for NatGatewayProvider {
    kind_basics!(NAT_KIND, declare_nat);

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i: NatInputs = parse(inputs)?;
        if i.connectivity_type == "public" && i.allocation_id.is_none() {
            return Err(ProviderError::msg("a public NAT gateway needs allocation_id (an Eip)"));
        }
        let ec2 = context::ec2().await;
        let out = call(
            ctx,
            "CreateNatGateway",
            Retry::on(
                &["InvalidSubnetID.NotFound", "InvalidAllocationID.NotFound"],
                Duration::from_secs(60),
            ),
            || {
                ec2.create_nat_gateway()
                    .subnet_id(&i.subnet_id)
                    .set_allocation_id(i.allocation_id.clone())
                    .connectivity_type(ConnectivityType::from(i.connectivity_type.as_str()))
                    .tag_specifications(tag_spec(ResourceType::Natgateway, ctx, &i.tags))
                    .send()
            },
        )
        .await?;
        let id = out
            .nat_gateway()
            .and_then(|n| n.nat_gateway_id())
            .unwrap_or_default()
            .to_string();
        let outputs = wait_nat_available(ctx, &id).await.map(|n| nat_outputs(&n));
        created_or_undone(self, ctx, inputs, id, outputs, IfCancelled::Undo).await
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        _inputs: &Value,
        _outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        let Some(n) = describe_nat(ctx, id).await?.filter(|n| !is_gone(n)) else {
            return Ok(None);
        };
        Ok(Some(ReadResult {
            id: id.to_string(),
            ..nat_read(&n)
        }))
    }

    async fn lookup(&self, ctx: &OpContext, query: &Value) -> Result<Vec<ReadResult>, ProviderError> {
        let Some(q) = crate::aws::lookup::Ec2Query::for_lookup(query, NAT_KIND, &["name"])? else {
            return Ok(Vec::new());
        };
        let ec2 = context::ec2().await;
        let found = all_pages(
            ctx,
            "DescribeNatGateways",
            |token| {
                // DescribeNatGateways names its filter list `Filter` (singular).
                ec2.describe_nat_gateways()
                    .set_nat_gateway_ids(q.object_ids())
                    .set_filter(Some(q.filters_with("vpc-id")))
                    .set_next_token(token)
                    .send()
            },
            |out| {
                // A failed gateway never carried traffic and AWS removes it after a while: no match.
                let live = out.nat_gateways().iter();
                let live = live.filter(|n| !is_gone(n) && n.state() != Some(&NatGatewayState::Failed));
                (live.map(nat_read).collect(), out.next_token().map(String::from))
            },
        )
        .await?;
        Ok(found)
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        old: &Value,
        new: &Value,
        old_outputs: &Value,
    ) -> Result<Value, ProviderError> {
        update_tags(ctx, id, old, new, old_outputs).await
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _inputs: &Value, _outputs: &Value) -> Result<(), ProviderError> {
        match describe_nat(ctx, id).await? {
            None => return Ok(()),
            Some(n) if n.state() == Some(&NatGatewayState::Deleted) => return Ok(()),
            Some(_) => {}
        }
        let ec2 = context::ec2().await;
        ok_if_gone(
            call0(ctx, "DeleteNatGateway", || {
                ec2.delete_nat_gateway().nat_gateway_id(id).send()
            })
            .await,
        )?;
        wait_gone(
            ctx,
            "the NAT gateway to be deleted",
            WAIT,
            || describe_nat(ctx, id),
            |n| match n.state() {
                Some(NatGatewayState::Deleted) => Poll::Ready(()),
                state => Poll::state(state),
            },
        )
        .await
    }

    async fn find(&self, ctx: &OpContext, _inputs: &Value) -> Result<Option<Created>, ProviderError> {
        let ec2 = context::ec2().await;
        let out = call0(ctx, "DescribeNatGateways", || {
            ec2.describe_nat_gateways().filter(owner_filter(&ctx.address)).send()
        })
        .await?;
        let Some(n) = out
            .nat_gateways()
            .iter()
            .find(|n| !is_gone(n) && super::adoptable(ctx, n.tags(), n.nat_gateway_id()))
        else {
            return Ok(None);
        };
        let id = n.nat_gateway_id().unwrap_or_default().to_string();
        // A gateway found still pending is waited for, as create would have.
        let n = wait_nat_available(ctx, &id).await?;
        Ok(Some(Created {
            id,
            outputs: nat_outputs(&n),
        }))
    }
}

/// `ec2::InternetGateway::new(vpc_id)` (or `detached()`) with its tags.
fn declare_igw(i: &Value) -> Option<Expr> {
    if !only_keys(i, &["vpc_id", "tags"]) {
        return None;
    }
    match i.get("vpc_id") {
        None | Some(Value::Null) => Expr::new("ec2::InternetGateway::detached", &[]),
        Some(v) => Expr::new("ec2::InternetGateway::new", &[string(v.as_str()?)]),
    }
    .tags(i)
}

/// `ec2::Eip::new()` with its tags.
fn declare_eip(i: &Value) -> Option<Expr> {
    if !only_keys(i, &["tags"]) {
        return None;
    }
    Expr::new("ec2::Eip::new", &[]).tags(i)
}

/// `ec2::NatGateway::public(subnet, allocation)` or `private(subnet)` with its tags.
fn declare_nat(i: &Value) -> Option<Expr> {
    if !only_keys(i, &["subnet_id", "allocation_id", "connectivity_type", "tags"]) {
        return None;
    }
    let subnet = string(str_at(i, "subnet_id")?);
    match (
        str_at(i, "connectivity_type").unwrap_or("public"),
        str_at(i, "allocation_id"),
    ) {
        ("public", Some(a)) => Expr::new("ec2::NatGateway::public", &[subnet, string(a)]),
        ("private", None) => Expr::new("ec2::NatGateway::private", &[subnet]),
        _ => return None,
    }
    .tags(i)
}
