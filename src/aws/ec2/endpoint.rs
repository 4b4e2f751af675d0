//! `aws:ec2:VpcEndpoint`: a gateway VPC endpoint (S3, DynamoDB) for a VPC's route tables.
//!
//! Rules kept here: the VPC and service force a replacement; the route tables change in
//! place (ModifyVpcEndpoint with the tables added and removed), as do tags; route tables
//! read back in the program's order when they hold the same items; create waits for
//! `available` (a `failed` endpoint is deleted and reported) and delete waits until it is
//! `deleted` or gone; an endpoint `deleting`/`deleted` reads as gone.
//!
//! Lookups: by `id`/`ids`, tags and `vpc_id`, in one paged DescribeVpcEndpoints, each
//! match (not `deleting`/`deleted`) built from its answer as `read` builds it for an import.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ec2::types::{ResourceType, State, VpcEndpointType};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::declaration::Expr;

use super::{WAIT, from_tags, owner_filter, parse, sync_tags, tag_spec};
use crate::aws::call::{Poll, all_pages, call_found, call0};
use crate::aws::context;
use crate::aws::lifecycle::{IfCancelled, created_or_undone, kind_basics, provider, wait_gone, wait_ready};
use crate::model::{Handle, Input, Output};
use crate::provider::{Created, OpContext, ProviderError, ReadResult, ResourceProvider, Schema};

pub const KIND: &str = "aws:ec2:VpcEndpoint";

/// A gateway endpoint for `service_name` (`com.amazonaws.us-east-1.s3`).
#[derive(Debug, Clone, Serialize)]
pub struct VpcEndpoint {
    vpc_id: Input<String>,
    service_name: Input<String>,
    route_table_ids: Vec<Input<String>>,
    tags: BTreeMap<String, Input<String>>,
}

impl VpcEndpoint {
    /// A gateway endpoint for `service_name` in `vpc_id`, routed from `route_table_ids`.
    pub fn gateway(
        vpc_id: impl Into<Input<String>>,
        service_name: impl Into<Input<String>>,
        route_table_ids: Vec<Input<String>>,
    ) -> Self {
        VpcEndpoint {
            vpc_id: vpc_id.into(),
            service_name: service_name.into(),
            route_table_ids,
            tags: BTreeMap::new(),
        }
    }
    pub fn tag(mut self, key: &str, value: impl Into<Input<String>>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }
}

impl VpcEndpoint {
    /// Existing VPC endpoints, by id or ids, by VPC, or by tags
    /// (`VpcEndpoint::lookup().vpc_id(vpc.vpc_id())`).
    pub fn lookup() -> crate::aws::lookup::Ec2Lookup<VpcEndpoint> {
        crate::aws::lookup::Ec2Lookup::for_kind(KIND, std::sync::Arc::new(VpcEndpointProvider::new()))
    }
}

impl Handle<VpcEndpoint> {
    /// The endpoint id (`vpce-...`).
    pub fn endpoint_id(&self) -> Output<String> {
        self.output("id")
    }
}

