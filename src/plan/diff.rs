//! Computes a [`Plan`] from the desired graph and the state.
//!
//! Rules kept here:
//! - a resource not in state is created; one whose type changed is replaced; otherwise the
//!   kind's `diff` decides between same, update and replace, after `ignore_changes` has
//!   put the ignored properties back to their stored values;
//! - an output reference resolves from state when its source is unchanged, or updated and
//!   the output is not volatile; otherwise it is `(known after apply)`;
//! - an unknown value in a replace-forcing property forces the replacement (the engine
//!   cannot prove it will not change);
//! - resources in state but not in the program are deleted, dependents first; a
//!   protected resource is never planned for delete or replace: the plan fails instead;
//! - `--target` narrows the plan to the targets and what they depend on; `--exclude`
//!   removes the excluded resources and everything that depends on them;
//! - `--replace` makes an existing, declared resource a replacement whatever its diff
//!   says, through the same path as an input-forced one (order, dependents, protection);
//! - a declared resource not in state whose alias is in state is moved from it: its
//!   change carries `moved_from`, its op is what the diff against the moved state says,
//!   and the old address is never planned for delete.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use crate::address::Address;
use crate::graph::DesiredGraph;
use crate::plan::{Change, Op, Plan};
use crate::provider::Registry;
use crate::state::Snapshot;
use crate::value::{self, Path, ResolveError, Resolved};

/// How to plan.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Plan the destruction of everything in state.
    pub destroy: bool,
    /// Only these addresses (or components) and what they depend on.
    pub targets: Vec<String>,
    /// Leave these addresses (or components) and their dependents alone.
    pub excludes: Vec<String>,
    /// Record the program's fingerprint, so the plan can be saved and applied later.
    /// (It hashes the whole desired graph: skipped for plans that are only shown.)
    pub for_saving: bool,
    /// Replace these resources although their inputs did not change (`--replace`).
    pub replace: Vec<String>,
}

/// Why no plan could be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("`{address}` is protected and this plan would {action} it; remove `protect` from its options first")]
    Protected { address: Address, action: &'static str },
    #[error("`{address}`: {source}")]
    Resolve { address: Address, source: ResolveError },
    #[error("`{address}`: {source}")]
    Provider {
        address: Address,
        source: crate::provider::ProviderError,
    },
    #[error("--target `{0}` matches no resource in the program or the state")]
    NoSuchTarget(String),
    #[error(
        "--replace `{0}`: the program declares no resource at that address; give the address of a declared resource (`state list` lists those that exist)"
    )]
    NoSuchReplace(String),
    #[error("--replace `{0}`: it does not exist yet, so there is nothing to replace; this plan creates it")]
    ReplaceNotCreated(String),
    #[error("--replace `{0}` is outside the --target/--exclude scope of this plan; target it too")]
    ReplaceOutOfScope(String),
    #[error(
        "`{address}` and its alias `{alias}` are both in state: it cannot be moved from `{alias}`; `state rm` the one that is stale, or drop the alias"
    )]
    AliasAndAddressInState { address: Address, alias: Address },
    #[error(
        "`{0}` was imported and is protected until the program declares it, so this plan will not delete it; declare it, or `state rm {0}` to forget it (the object stays), or `state unprotect {0}` to let it be deleted"
    )]
    ImportedNotDeclared(Address),
    #[error("lookup `{0}` was not read before planning; plan through a Session, which reads lookups")]
    LookupNotRead(Address),
    #[error(
        "`{address}` has two aliases in state, `{first}` and `{second}`: it can be moved from one only; `state rm` the stale one"
    )]
    TwoAliasesInState {
        address: Address,
        first: Address,
        second: Address,
    },
}

fn matches(address: &Address, patterns: &[String]) -> bool {
    patterns.iter().any(|p| address.is_within(p))
}

