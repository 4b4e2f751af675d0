//! `aws:ec2:RouteTable`, `aws:ec2:Route` and `aws:ec2:RouteTableAssociation`.
//!
//! Rules kept here: a route table's VPC forces a replacement, its tags change in place,
//! and its delete retries `DependencyViolation` (associations going away); a route is
//! known by `<table>_<destination>` (routes carry no tags, so `find` adopts a route to the
//! same destination with the same target), its target changes in place (ReplaceRoute)
//! and its table or destination force a replacement; an association is replaced by
//! deleting first (a subnet has one association), and `find` adopts the subnet's
//! association with the same table.
//!
//! Lookups: all three take a query of route tables (`id`/`ids` of tables, `vpc_id`, the
//! tables' tags), made in one paged DescribeRouteTables, and build each match from its
//! answer exactly as `read` does: the tables; every route with an IPv4 destination CIDR
//! (the `local` route and `blackhole` routes included, so a route whose target is gone
//! stays visible; prefix-list and IPv6 routes have no id of this kind and are left out);
//! every current association with a subnet (the main association has none).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::types::ResourceType;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::declaration::{Expr, only_keys, str_at, string};

use super::{WAIT, filter, from_tags, owner_filter, parse, tag_spec, update_tags, validate_ipv4_cidr};
use crate::aws::call::{Poll, Retry, all_pages, call, call_found, call0, ok_if_gone};
use crate::aws::context;
use crate::aws::lifecycle::{deleted_then_gone, found, kind_basics, provider, split_id, wait_gone, wait_ready};
use crate::model::{Handle, Input, Output};
use crate::provider::{Created, OpContext, ProviderError, ReadResult, ResourceProvider, Schema};

pub const TABLE_KIND: &str = "aws:ec2:RouteTable";
pub const ROUTE_KIND: &str = "aws:ec2:Route";
pub const ASSOCIATION_KIND: &str = "aws:ec2:RouteTableAssociation";

/// Every route table matching a lookup query, following NextToken.
async fn describe_tables(
    ctx: &OpContext,
    q: &crate::aws::lookup::Ec2Query,
) -> Result<Vec<aws_sdk_ec2::types::RouteTable>, ProviderError> {
    let ec2 = context::ec2().await;
    let tables = all_pages(
        ctx,
        "DescribeRouteTables",
        |token| {
            ec2.describe_route_tables()
                .set_route_table_ids(q.object_ids())
                .set_filters(Some(q.filters_with("vpc-id")))
                .set_next_token(token)
                .send()
        },
        |out| (out.route_tables().to_vec(), out.next_token().map(String::from)),
    )
    .await?;
    Ok(tables)
}

/// The route tables of a lookup `query` of `kind` (no `name` filter; an empty `ids` list
/// matches nothing without a call).
async fn tables_of_query(
    ctx: &OpContext,
    query: &Value,
    kind: &str,
) -> Result<Vec<aws_sdk_ec2::types::RouteTable>, ProviderError> {
    let Some(q) = crate::aws::lookup::Ec2Query::for_lookup(query, kind, &["name"])? else {
        return Ok(Vec::new());
    };
    describe_tables(ctx, &q).await
}

async fn describe_table(ctx: &OpContext, id: &str) -> Result<Option<aws_sdk_ec2::types::RouteTable>, ProviderError> {
    let ec2 = context::ec2().await;
    let out = call_found(ctx, "DescribeRouteTables", || {
        ec2.describe_route_tables().route_table_ids(id).send()
    })
    .await?;
    Ok(out.and_then(|o| o.route_tables().first().cloned()))
}

// ---------------------------------------------------------------- RouteTable

/// A route table in a VPC.
#[derive(Debug, Clone, Serialize)]
pub struct RouteTable {
    vpc_id: Input<String>,
    tags: BTreeMap<String, Input<String>>,
}

impl RouteTable {
    pub fn new(vpc_id: impl Into<Input<String>>) -> Self {
        RouteTable {
            vpc_id: vpc_id.into(),
            tags: BTreeMap::new(),
        }
    }
    pub fn tag(mut self, key: &str, value: impl Into<Input<String>>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }
}

