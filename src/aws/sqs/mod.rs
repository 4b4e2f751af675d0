//! `aws:sqs:Queue`: a standard SQS queue (Karpenter's interruption queue).
//!
//! Rules kept here: the id is the queue URL; the name forces a replacement, deleting first
//! (names are unique; AWS also refuses a name deleted less than 60 s ago, which the create
//! retries within its budget); retention, visibility timeout, managed SSE and the typed
//! access policy change in place (SetQueueAttributes); tags go in CreateQueue itself, with
//! `spar:address` and `spar:stack`, and change in place; an attribute the user left unset
//! reads back as unset, so AWS's default is never drift; `find` looks the name up and adopts
//! the queue only when it carries this address's and this stack's tags.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::QueueAttributeName;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::aws::call::{Retry, call, call_found, call0};
use crate::aws::context;
use crate::aws::ec2::{parse, unless_unset};
use crate::aws::iam::PolicyDocument;
use crate::aws::lifecycle::{kind_basics, provider, still_listed, wait_gone};
use crate::aws::tags::{apply_changes, owned_by, unique_name, user_tags, with_owner};
use crate::declaration::Expr;
use crate::model::{Handle, Input, Output};
use crate::provider::{Created, OpContext, ProviderError, ReadResult, ResourceProvider, Schema};

pub const KIND: &str = "aws:sqs:Queue";

/// Adds the SQS kinds to `registry`.
pub fn register(registry: &mut crate::provider::Registry) {
    registry.register(Arc::new(QueueProvider::new()));
}

/// A standard queue.
#[derive(Debug, Clone, Serialize)]
pub struct Queue {
    name: Option<Input<String>>,
    message_retention_seconds: Option<i32>,
    visibility_timeout_seconds: Option<i32>,
    sqs_managed_sse: bool,
    policy: Option<Input<PolicyDocument>>,
    tags: BTreeMap<String, Input<String>>,
}

impl Queue {
    /// A queue with SQS-managed encryption on.
    pub fn new() -> Self {
        Queue {
            name: None,
            message_retention_seconds: None,
            visibility_timeout_seconds: None,
            sqs_managed_sse: true,
            policy: None,
            tags: BTreeMap::new(),
        }
    }
    /// Fixes the queue name (default: `<resource name>-<8 hex>`).
    pub fn name(mut self, name: impl Into<Input<String>>) -> Self {
        self.name = Some(name.into());
        self
    }
    pub fn message_retention_seconds(mut self, s: i32) -> Self {
        self.message_retention_seconds = Some(s);
        self
    }
    pub fn visibility_timeout_seconds(mut self, s: i32) -> Self {
        self.visibility_timeout_seconds = Some(s);
        self
    }
    pub fn sqs_managed_sse(mut self, yes: bool) -> Self {
        self.sqs_managed_sse = yes;
        self
    }
    pub fn policy(mut self, policy: impl Into<Input<PolicyDocument>>) -> Self {
        self.policy = Some(policy.into());
        self
    }
    pub fn tag(mut self, key: &str, value: impl Into<Input<String>>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }
}

impl Default for Queue {
    fn default() -> Self {
        Self::new()
    }
}

impl Handle<Queue> {
    pub fn url(&self) -> Output<String> {
        self.output("url")
    }
    pub fn arn(&self) -> Output<String> {
        self.output("arn")
    }
    pub fn name(&self) -> Output<String> {
        self.output("name")
    }
}