/// Which of the resources to delete (`gone`) a targeted run deletes: the targets and,
/// through the dependencies recorded in state, everything that depends on them (a
/// dependent cannot outlive what it uses); minus the excluded and everything they depend
/// on (what is kept keeps what it uses). Without targets, every one not excluded.
fn delete_scope(gone: &[&crate::state::ResourceState], targets: &[String], excludes: &[String]) -> HashSet<Address> {
    let mut scope: HashSet<Address> = gone
        .iter()
        .filter(|r| targets.is_empty() || matches(&r.address, targets))
        .map(|r| r.address.clone())
        .collect();
    loop {
        let before = scope.len();
        for r in gone {
            if !scope.contains(&r.address) && r.dependencies.iter().any(|d| scope.contains(d)) {
                scope.insert(r.address.clone());
            }
        }
        if scope.len() == before {
            break;
        }
    }
    let mut kept: HashSet<Address> = gone
        .iter()
        .filter(|r| matches(&r.address, excludes))
        .map(|r| r.address.clone())
        .collect();
    loop {
        let before = kept.len();
        for r in gone {
            if kept.contains(&r.address) {
                let deps: Vec<Address> = r.dependencies.clone();
                kept.extend(deps);
            }
        }
        if kept.len() == before {
            break;
        }
    }
    scope.retain(|a| !kept.contains(a));
    scope
}

/// What the program's lookups read at plan time, by address.
pub type Reads = BTreeMap<Address, crate::provider::ReadResult>;

/// Plans `graph` against `state` (a program without lookups).
pub fn plan(
    program: &str,
    stack: &str,
    graph: &DesiredGraph,
    state: &Snapshot,
    registry: &Registry,
    opts: &PlanOptions,
) -> Result<Plan, PlanError> {
    plan_with_reads(program, stack, graph, state, registry, opts, &Reads::new())
}

