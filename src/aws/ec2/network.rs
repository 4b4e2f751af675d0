//! Lookups of a whole existing VPC's network (one made by eksctl, Terraform or the
//! console), for the network analysis to answer questions about it when planning.
//!
//! Rules kept here: the VPC is one lookup (it must exist); its subnets, route tables,
//! routes, associations, internet and NAT gateways, endpoints, security groups and their
//! rules are set lookups filtered by the VPC's id (each may find none); every kind is
//! read as its `read` reads it, so [`crate::analysis::network::VpcModel::from_reads`]
//! models exactly what the cloud holds. Nothing looked up is ever managed.

use crate::Stack;
use crate::address::Address;
use crate::model::checks::LookedUp;
use crate::model::{Input, Lookup, Output};
use crate::provider::ReadResult;

use super::{
    InternetGateway, NatGateway, Route, RouteTable, RouteTableAssociation, SecurityGroup, SecurityGroupRule, Subnet,
    Vpc, VpcEndpoint,
};

/// The lookups [`VpcNetwork::lookup`] declared: the VPC's and each set's address.
#[derive(Debug, Clone)]
pub struct VpcNetwork {
    pub vpc: Address,
    /// Each set lookup, with the kind it reads.
    pub sets: Vec<(&'static str, Address)>,
}

impl VpcNetwork {
    /// Declares, in the current component, the lookups of the network of the VPC `vpc_id`
    /// (a looked-up cluster's `vpc_id`, say): `vpc`, and the sets `subnets`,
    /// `route-tables`, `routes`, `route-table-associations`, `internet-gateways`,
    /// `nat-gateways`, `vpc-endpoints`, `security-groups`, `security-group-rules`.
    pub fn lookup(s: &mut Stack, vpc_id: Output<String>) -> crate::Result<VpcNetwork> {
        let id = || Input::from(vpc_id.clone());
        let vpc = s.lookup("vpc", Vpc::lookup().id(id()))?.address().clone();
        let sets = vec![
            set_of(s, "subnets", super::subnet::KIND, Subnet::lookup().vpc_id(id()))?,
            set_of(
                s,
                "route-tables",
                super::route::TABLE_KIND,
                RouteTable::lookup().vpc_id(id()),
            )?,
            set_of(s, "routes", super::route::ROUTE_KIND, Route::lookup().vpc_id(id()))?,
            set_of(
                s,
                "route-table-associations",
                super::route::ASSOCIATION_KIND,
                RouteTableAssociation::lookup().vpc_id(id()),
            )?,
            set_of(
                s,
                "internet-gateways",
                super::gateway::IGW_KIND,
                InternetGateway::lookup().vpc_id(id()),
            )?,
            set_of(
                s,
                "nat-gateways",
                super::gateway::NAT_KIND,
                NatGateway::lookup().vpc_id(id()),
            )?,
            set_of(
                s,
                "vpc-endpoints",
                super::endpoint::KIND,
                VpcEndpoint::lookup().vpc_id(id()),
            )?,
            set_of(
                s,
                "security-groups",
                super::security_group::GROUP_KIND,
                SecurityGroup::lookup().vpc_id(id()),
            )?,
            set_of(
                s,
                "security-group-rules",
                super::security_group::RULE_KIND,
                SecurityGroupRule::lookup().vpc_id(id()),
            )?,
        ];
        Ok(VpcNetwork { vpc, sets })
    }

    /// Every object the lookups read, with its kind (what
    /// [`crate::analysis::network::VpcModel::from_reads`] takes).
    pub fn reads(&self, read: &LookedUp<'_>) -> Vec<(&'static str, ReadResult)> {
        let mut out: Vec<(&'static str, ReadResult)> = read
            .read(&self.vpc)
            .map(|r| (super::vpc::KIND, r.clone()))
            .into_iter()
            .collect();
        for (kind, address) in &self.sets {
            out.extend(read.items(address).into_iter().map(|r| (*kind, r)));
        }
        out
    }
}

/// Declares the set lookup `name` of `query`, with the kind it reads.
fn set_of<L: Lookup>(
    s: &mut Stack,
    name: &str,
    kind: &'static str,
    query: L,
) -> crate::Result<(&'static str, Address)> {
    Ok((kind, s.lookup_all(name, query)?.address().clone()))
}