impl RouteTable {
    /// Existing route tables, by id or ids, by VPC, or by tags
    /// (`RouteTable::lookup().vpc_id(vpc.vpc_id())`).
    pub fn lookup() -> crate::aws::lookup::Ec2Lookup<RouteTable> {
        crate::aws::lookup::Ec2Lookup::for_kind(TABLE_KIND, std::sync::Arc::new(RouteTableProvider::new()))
    }
}

impl Handle<RouteTable> {
    /// The route table id (`rtb-...`).
    pub fn route_table_id(&self) -> Output<String> {
        self.output("id")
    }
    pub fn arn(&self) -> Output<String> {
        self.output("arn")
    }
}

#[derive(Deserialize)]
struct TableInputs {
    vpc_id: String,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

provider!(
    /// The provider of `aws:ec2:RouteTable`.
    RouteTableProvider for RouteTable (TABLE_KIND),
    Schema::new().replace_on(&["vpc_id"])
);

async fn table_outputs(t: &aws_sdk_ec2::types::RouteTable) -> Value {
    let id = t.route_table_id().unwrap_or_default();
    let owner = t.owner_id().unwrap_or_default();
    json!({
        "id": id,
        "arn": super::arn(owner, "route-table", id).await,
        "vpc_id": t.vpc_id(),
        "owner_id": owner,
    })
}

/// What `read` answers for table `t`.
async fn table_read(t: &aws_sdk_ec2::types::RouteTable) -> ReadResult {
    ReadResult {
        id: t.route_table_id().unwrap_or_default().to_string(),
        inputs: json!({"vpc_id": t.vpc_id(), "tags": from_tags(t.tags())}),
        outputs: table_outputs(t).await,
    }
}

#[async_trait]
impl ResourceProvider for RouteTableProvider {
    kind_basics!(TABLE_KIND, declare_table);

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i: TableInputs = parse(inputs)?;
        let ec2 = context::ec2().await;
        let out = call(
            ctx,
            "CreateRouteTable",
            Retry::on(&["InvalidVpcID.NotFound"], Duration::from_secs(60)),
            || {
                ec2.create_route_table()
                    .vpc_id(&i.vpc_id)
                    .tag_specifications(tag_spec(ResourceType::RouteTable, ctx, &i.tags))
                    .send()
            },
        )
        .await?;
        let t = out
            .route_table()
            .cloned()
            .unwrap_or_else(|| aws_sdk_ec2::types::RouteTable::builder().build());
        Ok(Created {
            id: t.route_table_id().unwrap_or_default().to_string(),
            outputs: table_outputs(&t).await,
        })
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        _inputs: &Value,
        _outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        let Some(t) = describe_table(ctx, id).await? else {
            return Ok(None);
        };
        Ok(Some(ReadResult {
            id: id.to_string(),
            ..table_read(&t).await
        }))
    }

