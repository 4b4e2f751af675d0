//! `x-kubernetes-validations`: compiling a CRD version's CEL rules and evaluating them on the
//! custom resources written to it.
//!
//! Owns [`Rules`] (the compiled rules of one schema, a tree shaped like the schema that keeps
//! only the nodes holding rules; built once per CRD generation and kept in the served
//! type's [`crate::crd::CrSchema`]), [`Rules::compile`] (the CRD-time check: a rule that does
//! not parse, names an undeclared variable, calls a function the simulator cannot evaluate, or
//! has a bad `reason`/`fieldPath`/`messageExpression` refuses the CRD with a 422 cause) and
//! [`Rules::validate`] (the write-time evaluation).
//!
//! Rules kept here, after k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel/validation.go
//! (Kubernetes 1.35):
//! - Rules run at every schema level that has them (root, `properties`, `items`,
//!   `additionalProperties`) with `self` bound to the value there; null values are not
//!   validated. `allOf`/`anyOf`/`oneOf` branches are not searched for rules (upstream runs
//!   those under `allOf` too).
//! - A rule referencing `oldSelf` is a transition rule: it runs only on update and only where
//!   an old value correlates (map keys; items of `x-kubernetes-list-type: map` lists by their
//!   keys; never items of other lists). With `optionalOldSelf: true` it also runs without one,
//!   `oldSelf` then being an optional (`optional.none()` / `optional.of(old)`).
//! - A false rule yields `<path>: Invalid value: "<schema type>": <message>` (reason
//!   `FieldValueInvalid`), or Forbidden/Required/Duplicate per the rule's `reason`; the path
//!   is extended by the rule's `fieldPath`; the message is `messageExpression`'s result when
//!   it evaluates to a non-empty one-line string, else `message`, else
//!   `failed rule: <rule>`. A runtime error yields `<error> evaluating rule: <message or rule>`
//!   (`'no such overload': call arguments did not match ...` for overload errors).
//! - Ratcheting (CRDValidationRatcheting, GA since 1.33): on update, a false non-transition
//!   rule whose value (or nearest correlatable ancestor) equals the old one is a warning,
//!   not an error.
//! - Not modelled: the CEL cost budgets (estimated at CRD time, metered at run time), static
//!   type checking (type errors surface at evaluation as `no such overload`).

use crate::cel_library::{self, Support};
use crate::cel_value::{self, to_cel};
use crate::error::Cause;
use cel::common::ast::{EntryExpr, Expr};
use cel::objects::OptionalValue;
use cel::{ExecutionError, IdedExpr, Program, Value as Cel};
use serde_json::Value;
use std::sync::Arc;

/// The reasons a rule may give (apiextensions FieldValueErrorReason).
const REASONS: &[&str] = &[
    "FieldValueDuplicate",
    "FieldValueForbidden",
    "FieldValueInvalid",
    "FieldValueRequired",
];

/// Upper bound on an evaluated `messageExpression` (celconfig.MaxEvaluatedMessageExpressionSizeBytes).
const MAX_MESSAGE_BYTES: usize = 5 * 1024;

/// Stack for parsing: the `cel` crate's generated parser recurses deeply per nesting level.
const PARSE_STACK_BYTES: usize = 64 * 1024 * 1024;

/// One compiled `x-kubernetes-validations` entry.
struct Rule {
    rule: String,
    message: String,
    message_expression: Option<Program>,
    reason: Option<String>,
    /// `fieldPath` as a field path suffix (`a.b[key]`), empty when unset.
    field_path: String,
    optional_old_self: bool,
    uses_old_self: bool,
    program: Program,
}

impl Rule {
    /// `ruleErrorString`: the message if any, else the rule.
    fn error_string(&self) -> &str {
        if self.message.trim().is_empty() {
            self.rule.trim()
        } else {
            self.message.trim()
        }
    }
}

/// A schema node that holds rules, or leads to nodes that do.
#[derive(Default)]
struct Node {
    /// The schema at this node (for typing `self` and naming the value type in errors).
    schema: Arc<Value>,
    rules: Vec<Rule>,
    properties: Vec<(String, Node)>,
    items: Option<Box<Node>>,
    additional: Option<Box<Node>>,
    /// The root of a resource (the object, or an embedded resource).
    resource_root: bool,
    /// List-map keys when this node is a `x-kubernetes-list-type: map` list.
    list_map_keys: Option<Vec<String>>,
}

