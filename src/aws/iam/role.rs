//! `aws:iam:Role`, `aws:iam:RolePolicyAttachment` (a managed policy attached to a role)
//! and `aws:iam:RolePolicy` (an inline policy).
//!
//! Rules kept here: a role's trust policy, description, session duration and tags change
//! in place (UpdateAssumeRolePolicy, UpdateRole, TagRole/UntagRole); its name and path force
//! a replacement, deleting first; the role's id is its name. An attachment's id is
//! `<role>/<policy ARN>` and an inline policy's `<role>:<policy name>`; both reference the
//! role by name, so the engine detaches and deletes them before it deletes the role (the
//! role's delete does not detach anything itself: what the program declares is removed by
//! the program's own order, and a DeleteConflict from IAM names what else is attached).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{PolicyDocument, from_tags, name_for, owned, plain_tags, tags};
use crate::aws::call::{Retry, call, call_found, call0, ok_if_gone};
use crate::aws::context;
use crate::aws::ec2::parse;
use crate::aws::lifecycle::{deleted_then_gone, kind_basics, provider, split_id};
use crate::aws::tags::apply_changes;
use crate::declaration::Expr;
use crate::model::{Handle, Input, Output};
use crate::provider::{Created, OpContext, ProviderError, ReadResult, ResourceProvider, Schema};

pub const ROLE_KIND: &str = "aws:iam:Role";
pub const ATTACHMENT_KIND: &str = "aws:iam:RolePolicyAttachment";
pub const INLINE_KIND: &str = "aws:iam:RolePolicy";

const WAIT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------- Role

/// An IAM role with a typed trust policy.
#[derive(Debug, Clone, Serialize)]
pub struct Role {
    name: Option<Input<String>>,
    path: String,
    description: Option<String>,
    assume_role_policy: Input<PolicyDocument>,
    max_session_duration: i32,
    tags: BTreeMap<String, Input<String>>,
}

impl Role {
    /// A role trusting `assume_role_policy`.
    pub fn new(assume_role_policy: impl Into<Input<PolicyDocument>>) -> Self {
        Role {
            name: None,
            path: "/".into(),
            description: None,
            assume_role_policy: assume_role_policy.into(),
            max_session_duration: 3600,
            tags: BTreeMap::new(),
        }
    }
    /// A role an AWS service (`eks.amazonaws.com`) may assume.
    pub fn assumed_by_service(service: &str) -> Self {
        Self::new(PolicyDocument::assumed_by_service(service))
    }
    /// Fixes the role name (default: `<resource name>-<8 hex>`).
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
    pub fn max_session_duration(mut self, seconds: i32) -> Self {
        self.max_session_duration = seconds;
        self
    }
    pub fn tag(mut self, key: &str, value: impl Into<Input<String>>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }
}

impl Role {
    /// An existing IAM role by name.
    pub fn lookup(name: impl Into<Input<String>>) -> crate::aws::lookup::NamedLookup<Role> {
        crate::aws::lookup::NamedLookup::for_kind(ROLE_KIND, std::sync::Arc::new(RoleProvider::new()), name.into())
    }
}

impl Handle<Role> {
    /// The role name (also its id).
    pub fn name(&self) -> Output<String> {
        self.output("name")
    }
    pub fn arn(&self) -> Output<String> {
        self.output("arn")
    }
    /// The role's unique id (`AROA...`).
    pub fn unique_id(&self) -> Output<String> {
        self.output("unique_id")
    }
}

#[derive(Deserialize)]
struct RoleInputs {
    #[serde(default)]
    name: Option<String>,
    #[serde(default = "root")]
    path: String,
    #[serde(default)]
    description: Option<String>,
    assume_role_policy: PolicyDocument,
    #[serde(default = "hour")]
    max_session_duration: i32,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

fn root() -> String {
    "/".into()
}

fn hour() -> i32 {
    3600
}

provider!(
    /// The provider of `aws:iam:Role`.
    RoleProvider for Role (ROLE_KIND),
    Schema::new()
        .replace_on(&["name", "path"])
        .delete_before_replace(true)
);

async fn get_role(ctx: &OpContext, name: &str) -> Result<Option<aws_sdk_iam::types::Role>, ProviderError> {
    let iam = context::iam().await;
    let out = call_found(ctx, "GetRole", || iam.get_role().role_name(name).send()).await?;
    Ok(out.and_then(|o| o.role().cloned()))
}

fn role_outputs(r: &aws_sdk_iam::types::Role) -> Value {
    json!({"name": r.role_name(), "arn": r.arn(), "unique_id": r.role_id(), "path": r.path()})
}

#[async_trait]
impl ResourceProvider for RoleProvider {
    kind_basics!(ROLE_KIND, declare_role);

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i: RoleInputs = parse(inputs)?;
        let name = name_for(ctx, i.name.as_deref(), 64);
        let iam = context::iam().await;
        let out = call0(ctx, "CreateRole", || {
            iam.create_role()
                .role_name(&name)
                .path(&i.path)
                .assume_role_policy_document(i.assume_role_policy.to_json())
                .set_description(i.description.clone())
                .max_session_duration(i.max_session_duration)
                .set_tags(Some(tags(&i.tags, ctx)))
                .send()
        })
        .await?;
        let role = out
            .role()
            .ok_or_else(|| ProviderError::msg("CreateRole: IAM returned no role"))?;
        Ok(Created {
            id: name,
            outputs: role_outputs(role),
        })
    }

