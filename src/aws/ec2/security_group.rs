//! `aws:ec2:SecurityGroup` and `aws:ec2:SecurityGroupRule`.
//!
//! Rules kept here: a group's name is the user's or `<name>-<8 hex>` from the address;
//! name, description and VPC force a replacement, done by deleting first (names are unique
//! per VPC and the generated one is stable); a group keeps the egress-all rule AWS gives
//! it, and its rules are separate `SecurityGroupRule`s (so the engine deletes them before
//! the group: the group's delete does not rely on AWS refusing); the delete retries
//! `DependencyViolation` (network interfaces still using it) within the delete timeout.
//! A rule is one ingress or egress permission with one source (an IPv4 CIDR or a group),
//! tagged at creation; its description and tags change in place, everything else forces a
//! replacement; `find` looks in the group for a rule carrying the ownership tag.
//!
//! Lookups: groups by `id`/`ids`, `vpc_id`, `name` and tags; rules by the same query of
//! their groups (every rule, ingress and egress, of every matching group, the egress-all
//! rule AWS gives a new group included), through paged DescribeSecurityGroups then paged
//! DescribeSecurityGroupRules, each rule built from its answer as `read` builds it.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    IpPermission, IpRange, ResourceType, SecurityGroupRuleRequest, SecurityGroupRuleUpdate, UserIdGroupPair,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::declaration::{Expr, only_keys, str_at, string};

use super::{
    WAIT, filter, from_tags, owner_filter, parse, sync_tags, tag_spec, unless_unset, update_tags, validate_ipv4_cidr,
};
use crate::aws::call::{Retry, all_pages, call, call_found, call0, ok_if_gone};
use crate::aws::context;
use crate::aws::lifecycle::{deleted_then_gone, found, kind_basics, provider, still_listed, wait_gone, wait_ready};
use crate::aws::tags::unique_name;
use crate::model::{Handle, Input, Output};
use crate::provider::{Created, OpContext, ProviderError, ReadResult, ResourceProvider, Schema};

pub const GROUP_KIND: &str = "aws:ec2:SecurityGroup";
pub const RULE_KIND: &str = "aws:ec2:SecurityGroupRule";

// ---------------------------------------------------------------- SecurityGroup

/// A security group in a VPC.
#[derive(Debug, Clone, Serialize)]
pub struct SecurityGroup {
    vpc_id: Input<String>,
    name: Option<Input<String>>,
    description: String,
    tags: BTreeMap<String, Input<String>>,
}

impl SecurityGroup {
    pub fn new(vpc_id: impl Into<Input<String>>) -> Self {
        SecurityGroup {
            vpc_id: vpc_id.into(),
            name: None,
            description: "Managed by spar".into(),
            tags: BTreeMap::new(),
        }
    }
    /// Fixes the group name (default: `<resource name>-<8 hex>`).
    pub fn name(mut self, name: impl Into<Input<String>>) -> Self {
        self.name = Some(name.into());
        self
    }
    pub fn description(mut self, d: &str) -> Self {
        self.description = d.into();
        self
    }
    pub fn tag(mut self, key: &str, value: impl Into<Input<String>>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }
}

impl SecurityGroup {
    /// An existing security group, by id, by name and VPC, or by tags
    /// (`SecurityGroup::lookup().vpc_id(vpc.vpc_id()).name("default")`).
    pub fn lookup() -> crate::aws::lookup::Ec2Lookup<SecurityGroup> {
        crate::aws::lookup::Ec2Lookup::for_kind(GROUP_KIND, std::sync::Arc::new(SecurityGroupProvider::new()))
    }
}

impl Handle<SecurityGroup> {
    /// The group id (`sg-...`).
    pub fn group_id(&self) -> Output<String> {
        self.output("id")
    }
    pub fn arn(&self) -> Output<String> {
        self.output("arn")
    }
    pub fn name(&self) -> Output<String> {
        self.output("name")
    }
}

