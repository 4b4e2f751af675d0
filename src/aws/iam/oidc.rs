//! `aws:iam:OpenIdConnectProvider`: an IAM OIDC identity provider (IRSA's trust anchor).
//!
//! Rules kept here: the id is the ARN; the URL forces a replacement; client ids and
//! thumbprints change in place (Add/RemoveClientID, UpdateThumbprint), as do tags; the URL
//! is stored with its `https://` scheme, as users write it (IAM returns it without);
//! `find` lists the account's providers and adopts the one with this address's tag.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{from_tags, owned, plain_tags, tags};
use crate::aws::call::{call_found, call0, ok_if_gone};
use crate::aws::context;
use crate::aws::ec2::parse;
use crate::aws::lifecycle::{kind_basics, provider};
use crate::aws::tags::apply_changes;
use crate::declaration::Expr;
use crate::model::{Handle, Input, Output};
use crate::provider::{Created, OpContext, ProviderError, ReadResult, ResourceProvider, Schema};

pub const KIND: &str = "aws:iam:OpenIdConnectProvider";

/// An OIDC provider for `url` (an EKS cluster's issuer), trusted by `sts.amazonaws.com`.
#[derive(Debug, Clone, Serialize)]
pub struct OpenIdConnectProvider {
    url: Input<String>,
    client_ids: Vec<String>,
    thumbprints: Vec<String>,
    tags: BTreeMap<String, Input<String>>,
}

impl OpenIdConnectProvider {
    pub fn new(url: impl Into<Input<String>>) -> Self {
        OpenIdConnectProvider {
            url: url.into(),
            client_ids: vec!["sts.amazonaws.com".into()],
            thumbprints: Vec::new(),
            tags: BTreeMap::new(),
        }
    }
    /// Replaces the audiences (default `sts.amazonaws.com`).
    pub fn client_ids(mut self, ids: &[&str]) -> Self {
        self.client_ids = ids.iter().map(|s| s.to_string()).collect();
        self
    }
    pub fn thumbprint(mut self, sha1_hex: &str) -> Self {
        self.thumbprints.push(sha1_hex.into());
        self
    }
    pub fn tag(mut self, key: &str, value: impl Into<Input<String>>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }
}

impl Handle<OpenIdConnectProvider> {
    pub fn arn(&self) -> Output<String> {
        self.output("arn")
    }
    /// The issuer without its scheme, as trust-policy condition keys use it.
    pub fn issuer_host_path(&self) -> Output<String> {
        self.output("issuer")
    }
}