/// Plans `graph` against `state`, with what its lookups read (`Session::read_lookups`).
pub fn plan_with_reads(
    program: &str,
    stack: &str,
    graph: &DesiredGraph,
    state: &Snapshot,
    registry: &Registry,
    opts: &PlanOptions,
    reads: &Reads,
) -> Result<Plan, PlanError> {
    let empty = DesiredGraph::default();
    let desired = if opts.destroy { &empty } else { graph };

    for t in &opts.targets {
        let known =
            desired.resources.iter().any(|r| r.address.is_within(t)) || state.resources.keys().any(|a| a.is_within(t));
        if !known {
            return Err(PlanError::NoSuchTarget(t.clone()));
        }
    }

    // Which desired resources are in scope.
    let in_scope: Option<HashSet<Address>> = (!opts.targets.is_empty()).then(|| {
        let roots: Vec<Address> = desired
            .resources
            .iter()
            .filter(|r| matches(&r.address, &opts.targets))
            .map(|r| r.address.clone())
            .collect();
        desired.with_dependencies(&roots)
    });
    let mut excluded: HashSet<Address> = HashSet::new();
    if !opts.excludes.is_empty() {
        for r in &desired.resources {
            if matches(&r.address, &opts.excludes) || r.dependencies.iter().any(|d| excluded.contains(d)) {
                excluded.insert(r.address.clone());
            }
        }
    }
    let considered = |a: &Address| in_scope.as_ref().is_none_or(|s| s.contains(a)) && !excluded.contains(a);
    let mut forced: HashSet<Address> = HashSet::new();
    for text in &opts.replace {
        let found = text.parse::<Address>().ok().filter(|a| desired.contains(a));
        let Some(a) = found else {
            return Err(PlanError::NoSuchReplace(text.clone()));
        };
        if state.get(&a).is_none() {
            return Err(PlanError::ReplaceNotCreated(text.clone()));
        }
        if !considered(&a) {
            return Err(PlanError::ReplaceOutOfScope(text.clone()));
        }
        forced.insert(a);
    }

    let mut ops: HashMap<Address, Op> = HashMap::with_capacity(desired.len());
    let mut changes: Vec<Change> = Vec::with_capacity(desired.len() + state.resources.len());
    let mut file_modes: BTreeMap<String, Vec<Path>> = BTreeMap::new();

    // Moves: a declared resource not in state takes the state found at one of its aliases.
    let mut moved_from: HashMap<Address, Address> = HashMap::new();
    for r in &desired.resources {
        let mut found: Option<Address> = None;
        for text in &r.options.aliases {
            let Ok(alias) = text.parse::<Address>() else { continue };
            if state.get(&alias).is_none() {
                continue;
            }
            if state.get(&r.address).is_some() {
                return Err(PlanError::AliasAndAddressInState {
                    address: r.address.clone(),
                    alias,
                });
            }
            if let Some(first) = found.replace(alias.clone()) {
                return Err(PlanError::TwoAliasesInState {
                    address: r.address.clone(),
                    first,
                    second: alias,
                });
            }
        }
        if let Some(alias) = found {
            moved_from.insert(r.address.clone(), alias);
        }
    }
    let moved_away: HashSet<Address> = moved_from.values().cloned().collect();

    // Lookups read before planning, as stored resources, for references to resolve from.
    let read_states: HashMap<Address, crate::state::ResourceState> = reads
        .iter()
        .map(|(a, r)| {
            (
                a.clone(),
                crate::state::ResourceState {
                    address: a.clone(),
                    kind: String::new(),
                    id: r.id.clone(),
                    inputs: r.inputs.clone(),
                    outputs: r.outputs.clone(),
                    dependencies: Vec::new(),
                    provider: String::new(),
                    options: Default::default(),
                    unfinished: None,
                },
            )
        })
        .collect();

    for r in &desired.resources {
        if r.lookup {
            let found = reads
                .get(&r.address)
                .ok_or_else(|| PlanError::LookupNotRead(r.address.clone()))?;
            ops.insert(r.address.clone(), Op::Read);
            changes.push(Change {
                notes: Vec::new(),
                address: r.address.clone(),
                kind: r.kind.clone(),
                op: Op::Read,
                id: Some(found.id.clone()),
                before: None,
                after: Some(r.inputs.clone()),
                read: Some(found.outputs.clone()),
                properties: Vec::new(),
                replace_paths: Vec::new(),
                replace_reason: None,
                delete_before_replace: false,
                deposed: false,
                moved_from: None,
                dependencies: r.dependencies.clone(),
                previous_dependencies: Vec::new(),
            });
            continue;
        }
        let moved = moved_from.get(&r.address);
        let old = state.get(&r.address).or_else(|| moved.and_then(|m| state.get(m)));
        if !considered(&r.address) {
            // Out of scope: left as it is; its outputs resolve from state if it exists.
            ops.insert(r.address.clone(), if old.is_some() { Op::Same } else { Op::Create });
            continue;
        }
        let provider = registry.get(&r.kind).map_err(|source| PlanError::Provider {
            address: r.address.clone(),
            source,
        })?;
        let schema = provider.schema();
        let lookup = |a: &Address, path: &str| -> Result<Resolved, ResolveError> {
            lookup_planned(a, path, &ops, state, registry, &moved_from, &read_states)
        };
        let mut after =
            value::resolve(&r.inputs, &lookup, &desired.transforms).map_err(|source| PlanError::Resolve {
                address: r.address.clone(),
                source,
            })?;
        let change = match old {
            None => Change {
                notes: Vec::new(),
                address: r.address.clone(),
                kind: r.kind.clone(),
                op: Op::Create,
                id: None,
                before: None,
                after: Some(after),
                properties: Vec::new(),
                replace_paths: Vec::new(),
                replace_reason: None,
                read: None,
                delete_before_replace: false,
                deposed: false,
                moved_from: None,
                dependencies: r.dependencies.clone(),
                previous_dependencies: Vec::new(),
            },
            Some(old) => {
                value::keep_paths(&mut after, &old.inputs, &r.options.ignore_changes);
                let d = provider.diff(&old.inputs, &after);
                let mut replace_paths = d.replace_paths.clone();
                // An unknown value under a replace-forcing path may change it.
                for c in &d.changes {
                    if c.after.as_ref().is_some_and(value::contains_unknown)
                        && schema.replace_on.iter().any(|p| p.is_prefix_of(&c.path))
                        && !replace_paths.contains(&c.path)
                    {
                        replace_paths.push(c.path.clone());
                    }
                }
                let type_changed = old.kind != r.kind;
                let requested = forced.contains(&r.address);
                let op = if type_changed || requested || !replace_paths.is_empty() {
                    Op::Replace
                } else if d.is_empty() && old.unfinished.is_none() {
                    Op::Same
                } else {
                    Op::Update
                };
                if op == Op::Replace && r.options.protect {
                    return Err(PlanError::Protected {
                        address: r.address.clone(),
                        action: "replace",
                    });
                }
                // An unchanged resource needs no copies of its inputs in the plan.
                let (before, after) = if op == Op::Same {
                    (None, None)
                } else {
                    (Some(old.inputs.clone()), Some(after))
                };
                let notes = match (&old.unfinished, op) {
                    (Some(why), Op::Update) => {
                        vec![format!("the last apply did not see it through ({why}): sent again")]
                    }
                    _ => Vec::new(),
                };
                Change {
                    notes,
                    address: r.address.clone(),
                    kind: r.kind.clone(),
                    op,
                    id: Some(old.id.clone()),
                    before,
                    after,
                    properties: d.changes,
                    replace_paths,
                    read: None,
                    replace_reason: if type_changed {
                        Some(format!("its type changed from {} to {}", old.kind, r.kind))
                    } else if requested {
                        Some("replacement requested with --replace".to_string())
                    } else {
                        None
                    },
                    delete_before_replace: r.options.delete_before_replace.unwrap_or(d.delete_before_replace),
                    deposed: false,
                    moved_from: None,
                    dependencies: r.dependencies.clone(),
                    previous_dependencies: old.dependencies.clone(),
                }
            }
        };
        if change.op != Op::Same && !schema.file_modes.is_empty() && !file_modes.contains_key(&r.kind) {
            file_modes.insert(r.kind.clone(), schema.file_modes.clone());
        }
        let mut change = change;
        change.moved_from = moved.cloned();
        ops.insert(r.address.clone(), change.op);
        changes.push(change);
    }

    propagate_delete_before_replace(&mut changes);

    // Deletes: state resources the program no longer declares, dependents first.
    let gone: Vec<&crate::state::ResourceState> = state
        .resources
        .values()
        // A lookup left in state is forgotten by apply, never deleted.
        .filter(|r| !desired.contains(&r.address) && !moved_away.contains(&r.address) && !r.options.lookup)
        .collect();
    let scope = delete_scope(&gone, &opts.targets, &opts.excludes);
    let gone: Vec<&crate::state::ResourceState> = gone.into_iter().filter(|r| scope.contains(&r.address)).collect();
    for r in reverse_dependency_order(&gone) {
        // An imported object the program has not declared yet is guarded against a program
        // that simply lacks it; `destroy` asks for everything the stack holds, it included.
        if r.options.imported {
            if !opts.destroy {
                return Err(PlanError::ImportedNotDeclared(r.address.clone()));
            }
        } else if r.options.protect {
            return Err(PlanError::Protected {
                address: r.address.clone(),
                action: "delete",
            });
        }
        changes.push(Change {
            notes: Vec::new(),
            address: r.address.clone(),
            kind: r.kind.clone(),
            op: Op::Delete,
            id: Some(r.id.clone()),
            before: Some(r.inputs.clone()),
            after: None,
            properties: Vec::new(),
            replace_paths: Vec::new(),
            replace_reason: None,
            read: None,
            delete_before_replace: false,
            deposed: false,
            moved_from: None,
            dependencies: r.dependencies.clone(),
            previous_dependencies: Vec::new(),
        });
    }
    let deposed_scope =
        |a: &Address| (opts.targets.is_empty() || matches(a, &opts.targets)) && !matches(a, &opts.excludes);
    for d in state.deposed.iter().filter(|d| deposed_scope(&d.address)) {
        changes.push(Change {
            notes: Vec::new(),
            address: d.address.clone(),
            kind: d.kind.clone(),
            op: Op::Delete,
            id: Some(d.id.clone()),
            before: Some(d.inputs.clone()),
            after: None,
            properties: Vec::new(),
            replace_paths: Vec::new(),
            replace_reason: None,
            read: None,
            delete_before_replace: false,
            deposed: true,
            moved_from: None,
            dependencies: Vec::new(),
            previous_dependencies: Vec::new(),
        });
    }

    let lookup = |a: &Address, path: &str| -> Result<Resolved, ResolveError> {
        lookup_planned(a, path, &ops, state, registry, &moved_from, &read_states)
    };
    let mut outputs = std::collections::BTreeMap::new();
    let mut outputs_changed = Vec::new();
    for (name, v) in &desired.outputs {
        let resolved = value::resolve(v, &lookup, &desired.transforms).unwrap_or_else(|_| value::unknown());
        // An output not known yet changes only if it is new: otherwise it follows a
        // resource change the plan already shows.
        let known = !value::contains_unknown(&resolved);
        if match state.outputs.get(name) {
            None => true,
            Some(old) => known && *old != resolved,
        } {
            outputs_changed.push(name.clone());
        }
        outputs.insert(name.clone(), resolved);
    }
    outputs_changed.extend(
        state
            .outputs
            .keys()
            .filter(|k| !desired.outputs.contains_key(*k))
            .cloned(),
    );

    let mut warnings = Vec::new();
    for p in &state.pending {
        warnings.push(format!(
            "an interrupted run left a {} of `{}` unfinished (started {}); `apply` checks whether the object exists before acting",
            p.step, p.address, p.started
        ));
    }

    Ok(Plan {
        program: program.to_string(),
        stack: stack.to_string(),
        changes,
        outputs,
        pending: state.pending.clone(),
        warnings,
        base_state: state.fingerprint(),
        program_fingerprint: if opts.for_saving {
            graph.fingerprint()
        } else {
            String::new()
        },
        destroy: opts.destroy,
        outputs_changed,
        file_modes,
    })
}

