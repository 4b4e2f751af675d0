//! EventBridge kinds: `aws:events:Rule` (an event pattern on the default bus) and
//! `aws:events:Target` (where a rule's events go, Karpenter's interruption queue).
//!
//! Rules kept here: a rule's name forces a replacement, deleting first (names are unique
//! per bus); its pattern (stored as JSON, compared as JSON), description and state change
//! in place through PutRule, which is an upsert; tags go in PutRule itself (with
//! `spar:address` and `spar:stack`) and change through Tag/UntagResource; `find` describes
//! the generated or given name and adopts the rule only when it carries this address's and
//! this stack's tags. A target is
//! known by `<rule>/<target id>` and references its rule by name, so the engine removes it
//! before deleting the rule (EventBridge refuses to delete a rule that has targets); its
//! ARN changes in place (PutTargets is an upsert); a PutTargets entry that fails is an
//! error with EventBridge's code and message.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_eventbridge::types::{RuleState, Tag, Target as EbTarget};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::aws::call::{call_found, call0};
use crate::aws::context;
use crate::aws::ec2::{parse, unless_unset};
use crate::aws::lifecycle::{kind_basics, provider, split_id};
use crate::aws::tags::{apply_changes, owned_by, unique_name, user_tags, with_owner};
use crate::declaration::Expr;
use crate::model::{Handle, Input, Output};
use crate::provider::{Created, OpContext, ProviderError, ReadResult, Registry, ResourceProvider, Schema};

pub const RULE_KIND: &str = "aws:events:Rule";
pub const TARGET_KIND: &str = "aws:events:Target";

/// Adds the EventBridge kinds to `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(Arc::new(RuleProvider::new()));
    registry.register(Arc::new(TargetProvider::new()));
}

fn name_for(ctx: &OpContext, user: Option<&str>) -> String {
    match user {
        Some(n) => n.to_string(),
        None => unique_name(ctx, None, 64, |c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
    }
}

// ---------------------------------------------------------------- Rule

/// A rule matching `event_pattern` on the default event bus.
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    name: Option<Input<String>>,
    description: Option<String>,
    event_pattern: Value,
    enabled: bool,
    tags: BTreeMap<String, Input<String>>,
}

impl Rule {
    pub fn new(event_pattern: Value) -> Self {
        Rule {
            name: None,
            description: None,
            event_pattern,
            enabled: true,
            tags: BTreeMap::new(),
        }
    }
    /// Fixes the rule name (default: `<resource name>-<8 hex>`).
    pub fn name(mut self, name: impl Into<Input<String>>) -> Self {
        self.name = Some(name.into());
        self
    }
    pub fn description(mut self, d: &str) -> Self {
        self.description = Some(d.into());
        self
    }
    pub fn enabled(mut self, yes: bool) -> Self {
        self.enabled = yes;
        self
    }
    pub fn tag(mut self, key: &str, value: impl Into<Input<String>>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }
}

impl Handle<Rule> {
    pub fn name(&self) -> Output<String> {
        self.output("name")
    }
    pub fn arn(&self) -> Output<String> {
        self.output("arn")
    }
}

#[derive(Deserialize)]
struct RuleInputs {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    event_pattern: Value,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}

provider!(
    /// The provider of `aws:events:Rule`.
    RuleProvider for Rule (RULE_KIND),
    Schema::new()
        .replace_on(&["name"])
        .delete_before_replace(true)
);

fn eb_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect()
}

async fn put_rule(
    ctx: &OpContext,
    name: &str,
    i: &RuleInputs,
    tags: Option<Vec<Tag>>,
) -> Result<String, ProviderError> {
    let eb = &context::clients().await.events;
    let out = call0(ctx, "PutRule", || {
        eb.put_rule()
            .name(name)
            .event_pattern(i.event_pattern.to_string())
            .set_description(i.description.clone())
            .state(if i.enabled {
                RuleState::Enabled
            } else {
                RuleState::Disabled
            })
            .set_tags(tags.clone())
            .send()
    })
    .await?;
    Ok(out.rule_arn().unwrap_or_default().to_string())
}

async fn rule_tags(ctx: &OpContext, arn: &str) -> Result<Vec<Tag>, ProviderError> {
    let eb = &context::clients().await.events;
    let out = call0(ctx, "ListTagsForResource", || {
        eb.list_tags_for_resource().resource_arn(arn).send()
    })
    .await?;
    Ok(out.tags().to_vec())
}

