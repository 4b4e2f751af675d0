//! Turns a plan into a graph of steps: one provider call each, with the edges that order
//! them.
//!
//! Rules kept here (A -> B means B waits for A):
//! - a resource's create/update waits for the create/update/replacement of each of its
//!   dependencies;
//! - a delete waits for the deletes of everything that depended on it (reverse order);
//! - create-before-delete replace: create the replacement, then update or replace the
//!   dependents, then delete the old object;
//! - delete-before-replace: delete the old object (after its replaced dependents' old
//!   objects are gone), then create the new one;
//! - a deposed object (left by an interrupted replacement) is deleted after the
//!   dependents of its address have been applied.

use std::collections::HashMap;

use crate::address::Address;
use crate::plan::{Op, Plan};
use crate::state::StepKind;

/// One provider call to make.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub kind: StepKind,
    /// Index into `plan.changes`.
    pub change: usize,
    pub address: Address,
    /// Indices of the steps this one waits for.
    pub after: Vec<usize>,
}

/// The steps of a plan, in an order compatible with their edges.
#[derive(Debug, Clone, Default)]
pub struct StepGraph {
    pub steps: Vec<Step>,
}

impl StepGraph {
    pub fn build(plan: &Plan) -> StepGraph {
        let mut steps: Vec<Step> = Vec::new();
        // The step that makes a resource's new outputs available, by address.
        let mut producer: HashMap<&Address, usize> = HashMap::new();
        // The step that deletes the old object at an address (delete or delete-replaced).
        let mut remover: HashMap<&Address, usize> = HashMap::new();

        let push = |steps: &mut Vec<Step>, kind, change: usize| {
            steps.push(Step {
                kind,
                change,
                address: plan.changes[change].address.clone(),
                after: Vec::new(),
            });
            steps.len() - 1
        };

        for (i, c) in plan.changes.iter().enumerate() {
            match (c.op, c.deposed) {
                (Op::Same | Op::Read, _) => {}
                (Op::Create, _) => {
                    producer.insert(&c.address, push(&mut steps, StepKind::Create, i));
                }
                (Op::Update, _) => {
                    producer.insert(&c.address, push(&mut steps, StepKind::Update, i));
                }
                (Op::Replace, _) if c.delete_before_replace => {
                    let del = push(&mut steps, StepKind::DeleteReplaced, i);
                    let create = push(&mut steps, StepKind::Create, i);
                    steps[create].after.push(del);
                    remover.insert(&c.address, del);
                    producer.insert(&c.address, create);
                }
                (Op::Replace, _) => {
                    let create = push(&mut steps, StepKind::CreateReplacement, i);
                    let del = push(&mut steps, StepKind::DeleteReplaced, i);
                    steps[del].after.push(create);
                    remover.insert(&c.address, del);
                    producer.insert(&c.address, create);
                }
                (Op::Delete, true) => {
                    push(&mut steps, StepKind::DeleteReplaced, i);
                }
                (Op::Delete, false) => {
                    remover.insert(&c.address, push(&mut steps, StepKind::Delete, i));
                }
            }
        }

        // Changes that depend on an address, so each delete looks only at its dependents.
        let mut dependents_of: HashMap<&Address, Vec<usize>> = HashMap::new();
        for (j, c) in plan.changes.iter().enumerate() {
            for d in c.dependencies.iter().chain(&c.previous_dependencies) {
                let list = dependents_of.entry(d).or_default();
                if list.last() != Some(&j) {
                    list.push(j);
                }
            }
        }
        let no_dependents: Vec<usize> = Vec::new();
        let mut edges: Vec<(usize, usize)> = Vec::new();
        for (si, s) in steps.iter().enumerate() {
            let c = &plan.changes[s.change];
            match s.kind {
                StepKind::Create | StepKind::Update | StepKind::CreateReplacement => {
                    for d in &c.dependencies {
                        if let Some(&p) = producer.get(d) {
                            edges.push((p, si));
                        }
                    }
                }
                StepKind::Delete | StepKind::DeleteReplaced if c.deposed => {
                    // The old object goes once everything now at its address is settled
                    // and its dependents have moved to the new one.
                    if let Some(&p) = producer.get(&c.address) {
                        edges.push((p, si));
                    }
                    for &dj in dependents_of.get(&c.address).unwrap_or(&no_dependents) {
                        if let Some(&p) = producer.get(&plan.changes[dj].address) {
                            edges.push((p, si));
                        }
                    }
                }
                StepKind::Delete | StepKind::DeleteReplaced => {
                    // Dependents (old graph for deletes) must be gone, or moved to the
                    // replacement, before the object goes.
                    for &dj in dependents_of.get(&c.address).unwrap_or(&no_dependents) {
                        let dc = &plan.changes[dj];
                        if dj == s.change {
                            continue;
                        }
                        match (s.kind, c.delete_before_replace) {
                            // Delete-before-replace: only replaced dependents' old objects
                            // must go first.
                            (StepKind::DeleteReplaced, true) => {
                                if let Some(&r) = remover.get(&dc.address)
                                    && dc.op == Op::Replace
                                {
                                    edges.push((r, si));
                                }
                            }
                            _ => {
                                if let Some(&r) = remover.get(&dc.address)
                                    && dc.op == Op::Delete
                                {
                                    edges.push((r, si));
                                }
                                if let Some(&p) = producer.get(&dc.address) {
                                    edges.push((p, si));
                                }
                            }
                        }
                    }
                }
            }
        }
        for (from, to) in edges {
            if from != to && !steps[to].after.contains(&from) {
                steps[to].after.push(from);
            }
        }
        StepGraph { steps }
    }

    /// Steps that wait for step `i`, for every `i`.
    pub fn dependents(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.steps.len()];
        for (i, s) in self.steps.iter().enumerate() {
            for &a in &s.after {
                out[a].push(i);
            }
        }
        out
    }
}