    async fn lookup(&self, ctx: &OpContext, query: &Value) -> Result<Vec<ReadResult>, ProviderError> {
        let mut found = Vec::new();
        for t in tables_of_query(ctx, query, TABLE_KIND).await? {
            found.push(table_read(&t).await);
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
        update_tags(ctx, id, old, new, old_outputs).await
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _inputs: &Value, _outputs: &Value) -> Result<(), ProviderError> {
        let ec2 = context::ec2().await;
        let retry = Retry::within(ctx, &["DependencyViolation"], Duration::from_secs(300));
        let deleted = call(ctx, "DeleteRouteTable", retry, || {
            ec2.delete_route_table().route_table_id(id).send()
        })
        .await;
        deleted_then_gone(ctx, "the route table", WAIT, deleted, || describe_table(ctx, id)).await
    }

    async fn find(&self, ctx: &OpContext, _inputs: &Value) -> Result<Option<Created>, ProviderError> {
        let ec2 = context::ec2().await;
        let out = call0(ctx, "DescribeRouteTables", || {
            ec2.describe_route_tables().filters(owner_filter(&ctx.address)).send()
        })
        .await?;
        match out
            .route_tables()
            .iter()
            .find(|t| super::adoptable(ctx, t.tags(), t.route_table_id()))
        {
            Some(t) => Ok(Some(Created {
                id: t.route_table_id().unwrap_or_default().to_string(),
                outputs: table_outputs(t).await,
            })),
            None => Ok(None),
        }
    }
}

// ---------------------------------------------------------------- Route

/// An IPv4 route in a route table to an internet or NAT gateway.
#[derive(Debug, Clone, Serialize)]
pub struct Route {
    route_table_id: Input<String>,
    destination_cidr_block: Input<String>,
    gateway_id: Option<Input<String>>,
    nat_gateway_id: Option<Input<String>>,
}

impl Route {
    /// A route from `route_table_id` for `destination` (`0.0.0.0/0`); give it a target.
    pub fn new(route_table_id: impl Into<Input<String>>, destination: impl Into<Input<String>>) -> Self {
        Route {
            route_table_id: route_table_id.into(),
            destination_cidr_block: destination.into(),
            gateway_id: None,
            nat_gateway_id: None,
        }
    }
    /// Through an internet gateway (or a VPC gateway endpoint).
    pub fn via_gateway(mut self, gateway_id: impl Into<Input<String>>) -> Self {
        self.gateway_id = Some(gateway_id.into());
        self.nat_gateway_id = None;
        self
    }
    /// Through a NAT gateway.
    pub fn via_nat_gateway(mut self, nat_gateway_id: impl Into<Input<String>>) -> Self {
        self.nat_gateway_id = Some(nat_gateway_id.into());
        self.gateway_id = None;
        self
    }
}

impl Route {
    /// The existing IPv4 routes of route tables, the tables named by id or ids, VPC or the
    /// tables' tags (`Route::lookup().vpc_id(vpc.vpc_id())`): each route with a destination
    /// CIDR, the `local` route and `blackhole` routes included.
    pub fn lookup() -> crate::aws::lookup::Ec2Lookup<Route> {
        crate::aws::lookup::Ec2Lookup::for_kind(ROUTE_KIND, std::sync::Arc::new(RouteProvider::new()))
    }
}

#[derive(Deserialize)]
struct RouteInputs {
    route_table_id: String,
    destination_cidr_block: String,
    #[serde(default)]
    gateway_id: Option<String>,
    #[serde(default)]
    nat_gateway_id: Option<String>,
}

impl RouteInputs {
    fn check(&self) -> Result<(), ProviderError> {
        validate_ipv4_cidr("destination_cidr_block", &self.destination_cidr_block)?;
        match (&self.gateway_id, &self.nat_gateway_id) {
            (Some(_), None) | (None, Some(_)) => Ok(()),
            _ => Err(ProviderError::msg(
                "a route needs exactly one target: gateway_id or nat_gateway_id",
            )),
        }
    }
}

provider!(
    /// The provider of `aws:ec2:Route`.
    RouteProvider for Route (ROUTE_KIND),
    Schema::new().replace_on(&["route_table_id", "destination_cidr_block"])
);

fn route_id(table: &str, destination: &str) -> String {
    format!("{table}_{destination}")
}

fn split_route_id(id: &str) -> Result<(&str, &str), ProviderError> {
    split_id(id, '_', "a route id", "<route table id>_<destination CIDR>")
}

async fn live_route(
    ctx: &OpContext,
    table: &str,
    destination: &str,
) -> Result<Option<aws_sdk_ec2::types::Route>, ProviderError> {
    Ok(describe_table(ctx, table).await?.and_then(|t| {
        t.routes()
            .iter()
            .find(|r| r.destination_cidr_block() == Some(destination))
            .cloned()
    }))
}

fn route_inputs(table: &str, r: &aws_sdk_ec2::types::Route) -> Value {
    json!({
        "route_table_id": table,
        "destination_cidr_block": r.destination_cidr_block(),
        "gateway_id": r.gateway_id(),
        "nat_gateway_id": r.nat_gateway_id(),
    })
}

fn route_outputs(table: &str, r: &aws_sdk_ec2::types::Route) -> Value {
    json!({
        "id": route_id(table, r.destination_cidr_block().unwrap_or_default()),
        "state": r.state().map(|s| s.as_str()),
        "origin": r.origin().map(|s| s.as_str()),
    })
}

#[async_trait]
impl ResourceProvider for RouteProvider {
    kind_basics!(ROUTE_KIND, declare_route);

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i: RouteInputs = parse(inputs)?;
        i.check()?;
        let ec2 = context::ec2().await;
        call(
            ctx,
            "CreateRoute",
            Retry::on(
                &[
                    "InvalidRouteTableID.NotFound",
                    "InvalidGatewayID.NotFound",
                    "InvalidNatGatewayID.NotFound",
                ],
                Duration::from_secs(60),
            ),
            || {
                ec2.create_route()
                    .route_table_id(&i.route_table_id)
                    .destination_cidr_block(&i.destination_cidr_block)
                    .set_gateway_id(i.gateway_id.clone())
                    .set_nat_gateway_id(i.nat_gateway_id.clone())
                    .send()
            },
        )
        .await?;
        let id = route_id(&i.route_table_id, &i.destination_cidr_block);
        let (table, destination) = (i.route_table_id.as_str(), i.destination_cidr_block.as_str());
        let r = wait_ready(
            ctx,
            "the route to appear",
            WAIT,
            || live_route(ctx, table, destination),
            found,
        )
        .await?;
        Ok(Created {
            id,
            outputs: route_outputs(&i.route_table_id, &r),
        })
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        _inputs: &Value,
        _outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        let (table, destination) = split_route_id(id)?;
        Ok(live_route(ctx, table, destination).await?.map(|r| ReadResult {
            id: id.to_string(),
            inputs: route_inputs(table, &r),
            outputs: route_outputs(table, &r),
        }))
    }