#[async_trait]
impl ResourceProvider for RuleProvider {
    kind_basics!(RULE_KIND, declare_rule);

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i: RuleInputs = parse(inputs)?;
        let name = name_for(ctx, i.name.as_deref());
        let arn = put_rule(ctx, &name, &i, Some(eb_tags(&with_owner(&i.tags, ctx)))).await?;
        Ok(Created {
            outputs: json!({"name": name, "arn": arn}),
            id: name,
        })
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        inputs: &Value,
        _outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        let eb = &context::clients().await.events;
        let Some(r) = call_found(ctx, "DescribeRule", || eb.describe_rule().name(id).send()).await? else {
            return Ok(None);
        };
        let arn = r.arn().unwrap_or_default().to_string();
        let tags = rule_tags(ctx, &arn).await?;
        let pattern = r
            .event_pattern()
            .map(|p| serde_json::from_str::<Value>(p).unwrap_or_else(|_| Value::String(p.to_string())))
            .unwrap_or(Value::Null);
        Ok(Some(ReadResult {
            id: id.to_string(),
            inputs: json!({
                "name": unless_unset(inputs, "name", json!(id)),
                "description": r.description().filter(|d| !d.is_empty()),
                "event_pattern": pattern,
                "enabled": r.state() == Some(&RuleState::Enabled),
                "tags": user_tags(tags.iter().map(|t| (t.key(), t.value()))),
            }),
            outputs: json!({"name": id, "arn": arn}),
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
        let o: RuleInputs = parse(old)?;
        let n: RuleInputs = parse(new)?;
        let arn = put_rule(ctx, id, &n, None).await?;
        let eb = &context::clients().await.events;
        apply_changes(
            ctx,
            &o.tags,
            &n.tags,
            ("UntagResource", |keys| {
                eb.untag_resource().resource_arn(&arn).set_tag_keys(Some(keys)).send()
            }),
            ("TagResource", |set| {
                eb.tag_resource().resource_arn(&arn).set_tags(Some(eb_tags(set))).send()
            }),
        )
        .await?;
        Ok(old_outputs.clone())
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _inputs: &Value, _outputs: &Value) -> Result<(), ProviderError> {
        let eb = &context::clients().await.events;
        call_found(ctx, "DeleteRule", || eb.delete_rule().name(id).send())
            .await
            .map(|_| ())
    }

    async fn find(&self, ctx: &OpContext, inputs: &Value) -> Result<Option<Created>, ProviderError> {
        let name = name_for(ctx, inputs.get("name").and_then(Value::as_str));
        let eb = &context::clients().await.events;
        let Some(r) = call_found(ctx, "DescribeRule", || eb.describe_rule().name(&name).send()).await? else {
            return Ok(None);
        };
        let arn = r.arn().unwrap_or_default().to_string();
        let tags = rule_tags(ctx, &arn).await?;
        let owned = owned_by(ctx, |k| tags.iter().find(|t| t.key() == k).map(|t| t.value()));
        Ok(owned.then(|| Created {
            outputs: json!({"name": name, "arn": arn}),
            id: name,
        }))
    }
}

// ---------------------------------------------------------------- Target

/// A target of a rule: events matching the rule are sent to `arn`.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    rule: Input<String>,
    target_id: Option<String>,
    arn: Input<String>,
}

impl Target {
    pub fn new(rule: impl Into<Input<String>>, arn: impl Into<Input<String>>) -> Self {
        Target {
            rule: rule.into(),
            target_id: None,
            arn: arn.into(),
        }
    }
    /// Fixes the target id (default: `<resource name>-<8 hex>`).
    pub fn id(mut self, id: &str) -> Self {
        self.target_id = Some(id.into());
        self
    }
}

#[derive(Deserialize)]
struct TargetInputs {
    rule: String,
    #[serde(default)]
    target_id: Option<String>,
    arn: String,
}

provider!(
    /// The provider of `aws:events:Target`.
    TargetProvider for Target (TARGET_KIND),
    Schema::new().replace_on(&["rule", "target_id"])
);

fn split_target_id(id: &str) -> Result<(&str, &str), ProviderError> {
    split_id(id, '/', "a target id", "<rule>/<target id>")
}

async fn put_target(ctx: &OpContext, rule: &str, target_id: &str, arn: &str) -> Result<(), ProviderError> {
    let eb = &context::clients().await.events;
    let target = EbTarget::builder()
        .id(target_id)
        .arn(arn)
        .build()
        .map_err(|e| ProviderError::msg(format!("PutTargets: {e}")))?;
    let out = call0(ctx, "PutTargets", || {
        eb.put_targets().rule(rule).targets(target.clone()).send()
    })
    .await?;
    if let Some(f) = out.failed_entries().first() {
        return Err(ProviderError::msg(format!(
            "PutTargets: {}: {}",
            f.error_code().unwrap_or("failed"),
            f.error_message().unwrap_or("")
        )));
    }
    Ok(())
}

async fn live_target(ctx: &OpContext, rule: &str, target_id: &str) -> Result<Option<EbTarget>, ProviderError> {
    let eb = &context::clients().await.events;
    let mut token: Option<String> = None;
    loop {
        let Some(page) = call_found(ctx, "ListTargetsByRule", || {
            eb.list_targets_by_rule()
                .rule(rule)
                .set_next_token(token.clone())
                .send()
        })
        .await?
        else {
            return Ok(None);
        };
        if let Some(t) = page.targets().iter().find(|t| t.id() == target_id) {
            return Ok(Some(t.clone()));
        }
        match page.next_token() {
            Some(t) => token = Some(t.to_string()),
            None => return Ok(None),
        }
    }
}

#[async_trait]
impl ResourceProvider for TargetProvider {
    kind_basics!(TARGET_KIND, declare_target);

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i: TargetInputs = parse(inputs)?;
        let target_id = name_for(ctx, i.target_id.as_deref());
        put_target(ctx, &i.rule, &target_id, &i.arn).await?;
        Ok(Created {
            id: format!("{}/{target_id}", i.rule),
            outputs: json!({"target_id": target_id}),
        })
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        inputs: &Value,
        _outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        let (rule, target_id) = split_target_id(id)?;
        Ok(live_target(ctx, rule, target_id).await?.map(|t| ReadResult {
            id: id.to_string(),
            inputs: json!({
                "rule": rule,
                "target_id": unless_unset(inputs, "target_id", json!(target_id)),
                "arn": t.arn(),
            }),
            outputs: json!({"target_id": target_id}),
        }))
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        _old: &Value,
        new: &Value,
        old_outputs: &Value,
    ) -> Result<Value, ProviderError> {
        let n: TargetInputs = parse(new)?;
        let (rule, target_id) = split_target_id(id)?;
        put_target(ctx, rule, target_id, &n.arn).await?;
        Ok(old_outputs.clone())
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _inputs: &Value, _outputs: &Value) -> Result<(), ProviderError> {
        let (rule, target_id) = split_target_id(id)?;
        let eb = &context::clients().await.events;
        call_found(ctx, "RemoveTargets", || {
            eb.remove_targets().rule(rule).ids(target_id).send()
        })
        .await
        .map(|_| ())
    }

