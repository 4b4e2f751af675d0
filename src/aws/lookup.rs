//! Lookups of existing AWS objects (data sources): the query builders a program writes
//! (`Vpc::lookup().tag("Name", "main")`) and the filters they become.
//!
//! Rules kept here: a query names objects by id (`id`, or a list in `ids`), or by tags and
//! the kind's other filters (all must match); every field is optional but a query with none
//! is refused (it would match everything); `id` and `ids` together are refused; an empty
//! `ids` list matches nothing and makes no call (EC2's Describe calls answer everything for
//! an empty id list); an id that does not exist is AWS's error, not an empty answer. A
//! kind's `lookup` returns every match (set lookups may match zero, one or many), each
//! exactly as the kind's `read` would read it for an import; the VPC filter is named per
//! API ([`Ec2Query::filters_with`]).

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;

use aws_sdk_ec2::types::Filter;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{Input, Lookup};
use crate::provider::{OpContext, ProviderError, ReadResult, ResourceProvider};

/// A query for EC2 objects of kind `R` (`Vpc`, `Subnet`, `SecurityGroup`, `RouteTable`,
/// `Route`, `InternetGateway`, `NatGateway`, ...).
#[derive(Serialize)]
pub struct Ec2Lookup<R> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<Input<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ids: Option<Input<Vec<String>>>,
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
            ids: None,
            tags: BTreeMap::new(),
            vpc_id: None,
            name: None,
            _kind: PhantomData,
            provider: Some((kind.to_string(), provider)),
        }
    }

    /// The object with this id (`vpc-...`, `subnet-...`, `sg-...`). Not together with
    /// [`ids`](Self::ids).
    pub fn id(mut self, id: impl Into<Input<String>>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// The objects with these ids (another resource's id list, say); an empty list
    /// matches nothing. Not together with [`id`](Self::id).
    pub fn ids(mut self, ids: impl Into<Input<Vec<String>>>) -> Self {
        self.ids = Some(ids.into());
        self
    }

    /// Objects carrying the tag `key` = `value`; repeatable (all must match).
    pub fn tag(mut self, key: &str, value: impl Into<Input<String>>) -> Self {
        self.tags.insert(key.to_string(), value.into());
        self
    }

    /// Objects in this VPC (subnets, security groups, route tables, gateways, endpoints).
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
    pub ids: Option<Vec<String>>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub vpc_id: Option<String>,
    pub name: Option<String>,
}

impl Ec2Query {
    pub(crate) fn parse(query: &Value, kind: &str) -> Result<Self, ProviderError> {
        let q: Ec2Query =
            serde_json::from_value(query.clone()).map_err(|e| ProviderError::Failed(format!("{kind} lookup: {e}")))?;
        if q.id.is_none() && q.ids.is_none() && q.tags.is_empty() && q.vpc_id.is_none() && q.name.is_none() {
            return Err(ProviderError::Failed(format!(
                "{kind} lookup: give an id, tags or another filter; an empty query would match everything"
            )));
        }
        if q.id.is_some() && q.ids.is_some() {
            return Err(ProviderError::InvalidInput(format!(
                "{kind} lookup: give `id` or `ids`, not both"
            )));
        }
        Ok(q)
    }

    /// Refuses a query using one of `fields` (`vpc_id`, `name`): filters this kind's
    /// Describe call does not have, which AWS would refuse less clearly.
    /// The query of a lookup of `kind`, which has no `unfit` filters (refused, naming
    /// them); `None` when it matches nothing (an empty `ids` list), so the lookup answers
    /// without a call.
    pub(crate) fn for_lookup(query: &Value, kind: &str, unfit: &[&str]) -> Result<Option<Self>, ProviderError> {
        let q = Self::parse(query, kind)?;
        q.refuse(kind, unfit)?;
        Ok((!q.matches_nothing()).then_some(q))
    }

    pub(crate) fn refuse(&self, kind: &str, fields: &[&str]) -> Result<(), ProviderError> {
        let given = |f: &str| match f {
            "vpc_id" => self.vpc_id.is_some(),
            "name" => self.name.is_some(),
            _ => false,
        };
        match fields.iter().find(|f| given(f)) {
            Some(f) => Err(ProviderError::InvalidInput(format!(
                "{kind} lookup: `{f}` is not a filter of this kind"
            ))),
            None => Ok(()),
        }
    }

