//! The user-facing DSL: resources, typed handles, outputs, secrets, options, components,
//! configuration and the [`Stack`] builder that turns a program into a desired graph.

pub mod checks;
pub mod config;
pub mod options;
pub mod output;
pub mod secret;
pub mod stack;

use std::marker::PhantomData;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::address::Address;
use crate::provider::ResourceProvider;

pub use output::{Input, Output};

/// A kind of resource a program can declare: its inputs (serialized) and the provider that
/// manages it. Implementations are typed builders such as `local::File`.
pub trait Resource: Serialize {
    /// The type name, such as `local:File`.
    fn kind(&self) -> String;
    /// The provider that creates, reads, updates and deletes this kind.
    fn provider(&self) -> Arc<dyn ResourceProvider>;
}

/// A lookup (data source) of an existing object of kind `Resource`: its query,
/// serialized, is what [`ResourceProvider::lookup`] matches. Declared with
/// [`Stack::lookup`](crate::Stack::lookup), which returns a `Handle<Self::Resource>` whose
/// outputs are the object's, read on every plan; the object is never managed.
pub trait Lookup: Serialize {
    /// The kind the looked-up object is, whose outputs the handle gives.
    type Resource;
    /// The type name, such as `aws:ec2:Vpc`.
    fn kind(&self) -> String;
    /// The provider that finds and reads it.
    fn provider(&self) -> Arc<dyn ResourceProvider>;
}

/// A handle to a declared resource, from which its outputs are referenced.
pub struct Handle<R> {
    address: Address,
    _r: PhantomData<fn() -> R>,
}

impl<R> Clone for Handle<R> {
    fn clone(&self) -> Self {
        Handle {
            address: self.address.clone(),
            _r: PhantomData,
        }
    }
}

impl<R> std::fmt::Debug for Handle<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Handle({})", self.address)
    }
}

impl<R> Handle<R> {
    pub(crate) fn new(address: Address) -> Self {
        Handle {
            address,
            _r: PhantomData,
        }
    }

    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The resource's id (known after it is created).
    pub fn id(&self) -> Output<String> {
        Output::reference(self.address.clone(), "$id")
    }

    /// The output at `path` of this resource: `arn`, `status.addresses[0]`,
    /// `tags["kubernetes.io/role/elb"]` (see [`crate::value::Path::try_parse`]).
    pub fn output<T: DeserializeOwned>(&self, path: &str) -> Output<T> {
        Output::reference(self.address.clone(), path)
    }
}

/// What a set lookup ([`Stack::lookup_all`](crate::Stack::lookup_all)) found: every
/// existing object of kind `R` its query matched.
pub struct Found<R>(PhantomData<fn() -> R>);

impl<R> Handle<Found<R>> {
    /// The ids of the objects found, in order.
    pub fn ids(&self) -> Output<Vec<String>> {
        self.output("ids")
    }

    /// How many objects were found.
    pub fn count(&self) -> Output<usize> {
        self.output("count")
    }
}

/// A reusable group of resources added under one component address.
pub trait Component {
    /// What the component gives back to the program (handles, outputs).
    type Handles;
    /// The component's own name, the address segment its resources sit under.
    fn name(&self) -> String;
    /// Declares the component's resources into `stack` (already scoped to the component).
    fn define(self, stack: &mut stack::Stack) -> crate::Result<Self::Handles>;
}