/// The compiled rules of one CRD version's schema.
pub struct Rules {
    root: Node,
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rules").finish_non_exhaustive()
    }
}

/// What evaluating the rules on a write found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Field errors (a 422 Invalid when not empty).
    pub causes: Vec<Cause>,
    /// Errors ratcheted into warnings (`<path>: <message>`).
    pub warnings: Vec<String>,
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// The path as field.Path prints it: a nil path is `<nil>`.
fn shown(path: &str) -> String {
    if path.is_empty() { "<nil>".into() } else { path.into() }
}

fn schema_type(schema: &Value) -> &str {
    schema.get("type").and_then(Value::as_str).unwrap_or_default()
}

fn parse(src: &str) -> Result<Program, String> {
    Program::compile(src).map_err(|e| format!("ERROR: <input>: {}", e.to_string().trim()))
}

/// Free identifiers and called functions of an expression.
#[derive(Default)]
struct Refs {
    idents: Vec<String>,
    /// (name as called, qualified name when the target is a bare identifier)
    calls: Vec<(String, Option<String>)>,
}

fn is_operator(name: &str) -> bool {
    name.starts_with('_') || name.starts_with('@') || name.starts_with('!') || name.starts_with('-')
}

fn walk_refs(e: &IdedExpr, bound: &mut Vec<String>, out: &mut Refs) {
    match &e.expr {
        Expr::Call(call) => {
            // `optional.of(x)`, `format.dns1123Label()`: a namespaced function name, when known
            let qualified = match call.target.as_deref().map(|t| &t.expr) {
                Some(Expr::Ident(prefix)) if !bound.contains(prefix) && prefix != "self" && prefix != "oldSelf" => {
                    Some(format!("{prefix}.{}", call.func_name)).filter(|q| cel_library::support(q) != Support::Unknown)
                }
                _ => None,
            };
            if !is_operator(&call.func_name) {
                out.calls.push((call.func_name.clone(), qualified.clone()));
            }
            if let Some(t) = &call.target
                && qualified.is_none()
            {
                walk_refs(t, bound, out);
            }
            for a in &call.args {
                walk_refs(a, bound, out);
            }
        }
        Expr::Comprehension(c) => {
            walk_refs(&c.iter_range, bound, out);
            walk_refs(&c.accu_init, bound, out);
            let depth = bound.len();
            bound.push(c.iter_var.clone());
            if let Some(v) = &c.iter_var2 {
                bound.push(v.clone());
            }
            bound.push(c.accu_var.clone());
            walk_refs(&c.loop_cond, bound, out);
            walk_refs(&c.loop_step, bound, out);
            walk_refs(&c.result, bound, out);
            bound.truncate(depth);
        }
        Expr::Ident(name) => {
            if !name.starts_with('@') && !bound.contains(name) {
                out.idents.push(name.clone());
            }
        }
        Expr::List(l) => l.elements.iter().for_each(|x| walk_refs(x, bound, out)),
        Expr::Map(m) => {
            for entry in &m.entries {
                match &entry.expr {
                    EntryExpr::StructField(f) => walk_refs(&f.value, bound, out),
                    EntryExpr::MapEntry(me) => {
                        walk_refs(&me.key, bound, out);
                        walk_refs(&me.value, bound, out);
                    }
                }
            }
        }
        Expr::Select(s) => walk_refs(&s.operand, bound, out),
        Expr::Struct(s) => {
            for entry in &s.entries {
                if let EntryExpr::StructField(f) = &entry.expr {
                    walk_refs(&f.value, bound, out);
                }
            }
        }
        Expr::Literal(_) | Expr::Unspecified => {}
    }
}