#[derive(Deserialize)]
struct EndpointInputs {
    vpc_id: String,
    service_name: String,
    #[serde(default)]
    route_table_ids: Vec<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

provider!(
    /// The provider of `aws:ec2:VpcEndpoint`.
    VpcEndpointProvider for VpcEndpoint (KIND),
    Schema::new().replace_on(&["vpc_id", "service_name"])
);

async fn describe(ctx: &OpContext, id: &str) -> Result<Option<aws_sdk_ec2::types::VpcEndpoint>, ProviderError> {
    let ec2 = context::ec2().await;
    let out = call_found(ctx, "DescribeVpcEndpoints", || {
        ec2.describe_vpc_endpoints().vpc_endpoint_ids(id).send()
    })
    .await?;
    Ok(out.and_then(|o| o.vpc_endpoints().first().cloned()))
}

/// The endpoint's state, compared without case: the API model spells it `Available`, but
/// EC2 (and the emulator) answer `available`, which the SDK parses as an unknown variant.
fn state_is(e: &aws_sdk_ec2::types::VpcEndpoint, want: &State) -> bool {
    e.state()
        .is_some_and(|s| s.as_str().eq_ignore_ascii_case(want.as_str()))
}

/// The error codes meaning the endpoint itself does not exist.
fn endpoint_not_found(code: &str) -> bool {
    code.starts_with("InvalidVpcEndpoint") && code.ends_with("NotFound")
}

fn is_gone(e: &aws_sdk_ec2::types::VpcEndpoint) -> bool {
    state_is(e, &State::Deleted) || state_is(e, &State::Deleting)
}

fn outputs(e: &aws_sdk_ec2::types::VpcEndpoint) -> Value {
    json!({"id": e.vpc_endpoint_id(), "state": e.state().map(|s| s.as_str())})
}

/// What `read` answers for endpoint `e` given the stored `inputs` (`null` for an import):
/// route tables in the stored order when they are the same set.
fn endpoint_read(e: &aws_sdk_ec2::types::VpcEndpoint, inputs: &Value) -> ReadResult {
    let live: Vec<String> = e.route_table_ids().to_vec();
    let tables = match inputs
        .get("route_table_ids")
        .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
    {
        Some(stored) => {
            let (mut a, mut b) = (stored.clone(), live.clone());
            a.sort();
            b.sort();
            if a == b { stored } else { live }
        }
        None => live,
    };
    ReadResult {
        id: e.vpc_endpoint_id().unwrap_or_default().to_string(),
        inputs: json!({
            "vpc_id": e.vpc_id(),
            "service_name": e.service_name(),
            "route_table_ids": tables,
            "tags": from_tags(e.tags()),
        }),
        outputs: outputs(e),
    }
}

async fn wait_available(ctx: &OpContext, id: &str) -> Result<aws_sdk_ec2::types::VpcEndpoint, ProviderError> {
    wait_ready(
        ctx,
        "the endpoint to be available",
        WAIT,
        || describe(ctx, id),
        |e| {
            if state_is(e, &State::Available) {
                Ok(Poll::Ready(()))
            } else if state_is(e, &State::Failed) {
                Err(ProviderError::msg(format!(
                    "VPC endpoint {id} failed: {}",
                    e.failure_reason().unwrap_or("no reason given")
                )))
            } else {
                Ok(Poll::state(e.state()))
            }
        },
    )
    .await
}

#[async_trait]
impl ResourceProvider for VpcEndpointProvider {
    kind_basics!(KIND, declare);

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i: EndpointInputs = parse(inputs)?;
        let ec2 = context::ec2().await;
        let out = call0(ctx, "CreateVpcEndpoint", || {
            ec2.create_vpc_endpoint()
                .vpc_endpoint_type(VpcEndpointType::Gateway)
                .vpc_id(&i.vpc_id)
                .service_name(&i.service_name)
                .set_route_table_ids(Some(i.route_table_ids.clone()))
                .tag_specifications(tag_spec(ResourceType::VpcEndpoint, ctx, &i.tags))
                .send()
        })
        .await?;
        let id = out
            .vpc_endpoint()
            .and_then(|e| e.vpc_endpoint_id())
            .unwrap_or_default()
            .to_string();
        let made = wait_available(ctx, &id).await.map(|e| outputs(&e));
        created_or_undone(self, ctx, inputs, id, made, IfCancelled::Undo).await
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        inputs: &Value,
        _outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        let Some(e) = describe(ctx, id).await?.filter(|e| !is_gone(e)) else {
            return Ok(None);
        };
        Ok(Some(ReadResult {
            id: id.to_string(),
            ..endpoint_read(&e, inputs)
        }))
    }

