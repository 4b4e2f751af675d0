//! `Output<T>` and `Input<T>`: values that exist only once another resource is applied.
//!
//! An `Output<T>` is a typed reference to some resource's output (or a value computed from
//! outputs with [`Output::map`] / [`Output::zip`]). Used in a resource's inputs it becomes
//! a dependency edge; the engine resolves it from state when the source is unchanged and at
//! apply time otherwise.
//!
//! Rules kept here: an output serializes only while a [`Stack`](crate::Stack) is recording
//! a resource (that is where its transforms are registered, in program order, so that the
//! same program always numbers them the same way); a transform runs on plain values and its
//! result is secret when its input was.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::address::Address;
use crate::value::{OutputExpr, Transform};

#[derive(Clone)]
enum Node {
    Ref { address: Address, path: String },
    Known(Value),
    Map { f: Transform, of: Box<Node> },
    All(Vec<Node>),
}

/// A value of type `T` that may be known only after apply.
pub struct Output<T> {
    node: Node,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Output<T> {
    fn clone(&self) -> Self {
        Output {
            node: self.node.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Output<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Output(..)")
    }
}

impl<T> Output<T> {
    /// A reference to `path` in `address`'s outputs (`$id` is the resource's id).
    pub fn reference(address: Address, path: impl Into<String>) -> Self {
        Output {
            node: Node::Ref {
                address,
                path: path.into(),
            },
            _t: PhantomData,
        }
    }

    /// The same output, its type forgotten (for code that handles JSON).
    pub fn untyped(&self) -> Output<Value> {
        Output {
            node: self.node.clone(),
            _t: PhantomData,
        }
    }

    /// The resources this output depends on.
    pub fn sources(&self) -> Vec<Address> {
        fn walk(n: &Node, out: &mut Vec<Address>) {
            match n {
                Node::Ref { address, .. } => out.push(address.clone()),
                Node::Known(_) => {}
                Node::Map { of, .. } => walk(of, out),
                Node::All(items) => items.iter().for_each(|i| walk(i, out)),
            }
        }
        let mut out = Vec::new();
        walk(&self.node, &mut out);
        out
    }
}

impl<T: Serialize> Output<T> {
    /// An output whose value is already known.
    pub fn known(value: T) -> Self {
        Output {
            node: Node::Known(serde_json::to_value(value).expect("value serializes to JSON")),
            _t: PhantomData,
        }
    }
}

impl<T: DeserializeOwned + 'static> Output<T> {
    /// Transforms the value once it is known.
    pub fn map<U, F>(&self, f: F) -> Output<U>
    where
        U: Serialize,
        F: Fn(T) -> U + Send + Sync + 'static,
    {
        self.try_map(move |t| Ok::<U, String>(f(t)))
    }

    /// Transforms the value once it is known; an `Err` fails the resources using it.
    pub fn try_map<U, E, F>(&self, f: F) -> Output<U>
    where
        U: Serialize,
        E: std::fmt::Display,
        F: Fn(T) -> Result<U, E> + Send + Sync + 'static,
    {
        let transform: Transform = Arc::new(move |v: Value| {
            let t: T = serde_json::from_value(v).map_err(|e| format!("unexpected output shape: {e}"))?;
            let u = f(t).map_err(|e| e.to_string())?;
            serde_json::to_value(u).map_err(|e| e.to_string())
        });
        Output {
            node: Node::Map {
                f: transform,
                of: Box::new(self.node.clone()),
            },
            _t: PhantomData,
        }
    }

    /// Combines two outputs into one pair.
    pub fn zip<U: DeserializeOwned + 'static>(&self, other: &Output<U>) -> Output<(T, U)> {
        Output {
            node: Node::All(vec![self.node.clone(), other.node.clone()]),
            _t: PhantomData,
        }
    }
}

impl<T: DeserializeOwned + 'static> Output<Vec<T>> {
    /// Collects several outputs into one list.
    pub fn all(items: &[Output<T>]) -> Output<Vec<T>> {
        Output {
            node: Node::All(items.iter().map(|o| o.node.clone()).collect()),
            _t: PhantomData,
        }
    }
}

thread_local! {
    static TRANSFORMS: RefCell<Option<Vec<Transform>>> = const { RefCell::new(None) };
}

/// Runs `f` while recording the transforms of every output serialized inside it.
/// Returns `f`'s result and the transforms in the order they were met.
pub(crate) fn recording_transforms<R>(first_index: usize, f: impl FnOnce() -> R) -> (R, Vec<Transform>) {
    TRANSFORMS.with(|t| *t.borrow_mut() = Some(Vec::new()));
    FIRST_INDEX.with(|i| *i.borrow_mut() = first_index);
    let r = f();
    let recorded = TRANSFORMS.with(|t| t.borrow_mut().take()).unwrap_or_default();
    (r, recorded)
}

thread_local! {
    static FIRST_INDEX: RefCell<usize> = const { RefCell::new(0) };
}

fn to_expr(node: &Node) -> Result<OutputExpr, String> {
    Ok(match node {
        Node::Ref { address, path } => OutputExpr::Ref {
            address: address.clone(),
            path: path.clone(),
        },
        Node::Known(v) => OutputExpr::Known(v.clone()),
        Node::All(items) => OutputExpr::All(items.iter().map(to_expr).collect::<Result<_, _>>()?),
        Node::Map { f, of } => {
            let of = Box::new(to_expr(of)?);
            let index = TRANSFORMS.with(|t| {
                let mut t = t.borrow_mut();
                let list = t
                    .as_mut()
                    .ok_or_else(|| "an Output can only be used inside resource inputs or stack outputs".to_string())?;
                let local = match list.iter().position(|g| Arc::ptr_eq(g, f)) {
                    Some(i) => i,
                    None => {
                        list.push(f.clone());
                        list.len() - 1
                    }
                };
                Ok::<usize, String>(local + FIRST_INDEX.with(|i| *i.borrow()))
            })?;
            OutputExpr::Map { transform: index, of }
        }
    })
}

impl<T> Serialize for Output<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.node {
            Node::Known(v) => v.serialize(s),
            node => to_expr(node)
                .map_err(serde::ser::Error::custom)?
                .to_value()
                .serialize(s),
        }
    }
}

/// A resource input: a plain value or an output of another resource.
#[derive(Clone, Debug)]
pub enum Input<T> {
    Value(T),
    Output(Output<T>),
}

impl<T> Input<T> {
    /// The resources this input depends on.
    pub fn sources(&self) -> Vec<Address> {
        match self {
            Input::Value(_) => Vec::new(),
            Input::Output(o) => o.sources(),
        }
    }
}

impl<T: Serialize> Serialize for Input<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Input::Value(v) => v.serialize(s),
            Input::Output(o) => o.serialize(s),
        }
    }
}

impl<T> From<T> for Input<T> {
    fn from(v: T) -> Self {
        Input::Value(v)
    }
}

impl<T> From<Output<T>> for Input<T> {
    fn from(o: Output<T>) -> Self {
        Input::Output(o)
    }
}

impl<T> From<&Output<T>> for Input<T> {
    fn from(o: &Output<T>) -> Self {
        Input::Output(o.clone())
    }
}

impl From<&str> for Input<String> {
    fn from(v: &str) -> Self {
        Input::Value(v.to_string())
    }
}

impl From<&String> for Input<String> {
    fn from(v: &String) -> Self {
        Input::Value(v.clone())
    }
}