/// Check what a parsed expression references; Err is the compile error text.
fn check_refs(program: &Program, old_self_allowed: bool) -> Result<bool, String> {
    let mut refs = Refs::default();
    walk_refs(program.expression(), &mut vec![], &mut refs);
    let mut uses_old_self = false;
    for id in &refs.idents {
        match id.as_str() {
            "self" => {}
            "oldSelf" if old_self_allowed => uses_old_self = true,
            // type names and the optional namespace are identifiers too
            "int" | "uint" | "double" | "bool" | "string" | "bytes" | "list" | "map" | "null_type" | "type" => {}
            other => {
                return Err(format!(
                    "ERROR: <input>: undeclared reference to '{other}' (in container '')"
                ));
            }
        }
    }
    for (name, qualified) in &refs.calls {
        let support = match qualified {
            Some(q) => (q.as_str(), cel_library::support(q)),
            None => (name.as_str(), cel_library::support(name)),
        };
        match support {
            (_, Support::Implemented) => {}
            (n, Support::Missing(src)) => {
                return Err(format!(
                    "function '{n}' ({src}) is part of the Kubernetes CEL environment but spar-kube-sim does not evaluate it; the rule is refused rather than passed unchecked"
                ));
            }
            (n, Support::Unknown) => {
                return Err(format!(
                    "ERROR: <input>: undeclared reference to '{n}' (in container '')"
                ));
            }
        }
    }
    Ok(uses_old_self)
}

/// `apiextensions.ValidationRule{...}` as the apiserver prints a rule in CRD errors.
fn rule_repr(r: &Value) -> String {
    let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    format!(
        "apiextensions.ValidationRule{{Rule:{:?}, Message:{:?}, MessageExpression:{:?}, Reason:{}, FieldPath:{:?}, OptionalOldSelf:{}}}",
        s("rule"),
        s("message"),
        s("messageExpression"),
        if r.get("reason").is_some() {
            "(*apiextensions.FieldValueErrorReason)(...)"
        } else {
            "(*apiextensions.FieldValueErrorReason)(nil)"
        },
        s("fieldPath"),
        if r.get("optionalOldSelf").is_some() {
            "(*bool)(...)"
        } else {
            "(*bool)(nil)"
        },
    )
}

/// `fieldPath` (`.a.b`, `.a['k']`) resolved against `schema`: the path suffix it names.
fn resolve_field_path(fp: &str, schema: &Value) -> Result<String, String> {
    let mut out = String::new();
    let mut node = schema;
    let mut rest = fp;
    while !rest.is_empty() {
        let name = if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let name = &r[..end];
            rest = &r[end..];
            name.to_string()
        } else if let Some(r) = rest.strip_prefix("['") {
            let end = r.find("']").ok_or("expected ] but got end of JSON path")?;
            let name = r[..end].replace("\\'", "'");
            rest = &r[end + 2..];
            name
        } else {
            return Err(format!("expected [ or . but got: {rest}"));
        };
        if let Some(p) = node.get("properties").and_then(|p| p.get(&name)) {
            out = child(&out, &name);
            node = p;
        } else if let Some(ap) = node.get("additionalProperties").filter(|a| a.is_object()) {
            out = format!("{out}[{name}]");
            node = ap;
        } else {
            return Err("does not refer to a valid field".into());
        }
    }
    Ok(out)
}

impl Rules {
    /// Compile every rule of `schema` (a version's `openAPIV3Schema`). `base` is the schema's
    /// field path in the CRD, for the causes. `Ok(None)`: the schema has no rules.
    pub fn compile(schema: &Value, base: &str) -> Result<Option<Rules>, Vec<Cause>> {
        // the parser's recursion wants more stack than a runtime worker thread has
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("cel-compile".into())
                .stack_size(PARSE_STACK_BYTES)
                .spawn_scoped(scope, || {
                    let mut causes = vec![];
                    let root = compile_node(schema, base, true, None, &mut causes);
                    if !causes.is_empty() {
                        Err(causes)
                    } else {
                        Ok(root.map(|root| Rules { root }))
                    }
                })
                .expect("spawn the CEL compile thread")
                .join()
                .unwrap_or_else(|_| {
                    Err(vec![Cause {
                        reason: "InternalError".into(),
                        message: "Internal error occurred: the CEL compiler panicked".into(),
                        field: base.into(),
                    }])
                })
        })
    }

    /// Evaluate the rules on `new` (the whole object after defaulting); `old` is the stored
    /// object on update.
    pub fn validate(&self, new: &Value, old: Option<&Value>) -> Outcome {
        let mut out = Outcome::default();
        eval_node(&self.root, "", new, old, false, &mut out);
        out
    }
}