    async fn lookup(&self, ctx: &OpContext, query: &Value) -> Result<Vec<ReadResult>, ProviderError> {
        let Some(q) = crate::aws::lookup::Ec2Query::for_lookup(query, KIND, &["name"])? else {
            return Ok(Vec::new());
        };
        let ec2 = context::ec2().await;
        let found = all_pages(
            ctx,
            "DescribeVpcEndpoints",
            |token| {
                ec2.describe_vpc_endpoints()
                    .set_vpc_endpoint_ids(q.object_ids())
                    .set_filters(Some(q.filters_with("vpc-id")))
                    .set_next_token(token)
                    .send()
            },
            |out| {
                let live = out.vpc_endpoints().iter().filter(|e| !is_gone(e));
                (
                    live.map(|e| endpoint_read(e, &Value::Null)).collect(),
                    out.next_token().map(String::from),
                )
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
        let o: EndpointInputs = parse(old)?;
        let n: EndpointInputs = parse(new)?;
        let add: Vec<String> = n
            .route_table_ids
            .iter()
            .filter(|t| !o.route_table_ids.contains(t))
            .cloned()
            .collect();
        let remove: Vec<String> = o
            .route_table_ids
            .iter()
            .filter(|t| !n.route_table_ids.contains(t))
            .cloned()
            .collect();
        if !add.is_empty() || !remove.is_empty() {
            let ec2 = context::ec2().await;
            call0(ctx, "ModifyVpcEndpoint", || {
                ec2.modify_vpc_endpoint()
                    .vpc_endpoint_id(id)
                    .set_add_route_table_ids((!add.is_empty()).then(|| add.clone()))
                    .set_remove_route_table_ids((!remove.is_empty()).then(|| remove.clone()))
                    .send()
            })
            .await?;
        }
        sync_tags(ctx, id, &o.tags, &n.tags).await?;
        Ok(old_outputs.clone())
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _inputs: &Value, _outputs: &Value) -> Result<(), ProviderError> {
        let ec2 = context::ec2().await;
        // Only the endpoint's own "not found" means it is gone: any other `*.NotFound` (a
        // route of one of its tables, say) is a failed delete, not success, or the wait
        // below would wait for a deletion that never started. EC2 reports a per-endpoint
        // failure in `Unsuccessful` with HTTP 200, so that is checked too.
        let out = match call0(ctx, "DeleteVpcEndpoints", || {
            ec2.delete_vpc_endpoints().vpc_endpoint_ids(id).send()
        })
        .await
        {
            Ok(out) => Some(out),
            Err(e) if e.code.as_deref().is_some_and(endpoint_not_found) => None,
            Err(e) => return Err(e.into()),
        };
        if let Some(item) = out.iter().flat_map(|o| o.unsuccessful()).next() {
            let code = item.error().and_then(|e| e.code()).unwrap_or_default();
            if !endpoint_not_found(code) {
                return Err(ProviderError::msg(format!(
                    "DeleteVpcEndpoints: {id}: {code}: {}",
                    item.error().and_then(|e| e.message()).unwrap_or("")
                )));
            }
        }
        wait_gone(
            ctx,
            "the endpoint to be deleted",
            WAIT,
            || describe(ctx, id),
            |e| {
                if state_is(e, &State::Deleted) {
                    Poll::Ready(())
                } else {
                    Poll::state(e.state())
                }
            },
        )
        .await
    }

    async fn find(&self, ctx: &OpContext, _inputs: &Value) -> Result<Option<Created>, ProviderError> {
        let ec2 = context::ec2().await;
        let out = call0(ctx, "DescribeVpcEndpoints", || {
            ec2.describe_vpc_endpoints().filters(owner_filter(&ctx.address)).send()
        })
        .await?;
        Ok(out
            .vpc_endpoints()
            .iter()
            .find(|e| !is_gone(e) && super::adoptable(ctx, e.tags(), e.vpc_endpoint_id()))
            .map(|e| Created {
                id: e.vpc_endpoint_id().unwrap_or_default().to_string(),
                outputs: outputs(e),
            }))
    }
}

/// `ec2::VpcEndpoint::gateway(vpc_id, service, route tables)` with its tags.
fn declare(i: &Value) -> Option<Expr> {
    use crate::declaration::{input_vec, only_keys, str_at, string, strs_at};
    if !only_keys(i, &["vpc_id", "service_name", "route_table_ids", "tags"]) {
        return None;
    }
    Expr::new(
        "ec2::VpcEndpoint::gateway",
        &[
            string(str_at(i, "vpc_id")?),
            string(str_at(i, "service_name")?),
            input_vec(&strs_at(i, "route_table_ids")?),
        ],
    )
    .tags(i)
}