    async fn find(&self, ctx: &OpContext, inputs: &Value) -> Result<Option<Created>, ProviderError> {
        let Ok(i) = parse::<TargetInputs>(inputs) else {
            return Ok(None);
        };
        let target_id = name_for(ctx, i.target_id.as_deref());
        Ok(live_target(ctx, &i.rule, &target_id)
            .await?
            .filter(|t| t.arn() == i.arn)
            .map(|_| Created {
                id: format!("{}/{target_id}", i.rule),
                outputs: json!({"target_id": target_id}),
            }))
    }
}

/// `events::Rule::new(pattern)` with its name, description, `enabled(false)` and tags.
fn declare_rule(i: &Value) -> Option<Expr> {
    use crate::declaration::{bool_at, json, only_keys};
    if !only_keys(i, &["name", "description", "event_pattern", "enabled", "tags"]) {
        return None;
    }
    Expr::new("events::Rule::new", &[json(i.get("event_pattern")?)])
        .str_setter(i, "name", "name")?
        .str_setter(i, "description", "description")?
        .call_if(!bool_at(i, "enabled", true)?, "enabled", &["false".into()])
        .tags(i)
}

/// `events::Target::new(rule, arn)` with its target id.
fn declare_target(i: &Value) -> Option<Expr> {
    use crate::declaration::{only_keys, str_at, string};
    if !only_keys(i, &["rule", "target_id", "arn"]) {
        return None;
    }
    Expr::new(
        "events::Target::new",
        &[string(str_at(i, "rule")?), string(str_at(i, "arn")?)],
    )
    .str_setter(i, "target_id", "id")
}