    async fn lookup(&self, ctx: &OpContext, query: &Value) -> Result<Vec<ReadResult>, ProviderError> {
        let tables = tables_of_query(ctx, query, ROUTE_KIND).await?;
        let mut found = Vec::new();
        for t in &tables {
            let table = t.route_table_id().unwrap_or_default();
            // Only routes with an IPv4 destination have an id of this kind (`<table>_<CIDR>`).
            for r in t.routes() {
                if let Some(destination) = r.destination_cidr_block() {
                    found.push(ReadResult {
                        id: route_id(table, destination),
                        inputs: route_inputs(table, r),
                        outputs: route_outputs(table, r),
                    });
                }
            }
        }
        Ok(found)
    }

    async fn update(
        &self,
        ctx: &OpContext,
        _id: &str,
        _old: &Value,
        new: &Value,
        _old_outputs: &Value,
    ) -> Result<Value, ProviderError> {
        let n: RouteInputs = parse(new)?;
        n.check()?;
        let ec2 = context::ec2().await;
        call0(ctx, "ReplaceRoute", || {
            ec2.replace_route()
                .route_table_id(&n.route_table_id)
                .destination_cidr_block(&n.destination_cidr_block)
                .set_gateway_id(n.gateway_id.clone())
                .set_nat_gateway_id(n.nat_gateway_id.clone())
                .send()
        })
        .await?;
        let r = live_route(ctx, &n.route_table_id, &n.destination_cidr_block)
            .await?
            .ok_or_else(|| ProviderError::msg("ReplaceRoute: the route is gone"))?;
        Ok(route_outputs(&n.route_table_id, &r))
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _inputs: &Value, _outputs: &Value) -> Result<(), ProviderError> {
        let (table, destination) = split_route_id(id)?;
        let ec2 = context::ec2().await;
        let deleted = call0(ctx, "DeleteRoute", || {
            ec2.delete_route()
                .route_table_id(table)
                .destination_cidr_block(destination)
                .send()
        })
        .await;
        deleted_then_gone(ctx, "the route", WAIT, deleted, || live_route(ctx, table, destination)).await
    }

