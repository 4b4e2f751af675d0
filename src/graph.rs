//! The desired graph: every resource a program declares, with its dependency edges.
//!
//! Rules kept here: every problem is reported, not only the first (`GraphError::Many`);
//! addresses are unique; every reference points at a declared resource;
//! an alias is an address no resource is declared at, claimed by one resource only;
//! the graph is acyclic, and a cycle is reported as the addresses that form it, in order;
//! `resources` is kept in a topological order (dependencies first, ties broken by
//! declaration order), which every later stage relies on.

use std::collections::{BTreeMap, HashMap, HashSet};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::address::Address;
use crate::model::options::ResourceOptions;
use crate::value::{self, Transform};

/// One declared resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredResource {
    pub address: Address,
    pub kind: String,
    /// Inputs as JSON; may hold output references and secret markers.
    pub inputs: Value,
    /// Shared: most resources have the default options, which are then one allocation for
    /// the whole graph rather than 128 bytes in every resource.
    pub options: std::sync::Arc<ResourceOptions>,
    /// Referenced resources and `depends_on`, sorted, without repeats.
    pub dependencies: Vec<Address>,
    /// A lookup (data source): `inputs` are its query; it is read, never managed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lookup: bool,
    /// A set lookup (with `lookup`): every match is read, none or many; its outputs are
    /// `count`, `ids` and `items` (each match's outputs, in id order).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lookup_all: bool,
}

impl DesiredResource {
    pub fn new(address: Address, kind: String, inputs: Value, options: ResourceOptions) -> Self {
        let mut deps = Vec::new();
        value::collect_refs(&inputs, &mut deps);
        deps.extend(options.depends_on.iter().cloned());
        deps.sort();
        deps.dedup();
        DesiredResource {
            address,
            kind,
            inputs,
            options: shared_options(options),
            dependencies: deps,
            lookup: false,
            lookup_all: false,
        }
    }
}

/// `options` behind an `Arc`, the default ones shared by every resource that has them.
fn shared_options(options: ResourceOptions) -> std::sync::Arc<ResourceOptions> {
    static DEFAULT: std::sync::OnceLock<std::sync::Arc<ResourceOptions>> = std::sync::OnceLock::new();
    if options == ResourceOptions::default() {
        DEFAULT.get_or_init(Default::default).clone()
    } else {
        std::sync::Arc::new(options)
    }
}

/// Why a program's graph is not valid.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GraphError {
    #[error("two resources are declared at address `{0}`; give one of them another name")]
    Duplicate(Address),
    #[error("`{address}` references `{missing}`, which the program does not declare")]
    Dangling { address: Address, missing: Address },
    #[error("dependency cycle: {}; break it by removing one of these references", format_cycle(.0))]
    Cycle(Vec<Address>),
    #[error("stack output `{output}` references `{missing}`, which the program does not declare")]
    DanglingOutput { output: String, missing: Address },
    #[error("`{address}` has the alias `{alias}`, which is not an address ({reason})")]
    BadAlias {
        address: Address,
        alias: String,
        reason: String,
    },
    #[error(
        "`{address}` has the alias `{alias}`, but the program still declares `{alias}`; an alias names an address the program no longer uses"
    )]
    AliasDeclared { address: Address, alias: Address },
    #[error("`{first}` and `{second}` both have the alias `{alias}`; one old address can move to one new address only")]
    AliasClaimedTwice {
        alias: Address,
        first: Address,
        second: Address,
    },
    /// Every problem of a program with several, so that one run names them all.
    #[error("{} problems in the program: {}", .0.len(), format_many(.0))]
    Many(Vec<GraphError>),
}

fn format_many(errors: &[GraphError]) -> String {
    errors
        .iter()
        .enumerate()
        .map(|(i, e)| format!("({}) {e}", i + 1))
        .collect::<Vec<_>>()
        .join("; ")
}

impl GraphError {
    /// One error for `errors`: the only one, or [`GraphError::Many`].
    pub fn all(mut errors: Vec<GraphError>) -> Result<(), GraphError> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(GraphError::Many(errors)),
        }
    }
}