fn lookup_planned(
    a: &Address,
    path: &str,
    ops: &HashMap<Address, Op>,
    state: &Snapshot,
    registry: &Registry,
    moved_from: &HashMap<Address, Address>,
    read_states: &HashMap<Address, crate::state::ResourceState>,
) -> Result<Resolved, ResolveError> {
    let op = ops.get(a).copied().unwrap_or(Op::Create);
    if op == Op::Read {
        return match read_states.get(a) {
            Some(r) => resolve_from_state(r, a, path),
            None => Ok(Resolved::Unknown),
        };
    }
    // A moved resource's outputs are in state at its old address until apply moves them.
    let Some(r) = state.get(a).or_else(|| moved_from.get(a).and_then(|m| state.get(m))) else {
        return Ok(Resolved::Unknown);
    };
    match op {
        Op::Create | Op::Replace | Op::Delete | Op::Read => return Ok(Resolved::Unknown),
        Op::Update => {
            let p = Path::parse(path);
            let volatile = registry
                .get(&r.kind)
                .map(|k| {
                    k.schema()
                        .volatile_outputs
                        .iter()
                        .any(|v| v.is_prefix_of(&p) || p.is_prefix_of(v))
                })
                .unwrap_or(true);
            if volatile {
                return Ok(Resolved::Unknown);
            }
        }
        Op::Same => {}
    }
    resolve_from_state(r, a, path)
}