/// Compile the rules at and under `schema`. `uncorrelatable`: the schema path of the
/// enclosing non-map list, under which `oldSelf` has nothing to correlate with.
fn compile_node(
    schema: &Value,
    path: &str,
    resource_root: bool,
    uncorrelatable: Option<&str>,
    causes: &mut Vec<Cause>,
) -> Option<Node> {
    let mut node = Node {
        resource_root,
        ..Node::default()
    };
    let rules = schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, r) in rules.iter().enumerate() {
        let at = format!("{path}.x-kubernetes-validations[{i}]");
        let invalid = |field: String, msg: String| Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {}: {msg}", rule_repr(r)),
            field,
        };
        let text = r.get("rule").and_then(Value::as_str).unwrap_or_default();
        if text.trim().is_empty() {
            causes.push(Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value: rule is not specified".into(),
                field: format!("{at}.rule"),
            });
            continue;
        }
        let program = match parse(text) {
            Ok(p) => p,
            Err(e) => {
                causes.push(invalid(format!("{at}.rule"), format!("compilation failed: {e}")));
                continue;
            }
        };
        let uses_old_self = match check_refs(&program, true) {
            Ok(u) => u,
            Err(e) => {
                causes.push(invalid(format!("{at}.rule"), format!("compilation failed: {e}")));
                continue;
            }
        };
        if uses_old_self && let Some(list) = uncorrelatable {
            causes.push(invalid(
                format!("{at}.rule"),
                format!("oldSelf cannot be used on the uncorrelatable portion of the schema within {list}"),
            ));
            continue;
        }
        let message_expression = match r.get("messageExpression").and_then(Value::as_str) {
            Some(src) if !src.trim().is_empty() => match parse(src).and_then(|p| check_refs(&p, true).map(|_| p)) {
                Ok(p) => Some(p),
                Err(e) => {
                    causes.push(invalid(
                        format!("{at}.messageExpression"),
                        format!("messageExpression compilation failed: {e}"),
                    ));
                    continue;
                }
            },
            _ => None,
        };
        let reason = r.get("reason").and_then(Value::as_str).map(String::from);
        if let Some(reason) = &reason
            && !REASONS.contains(&reason.as_str())
        {
            causes.push(Cause {
                reason: "FieldValueNotSupported".into(),
                message: format!(
                    "Unsupported value: {reason:?}: supported values: {}",
                    REASONS.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>().join(", ")
                ),
                field: format!("{at}.reason"),
            });
            continue;
        }
        let field_path = match r.get("fieldPath").and_then(Value::as_str).filter(|f| !f.is_empty()) {
            None => String::new(),
            Some(fp) => match resolve_field_path(fp, schema) {
                Ok(p) => p,
                Err(e) => {
                    causes.push(Cause {
                        reason: "FieldValueInvalid".into(),
                        message: format!("Invalid value: {fp:?}: fieldPath must be a valid path: {e}"),
                        field: format!("{at}.fieldPath"),
                    });
                    continue;
                }
            },
        };
        node.rules.push(Rule {
            rule: text.to_string(),
            message: r.get("message").and_then(Value::as_str).unwrap_or_default().to_string(),
            message_expression,
            reason,
            field_path,
            optional_old_self: r.get("optionalOldSelf") == Some(&Value::Bool(true)),
            uses_old_self,
            program,
        });
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (k, p) in props {
            // properties CEL cannot name are not validated (upstream skips them as well)
            if cel_value::escape(k).is_none() {
                continue;
            }
            let embedded = p.get("x-kubernetes-embedded-resource") == Some(&Value::Bool(true));
            if let Some(n) = compile_node(p, &format!("{path}.properties[{k}]"), embedded, uncorrelatable, causes) {
                node.properties.push((k.clone(), n));
            }
        }
    }
    let is_map_list = schema.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map");
    if let Some(items) = schema.get("items").filter(|i| i.is_object()) {
        let items_path = format!("{path}.items");
        let under = if is_map_list {
            uncorrelatable
        } else {
            uncorrelatable.or(Some(path))
        };
        let embedded = items.get("x-kubernetes-embedded-resource") == Some(&Value::Bool(true));
        node.items = compile_node(items, &items_path, embedded, under, causes).map(Box::new);
    }
    if let Some(ap) = schema.get("additionalProperties").filter(|a| a.is_object()) {
        let embedded = ap.get("x-kubernetes-embedded-resource") == Some(&Value::Bool(true));
        node.additional = compile_node(
            ap,
            &format!("{path}.additionalProperties"),
            embedded,
            uncorrelatable,
            causes,
        )
        .map(Box::new);
    }
    if is_map_list {
        node.list_map_keys = schema
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|k| k.as_str().map(String::from)).collect());
    }
    let empty =
        node.rules.is_empty() && node.properties.is_empty() && node.items.is_none() && node.additional.is_none();
    if empty {
        return None;
    }
    node.schema = Arc::new(strip_children(schema));
    Some(node)
}