    async fn lookup(&self, ctx: &OpContext, query: &Value) -> Result<Vec<ReadResult>, ProviderError> {
        let name = crate::aws::lookup::query_name(query, ROLE_KIND)?;
        let ids: Vec<String> = get_role(ctx, &name).await?.map(|_| name).into_iter().collect();
        crate::aws::lookup::read_each(self, ctx, ids).await
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        inputs: &Value,
        _outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        let Some(r) = get_role(ctx, id).await? else {
            return Ok(None);
        };
        let trust = match r.assume_role_policy_document() {
            Some(d) => PolicyDocument::parse(d)?.canonical(),
            None => Value::Null,
        };
        Ok(Some(ReadResult {
            id: id.to_string(),
            inputs: json!({
                "name": crate::aws::ec2::unless_unset(inputs, "name", json!(r.role_name())),
                "path": r.path(),
                "description": r.description().filter(|d| !d.is_empty()),
                "assume_role_policy": trust,
                "max_session_duration": r.max_session_duration().unwrap_or(3600),
                "tags": from_tags(r.tags()),
            }),
            outputs: role_outputs(&r),
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
        let o: RoleInputs = parse(old)?;
        let n: RoleInputs = parse(new)?;
        let iam = context::iam().await;
        if o.assume_role_policy != n.assume_role_policy {
            call0(ctx, "UpdateAssumeRolePolicy", || {
                iam.update_assume_role_policy()
                    .role_name(id)
                    .policy_document(n.assume_role_policy.to_json())
                    .send()
            })
            .await?;
        }
        if o.description != n.description || o.max_session_duration != n.max_session_duration {
            call0(ctx, "UpdateRole", || {
                iam.update_role()
                    .role_name(id)
                    .description(n.description.clone().unwrap_or_default())
                    .max_session_duration(n.max_session_duration)
                    .send()
            })
            .await?;
        }
        apply_changes(
            ctx,
            &o.tags,
            &n.tags,
            ("UntagRole", |keys| {
                iam.untag_role().role_name(id).set_tag_keys(Some(keys)).send()
            }),
            ("TagRole", |set| {
                iam.tag_role().role_name(id).set_tags(Some(plain_tags(set))).send()
            }),
        )
        .await?;
        Ok(old_outputs.clone())
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _inputs: &Value, _outputs: &Value) -> Result<(), ProviderError> {
        let iam = context::iam().await;
        let deleted = call0(ctx, "DeleteRole", || iam.delete_role().role_name(id).send()).await;
        deleted_then_gone(ctx, "the role", WAIT, deleted, || get_role(ctx, id)).await
    }

    async fn find(&self, ctx: &OpContext, inputs: &Value) -> Result<Option<Created>, ProviderError> {
        let user = inputs.get("name").and_then(Value::as_str);
        let name = name_for(ctx, user, 64);
        Ok(get_role(ctx, &name)
            .await?
            .filter(|r| owned(ctx, r.tags()))
            .map(|r| Created {
                id: name,
                outputs: role_outputs(&r),
            }))
    }
}

// ---------------------------------------------------------------- RolePolicyAttachment

/// A managed policy attached to a role.
#[derive(Debug, Clone, Serialize)]
pub struct RolePolicyAttachment {
    role: Input<String>,
    policy_arn: Input<String>,
}

impl RolePolicyAttachment {
    /// Attaches `policy_arn` to the role named `role`.
    pub fn new(role: impl Into<Input<String>>, policy_arn: impl Into<Input<String>>) -> Self {
        RolePolicyAttachment {
            role: role.into(),
            policy_arn: policy_arn.into(),
        }
    }
    /// Attaches the AWS managed policy `name` (`AmazonEKSClusterPolicy`).
    pub fn aws_managed(role: impl Into<Input<String>>, name: &str) -> Self {
        Self::new(role, format!("arn:aws:iam::aws:policy/{name}"))
    }
}

#[derive(Deserialize)]
struct AttachmentInputs {
    role: String,
    policy_arn: String,
}

provider!(
    /// The provider of `aws:iam:RolePolicyAttachment`.
    RolePolicyAttachmentProvider for RolePolicyAttachment (ATTACHMENT_KIND),
    Schema::new().replace_on(&["role", "policy_arn"])
);

fn split_attachment(id: &str) -> Result<(&str, &str), ProviderError> {
    split_id(id, '/', "an attachment id", "<role>/<policy ARN>")
}

/// The ARNs of the managed policies attached to `role`; `None` when the role is gone.
pub(crate) async fn attached_policies(ctx: &OpContext, role: &str) -> Result<Option<Vec<String>>, ProviderError> {
    let iam = context::iam().await;
    let mut arns = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let out = call_found(ctx, "ListAttachedRolePolicies", || {
            iam.list_attached_role_policies()
                .role_name(role)
                .set_marker(marker.clone())
                .send()
        })
        .await?;
        let Some(out) = out else {
            return Ok(None);
        };
        arns.extend(
            out.attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(str::to_string)),
        );
        match out.marker() {
            Some(m) if out.is_truncated() => marker = Some(m.to_string()),
            _ => return Ok(Some(arns)),
        }
    }
}

#[async_trait]
impl ResourceProvider for RolePolicyAttachmentProvider {
    kind_basics!(ATTACHMENT_KIND, declare_attachment);

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i: AttachmentInputs = parse(inputs)?;
        let iam = context::iam().await;
        call(
            ctx,
            "AttachRolePolicy",
            // A role made a moment ago may not be visible yet.
            Retry::on(&["NoSuchEntity"], Duration::from_secs(30)),
            || {
                iam.attach_role_policy()
                    .role_name(&i.role)
                    .policy_arn(&i.policy_arn)
                    .send()
            },
        )
        .await?;
        Ok(Created {
            id: format!("{}/{}", i.role, i.policy_arn),
            outputs: json!({"role": i.role, "policy_arn": i.policy_arn}),
        })
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        _inputs: &Value,
        _outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        let (role, arn) = split_attachment(id)?;
        let attached = attached_policies(ctx, role).await?.unwrap_or_default();
        Ok(attached.iter().any(|a| a == arn).then(|| ReadResult {
            id: id.to_string(),
            inputs: json!({"role": role, "policy_arn": arn}),
            outputs: json!({"role": role, "policy_arn": arn}),
        }))
    }