    async fn find(&self, ctx: &OpContext, inputs: &Value) -> Result<Option<Created>, ProviderError> {
        let Ok(i) = parse::<RouteInputs>(inputs) else {
            return Ok(None);
        };
        let Some(r) = live_route(ctx, &i.route_table_id, &i.destination_cidr_block).await? else {
            return Ok(None);
        };
        let same_target =
            r.gateway_id() == i.gateway_id.as_deref() && r.nat_gateway_id() == i.nat_gateway_id.as_deref();
        Ok(same_target.then(|| Created {
            id: route_id(&i.route_table_id, &i.destination_cidr_block),
            outputs: route_outputs(&i.route_table_id, &r),
        }))
    }
}

// ---------------------------------------------------------------- RouteTableAssociation

/// The association of a subnet with a route table.
#[derive(Debug, Clone, Serialize)]
pub struct RouteTableAssociation {
    route_table_id: Input<String>,
    subnet_id: Input<String>,
}

impl RouteTableAssociation {
    pub fn new(route_table_id: impl Into<Input<String>>, subnet_id: impl Into<Input<String>>) -> Self {
        RouteTableAssociation {
            route_table_id: route_table_id.into(),
            subnet_id: subnet_id.into(),
        }
    }
}

impl RouteTableAssociation {
    /// The existing subnet associations of route tables, the tables named by id or ids,
    /// VPC or the tables' tags (`RouteTableAssociation::lookup().vpc_id(vpc.vpc_id())`);
    /// a VPC's main association (with no subnet) is not one.
    pub fn lookup() -> crate::aws::lookup::Ec2Lookup<RouteTableAssociation> {
        crate::aws::lookup::Ec2Lookup::for_kind(
            ASSOCIATION_KIND,
            std::sync::Arc::new(RouteTableAssociationProvider::new()),
        )
    }
}

#[derive(Deserialize)]
struct AssociationInputs {
    route_table_id: String,
    subnet_id: String,
}

provider!(
    /// The provider of `aws:ec2:RouteTableAssociation`.
    RouteTableAssociationProvider for RouteTableAssociation (ASSOCIATION_KIND),
    Schema::new()
        .replace_on(&["route_table_id", "subnet_id"])
        .delete_before_replace(true)
);

async fn live_association(
    ctx: &OpContext,
    id: &str,
) -> Result<Option<aws_sdk_ec2::types::RouteTableAssociation>, ProviderError> {
    let ec2 = context::ec2().await;
    let out = call0(ctx, "DescribeRouteTables", || {
        ec2.describe_route_tables()
            .filters(filter("association.route-table-association-id", id))
            .send()
    })
    .await?;
    Ok(out
        .route_tables()
        .iter()
        .flat_map(|t| t.associations())
        .find(|a| a.route_table_association_id() == Some(id))
        .filter(|a| is_current(a))
        .cloned())
}

/// False for an association going or gone (`disassociating`, `disassociated`): it reads
/// as absent.
fn is_current(a: &aws_sdk_ec2::types::RouteTableAssociation) -> bool {
    !matches!(
        a.association_state().and_then(|s| s.state()).map(|s| s.as_str()),
        Some("disassociated" | "disassociating")
    )
}

/// What `read` answers for association `a` with id `id`.
fn association_read(id: &str, a: &aws_sdk_ec2::types::RouteTableAssociation) -> ReadResult {
    ReadResult {
        id: id.to_string(),
        inputs: json!({"route_table_id": a.route_table_id(), "subnet_id": a.subnet_id()}),
        outputs: json!({"id": id}),
    }
}