/// The schema without its rules (kept per node for typing values; the rules are compiled).
fn strip_children(schema: &Value) -> Value {
    let mut s = schema.clone();
    if let Some(m) = s.as_object_mut() {
        m.remove("x-kubernetes-validations");
        m.remove("description");
    }
    s
}

/// The old item a list-map item correlates with (same key values).
fn correlated_item<'a>(keys: &[String], item: &Value, old: Option<&'a Value>) -> Option<&'a Value> {
    let old = old?.as_array()?;
    old.iter().find(|o| keys.iter().all(|k| o.get(k) == item.get(k)))
}

/// cel-go's wording of a runtime error.
fn go_error(e: &ExecutionError) -> (bool, String) {
    match e {
        ExecutionError::NoSuchKey(k) => (false, format!("no such key: {k}")),
        ExecutionError::NoSuchOverload
        | ExecutionError::UnsupportedBinaryOperator(..)
        | ExecutionError::UnsupportedUnaryOperator(..)
        | ExecutionError::ValuesNotComparable(..)
        | ExecutionError::UnexpectedType { .. }
        | ExecutionError::UnsupportedTargetType { .. }
        | ExecutionError::NotSupportedAsMethod { .. } => (true, "no such overload".into()),
        ExecutionError::IndexOutOfBounds(i) => (false, format!("index out of bounds: {}", cel_repr(i))),
        ExecutionError::DivisionByZero(_) => (false, "division by zero".into()),
        ExecutionError::RemainderByZero(_) => (false, "modulus by zero".into()),
        ExecutionError::Overflow(..) => (false, "integer overflow".into()),
        ExecutionError::FunctionError { message, .. } => (false, message.clone()),
        ExecutionError::UndeclaredReference(n) => (false, format!("no such attribute: {n}")),
        other => (false, other.to_string()),
    }
}

fn cel_repr(v: &Cel) -> String {
    match v {
        Cel::Int(i) => i.to_string(),
        Cel::UInt(u) => u.to_string(),
        Cel::String(s) => s.to_string(),
        other => format!("{other:?}"),
    }
}

/// The field error of a false rule, as (reason, body).
fn field_error(rule: &Rule, value_type: &str, detail: &str) -> (String, String) {
    match rule.reason.as_deref() {
        Some("FieldValueForbidden") => ("FieldValueForbidden".into(), format!("Forbidden: {detail}")),
        Some("FieldValueRequired") => ("FieldValueRequired".into(), format!("Required value: {detail}")),
        Some("FieldValueDuplicate") => ("FieldValueDuplicate".into(), format!("Duplicate value: {value_type:?}")),
        _ => (
            "FieldValueInvalid".into(),
            format!("Invalid value: {value_type:?}: {detail}"),
        ),
    }
}

fn eval_message(rule: &Rule, ctx: &cel::Context) -> Option<String> {
    let program = rule.message_expression.as_ref()?;
    match program.execute(ctx) {
        Ok(Cel::String(s)) => {
            let t = s.trim();
            (!t.is_empty() && !t.contains('\n') && t.len() <= MAX_MESSAGE_BYTES).then(|| t.to_string())
        }
        _ => None,
    }
}