#[derive(Deserialize)]
struct QueueInputs {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    message_retention_seconds: Option<i32>,
    #[serde(default)]
    visibility_timeout_seconds: Option<i32>,
    #[serde(default)]
    sqs_managed_sse: bool,
    #[serde(default)]
    policy: Option<PolicyDocument>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

impl QueueInputs {
    /// The attributes to set; with `clearing`, the unset policy is set to empty.
    fn attributes(&self, clearing: bool) -> HashMap<QueueAttributeName, String> {
        let mut a = HashMap::new();
        if let Some(s) = self.message_retention_seconds {
            a.insert(QueueAttributeName::MessageRetentionPeriod, s.to_string());
        }
        if let Some(s) = self.visibility_timeout_seconds {
            a.insert(QueueAttributeName::VisibilityTimeout, s.to_string());
        }
        a.insert(
            QueueAttributeName::SqsManagedSseEnabled,
            self.sqs_managed_sse.to_string(),
        );
        match &self.policy {
            Some(p) => {
                a.insert(QueueAttributeName::Policy, p.to_json());
            }
            None if clearing => {
                a.insert(QueueAttributeName::Policy, String::new());
            }
            None => {}
        }
        a
    }
}

provider!(
    /// The provider of `aws:sqs:Queue`.
    QueueProvider for Queue (KIND),
    Schema::new()
        .replace_on(&["name"])
        .delete_before_replace(true)
);

fn queue_name(ctx: &OpContext, user: Option<&str>) -> String {
    match user {
        Some(n) => n.to_string(),
        None => unique_name(ctx, None, 80, |c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
    }
}

fn name_of(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

async fn attributes(ctx: &OpContext, url: &str) -> Result<Option<HashMap<QueueAttributeName, String>>, ProviderError> {
    let sqs = &context::clients().await.sqs;
    let out = call_found(ctx, "GetQueueAttributes", || {
        sqs.get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::All)
            .send()
    })
    .await?;
    Ok(out.map(|o| o.attributes().cloned().unwrap_or_default()))
}

async fn queue_tags(ctx: &OpContext, url: &str) -> Result<HashMap<String, String>, ProviderError> {
    let sqs = &context::clients().await.sqs;
    let out = call0(ctx, "ListQueueTags", || sqs.list_queue_tags().queue_url(url).send()).await?;
    Ok(out.tags().cloned().unwrap_or_default())
}

fn outputs(url: &str, attrs: &HashMap<QueueAttributeName, String>) -> Value {
    json!({
        "url": url,
        "name": name_of(url),
        "arn": attrs.get(&QueueAttributeName::QueueArn),
    })
}

#[async_trait]
impl ResourceProvider for QueueProvider {
    kind_basics!(KIND, declare);

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i: QueueInputs = parse(inputs)?;
        let name = queue_name(ctx, i.name.as_deref());
        let sqs = &context::clients().await.sqs;
        let tags: HashMap<String, String> = with_owner(&i.tags, ctx).into_iter().collect();
        let out = call(
            ctx,
            "CreateQueue",
            // A queue of this name deleted less than 60 s ago.
            Retry::on(
                &["AWS.SimpleQueueService.QueueDeletedRecently", "QueueDeletedRecently"],
                Duration::from_secs(90),
            ),
            || {
                sqs.create_queue()
                    .queue_name(&name)
                    .set_attributes(Some(i.attributes(false)))
                    .set_tags(Some(tags.clone()))
                    .send()
            },
        )
        .await?;
        let url = out.queue_url().unwrap_or_default().to_string();
        let attrs = attributes(ctx, &url).await?.unwrap_or_default();
        Ok(Created {
            outputs: outputs(&url, &attrs),
            id: url,
        })
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        inputs: &Value,
        _outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        let Some(attrs) = attributes(ctx, id).await? else {
            return Ok(None);
        };
        let tags = queue_tags(ctx, id).await?;
        let int = |k: &QueueAttributeName| attrs.get(k).and_then(|v| v.parse::<i32>().ok());
        let policy = match attrs.get(&QueueAttributeName::Policy).filter(|p| !p.is_empty()) {
            Some(p) => PolicyDocument::parse(p)?.canonical(),
            None => Value::Null,
        };
        Ok(Some(ReadResult {
            id: id.to_string(),
            inputs: json!({
                "name": unless_unset(inputs, "name", json!(name_of(id))),
                "message_retention_seconds": unless_unset(inputs, "message_retention_seconds", json!(int(&QueueAttributeName::MessageRetentionPeriod))),
                "visibility_timeout_seconds": unless_unset(inputs, "visibility_timeout_seconds", json!(int(&QueueAttributeName::VisibilityTimeout))),
                "sqs_managed_sse": attrs.get(&QueueAttributeName::SqsManagedSseEnabled).is_some_and(|v| v == "true"),
                "policy": policy,
                "tags": user_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            }),
            outputs: outputs(id, &attrs),
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
        let o: QueueInputs = parse(old)?;
        let n: QueueInputs = parse(new)?;
        let sqs = &context::clients().await.sqs;
        let mut attrs = n.attributes(o.policy.is_some());
        // Unset values go back to AWS's defaults.
        if n.message_retention_seconds.is_none() && o.message_retention_seconds.is_some() {
            attrs.insert(QueueAttributeName::MessageRetentionPeriod, "345600".into());
        }
        if n.visibility_timeout_seconds.is_none() && o.visibility_timeout_seconds.is_some() {
            attrs.insert(QueueAttributeName::VisibilityTimeout, "30".into());
        }
        call0(ctx, "SetQueueAttributes", || {
            sqs.set_queue_attributes()
                .queue_url(id)
                .set_attributes(Some(attrs.clone()))
                .send()
        })
        .await?;
        apply_changes(
            ctx,
            &o.tags,
            &n.tags,
            ("UntagQueue", |keys| {
                sqs.untag_queue().queue_url(id).set_tag_keys(Some(keys)).send()
            }),
            ("TagQueue", |set| {
                sqs.tag_queue()
                    .queue_url(id)
                    .set_tags(Some(set.clone().into_iter().collect()))
                    .send()
            }),
        )
        .await?;
        Ok(old_outputs.clone())
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _inputs: &Value, _outputs: &Value) -> Result<(), ProviderError> {
        let sqs = &context::clients().await.sqs;
        call_found(ctx, "DeleteQueue", || sqs.delete_queue().queue_url(id).send()).await?;
        let wait = Duration::from_secs(120);
        wait_gone(
            ctx,
            "the queue to be deleted",
            wait,
            || attributes(ctx, id),
            still_listed,
        )
        .await
    }

    async fn find(&self, ctx: &OpContext, inputs: &Value) -> Result<Option<Created>, ProviderError> {
        let name = queue_name(ctx, inputs.get("name").and_then(Value::as_str));
        let sqs = &context::clients().await.sqs;
        let Some(out) = call_found(ctx, "GetQueueUrl", || sqs.get_queue_url().queue_name(&name).send()).await? else {
            return Ok(None);
        };
        let url = out.queue_url().unwrap_or_default().to_string();
        let tags = queue_tags(ctx, &url).await?;
        if !owned_by(ctx, |k| tags.get(k).map(String::as_str)) {
            return Ok(None);
        }
        let attrs = attributes(ctx, &url).await?.unwrap_or_default();
        Ok(Some(Created {
            outputs: outputs(&url, &attrs),
            id: url,
        }))
    }
}

/// `sqs::Queue::new()` with its name, retention and visibility, SSE when off, policy and
/// tags.
fn declare(i: &Value) -> Option<Expr> {
    use crate::declaration::{bool_at, int_at, only_keys};
    if !only_keys(
        i,
        &[
            "name",
            "message_retention_seconds",
            "visibility_timeout_seconds",
            "sqs_managed_sse",
            "policy",
            "tags",
        ],
    ) {
        return None;
    }
    let mut e = Expr::new("sqs::Queue::new", &[]).str_setter(i, "name", "name")?;
    for key in ["message_retention_seconds", "visibility_timeout_seconds"] {
        match i.get(key) {
            None | Some(Value::Null) => {}
            Some(_) => e = e.call(key, &[int_at(i, key)?.to_string()]),
        }
    }
    e = e.call_if(
        !bool_at(i, "sqs_managed_sse", true)?,
        "sqs_managed_sse",
        &["false".into()],
    );
    if let Some(p) = i.get("policy").filter(|p| !p.is_null()) {
        e = e.call("policy", &[crate::aws::iam::document::source(p)?]);
    }
    e.tags(i)
}