/// The value of `path` in a stored resource (`$id` is its id).
pub fn resolve_from_state(r: &crate::state::ResourceState, a: &Address, path: &str) -> Result<Resolved, ResolveError> {
    if path == "$id" {
        return Ok(Resolved::Known(Value::String(r.id.clone())));
    }
    value::get_path(&r.outputs, &Path::parse(path))
        .cloned()
        .map(Resolved::Known)
        .ok_or_else(|| ResolveError::MissingOutput {
            address: a.clone(),
            path: path.to_string(),
        })
}

/// A replaced resource deleted first forces its replaced dependents to go first too,
/// or the old dependent would still hold the object being deleted.
fn propagate_delete_before_replace(changes: &mut [Change]) {
    let mut dbr: HashSet<Address> = HashSet::new();
    for c in changes.iter_mut() {
        if c.op != Op::Replace {
            continue;
        }
        if c.dependencies.iter().any(|d| dbr.contains(d)) {
            c.delete_before_replace = true;
        }
        if c.delete_before_replace {
            dbr.insert(c.address.clone());
        }
    }
}

/// Orders stored resources so that each comes before everything it depends on.
fn reverse_dependency_order<'a>(rs: &[&'a crate::state::ResourceState]) -> Vec<&'a crate::state::ResourceState> {
    let index: HashMap<&Address, usize> = rs.iter().enumerate().map(|(i, r)| (&r.address, i)).collect();
    // dependents[i] = resources (in the set) that depend on i
    let mut remaining_dependents = vec![0usize; rs.len()];
    for r in rs {
        for d in &r.dependencies {
            if let Some(&j) = index.get(d) {
                remaining_dependents[j] += 1;
            }
        }
    }
    let mut ready: std::collections::BTreeSet<(Address, usize)> = (0..rs.len())
        .filter(|&i| remaining_dependents[i] == 0)
        .map(|i| (rs[i].address.clone(), i))
        .collect();
    let mut out = Vec::with_capacity(rs.len());
    let mut placed = vec![false; rs.len()];
    while let Some(first) = ready.pop_first() {
        let i = first.1;
        placed[i] = true;
        out.push(rs[i]);
        for d in &rs[i].dependencies {
            if let Some(&j) = index.get(d) {
                remaining_dependents[j] -= 1;
                if remaining_dependents[j] == 0 {
                    ready.insert((rs[j].address.clone(), j));
                }
            }
        }
    }
    // A cycle in stored dependencies cannot come from a valid program; keep the rest in
    // address order rather than dropping them.
    out.extend((0..rs.len()).filter(|&i| !placed[i]).map(|i| rs[i]));
    out
}
