//! Lookups of existing AWS objects (data sources): the query builders a program writes
//! (`Vpc::lookup().tag("Name", "main")`) and the filters they become.
//!
//! Rules kept here: a query names the object by id, or by tags and the kind's other
//! filters (all must match); every field is optional but a query with none is refused
//! (it would match everything); the matching ids are what the kind's `lookup` returns,
//! and the engine reads the one match as an import would.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;

use aws_sdk_ec2::types::Filter;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{Input, Lookup};
use crate::provider::{OpContext, ProviderError, ReadResult, ResourceProvider};

/// A query for EC2 objects of kind `R` (`Vpc`, `Subnet`, `SecurityGroup`).
#[derive(Serialize)]
pub struct Ec2Lookup<R> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<Input<String>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    tags: BTreeMap<String, Input<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vpc_id: Option<Input<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<Input<String>>,
    #[serde(skip)]
    _kind: PhantomData<fn() -> R>,
    #[serde(skip)]
    provider: Option<(String, Arc<dyn ResourceProvider>)>,
}

impl<R> Ec2Lookup<R> {
    pub(crate) fn for_kind(kind: &str, provider: Arc<dyn ResourceProvider>) -> Self {
        Ec2Lookup {
            id: None,
            tags: BTreeMap::new(),
            vpc_id: None,
            name: None,
            _kind: PhantomData,
            provider: Some((kind.to_string(), provider)),
        }
    }

    /// The object with this id (`vpc-...`, `subnet-...`, `sg-...`).
    pub fn id(mut self, id: impl Into<Input<String>>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Objects carrying the tag `key` = `value`; repeatable (all must match).
    pub fn tag(mut self, key: &str, value: impl Into<Input<String>>) -> Self {
        self.tags.insert(key.to_string(), value.into());
        self
    }

    /// Objects in this VPC (subnets, security groups).
    pub fn vpc_id(mut self, vpc: impl Into<Input<String>>) -> Self {
        self.vpc_id = Some(vpc.into());
        self
    }

    /// The security group with this name (`group-name`).
    pub fn name(mut self, name: impl Into<Input<String>>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl<R> Lookup for Ec2Lookup<R> {
    type Resource = R;
    fn kind(&self) -> String {
        self.provider.as_ref().map(|p| p.0.clone()).unwrap_or_default()
    }
    fn provider(&self) -> Arc<dyn ResourceProvider> {
        self.provider.as_ref().expect("built by for_kind").1.clone()
    }
}

/// A query as the engine hands it over, every reference resolved.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Ec2Query {
    pub id: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub vpc_id: Option<String>,
    pub name: Option<String>,
}

impl Ec2Query {
    pub(crate) fn parse(query: &Value, kind: &str) -> Result<Self, ProviderError> {
        let q: Ec2Query =
            serde_json::from_value(query.clone()).map_err(|e| ProviderError::Failed(format!("{kind} lookup: {e}")))?;
        if q.id.is_none() && q.tags.is_empty() && q.vpc_id.is_none() && q.name.is_none() {
            return Err(ProviderError::Failed(format!(
                "{kind} lookup: give an id, tags or another filter; an empty query would match everything"
            )));
        }
        Ok(q)
    }

    /// The DescribeX filters: `tag:K`, plus `vpc-id` and `group-name` where given.
    pub(crate) fn filters(&self) -> Vec<Filter> {
        let mut f: Vec<Filter> = self
            .tags
            .iter()
            .map(|(k, v)| Filter::builder().name(format!("tag:{k}")).values(v).build())
            .collect();
        if let Some(v) = &self.vpc_id {
            f.push(Filter::builder().name("vpc-id").values(v).build());
        }
        if let Some(n) = &self.name {
            f.push(Filter::builder().name("group-name").values(n).build());
        }
        f
    }
}

/// A query for an object known by name (an EKS cluster, an IAM role).
#[derive(Serialize)]
pub struct NamedLookup<R> {
    name: Input<String>,
    #[serde(skip)]
    _kind: PhantomData<fn() -> R>,
    #[serde(skip)]
    provider: Option<(String, Arc<dyn ResourceProvider>)>,
}

impl<R> NamedLookup<R> {
    pub(crate) fn for_kind(kind: &str, provider: Arc<dyn ResourceProvider>, name: Input<String>) -> Self {
        NamedLookup {
            name,
            _kind: PhantomData,
            provider: Some((kind.to_string(), provider)),
        }
    }
}

impl<R> Lookup for NamedLookup<R> {
    type Resource = R;
    fn kind(&self) -> String {
        self.provider.as_ref().map(|p| p.0.clone()).unwrap_or_default()
    }
    fn provider(&self) -> Arc<dyn ResourceProvider> {
        self.provider.as_ref().expect("built by for_kind").1.clone()
    }
}

/// The name of a [`NamedLookup`] query.
pub(crate) fn query_name(query: &Value, kind: &str) -> Result<String, ProviderError> {
    query["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .map(String::from)
        .ok_or_else(|| ProviderError::Failed(format!("{kind} lookup: give the name")))
}

/// The cluster and member names of a query for something of an EKS cluster (a node group,
/// an add-on): `cluster_name` and `member_key`, both required.
pub(crate) fn cluster_member(
    query: &Value,
    kind: &str,
    member_key: &str,
    member: &str,
) -> Result<(String, String), ProviderError> {
    let field = |k: &str| query[k].as_str().filter(|v| !v.is_empty()).map(String::from);
    match (field("cluster_name"), field(member_key)) {
        (Some(cluster), Some(name)) => Ok((cluster, name)),
        _ => Err(ProviderError::InvalidInput(format!(
            "{kind} lookup: give the cluster name and the {member} name"
        ))),
    }
}

/// Reads each matching id as an import would (inputs and outputs `null`); an object gone
/// between the listing and the read is not a match.
pub(crate) async fn read_each<P: ResourceProvider + ?Sized>(
    provider: &P,
    ctx: &OpContext,
    ids: Vec<String>,
) -> Result<Vec<ReadResult>, ProviderError> {
    let mut found = Vec::new();
    for id in ids {
        if let Some(r) = provider.read(ctx, &id, &Value::Null, &Value::Null).await? {
            found.push(r);
        }
    }
    Ok(found)
}