fn format_cycle(c: &[Address]) -> String {
    let mut parts: Vec<&str> = c.iter().map(Address::as_str).collect();
    if let Some(first) = c.first() {
        parts.push(first.as_str());
    }
    parts.join(" -> ")
}

/// A validated desired graph.
#[derive(Clone, Default)]
pub struct DesiredGraph {
    /// In topological order.
    pub resources: Vec<DesiredResource>,
    index: HashMap<Address, usize>,
    /// Stack outputs (may hold output references).
    pub outputs: BTreeMap<String, Value>,
    /// The program's output transforms, indexed by the references in inputs.
    pub transforms: Vec<Transform>,
}

impl std::fmt::Debug for DesiredGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DesiredGraph")
            .field("resources", &self.resources)
            .field("outputs", &self.outputs)
            .field("transforms", &self.transforms.len())
            .finish()
    }
}

impl DesiredGraph {
    /// Validates `resources` and orders them topologically.
    pub fn build(
        resources: Vec<DesiredResource>,
        outputs: BTreeMap<String, Value>,
        transforms: Vec<Transform>,
    ) -> Result<Self, GraphError> {
        // Every problem is collected, so a program with several is told of all at once.
        let mut errors = Vec::new();
        let mut index: HashMap<Address, usize> = HashMap::with_capacity(resources.len());
        for (i, r) in resources.iter().enumerate() {
            if index.contains_key(&r.address) {
                errors.push(GraphError::Duplicate(r.address.clone()));
            } else {
                index.insert(r.address.clone(), i);
            }
        }
        let mut claimed: HashMap<Address, Address> = HashMap::new();
        for r in &resources {
            for text in &r.options.aliases {
                let alias: Address = match text.parse() {
                    Ok(a) => a,
                    Err(e) => {
                        errors.push(GraphError::BadAlias {
                            address: r.address.clone(),
                            alias: text.clone(),
                            reason: format!("{e}"),
                        });
                        continue;
                    }
                };
                if index.contains_key(&alias) {
                    errors.push(GraphError::AliasDeclared {
                        address: r.address.clone(),
                        alias,
                    });
                    continue;
                }
                if let Some(first) = claimed.insert(alias.clone(), r.address.clone())
                    && first != r.address
                {
                    errors.push(GraphError::AliasClaimedTwice {
                        alias,
                        first,
                        second: r.address.clone(),
                    });
                }
            }
        }
        let mut g: DiGraph<usize, ()> = DiGraph::with_capacity(resources.len(), resources.len());
        let nodes: Vec<NodeIndex> = (0..resources.len()).map(|i| g.add_node(i)).collect();
        for (i, r) in resources.iter().enumerate() {
            for d in &r.dependencies {
                let Some(&j) = index.get(d) else {
                    errors.push(GraphError::Dangling {
                        address: r.address.clone(),
                        missing: d.clone(),
                    });
                    continue;
                };
                g.add_edge(nodes[j], nodes[i], ());
            }
        }
        for (name, v) in &outputs {
            let mut refs = Vec::new();
            value::collect_refs(v, &mut refs);
            if let Some(missing) = refs.into_iter().find(|a| !index.contains_key(a)) {
                errors.push(GraphError::DanglingOutput {
                    output: name.clone(),
                    missing,
                });
            }
        }
        let order = match topo_order(&g, &resources) {
            Ok(order) => order,
            Err(cycle) => {
                errors.push(cycle);
                Vec::new()
            }
        };
        GraphError::all(errors)?;
        let mut slots: Vec<Option<DesiredResource>> = resources.into_iter().map(Some).collect();
        let resources: Vec<DesiredResource> = order
            .iter()
            .map(|&i| slots[i].take().expect("each index once"))
            .collect();
        let index = resources
            .iter()
            .enumerate()
            .map(|(i, r)| (r.address.clone(), i))
            .collect();
        Ok(DesiredGraph {
            resources,
            index,
            outputs,
            transforms,
        })
    }

    pub fn get(&self, address: &Address) -> Option<&DesiredResource> {
        self.index.get(address).map(|&i| &self.resources[i])
    }

    pub fn contains(&self, address: &Address) -> bool {
        self.index.contains_key(address)
    }