    async fn update(
        &self,
        _ctx: &OpContext,
        _id: &str,
        _old: &Value,
        _new: &Value,
        old_outputs: &Value,
    ) -> Result<Value, ProviderError> {
        Ok(old_outputs.clone())
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _inputs: &Value, _outputs: &Value) -> Result<(), ProviderError> {
        let (role, arn) = split_attachment(id)?;
        let iam = context::iam().await;
        ok_if_gone(
            call0(ctx, "DetachRolePolicy", || {
                iam.detach_role_policy().role_name(role).policy_arn(arn).send()
            })
            .await,
        )
    }

    async fn find(&self, ctx: &OpContext, inputs: &Value) -> Result<Option<Created>, ProviderError> {
        let Ok(i) = parse::<AttachmentInputs>(inputs) else {
            return Ok(None);
        };
        let id = format!("{}/{}", i.role, i.policy_arn);
        Ok(self.read(ctx, &id, inputs, &Value::Null).await?.map(|r| Created {
            id: r.id,
            outputs: r.outputs,
        }))
    }
}

// ---------------------------------------------------------------- RolePolicy

/// An inline policy of a role.
#[derive(Debug, Clone, Serialize)]
pub struct RolePolicy {
    role: Input<String>,
    name: Option<String>,
    policy: Input<PolicyDocument>,
}

