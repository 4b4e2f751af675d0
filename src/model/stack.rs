//! The `Stack` builder: what a program's `define` function writes into.
//!
//! Rules kept here: every resource gets its address from the current component path and
//! its name, and a second resource at the same address is an error naming it, reported
//! with every other problem of the program when it is finished; a resource's
//! dependencies are the resources its inputs reference plus its `depends_on`; output
//! transforms are numbered in declaration order, so the same program always yields the
//! same desired graph.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::address::Address;
use crate::error::Error;
use crate::graph::{DesiredGraph, DesiredResource, GraphError};
use crate::model::checks::{self, Check, LookedUp, LookupCheck, StackCommand};
use crate::model::config::StackConfig;
use crate::model::options::ResourceOptions;
use crate::model::output::recording_transforms;
use crate::model::{Component, Handle, Resource};
use crate::provider::Registry;
use crate::value::{self, Transform};

/// A stack under construction.
/// What a declaration adds: a managed resource, a lookup of one object, or of a set.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Declared {
    Resource,
    Lookup,
    LookupAll,
}

pub struct Stack {
    program: String,
    name: String,
    config: StackConfig,
    path: Vec<String>,
    /// For each level of `path`, the name that component had before, if it was renamed.
    path_aliases: Vec<Option<String>>,
    resources: Vec<DesiredResource>,
    seen: HashSet<Address>,
    transforms: Vec<Transform>,
    outputs: BTreeMap<String, Value>,
    registry: Registry,
    checks: Vec<Check>,
    commands: Vec<StackCommand>,
    lookup_checks: Vec<LookupCheck>,
    /// Problems found while declaring (a second resource at an address), reported with
    /// the graph's own by [`Stack::into_program`], so one run names every mistake.
    errors: Vec<GraphError>,
}

/// A finished program: its validated graph, kinds, checks and commands.
pub struct Program {
    pub graph: DesiredGraph,
    pub registry: Registry,
    pub checks: Vec<Check>,
    pub commands: Vec<StackCommand>,
    /// Checks run when planning, on what the lookups read.
    pub lookup_checks: Vec<LookupCheck>,
}