#[derive(Deserialize)]
struct OidcInputs {
    url: String,
    #[serde(default)]
    client_ids: Vec<String>,
    #[serde(default)]
    thumbprints: Vec<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

provider!(
    /// The provider of `aws:iam:OpenIdConnectProvider`.
    OpenIdConnectProviderProvider for OpenIdConnectProvider (KIND),
    Schema::new().replace_on(&["url"])
);

fn host_path(url: &str) -> &str {
    url.strip_prefix("https://").unwrap_or(url)
}

fn outputs(arn: &str, url: &str) -> Value {
    json!({"arn": arn, "issuer": host_path(url)})
}

#[async_trait]
impl ResourceProvider for OpenIdConnectProviderProvider {
    kind_basics!(KIND, declare);

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i: OidcInputs = parse(inputs)?;
        if !i.url.starts_with("https://") {
            return Err(ProviderError::msg(format!(
                "url \"{}\" must start with https://",
                i.url
            )));
        }
        let iam = context::iam().await;
        let out = call0(ctx, "CreateOpenIDConnectProvider", || {
            iam.create_open_id_connect_provider()
                .url(&i.url)
                .set_client_id_list(Some(i.client_ids.clone()))
                .set_thumbprint_list((!i.thumbprints.is_empty()).then(|| i.thumbprints.clone()))
                .set_tags(Some(tags(&i.tags, ctx)))
                .send()
        })
        .await?;
        let arn = out.open_id_connect_provider_arn().unwrap_or_default().to_string();
        Ok(Created {
            outputs: outputs(&arn, &i.url),
            id: arn,
        })
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        _inputs: &Value,
        _outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        let iam = context::iam().await;
        let out = call_found(ctx, "GetOpenIDConnectProvider", || {
            iam.get_open_id_connect_provider()
                .open_id_connect_provider_arn(id)
                .send()
        })
        .await?;
        let Some(p) = out else {
            return Ok(None);
        };
        let url = format!("https://{}", host_path(p.url().unwrap_or_default()));
        Ok(Some(ReadResult {
            id: id.to_string(),
            inputs: json!({
                "url": url,
                "client_ids": p.client_id_list(),
                "thumbprints": p.thumbprint_list(),
                "tags": from_tags(p.tags()),
            }),
            outputs: outputs(id, &url),
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
        let o: OidcInputs = parse(old)?;
        let n: OidcInputs = parse(new)?;
        let iam = context::iam().await;
        for c in n.client_ids.iter().filter(|c| !o.client_ids.contains(c)) {
            call0(ctx, "AddClientIDToOpenIDConnectProvider", || {
                iam.add_client_id_to_open_id_connect_provider()
                    .open_id_connect_provider_arn(id)
                    .client_id(c)
                    .send()
            })
            .await?;
        }
        for c in o.client_ids.iter().filter(|c| !n.client_ids.contains(c)) {
            call0(ctx, "RemoveClientIDFromOpenIDConnectProvider", || {
                iam.remove_client_id_from_open_id_connect_provider()
                    .open_id_connect_provider_arn(id)
                    .client_id(c)
                    .send()
            })
            .await?;
        }
        if o.thumbprints != n.thumbprints {
            call0(ctx, "UpdateOpenIDConnectProviderThumbprint", || {
                iam.update_open_id_connect_provider_thumbprint()
                    .open_id_connect_provider_arn(id)
                    .set_thumbprint_list(Some(n.thumbprints.clone()))
                    .send()
            })
            .await?;
        }
        apply_changes(
            ctx,
            &o.tags,
            &n.tags,
            ("UntagOpenIDConnectProvider", |keys| {
                iam.untag_open_id_connect_provider()
                    .open_id_connect_provider_arn(id)
                    .set_tag_keys(Some(keys))
                    .send()
            }),
            ("TagOpenIDConnectProvider", |set| {
                iam.tag_open_id_connect_provider()
                    .open_id_connect_provider_arn(id)
                    .set_tags(Some(plain_tags(set)))
                    .send()
            }),
        )
        .await?;
        Ok(old_outputs.clone())
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _inputs: &Value, _outputs: &Value) -> Result<(), ProviderError> {
        let iam = context::iam().await;
        ok_if_gone(
            call0(ctx, "DeleteOpenIDConnectProvider", || {
                iam.delete_open_id_connect_provider()
                    .open_id_connect_provider_arn(id)
                    .send()
            })
            .await,
        )
    }

    async fn find(&self, ctx: &OpContext, _inputs: &Value) -> Result<Option<Created>, ProviderError> {
        let iam = context::iam().await;
        let list = call0(ctx, "ListOpenIDConnectProviders", || {
            iam.list_open_id_connect_providers().send()
        })
        .await?;
        for arn in list.open_id_connect_provider_list().iter().filter_map(|p| p.arn()) {
            let p = call_found(ctx, "GetOpenIDConnectProvider", || {
                iam.get_open_id_connect_provider()
                    .open_id_connect_provider_arn(arn)
                    .send()
            })
            .await?;
            if let Some(p) = p
                && owned(ctx, p.tags())
            {
                let url = format!("https://{}", host_path(p.url().unwrap_or_default()));
                return Ok(Some(Created {
                    id: arn.to_string(),
                    outputs: outputs(arn, &url),
                }));
            }
        }
        Ok(None)
    }
}

/// `iam::OpenIdConnectProvider::new(url)` with its audiences (when not just
/// `sts.amazonaws.com`), thumbprints and tags.
fn declare(i: &Value) -> Option<Expr> {
    use crate::declaration::{only_keys, str_at, str_slice, string, strs_at};
    if !only_keys(i, &["url", "client_ids", "thumbprints", "tags"]) {
        return None;
    }
    let clients = strs_at(i, "client_ids")?;
    let mut e = Expr::new("iam::OpenIdConnectProvider::new", &[string(str_at(i, "url")?)]).call_if(
        clients != ["sts.amazonaws.com"],
        "client_ids",
        &[str_slice(&clients)],
    );
    for t in strs_at(i, "thumbprints")? {
        e = e.call("thumbprint", &[string(t)]);
    }
    e.tags(i)
}