impl RolePolicy {
    pub fn new(role: impl Into<Input<String>>, policy: impl Into<Input<PolicyDocument>>) -> Self {
        RolePolicy {
            role: role.into(),
            name: None,
            policy: policy.into(),
        }
    }
    /// Fixes the policy name (default: `<resource name>-<8 hex>`).
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl Handle<RolePolicy> {
    pub fn name(&self) -> Output<String> {
        self.output("name")
    }
}

#[derive(Deserialize)]
struct InlineInputs {
    role: String,
    #[serde(default)]
    name: Option<String>,
    policy: PolicyDocument,
}

provider!(
    /// The provider of `aws:iam:RolePolicy`.
    RolePolicyProvider for RolePolicy (INLINE_KIND),
    Schema::new()
        .replace_on(&["role", "name"])
        .delete_before_replace(true)
);

fn split_inline(id: &str) -> Result<(&str, &str), ProviderError> {
    split_id(id, ':', "an inline policy id", "<role>:<policy name>")
}

async fn put_inline(ctx: &OpContext, role: &str, name: &str, policy: &PolicyDocument) -> Result<(), ProviderError> {
    let iam = context::iam().await;
    call(
        ctx,
        "PutRolePolicy",
        Retry::on(&["NoSuchEntity"], Duration::from_secs(30)),
        || {
            iam.put_role_policy()
                .role_name(role)
                .policy_name(name)
                .policy_document(policy.to_json())
                .send()
        },
    )
    .await?;
    Ok(())
}

#[async_trait]
impl ResourceProvider for RolePolicyProvider {
    kind_basics!(INLINE_KIND, declare_inline);

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i: InlineInputs = parse(inputs)?;
        let name = name_for(ctx, i.name.as_deref(), 128);
        put_inline(ctx, &i.role, &name, &i.policy).await?;
        Ok(Created {
            id: format!("{}:{name}", i.role),
            outputs: json!({"name": name, "role": i.role}),
        })
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        inputs: &Value,
        _outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        let (role, name) = split_inline(id)?;
        let iam = context::iam().await;
        let out = call_found(ctx, "GetRolePolicy", || {
            iam.get_role_policy().role_name(role).policy_name(name).send()
        })
        .await?;
        let Some(out) = out else {
            return Ok(None);
        };
        Ok(Some(ReadResult {
            id: id.to_string(),
            inputs: json!({
                "role": role,
                "name": crate::aws::ec2::unless_unset(inputs, "name", json!(name)),
                "policy": PolicyDocument::parse(out.policy_document())?.canonical(),
            }),
            outputs: json!({"name": name, "role": role}),
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
        let n: InlineInputs = parse(new)?;
        let (role, name) = split_inline(id)?;
        put_inline(ctx, role, name, &n.policy).await?;
        Ok(old_outputs.clone())
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _inputs: &Value, _outputs: &Value) -> Result<(), ProviderError> {
        let (role, name) = split_inline(id)?;
        let iam = context::iam().await;
        ok_if_gone(
            call0(ctx, "DeleteRolePolicy", || {
                iam.delete_role_policy().role_name(role).policy_name(name).send()
            })
            .await,
        )
    }

    async fn find(&self, ctx: &OpContext, inputs: &Value) -> Result<Option<Created>, ProviderError> {
        let Ok(i) = parse::<InlineInputs>(inputs) else {
            return Ok(None);
        };
        let name = name_for(ctx, i.name.as_deref(), 128);
        let id = format!("{}:{name}", i.role);
        Ok(self.read(ctx, &id, inputs, &Value::Null).await?.map(|r| Created {
            id: r.id,
            outputs: r.outputs,
        }))
    }
}

/// `iam::Role::assumed_by_service(service)` (or `Role::new(trust policy)`) with its name,
/// path, description, session length and tags where they differ from the defaults.
fn declare_role(i: &Value) -> Option<Expr> {
    use crate::declaration::{int_at, only_keys, str_at, string};
    if !only_keys(
        i,
        &[
            "name",
            "path",
            "description",
            "assume_role_policy",
            "max_session_duration",
            "tags",
        ],
    ) {
        return None;
    }
    let trust = i.get("assume_role_policy")?;
    let e = match super::document::assumed_by(trust) {
        Some(service) => Expr::new("iam::Role::assumed_by_service", &[string(&service)]),
        None => Expr::new("iam::Role::new", &[super::document::source(trust)?]),
    };
    let path = str_at(i, "path").unwrap_or("/");
    let session = int_at(i, "max_session_duration").unwrap_or(3600);
    e.str_setter(i, "name", "name")?
        .call_if(path != "/", "path", &[string(path)])
        .str_setter(i, "description", "description")?
        .call_if(session != 3600, "max_session_duration", &[session.to_string()])
        .tags(i)
}

/// `iam::RolePolicyAttachment::aws_managed(role, name)` for an AWS managed policy, else
/// `RolePolicyAttachment::new(role, arn)`.
fn declare_attachment(i: &Value) -> Option<Expr> {
    use crate::declaration::{only_keys, str_at, string};
    if !only_keys(i, &["role", "policy_arn"]) {
        return None;
    }
    let role = string(str_at(i, "role")?);
    let arn = str_at(i, "policy_arn")?;
    Some(match arn.strip_prefix("arn:aws:iam::aws:policy/") {
        Some(name) => Expr::new("iam::RolePolicyAttachment::aws_managed", &[role, string(name)]),
        None => Expr::new("iam::RolePolicyAttachment::new", &[role, string(arn)]),
    })
}

/// `iam::RolePolicy::new(role, document)` with its name.
fn declare_inline(i: &Value) -> Option<Expr> {
    use crate::declaration::{only_keys, str_at, string};
    if !only_keys(i, &["role", "name", "policy"]) {
        return None;
    }
    Expr::new(
        "iam::RolePolicy::new",
        &[string(str_at(i, "role")?), super::document::source(i.get("policy")?)?],
    )
    .str_setter(i, "name", "name")
}