    pub fn len(&self) -> usize {
        self.resources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    /// A digest of everything the program declared, so a saved plan can tell whether the
    /// program changed since.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for r in &self.resources {
            h.update(serde_json::to_vec(r).expect("resources serialize"));
            h.update(b"\n");
        }
        h.update(serde_json::to_vec(&self.outputs).expect("outputs serialize"));
        hex::encode(h.finalize())
    }

    /// The addresses in `targets` plus everything they depend on, transitively.
    pub fn with_dependencies(&self, targets: &[Address]) -> HashSet<Address> {
        let mut seen = HashSet::new();
        let mut stack: Vec<Address> = targets.to_vec();
        while let Some(a) = stack.pop() {
            if !seen.insert(a.clone()) {
                continue;
            }
            if let Some(r) = self.get(&a) {
                stack.extend(r.dependencies.iter().cloned());
            }
        }
        seen
    }
}

/// Kahn's algorithm, ties broken by declaration order; on failure, finds a cycle to report.
fn topo_order(g: &DiGraph<usize, ()>, resources: &[DesiredResource]) -> Result<Vec<usize>, GraphError> {
    let n = g.node_count();
    let mut indegree: Vec<usize> = vec![0; n];
    for e in g.raw_edges() {
        indegree[e.target().index()] += 1;
    }
    let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> =
        (0..n).filter(|&i| indegree[i] == 0).map(std::cmp::Reverse).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(std::cmp::Reverse(i)) = ready.pop() {
        order.push(i);
        for next in g.neighbors(NodeIndex::new(i)) {
            let j = next.index();
            indegree[j] -= 1;
            if indegree[j] == 0 {
                ready.push(std::cmp::Reverse(j));
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    Err(GraphError::Cycle(find_cycle(g, resources)))
}

fn find_cycle(g: &DiGraph<usize, ()>, resources: &[DesiredResource]) -> Vec<Address> {
    for scc in tarjan_scc(g) {
        let members: HashSet<NodeIndex> = scc.iter().copied().collect();
        let start = *scc.iter().min().expect("an scc is not empty");
        let self_loop = g.contains_edge(start, start);
        if scc.len() == 1 && !self_loop {
            continue;
        }
        // Walk inside the component until a node repeats: that walk's tail is a cycle.
        let mut path = vec![start];
        let mut pos: HashMap<NodeIndex, usize> = HashMap::from([(start, 0)]);
        let mut cur = start;
        loop {
            let next = g
                .neighbors(cur)
                .filter(|n| members.contains(n))
                .min()
                .expect("every node of a cyclic component has a successor inside it");
            if let Some(&at) = pos.get(&next) {
                return path[at..]
                    .iter()
                    .map(|n| resources[n.index()].address.clone())
                    .collect();
            }
            pos.insert(next, path.len());
            path.push(next);
            cur = next;
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn res(name: &str, deps: &[&str]) -> DesiredResource {
        let mut o = ResourceOptions::default();
        for d in deps {
            o = o.depends_on(&d.parse().unwrap());
        }
        DesiredResource::new(name.parse().unwrap(), "test:R".into(), json!({}), o)
    }

    #[test]
    fn orders_dependencies_first() {
        let g = DesiredGraph::build(
            vec![res("c", &["b"]), res("b", &["a"]), res("a", &[])],
            Default::default(),
            vec![],
        )
        .unwrap();
        let names: Vec<&str> = g.resources.iter().map(|r| r.address.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn reports_the_cycle() {
        let err = DesiredGraph::build(
            vec![res("a", &["c"]), res("b", &["a"]), res("c", &["b"]), res("d", &[])],
            Default::default(),
            vec![],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "dependency cycle: a -> b -> c -> a; break it by removing one of these references"
        );
    }

    #[test]
    fn names_dangling_and_duplicates() {
        let err = DesiredGraph::build(vec![res("a", &["zz"])], Default::default(), vec![]).unwrap_err();
        assert!(err.to_string().contains("`a` references `zz`"));
        let err = DesiredGraph::build(vec![res("a", &[]), res("a", &[])], Default::default(), vec![]).unwrap_err();
        assert!(matches!(err, GraphError::Duplicate(_)));
    }
}