    /// The ids the query names (`id` or `ids`), for the Describe call's id list; `None` when
    /// it names none.
    pub(crate) fn object_ids(&self) -> Option<Vec<String>> {
        match (&self.id, &self.ids) {
            (Some(id), _) => Some(vec![id.clone()]),
            (None, ids) => ids.clone(),
        }
    }

    /// True when the query is an empty `ids` list: it matches nothing, and no call may be
    /// made for it (a Describe call with no ids answers every object).
    pub(crate) fn matches_nothing(&self) -> bool {
        self.ids.as_ref().is_some_and(Vec::is_empty)
    }

    /// The DescribeX filters of the VPC, subnet and security group lookups: those of
    /// [`filters_with`](Self::filters_with) with the VPC filter `vpc-id`.
    pub(crate) fn filters(&self) -> Vec<Filter> {
        self.filters_with("vpc-id")
    }

    /// The DescribeX filters: `tag:K`, plus `group-name` and the VPC filter named
    /// `vpc_filter` (`vpc-id` for most calls, `attachment.vpc-id` for internet gateways)
    /// where given.
    pub(crate) fn filters_with(&self, vpc_filter: &str) -> Vec<Filter> {
        let mut f: Vec<Filter> = self
            .tags
            .iter()
            .map(|(k, v)| Filter::builder().name(format!("tag:{k}")).values(v).build())
            .collect();
        if let Some(v) = &self.vpc_id {
            f.push(Filter::builder().name(vpc_filter).values(v).build());
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

#[cfg(test)]
mod tests {
    use super::Ec2Query;
    use crate::provider::ProviderError;
    use serde_json::json;

    fn filter_names(q: &Ec2Query, vpc_filter: &str) -> Vec<String> {
        q.filters_with(vpc_filter)
            .iter()
            .map(|f| f.name().unwrap_or_default().to_string())
            .collect()
    }

    #[test]
    fn ids_and_the_vpc_filter() {
        let q = Ec2Query::parse(&json!({"ids": []}), "k").unwrap();
        assert!(q.matches_nothing());
        assert_eq!(q.object_ids(), Some(vec![]));
        let q = Ec2Query::parse(&json!({"id": "a"}), "k").unwrap();
        assert!(!q.matches_nothing());
        assert_eq!(q.object_ids(), Some(vec!["a".to_string()]));
        let err = Ec2Query::parse(&json!({"id": "a", "ids": ["a"]}), "k").unwrap_err();
        assert_eq!(
            err,
            ProviderError::InvalidInput("k lookup: give `id` or `ids`, not both".into())
        );
        assert!(Ec2Query::parse(&json!({}), "k").is_err());

        let q = Ec2Query::parse(&json!({"vpc_id": "vpc-1", "tags": {"a": "b"}}), "k").unwrap();
        assert_eq!(q.object_ids(), None);
        assert_eq!(filter_names(&q, "attachment.vpc-id"), ["tag:a", "attachment.vpc-id"]);
        assert_eq!(filter_names(&q, "vpc-id"), ["tag:a", "vpc-id"]);
        assert!(matches!(
            q.refuse("k", &["vpc_id"]),
            Err(ProviderError::InvalidInput(_))
        ));
        assert!(q.refuse("k", &["name"]).is_ok());
    }

    #[test]
    fn a_lookup_query_matching_nothing_needs_no_call_and_an_unfit_filter_is_refused() {
        let none = Ec2Query::for_lookup(&json!({"ids": []}), "aws:ec2:Subnet", &["name"]).unwrap();
        assert!(none.is_none());
        let some = Ec2Query::for_lookup(&json!({"vpc_id": "vpc-1"}), "aws:ec2:Subnet", &["name"]).unwrap();
        assert!(some.is_some());
        // A subnet has no group name: sent, it would be a filter DescribeSubnets rejects.
        let err = Ec2Query::for_lookup(&json!({"name": "x"}), "aws:ec2:Subnet", &["name"]).unwrap_err();
        assert!(matches!(err, ProviderError::InvalidInput(m) if m.contains("name")));
    }
}