#[derive(Deserialize)]
struct GroupInputs {
    vpc_id: String,
    #[serde(default)]
    name: Option<String>,
    description: String,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

provider!(
    /// The provider of `aws:ec2:SecurityGroup`.
    SecurityGroupProvider for SecurityGroup (GROUP_KIND),
    Schema::new()
        .replace_on(&["vpc_id", "name", "description"])
        .delete_before_replace(true)
);

fn group_name(ctx: &OpContext, i: &GroupInputs) -> String {
    match &i.name {
        Some(n) => n.clone(),
        None => unique_name(ctx, None, 255, |c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
    }
}

async fn describe_group(ctx: &OpContext, id: &str) -> Result<Option<aws_sdk_ec2::types::SecurityGroup>, ProviderError> {
    let ec2 = context::ec2().await;
    let out = call_found(ctx, "DescribeSecurityGroups", || {
        ec2.describe_security_groups().group_ids(id).send()
    })
    .await?;
    Ok(out.and_then(|o| o.security_groups().first().cloned()))
}

async fn group_outputs(g: &aws_sdk_ec2::types::SecurityGroup) -> Value {
    let id = g.group_id().unwrap_or_default();
    let arn = match g.security_group_arn() {
        Some(a) => a.to_string(),
        None => super::arn(g.owner_id().unwrap_or_default(), "security-group", id).await,
    };
    json!({
        "id": id,
        "arn": arn,
        "name": g.group_name(),
        "vpc_id": g.vpc_id(),
        "owner_id": g.owner_id(),
    })
}

#[async_trait]
impl ResourceProvider for SecurityGroupProvider {
    kind_basics!(GROUP_KIND, declare_group);

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i: GroupInputs = parse(inputs)?;
        let name = group_name(ctx, &i);
        let ec2 = context::ec2().await;
        let out = call(
            ctx,
            "CreateSecurityGroup",
            Retry::on(&["InvalidVpcID.NotFound"], Duration::from_secs(60)),
            || {
                ec2.create_security_group()
                    .vpc_id(&i.vpc_id)
                    .group_name(&name)
                    .description(&i.description)
                    .tag_specifications(tag_spec(ResourceType::SecurityGroup, ctx, &i.tags))
                    .send()
            },
        )
        .await?;
        let id = out.group_id().unwrap_or_default().to_string();
        let idr = id.as_str();
        let g = wait_ready(
            ctx,
            "the security group to be visible",
            WAIT,
            || describe_group(ctx, idr),
            found,
        )
        .await?;
        Ok(Created {
            id,
            outputs: group_outputs(&g).await,
        })
    }

    async fn lookup(&self, ctx: &OpContext, query: &Value) -> Result<Vec<ReadResult>, ProviderError> {
        let Some(q) = crate::aws::lookup::Ec2Query::for_lookup(query, GROUP_KIND, &[])? else {
            return Ok(Vec::new());
        };
        let ec2 = &context::clients().await.ec2;
        let out = call0(ctx, "DescribeSecurityGroups", || {
            ec2.describe_security_groups()
                .set_group_ids(q.object_ids())
                .set_filters(Some(q.filters()))
                .send()
        })
        .await?;
        let ids: Vec<String> = out
            .security_groups()
            .iter()
            .filter_map(|g| g.group_id().map(String::from))
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
        let Some(g) = describe_group(ctx, id).await? else {
            return Ok(None);
        };
        Ok(Some(ReadResult {
            id: id.to_string(),
            inputs: json!({
                "vpc_id": g.vpc_id(),
                "name": unless_unset(inputs, "name", json!(g.group_name())),
                "description": g.description(),
                "tags": from_tags(g.tags()),
            }),
            outputs: group_outputs(&g).await,
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
        let retry = Retry::within(ctx, &["DependencyViolation"], Duration::from_secs(900));
        let deleted = call(ctx, "DeleteSecurityGroup", retry, || {
            ec2.delete_security_group().group_id(id).send()
        })
        .await;
        deleted_then_gone(ctx, "the security group", WAIT, deleted, || describe_group(ctx, id)).await
    }

    async fn find(&self, ctx: &OpContext, _inputs: &Value) -> Result<Option<Created>, ProviderError> {
        let ec2 = context::ec2().await;
        let out = call0(ctx, "DescribeSecurityGroups", || {
            ec2.describe_security_groups()
                .filters(owner_filter(&ctx.address))
                .send()
        })
        .await?;
        match out
            .security_groups()
            .iter()
            .find(|g| super::adoptable(ctx, g.tags(), g.group_id()))
        {
            Some(g) => Ok(Some(Created {
                id: g.group_id().unwrap_or_default().to_string(),
                outputs: group_outputs(g).await,
            })),
            None => Ok(None),
        }
    }
}

// ---------------------------------------------------------------- SecurityGroupRule

/// One ingress or egress rule of a security group.
#[derive(Debug, Clone, Serialize)]
pub struct SecurityGroupRule {
    security_group_id: Input<String>,
    #[serde(rename = "type")]
    direction: String,
    protocol: String,
    from_port: i32,
    to_port: i32,
    cidr_ipv4: Option<Input<String>>,
    source_security_group_id: Option<Input<String>>,
    description: Option<String>,
    tags: BTreeMap<String, Input<String>>,
}

impl SecurityGroupRule {
    fn new(direction: &str, security_group_id: impl Into<Input<String>>) -> Self {
        SecurityGroupRule {
            security_group_id: security_group_id.into(),
            direction: direction.into(),
            protocol: "-1".into(),
            from_port: -1,
            to_port: -1,
            cidr_ipv4: None,
            source_security_group_id: None,
            description: None,
            tags: BTreeMap::new(),
        }
    }
    /// An inbound rule (all traffic until narrowed with [`tcp`](Self::tcp) and friends).
    pub fn ingress(security_group_id: impl Into<Input<String>>) -> Self {
        Self::new("ingress", security_group_id)
    }
    /// An outbound rule.
    pub fn egress(security_group_id: impl Into<Input<String>>) -> Self {
        Self::new("egress", security_group_id)
    }
    /// TCP on one port.
    pub fn tcp(self, port: i32) -> Self {
        self.protocol("tcp", port, port)
    }
    /// A protocol (`tcp`, `udp`, `icmp`, `-1` for all) and port range.
    pub fn protocol(mut self, protocol: &str, from_port: i32, to_port: i32) -> Self {
        self.protocol = protocol.into();
        (self.from_port, self.to_port) = if protocol == "-1" {
            (-1, -1)
        } else {
            (from_port, to_port)
        };
        self
    }
    /// From (ingress) or to (egress) an IPv4 CIDR.
    pub fn cidr(mut self, cidr: impl Into<Input<String>>) -> Self {
        self.cidr_ipv4 = Some(cidr.into());
        self.source_security_group_id = None;
        self
    }
    /// From (ingress) or to (egress) another security group.
    pub fn group(mut self, group_id: impl Into<Input<String>>) -> Self {
        self.source_security_group_id = Some(group_id.into());
        self.cidr_ipv4 = None;
        self
    }
    pub fn description(mut self, d: &str) -> Self {
        self.description = Some(d.into());
        self
    }
    pub fn tag(mut self, key: &str, value: impl Into<Input<String>>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }
}

impl SecurityGroupRule {
    /// The existing rules of security groups, the groups named by id or ids, VPC, name or
    /// tags (`SecurityGroupRule::lookup().vpc_id(vpc.vpc_id())`): every ingress and egress
    /// rule of each group.
    pub fn lookup() -> crate::aws::lookup::Ec2Lookup<SecurityGroupRule> {
        crate::aws::lookup::Ec2Lookup::for_kind(RULE_KIND, std::sync::Arc::new(SecurityGroupRuleProvider::new()))
    }
}

impl Handle<SecurityGroupRule> {
    /// The rule id (`sgr-...`).
    pub fn rule_id(&self) -> Output<String> {
        self.output("id")
    }
}

#[derive(Deserialize)]
struct RuleInputs {
    security_group_id: String,
    #[serde(rename = "type")]
    direction: String,
    protocol: String,
    from_port: i32,
    to_port: i32,
    #[serde(default)]
    cidr_ipv4: Option<String>,
    #[serde(default)]
    source_security_group_id: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

impl RuleInputs {
    fn check(&self) -> Result<(), ProviderError> {
        if self.direction != "ingress" && self.direction != "egress" {
            return Err(ProviderError::msg(format!(
                "type \"{}\" must be \"ingress\" or \"egress\"",
                self.direction
            )));
        }
        match (&self.cidr_ipv4, &self.source_security_group_id) {
            (Some(c), None) => validate_ipv4_cidr("cidr_ipv4", c),
            (None, Some(_)) => Ok(()),
            _ => Err(ProviderError::msg(
                "a security group rule needs exactly one of cidr_ipv4 and source_security_group_id",
            )),
        }
    }

    fn permission(&self) -> IpPermission {
        let mut p = IpPermission::builder().ip_protocol(&self.protocol);
        if self.protocol != "-1" {
            p = p.from_port(self.from_port).to_port(self.to_port);
        }
        if let Some(c) = &self.cidr_ipv4 {
            p = p.ip_ranges(
                IpRange::builder()
                    .cidr_ip(c)
                    .set_description(self.description.clone())
                    .build(),
            );
        }
        if let Some(g) = &self.source_security_group_id {
            p = p.user_id_group_pairs(
                UserIdGroupPair::builder()
                    .group_id(g)
                    .set_description(self.description.clone())
                    .build(),
            );
        }
        p.build()
    }
}

provider!(
    /// The provider of `aws:ec2:SecurityGroupRule`.
    SecurityGroupRuleProvider for SecurityGroupRule (RULE_KIND),
    Schema::new().replace_on(&[
        "security_group_id",
        "type",
        "protocol",
        "from_port",
        "to_port",
        "cidr_ipv4",
        "source_security_group_id",
    ])
);

async fn describe_rule(
    ctx: &OpContext,
    id: &str,
) -> Result<Option<aws_sdk_ec2::types::SecurityGroupRule>, ProviderError> {
    let ec2 = context::ec2().await;
    let out = call_found(ctx, "DescribeSecurityGroupRules", || {
        ec2.describe_security_group_rules().security_group_rule_ids(id).send()
    })
    .await?;
    Ok(out.and_then(|o| o.security_group_rules().first().cloned()))
}

/// The ids of the groups matching a lookup query, following NextToken; an id that does not
/// exist is AWS's error, as for the group lookup.
async fn group_ids_of(ctx: &OpContext, q: &crate::aws::lookup::Ec2Query) -> Result<Vec<String>, ProviderError> {
    let ec2 = context::ec2().await;
    let ids = all_pages(
        ctx,
        "DescribeSecurityGroups",
        |token| {
            ec2.describe_security_groups()
                .set_group_ids(q.object_ids())
                .set_filters(Some(q.filters_with("vpc-id")))
                .set_next_token(token)
                .send()
        },
        |out| {
            let ids = out
                .security_groups()
                .iter()
                .filter_map(|g| g.group_id().map(String::from));
            (ids.collect(), out.next_token().map(String::from))
        },
    )
    .await?;
    Ok(ids)
}

/// Every rule of the groups `group_ids` (at least one), following NextToken.
async fn rules_of(
    ctx: &OpContext,
    group_ids: &[String],
) -> Result<Vec<aws_sdk_ec2::types::SecurityGroupRule>, ProviderError> {
    let ec2 = context::ec2().await;
    let by_group = aws_sdk_ec2::types::Filter::builder()
        .name("group-id")
        .set_values(Some(group_ids.to_vec()))
        .build();
    let rules = all_pages(
        ctx,
        "DescribeSecurityGroupRules",
        |token| {
            ec2.describe_security_group_rules()
                .filters(by_group.clone())
                .set_next_token(token)
                .send()
        },
        |out| (out.security_group_rules().to_vec(), out.next_token().map(String::from)),
    )
    .await?;
    Ok(rules)
}

fn rule_inputs(r: &aws_sdk_ec2::types::SecurityGroupRule) -> Value {
    let protocol = r.ip_protocol().unwrap_or("-1");
    let all = protocol == "-1";
    json!({
        "security_group_id": r.group_id(),
        "type": if r.is_egress() == Some(true) { "egress" } else { "ingress" },
        "protocol": protocol,
        "from_port": if all { -1 } else { r.from_port().unwrap_or(-1) },
        "to_port": if all { -1 } else { r.to_port().unwrap_or(-1) },
        "cidr_ipv4": r.cidr_ipv4(),
        "source_security_group_id": r.referenced_group_info().and_then(|g| g.group_id()),
        "description": r.description().filter(|d| !d.is_empty()),
        "tags": from_tags(r.tags()),
    })
}

fn rule_outputs(r: &aws_sdk_ec2::types::SecurityGroupRule) -> Value {
    json!({
        "id": r.security_group_rule_id(),
        "arn": r.security_group_rule_arn(),
    })
}

#[async_trait]
impl ResourceProvider for SecurityGroupRuleProvider {
    kind_basics!(RULE_KIND, declare_rule);

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i: RuleInputs = parse(inputs)?;
        i.check()?;
        let ec2 = context::ec2().await;
        let tags = tag_spec(ResourceType::SecurityGroupRule, ctx, &i.tags);
        let retry = Retry::on(&["InvalidGroup.NotFound"], Duration::from_secs(60));
        let rules = if i.direction == "ingress" {
            call(ctx, "AuthorizeSecurityGroupIngress", retry, || {
                ec2.authorize_security_group_ingress()
                    .group_id(&i.security_group_id)
                    .ip_permissions(i.permission())
                    .tag_specifications(tags.clone())
                    .send()
            })
            .await?
            .security_group_rules()
            .to_vec()
        } else {
            call(ctx, "AuthorizeSecurityGroupEgress", retry, || {
                ec2.authorize_security_group_egress()
                    .group_id(&i.security_group_id)
                    .ip_permissions(i.permission())
                    .tag_specifications(tags.clone())
                    .send()
            })
            .await?
            .security_group_rules()
            .to_vec()
        };
        let rule = rules
            .first()
            .ok_or_else(|| ProviderError::msg("AuthorizeSecurityGroupRules: AWS returned no rule"))?;
        Ok(Created {
            id: rule.security_group_rule_id().unwrap_or_default().to_string(),
            outputs: rule_outputs(rule),
        })
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        _inputs: &Value,
        _outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        Ok(describe_rule(ctx, id).await?.map(|r| ReadResult {
            id: id.to_string(),
            inputs: rule_inputs(&r),
            outputs: rule_outputs(&r),
        }))
    }

    async fn lookup(&self, ctx: &OpContext, query: &Value) -> Result<Vec<ReadResult>, ProviderError> {
        let Some(q) = crate::aws::lookup::Ec2Query::for_lookup(query, RULE_KIND, &[])? else {
            return Ok(Vec::new());
        };
        let groups = group_ids_of(ctx, &q).await?;
        // No group: no rule. A `group-id` filter with no value would not narrow the call.
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        Ok(rules_of(ctx, &groups)
            .await?
            .iter()
            .map(|r| ReadResult {
                id: r.security_group_rule_id().unwrap_or_default().to_string(),
                inputs: rule_inputs(r),
                outputs: rule_outputs(r),
            })
            .collect())
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        old: &Value,
        new: &Value,
        old_outputs: &Value,
    ) -> Result<Value, ProviderError> {
        let o: RuleInputs = parse(old)?;
        let n: RuleInputs = parse(new)?;
        n.check()?;
        if o.description != n.description {
            let ec2 = context::ec2().await;
            let mut req = SecurityGroupRuleRequest::builder()
                .ip_protocol(&n.protocol)
                .from_port(n.from_port)
                .to_port(n.to_port)
                .set_cidr_ipv4(n.cidr_ipv4.clone())
                .set_referenced_group_id(n.source_security_group_id.clone());
            req = req.description(n.description.clone().unwrap_or_default());
            let update = SecurityGroupRuleUpdate::builder()
                .security_group_rule_id(id)
                .security_group_rule(req.build())
                .build();
            call0(ctx, "ModifySecurityGroupRules", || {
                ec2.modify_security_group_rules()
                    .group_id(&n.security_group_id)
                    .security_group_rules(update.clone())
                    .send()
            })
            .await?;
        }
        sync_tags(ctx, id, &o.tags, &n.tags).await?;
        Ok(old_outputs.clone())
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _inputs: &Value, _outputs: &Value) -> Result<(), ProviderError> {
        let Some(r) = describe_rule(ctx, id).await? else {
            return Ok(());
        };
        let group = r.group_id().unwrap_or_default().to_string();
        let ec2 = context::ec2().await;
        let result = if r.is_egress() == Some(true) {
            call0(ctx, "RevokeSecurityGroupEgress", || {
                ec2.revoke_security_group_egress()
                    .group_id(&group)
                    .security_group_rule_ids(id)
                    .send()
            })
            .await
            .map(|_| ())
        } else {
            call0(ctx, "RevokeSecurityGroupIngress", || {
                ec2.revoke_security_group_ingress()
                    .group_id(&group)
                    .security_group_rule_ids(id)
                    .send()
            })
            .await
            .map(|_| ())
        };
        ok_if_gone(result)?;
        wait_gone(
            ctx,
            "the rule to be revoked",
            WAIT,
            || describe_rule(ctx, id),
            still_listed,
        )
        .await
    }

    async fn find(&self, ctx: &OpContext, inputs: &Value) -> Result<Option<Created>, ProviderError> {
        let Some(group) = inputs.get("security_group_id").and_then(Value::as_str) else {
            return Ok(None);
        };
        let ec2 = context::ec2().await;
        let out = call_found(ctx, "DescribeSecurityGroupRules", || {
            ec2.describe_security_group_rules()
                .filters(filter("group-id", group))
                .send()
        })
        .await?;
        Ok(out.and_then(|o| {
            o.security_group_rules()
                .iter()
                .find(|r| super::adoptable(ctx, r.tags(), r.security_group_rule_id()))
                .map(|r| Created {
                    id: r.security_group_rule_id().unwrap_or_default().to_string(),
                    outputs: rule_outputs(r),
                })
        }))
    }
}

/// `ec2::SecurityGroup::new(vpc_id)` with its name, a description other than spar's
/// default, and its tags.
fn declare_group(i: &Value) -> Option<Expr> {
    if !only_keys(i, &["vpc_id", "name", "description", "tags"]) {
        return None;
    }
    let description = str_at(i, "description")?;
    Expr::new("ec2::SecurityGroup::new", &[string(str_at(i, "vpc_id")?)])
        .str_setter(i, "name", "name")?
        .call_if(description != "Managed by spar", "description", &[string(description)])
        .tags(i)
}

/// `ec2::SecurityGroupRule::ingress(group)` (or `egress`) with its protocol and ports
/// (`tcp(port)` for one TCP port), its peer, description and tags.
fn declare_rule(i: &Value) -> Option<Expr> {
    use crate::declaration::int_at;
    if !only_keys(
        i,
        &[
            "security_group_id",
            "type",
            "protocol",
            "from_port",
            "to_port",
            "cidr_ipv4",
            "source_security_group_id",
            "description",
            "tags",
        ],
    ) {
        return None;
    }
    let direction = match str_at(i, "type")? {
        d @ ("ingress" | "egress") => d,
        _ => return None,
    };
    let mut e = Expr::new(
        &format!("ec2::SecurityGroupRule::{direction}"),
        &[string(str_at(i, "security_group_id")?)],
    );
    let (protocol, from, to) = (str_at(i, "protocol")?, int_at(i, "from_port")?, int_at(i, "to_port")?);
    e = match protocol {
        "-1" if from == -1 && to == -1 => e,
        "-1" => return None,
        "tcp" if from == to => e.call("tcp", &[from.to_string()]),
        p => e.call("protocol", &[string(p), from.to_string(), to.to_string()]),
    };
    match (str_at(i, "cidr_ipv4"), str_at(i, "source_security_group_id")) {
        (Some(c), None) => e = e.call("cidr", &[string(c)]),
        (None, Some(g)) => e = e.call("group", &[string(g)]),
        (None, None) => {}
        _ => return None,
    }
    e.str_setter(i, "description", "description")?.tags(i)
}