impl Stack {
    /// A new stack for `program` (the stack crate) named `name` (`dev`, `prod`, ...).
    pub fn new(program: &str, name: &str, config: StackConfig) -> Self {
        Stack {
            program: program.to_string(),
            name: name.to_string(),
            config,
            path: Vec::new(),
            path_aliases: Vec::new(),
            resources: Vec::new(),
            seen: HashSet::new(),
            transforms: Vec::new(),
            outputs: BTreeMap::new(),
            registry: Registry::builtin(),
            checks: Vec::new(),
            commands: Vec::new(),
            lookup_checks: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// The program (stack crate) name.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// The stack name selected with `--stack`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole configuration file as `T`.
    pub fn config<T: DeserializeOwned>(&self) -> crate::Result<T> {
        Ok(self.config.get()?)
    }

    /// The configuration table at `key` as `T`.
    pub fn config_section<T: DeserializeOwned>(&self, key: &str) -> crate::Result<T> {
        Ok(self.config.section(key)?)
    }

    /// An error about the configuration value at `key` (naming the stack's config file),
    /// for values a program validates itself.
    pub fn config_error(&self, key: &str, message: impl Into<String>) -> Error {
        crate::model::config::ConfigError::Invalid {
            file: self.config.file().to_path_buf(),
            key: key.to_string(),
            message: message.into(),
        }
        .into()
    }

    /// Declares a resource named `name` in the current component.
    pub fn add<R: Resource>(&mut self, name: &str, resource: R) -> crate::Result<Handle<R>> {
        self.add_with(name, resource, ResourceOptions::default())
    }

    /// Declares a resource with options.
    pub fn add_with<R: Resource>(
        &mut self,
        name: &str,
        resource: R,
        mut options: ResourceOptions,
    ) -> crate::Result<Handle<R>> {
        for old in self.component_aliases(name) {
            if !options.aliases.contains(&old) {
                options.aliases.push(old);
            }
        }
        self.declare(
            name,
            &resource,
            resource.kind(),
            || resource.provider(),
            options,
            Declared::Resource,
        )
    }

    /// Declares a lookup named `name` in the current component: the existing object its
    /// query matches (exactly one, or the plan fails naming it) is read on every plan and
    /// its outputs are the handle's, as a created resource's would be. The plan shows it
    /// as `<= read`; it is never created, changed or deleted.
    pub fn lookup<L: crate::model::Lookup>(&mut self, name: &str, query: L) -> crate::Result<Handle<L::Resource>> {
        self.declare(
            name,
            &query,
            query.kind(),
            || query.provider(),
            ResourceOptions::default(),
            Declared::Lookup,
        )
    }

    /// Declares a set lookup named `name`: every existing object its query matches (none,
    /// one or many) is read on every plan. The handle gives their `ids` and `items` (each
    /// one's outputs, in id order); a check over the lookups sees each
    /// object ([`crate::model::checks::LookedUp::items`]). Like [`Stack::lookup`], nothing
    /// it reads is ever managed.
    pub fn lookup_all<L: crate::model::Lookup>(
        &mut self,
        name: &str,
        query: L,
    ) -> crate::Result<Handle<crate::model::Found<L::Resource>>> {
        self.declare(
            name,
            &query,
            query.kind(),
            || query.provider(),
            ResourceOptions::default(),
            Declared::LookupAll,
        )
    }

    /// Adds `value` (a resource's inputs, or a lookup's query) at `name` in the current
    /// component: a second declaration at an address is recorded for `into_program`, output
    /// transforms are numbered, and the kind is registered.
    fn declare<T>(
        &mut self,
        name: &str,
        value: &impl Serialize,
        kind: String,
        provider: impl FnOnce() -> std::sync::Arc<dyn crate::provider::ResourceProvider>,
        options: ResourceOptions,
        declared: Declared,
    ) -> crate::Result<Handle<T>> {
        let address = Address::new(&self.path, name)?;
        if !self.seen.insert(address.clone()) {
            // Reported by `into_program` with every other problem; the program goes on.
            self.errors.push(GraphError::Duplicate(address.clone()));
            return Ok(Handle::new(address));
        }
        let (inputs, transforms) = recording_transforms(self.transforms.len(), || serde_json::to_value(value));
        let inputs = inputs.map_err(|e| Error::Inputs {
            address: address.clone(),
            message: e.to_string(),
        })?;
        self.transforms.extend(transforms);
        if self.registry.get(&kind).is_err() {
            // Built only for a kind not seen yet: a provider copies its schema.
            self.registry.register(provider());
        }
        let mut r = DesiredResource::new(address.clone(), kind, inputs, options);
        r.lookup = declared != Declared::Resource;
        r.lookup_all = declared == Declared::LookupAll;
        self.resources.push(r);
        Ok(Handle::new(address))
    }

    /// Runs `f` with every resource it declares placed under the component `name`.
    pub fn component<T>(&mut self, name: &str, f: impl FnOnce(&mut Stack) -> crate::Result<T>) -> crate::Result<T> {
        self.component_inner(name, None, f)
    }

    /// As [`Stack::component`], for a component renamed from `old_name`: every resource
    /// declared under it (nested components too) gets the address it had under the old
    /// name as an alias, so the rename moves them in state instead of replacing them.
    pub fn component_with_alias<T>(
        &mut self,
        name: &str,
        old_name: &str,
        f: impl FnOnce(&mut Stack) -> crate::Result<T>,
    ) -> crate::Result<T> {
        Address::new(&self.path, old_name)?;
        self.component_inner(name, Some(old_name.to_string()), f)
    }

    fn component_inner<T>(
        &mut self,
        name: &str,
        old_name: Option<String>,
        f: impl FnOnce(&mut Stack) -> crate::Result<T>,
    ) -> crate::Result<T> {
        // Validate the segment up front so the error names the component.
        Address::new(&self.path, name)?;
        self.path.push(name.to_string());
        self.path_aliases.push(old_name);
        let r = f(self);
        self.path.pop();
        self.path_aliases.pop();
        r
    }

    /// The addresses a resource named `name` here had under the renamed components above
    /// it: every combination of old and new names of the renamed levels (a rename of an
    /// outer and an inner component may have been applied one at a time), but the current.
    fn component_aliases(&self, name: &str) -> Vec<String> {
        let renamed: Vec<usize> = (0..self.path.len())
            .filter(|&i| self.path_aliases[i].is_some())
            .take(4)
            .collect();
        let mut out = Vec::new();
        for mask in 1..(1u32 << renamed.len()) {
            let mut path = self.path.clone();
            for (bit, &level) in renamed.iter().enumerate() {
                if mask & (1 << bit) != 0 {
                    path[level] = self.path_aliases[level].clone().expect("renamed level");
                }
            }
            path.push(name.to_string());
            out.push(path.join("/"));
        }
        out
    }

    /// Adds a [`Component`] under its own name.
    pub fn add_component<C: Component>(&mut self, component: C) -> crate::Result<C::Handles> {
        let name = component.name();
        self.component(&name, |s| component.define(s))
    }

    /// Exports a stack output (shown after apply and by `spar output`).
    pub fn export<T: Serialize>(&mut self, name: &str, value: T) -> crate::Result<()> {
        let (v, transforms) = recording_transforms(self.transforms.len(), || serde_json::to_value(&value));
        let v = v.map_err(|e| Error::Inputs {
            address: Address::new::<&str>(&[], "outputs").expect("static address"),
            message: format!("output `{name}`: {e}"),
        })?;
        self.transforms.extend(transforms);
        self.outputs.insert(name.to_string(), v);
        Ok(())
    }

    /// Makes a kind known even when no resource of it is declared (so resources of that
    /// kind left in state can still be deleted).
    pub fn register_kind(&mut self, provider: std::sync::Arc<dyn crate::provider::ResourceProvider>) {
        self.registry.register(provider);
    }

    /// The registry of every kind this program can manage.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Declares an invariant of the program: `failures` lists what breaks it (empty when
    /// it holds). Plans and applies refuse a failed check unless it is waived by `name`.
    pub fn check(&mut self, name: &str, description: &str, failures: Vec<String>) {
        self.add_check(Check::new(name, description).failures(failures));
    }

    /// Declares a check built whole (with the evidence of what it verified).
    pub fn add_check(&mut self, check: Check) {
        checks::push(&mut self.checks, check);
    }

    /// Declares something apply needs and a plan can do without (a secret read from the
    /// environment, say): a failure lets plans through with a warning and stops apply.
    pub fn require_for_apply(&mut self, name: &str, description: &str, failures: Vec<String>) {
        let mut c = Check::new(name, description).failures(failures);
        c.apply_only = true;
        checks::push(&mut self.checks, c);
    }

    /// Declares a check over what the program's lookups read (objects `define` cannot see):
    /// `run` gets them when planning, right after they are read, and returns the verdict
    /// (failures and evidence; its name and description are these).
    pub fn check_lookups(
        &mut self,
        name: &str,
        description: &str,
        run: impl Fn(&LookedUp<'_>) -> Check + Send + Sync + 'static,
    ) {
        self.lookup_checks.push(LookupCheck {
            name: name.to_string(),
            description: description.to_string(),
            run: Box::new(run),
        });
    }

    /// The resources declared so far, in declaration order, with their inputs as the graph
    /// will hold them (outputs of other resources as references): what analyses read.
    pub fn resources(&self) -> &[DesiredResource] {
        &self.resources
    }

    /// The checks declared so far.
    pub fn checks(&self) -> &[Check] {
        &self.checks
    }

    /// Adds a command of the program's own (`cargo run -- NAME`), run only when asked for.
    pub fn command(&mut self, name: &str, about: &str, run: impl FnOnce() -> Result<String, String> + 'static) {
        self.commands.push(StackCommand {
            name: name.to_string(),
            about: about.to_string(),
            run: Box::new(run),
        });
    }

    /// Finishes the program: validates and returns the desired graph.
    pub fn into_graph(self) -> Result<(DesiredGraph, Registry), GraphError> {
        let p = self.into_program()?;
        Ok((p.graph, p.registry))
    }

    /// Finishes the program: the validated graph with its checks and commands.
    pub fn into_program(self) -> Result<Program, GraphError> {
        let built = DesiredGraph::build(self.resources, self.outputs, self.transforms);
        let mut errors = self.errors;
        let graph = match built {
            Ok(g) if errors.is_empty() => g,
            Ok(_) => return Err(GraphError::all(errors).expect_err("errors is not empty")),
            Err(GraphError::Many(more)) => {
                errors.extend(more);
                return Err(GraphError::all(errors).expect_err("errors is not empty"));
            }
            Err(e) => {
                errors.push(e);
                return Err(GraphError::all(errors).expect_err("errors is not empty"));
            }
        };
        Ok(Program {
            graph,
            registry: self.registry,
            checks: self.checks,
            commands: self.commands,
            lookup_checks: self.lookup_checks,
        })
    }
}

/// Collects the resources a value references (for callers building inputs by hand).
pub fn references(v: &Value) -> Vec<Address> {
    let mut out = Vec::new();
    value::collect_refs(v, &mut out);
    out
}
