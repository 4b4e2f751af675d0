//! `aws:iam:Policy`: a customer managed policy.
//!
//! Rules kept here: the id is the ARN; name, path and description force a replacement
//! (IAM cannot change them), deleting first; a document change creates a new default
//! version and then deletes every other version (IAM keeps at most five); tags change in
//! place; the delete refuses while the policy is still attached (IAM would, and an
//! emulator that does not would leave an attachment that blocks the role's delete for
//! good), then deletes the non-default versions and the policy.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{PolicyDocument, from_tags, name_for, plain_tags, tags};
use crate::aws::call::{call_found, call0, ok_if_gone};
use crate::aws::context;
use crate::aws::ec2::{parse, unless_unset};
use crate::aws::lifecycle::{kind_basics, provider, still_listed, wait_gone};
use crate::aws::tags::apply_changes;
use crate::declaration::Expr;
use crate::model::{Handle, Input, Output};
use crate::provider::{Created, OpContext, ProviderError, ReadResult, ResourceProvider, Schema};

pub const KIND: &str = "aws:iam:Policy";

/// A customer managed policy.
#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    name: Option<Input<String>>,
    path: String,
    description: Option<String>,
    policy: Input<PolicyDocument>,
    tags: BTreeMap<String, Input<String>>,
}

impl Policy {
    pub fn new(policy: impl Into<Input<PolicyDocument>>) -> Self {
        Policy {
            name: None,
            path: "/".into(),
            description: None,
            policy: policy.into(),
            tags: BTreeMap::new(),
        }
    }
    /// Fixes the policy name (default: `<resource name>-<8 hex>`).
    pub fn name(mut self, name: impl Into<Input<String>>) -> Self {
        self.name = Some(name.into());
        self
    }
    pub fn path(mut self, path: &str) -> Self {
        self.path = path.into();
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

impl Handle<Policy> {
    pub fn arn(&self) -> Output<String> {
        self.output("arn")
    }
    pub fn name(&self) -> Output<String> {
        self.output("name")
    }
}

#[derive(Deserialize)]
struct PolicyInputs {
    #[serde(default)]
    name: Option<String>,
    #[serde(default = "root")]
    path: String,
    #[serde(default)]
    description: Option<String>,
    policy: PolicyDocument,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

fn root() -> String {
    "/".into()
}

provider!(
    /// The provider of `aws:iam:Policy`.
    PolicyProvider for Policy (KIND),
    Schema::new()
        .replace_on(&["name", "path", "description"])
        .delete_before_replace(true)
);

async fn get(ctx: &OpContext, arn: &str) -> Result<Option<aws_sdk_iam::types::Policy>, ProviderError> {
    let iam = context::iam().await;
    let out = call_found(ctx, "GetPolicy", || iam.get_policy().policy_arn(arn).send()).await?;
    Ok(out.and_then(|o| o.policy().cloned()))
}

async fn versions(ctx: &OpContext, arn: &str) -> Result<Vec<aws_sdk_iam::types::PolicyVersion>, ProviderError> {
    let iam = context::iam().await;
    let out = call0(ctx, "ListPolicyVersions", || {
        iam.list_policy_versions().policy_arn(arn).send()
    })
    .await?;
    Ok(out.versions().to_vec())
}

async fn prune(ctx: &OpContext, arn: &str) -> Result<(), ProviderError> {
    let iam = context::iam().await;
    for v in versions(ctx, arn).await? {
        if v.is_default_version() {
            continue;
        }
        let Some(id) = v.version_id() else { continue };
        ok_if_gone(
            call0(ctx, "DeletePolicyVersion", || {
                iam.delete_policy_version().policy_arn(arn).version_id(id).send()
            })
            .await,
        )?;
    }
    Ok(())
}

fn outputs(p: &aws_sdk_iam::types::Policy) -> Value {
    json!({
        "arn": p.arn(),
        "name": p.policy_name(),
        "policy_id": p.policy_id(),
        "default_version_id": p.default_version_id(),
    })
}

#[async_trait]
impl ResourceProvider for PolicyProvider {
    kind_basics!(KIND, declare);

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i: PolicyInputs = parse(inputs)?;
        let name = name_for(ctx, i.name.as_deref(), 128);
        let iam = context::iam().await;
        let out = call0(ctx, "CreatePolicy", || {
            iam.create_policy()
                .policy_name(&name)
                .path(&i.path)
                .set_description(i.description.clone())
                .policy_document(i.policy.to_json())
                .set_tags(Some(tags(&i.tags, ctx)))
                .send()
        })
        .await?;
        let p = out
            .policy()
            .ok_or_else(|| ProviderError::msg("CreatePolicy: IAM returned no policy"))?;
        Ok(Created {
            id: p.arn().unwrap_or_default().to_string(),
            outputs: outputs(p),
        })
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        inputs: &Value,
        _outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        let Some(p) = get(ctx, id).await? else {
            return Ok(None);
        };
        let iam = context::iam().await;
        let version = p.default_version_id().unwrap_or("v1");
        let doc = call0(ctx, "GetPolicyVersion", || {
            iam.get_policy_version().policy_arn(id).version_id(version).send()
        })
        .await?;
        let document = match doc.policy_version().and_then(|v| v.document()) {
            Some(d) => PolicyDocument::parse(d)?.canonical(),
            None => Value::Null,
        };
        Ok(Some(ReadResult {
            id: id.to_string(),
            inputs: json!({
                "name": unless_unset(inputs, "name", json!(p.policy_name())),
                "path": p.path(),
                "description": p.description().filter(|d| !d.is_empty()),
                "policy": document,
                "tags": from_tags(p.tags()),
            }),
            outputs: outputs(&p),
        }))
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        old: &Value,
        new: &Value,
        _old_outputs: &Value,
    ) -> Result<Value, ProviderError> {
        let o: PolicyInputs = parse(old)?;
        let n: PolicyInputs = parse(new)?;
        let iam = context::iam().await;
        if o.policy != n.policy {
            // Make room first: IAM keeps at most five versions.
            prune(ctx, id).await?;
            call0(ctx, "CreatePolicyVersion", || {
                iam.create_policy_version()
                    .policy_arn(id)
                    .policy_document(n.policy.to_json())
                    .set_as_default(true)
                    .send()
            })
            .await?;
            prune(ctx, id).await?;
        }
        apply_changes(
            ctx,
            &o.tags,
            &n.tags,
            ("UntagPolicy", |keys| {
                iam.untag_policy().policy_arn(id).set_tag_keys(Some(keys)).send()
            }),
            ("TagPolicy", |set| {
                iam.tag_policy().policy_arn(id).set_tags(Some(plain_tags(set))).send()
            }),
        )
        .await?;
        let p = get(ctx, id)
            .await?
            .ok_or_else(|| ProviderError::msg("GetPolicy: the policy is gone"))?;
        Ok(outputs(&p))
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _inputs: &Value, _outputs: &Value) -> Result<(), ProviderError> {
        let Some(p) = get(ctx, id).await? else {
            return Ok(());
        };
        if let Some(n) = p.attachment_count().filter(|n| *n > 0) {
            return Err(ProviderError::msg(format!(
                "DeletePolicy: DeleteConflict: {id} is still attached to {n} entities; detach it first"
            )));
        }
        prune(ctx, id).await?;
        let iam = context::iam().await;
        ok_if_gone(call0(ctx, "DeletePolicy", || iam.delete_policy().policy_arn(id).send()).await)?;
        let wait = Duration::from_secs(120);
        wait_gone(ctx, "the policy to be deleted", wait, || get(ctx, id), still_listed).await
    }

    async fn find(&self, ctx: &OpContext, inputs: &Value) -> Result<Option<Created>, ProviderError> {
        let name = name_for(ctx, inputs.get("name").and_then(Value::as_str), 128);
        let path = inputs.get("path").and_then(Value::as_str).unwrap_or("/").to_string();
        let iam = context::iam().await;
        let mut marker: Option<String> = None;
        loop {
            let out = call0(ctx, "ListPolicies", || {
                iam.list_policies()
                    .scope(aws_sdk_iam::types::PolicyScopeType::Local)
                    .path_prefix(&path)
                    .set_marker(marker.clone())
                    .send()
            })
            .await?;
            if let Some(arn) = out
                .policies()
                .iter()
                .find(|p| p.policy_name() == Some(name.as_str()))
                .and_then(|p| p.arn())
            {
                // ListPolicies carries no tags: read them from the policy itself.
                return Ok(get(ctx, arn)
                    .await?
                    .filter(|p| super::owned(ctx, p.tags()))
                    .map(|p| Created {
                        id: arn.to_string(),
                        outputs: outputs(&p),
                    }));
            }
            match out.marker() {
                Some(m) if out.is_truncated() => marker = Some(m.to_string()),
                _ => return Ok(None),
            }
        }
    }
}

/// `iam::Policy::new(document)` with its name, path, description and tags.
fn declare(i: &Value) -> Option<Expr> {
    use crate::declaration::{only_keys, str_at, string};
    if !only_keys(i, &["name", "path", "description", "policy", "tags"]) {
        return None;
    }
    let path = str_at(i, "path").unwrap_or("/");
    Expr::new("iam::Policy::new", &[super::document::source(i.get("policy")?)?])
        .str_setter(i, "name", "name")?
        .call_if(path != "/", "path", &[string(path)])
        .str_setter(i, "description", "description")?
        .tags(i)
}
