//! `aws:iam:InstanceProfile`: an instance profile holding (at most) one role.
//!
//! Rules kept here: the name and path force a replacement (deleting first: names are
//! unique); the role changes in place (RemoveRoleFromInstanceProfile, then
//! AddRoleToInstanceProfile); tags change in place; the delete removes the role from the
//! profile first (IAM refuses to delete a profile that holds a role); the id is the name.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{from_tags, name_for, owned, plain_tags, tags};
use crate::aws::call::{Retry, call, call_found, call0, ok_if_gone};
use crate::aws::context;
use crate::aws::ec2::{parse, unless_unset};
use crate::aws::lifecycle::{IfCancelled, created_or_undone, kind_basics, provider, still_listed, wait_gone};
use crate::aws::tags::apply_changes;
use crate::declaration::Expr;
use crate::model::{Handle, Input, Output};
use crate::provider::{Created, OpContext, ProviderError, ReadResult, ResourceProvider, Schema};

pub const KIND: &str = "aws:iam:InstanceProfile";

/// An instance profile for `role` (a role name).
#[derive(Debug, Clone, Serialize)]
pub struct InstanceProfile {
    name: Option<Input<String>>,
    path: String,
    role: Option<Input<String>>,
    tags: BTreeMap<String, Input<String>>,
}

impl InstanceProfile {
    pub fn new(role: impl Into<Input<String>>) -> Self {
        InstanceProfile {
            name: None,
            path: "/".into(),
            role: Some(role.into()),
            tags: BTreeMap::new(),
        }
    }
    /// Fixes the profile name (default: `<resource name>-<8 hex>`).
    pub fn name(mut self, name: impl Into<Input<String>>) -> Self {
        self.name = Some(name.into());
        self
    }
    pub fn path(mut self, path: &str) -> Self {
        self.path = path.into();
        self
    }
    pub fn tag(mut self, key: &str, value: impl Into<Input<String>>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }
}

impl Handle<InstanceProfile> {
    pub fn name(&self) -> Output<String> {
        self.output("name")
    }
    pub fn arn(&self) -> Output<String> {
        self.output("arn")
    }
}