/// Evaluate `node` on `new` at `path`. `old` is the correlated old value; `unchanged_above`
/// whether the nearest correlatable ancestor is unchanged (for ratcheting).
fn eval_node(node: &Node, path: &str, new: &Value, old: Option<&Value>, unchanged_above: bool, out: &mut Outcome) {
    if new.is_null() {
        return;
    }
    let old = old.filter(|o| !o.is_null());
    let unchanged = match old {
        Some(o) => o == new,
        None => unchanged_above,
    };
    if !node.rules.is_empty() {
        eval_rules(node, path, new, old, unchanged, out);
    }
    match new {
        Value::Object(m) => {
            for (k, v) in m {
                let old_v = old.and_then(|o| o.get(k));
                if let Some((_, n)) = node.properties.iter().find(|(name, _)| name == k) {
                    eval_node(n, &child(path, k), v, old_v, unchanged, out);
                }
                if let Some(n) = &node.additional {
                    eval_node(n, &format!("{path}[{k}]"), v, old_v, unchanged, out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(n) = &node.items {
                for (i, item) in items.iter().enumerate() {
                    let old_item = node
                        .list_map_keys
                        .as_ref()
                        .and_then(|keys| correlated_item(keys, item, old));
                    eval_node(n, &format!("{path}[{i}]"), item, old_item, unchanged, out);
                }
            }
        }
        _ => {}
    }
}

fn eval_rules(node: &Node, path: &str, new: &Value, old: Option<&Value>, unchanged: bool, out: &mut Outcome) {
    let value_type = schema_type(&node.schema);
    let mut ctx = cel_library::context();
    ctx.add_variable_from_value("self", to_cel(new, Some(&node.schema), node.resource_root));
    let old_cel = old.map(|o| to_cel(o, Some(&node.schema), node.resource_root));
    for rule in &node.rules {
        if rule.uses_old_self && old.is_none() && !rule.optional_old_self {
            continue;
        }
        let mut scope = ctx.new_inner_scope();
        if rule.optional_old_self {
            let opt = match &old_cel {
                Some(o) => OptionalValue::of(o.clone()),
                None => OptionalValue::none(),
            };
            scope.add_variable_from_value("oldSelf", Cel::Opaque(Arc::new(opt)));
        } else if let Some(o) = &old_cel {
            scope.add_variable_from_value("oldSelf", o.clone());
        }
        let result = rule.program.execute(&scope);
        let here = shown(path);
        match result {
            Ok(Cel::Bool(true)) => continue,
            Ok(Cel::Bool(false)) => {}
            Ok(_) => {
                out.causes.push(Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!(
                        "Invalid value: {value_type:?}: 'no such overload': call arguments did not match a supported operator, function or macro signature for rule: {}",
                        rule.error_string()
                    ),
                    field: here,
                });
                continue;
            }
            Err(e) => {
                let (overload, text) = go_error(&e);
                let detail = if overload {
                    format!(
                        "'{text}': call arguments did not match a supported operator, function or macro signature for rule: {}",
                        rule.error_string()
                    )
                } else {
                    format!("{text} evaluating rule: {}", rule.error_string())
                };
                // runtime errors are never ratcheted upstream
                out.causes.push(Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!("Invalid value: {value_type:?}: {detail}"),
                    field: here,
                });
                continue;
            }
        }
        let at = if rule.field_path.is_empty() {
            path.to_string()
        } else {
            child(path, &rule.field_path)
        };
        let detail = eval_message(rule, &scope).unwrap_or_else(|| {
            if rule.message.trim().is_empty() {
                format!("failed rule: {}", rule.error_string())
            } else {
                rule.message.trim().to_string()
            }
        });
        let (reason, body) = field_error(rule, value_type, &detail);
        if !rule.uses_old_self && unchanged {
            out.warnings.push(format!("{}: {body}", shown(&at)));
        } else {
            out.causes.push(Cause {
                reason,
                message: body,
                field: shown(&at),
            });
        }
    }
}

/// Schema error reasons that stop the rules from running (strategy.go hasBlockingErr): the
/// object does not have the shape its rules were written for.
const BLOCKING: &[&str] = &[
    "FieldValueNotSupported",
    "FieldValueRequired",
    "FieldValueTooLong",
    "FieldValueTooMany",
    "FieldValueTypeInvalid",
];

/// Run `rules` on a write whose schema validation found `causes` (appended to); returns the
/// ratcheted warnings. `new` is the defaulted object, `old` the stored one on update.
pub fn admit(rules: &Rules, new: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) -> Vec<String> {
    if causes.iter().any(|c| BLOCKING.contains(&c.reason.as_str())) {
        causes.push(Cause {
            reason: "FieldValueInvalid".into(),
            message: "Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation".into(),
            field: "<nil>".into(),
        });
        return vec![];
    }
    let outcome = rules.validate(new, old);
    causes.extend(outcome.causes);
    outcome.warnings
}