#[async_trait]
impl ResourceProvider for RouteTableAssociationProvider {
    kind_basics!(ASSOCIATION_KIND, declare_association);

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i: AssociationInputs = parse(inputs)?;
        let ec2 = context::ec2().await;
        let out = call(
            ctx,
            "AssociateRouteTable",
            Retry::on(
                &["InvalidRouteTableID.NotFound", "InvalidSubnetID.NotFound"],
                Duration::from_secs(60),
            ),
            || {
                ec2.associate_route_table()
                    .route_table_id(&i.route_table_id)
                    .subnet_id(&i.subnet_id)
                    .send()
            },
        )
        .await?;
        let id = out.association_id().unwrap_or_default().to_string();
        Ok(Created {
            outputs: json!({"id": id}),
            id,
        })
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        _inputs: &Value,
        _outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        Ok(live_association(ctx, id).await?.map(|a| association_read(id, &a)))
    }

    async fn lookup(&self, ctx: &OpContext, query: &Value) -> Result<Vec<ReadResult>, ProviderError> {
        let tables = tables_of_query(ctx, query, ASSOCIATION_KIND).await?;
        Ok(tables
            .iter()
            .flat_map(|t| t.associations())
            // The main association has no subnet: it is no object of this kind.
            .filter(|a| a.subnet_id().is_some() && is_current(a))
            .filter_map(|a| a.route_table_association_id().map(|id| association_read(id, a)))
            .collect())
    }

    async fn update(
        &self,
        _ctx: &OpContext,
        _id: &str,
        _old: &Value,
        _new: &Value,
        old_outputs: &Value,
    ) -> Result<Value, ProviderError> {
        // Every input forces a replacement: nothing changes in place.
        Ok(old_outputs.clone())
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _inputs: &Value, _outputs: &Value) -> Result<(), ProviderError> {
        let ec2 = context::ec2().await;
        ok_if_gone(
            call0(ctx, "DisassociateRouteTable", || {
                ec2.disassociate_route_table().association_id(id).send()
            })
            .await,
        )?;
        wait_gone(
            ctx,
            "the association to be removed",
            WAIT,
            || live_association(ctx, id),
            |_| Poll::Pending("still associated".into()),
        )
        .await
    }

    async fn find(&self, ctx: &OpContext, inputs: &Value) -> Result<Option<Created>, ProviderError> {
        let Ok(i) = parse::<AssociationInputs>(inputs) else {
            return Ok(None);
        };
        let Some(t) = describe_table(ctx, &i.route_table_id).await? else {
            return Ok(None);
        };
        Ok(t.associations()
            .iter()
            .find(|a| a.subnet_id() == Some(i.subnet_id.as_str()))
            .and_then(|a| a.route_table_association_id())
            .map(|id| Created {
                id: id.to_string(),
                outputs: json!({"id": id}),
            }))
    }
}

/// `ec2::RouteTable::new(vpc_id)` with its tags.
fn declare_table(i: &Value) -> Option<Expr> {
    if !only_keys(i, &["vpc_id", "tags"]) {
        return None;
    }
    Expr::new("ec2::RouteTable::new", &[string(str_at(i, "vpc_id")?)]).tags(i)
}

/// `ec2::Route::new(table, destination)` through its gateway or NAT gateway.
fn declare_route(i: &Value) -> Option<Expr> {
    if !only_keys(
        i,
        &[
            "route_table_id",
            "destination_cidr_block",
            "gateway_id",
            "nat_gateway_id",
        ],
    ) {
        return None;
    }
    let e = Expr::new(
        "ec2::Route::new",
        &[
            string(str_at(i, "route_table_id")?),
            string(str_at(i, "destination_cidr_block")?),
        ],
    );
    match (str_at(i, "gateway_id"), str_at(i, "nat_gateway_id")) {
        (Some(g), None) => Some(e.call("via_gateway", &[string(g)])),
        (None, Some(n)) => Some(e.call("via_nat_gateway", &[string(n)])),
        (None, None) => Some(e),
        _ => None,
    }
}

/// `ec2::RouteTableAssociation::new(table, subnet)`.
fn declare_association(i: &Value) -> Option<Expr> {
    if !only_keys(i, &["route_table_id", "subnet_id"]) {
        return None;
    }
    Some(Expr::new(
        "ec2::RouteTableAssociation::new",
        &[string(str_at(i, "route_table_id")?), string(str_at(i, "subnet_id")?)],
    ))
}