#[derive(Deserialize)]
struct ProfileInputs {
    #[serde(default)]
    name: Option<String>,
    #[serde(default = "root")]
    path: String,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

fn root() -> String {
    "/".into()
}

provider!(
    /// The provider of `aws:iam:InstanceProfile`.
    InstanceProfileProvider for InstanceProfile (KIND),
    Schema::new()
        .replace_on(&["name", "path"])
        .delete_before_replace(true)
);

async fn get(ctx: &OpContext, name: &str) -> Result<Option<aws_sdk_iam::types::InstanceProfile>, ProviderError> {
    let iam = context::iam().await;
    let out = call_found(ctx, "GetInstanceProfile", || {
        iam.get_instance_profile().instance_profile_name(name).send()
    })
    .await?;
    Ok(out.and_then(|o| o.instance_profile().cloned()))
}

fn outputs(p: &aws_sdk_iam::types::InstanceProfile) -> Value {
    json!({"name": p.instance_profile_name(), "arn": p.arn(), "unique_id": p.instance_profile_id()})
}

async fn add_role(ctx: &OpContext, name: &str, role: &str) -> Result<(), ProviderError> {
    let iam = context::iam().await;
    call(
        ctx,
        "AddRoleToInstanceProfile",
        Retry::on(&["NoSuchEntity"], Duration::from_secs(30)),
        || {
            iam.add_role_to_instance_profile()
                .instance_profile_name(name)
                .role_name(role)
                .send()
        },
    )
    .await?;
    Ok(())
}

async fn remove_role(ctx: &OpContext, name: &str, role: &str) -> Result<(), ProviderError> {
    let iam = context::iam().await;
    ok_if_gone(
        call0(ctx, "RemoveRoleFromInstanceProfile", || {
            iam.remove_role_from_instance_profile()
                .instance_profile_name(name)
                .role_name(role)
                .send()
        })
        .await,
    )
}

#[async_trait]
impl ResourceProvider for InstanceProfileProvider {
    kind_basics!(KIND, declare);

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i: ProfileInputs = parse(inputs)?;
        let name = name_for(ctx, i.name.as_deref(), 128);
        let iam = context::iam().await;
        let out = call0(ctx, "CreateInstanceProfile", || {
            iam.create_instance_profile()
                .instance_profile_name(&name)
                .path(&i.path)
                .set_tags(Some(tags(&i.tags, ctx)))
                .send()
        })
        .await?;
        let profile = out
            .instance_profile()
            .cloned()
            .ok_or_else(|| ProviderError::msg("CreateInstanceProfile: IAM returned no profile"))?;
        let finish = async {
            if let Some(role) = &i.role {
                add_role(ctx, &name, role).await?;
            }
            Ok(outputs(&profile))
        };
        let made = finish.await;
        created_or_undone(self, ctx, inputs, name, made, IfCancelled::Undo).await
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        inputs: &Value,
        _outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        Ok(get(ctx, id).await?.map(|p| ReadResult {
            id: id.to_string(),
            inputs: json!({
                "name": unless_unset(inputs, "name", json!(p.instance_profile_name())),
                "path": p.path(),
                "role": p.roles().first().map(|r| r.role_name()),
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
        old_outputs: &Value,
    ) -> Result<Value, ProviderError> {
        let o: ProfileInputs = parse(old)?;
        let n: ProfileInputs = parse(new)?;
        if o.role != n.role {
            if let Some(p) = get(ctx, id).await? {
                for r in p.roles() {
                    remove_role(ctx, id, r.role_name()).await?;
                }
            }
            if let Some(role) = &n.role {
                add_role(ctx, id, role).await?;
            }
        }
        let iam = context::iam().await;
        apply_changes(
            ctx,
            &o.tags,
            &n.tags,
            ("UntagInstanceProfile", |keys| {
                iam.untag_instance_profile()
                    .instance_profile_name(id)
                    .set_tag_keys(Some(keys))
                    .send()
            }),
            ("TagInstanceProfile", |set| {
                iam.tag_instance_profile()
                    .instance_profile_name(id)
                    .set_tags(Some(plain_tags(set)))
                    .send()
            }),
        )
        .await?;
        Ok(old_outputs.clone())
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _inputs: &Value, _outputs: &Value) -> Result<(), ProviderError> {
        let Some(p) = get(ctx, id).await? else {
            return Ok(());
        };
        for r in p.roles() {
            remove_role(ctx, id, r.role_name()).await?;
        }
        let iam = context::iam().await;
        ok_if_gone(
            call0(ctx, "DeleteInstanceProfile", || {
                iam.delete_instance_profile().instance_profile_name(id).send()
            })
            .await,
        )?;
        let wait = Duration::from_secs(120);
        wait_gone(
            ctx,
            "the instance profile to be deleted",
            wait,
            || get(ctx, id),
            still_listed,
        )
        .await
    }

    async fn find(&self, ctx: &OpContext, inputs: &Value) -> Result<Option<Created>, ProviderError> {
        let name = name_for(ctx, inputs.get("name").and_then(Value::as_str), 128);
        Ok(get(ctx, &name)
            .await?
            .filter(|p| owned(ctx, p.tags()))
            .map(|p| Created {
                id: name,
                outputs: outputs(&p),
            }))
    }
}

/// `iam::InstanceProfile::new(role)` with its name, path and tags (a profile without a role
/// has no builder).
fn declare(i: &Value) -> Option<Expr> {
    use crate::declaration::{only_keys, str_at, string};
    if !only_keys(i, &["name", "path", "role", "tags"]) {
        return None;
    }
    let path = str_at(i, "path").unwrap_or("/");
    Expr::new("iam::InstanceProfile::new", &[string(str_at(i, "role")?)])
        .str_setter(i, "name", "name")?
        .call_if(path != "/", "path", &[string(path)])
        .tags(i)
}
