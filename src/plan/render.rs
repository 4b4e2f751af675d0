//! Renders a plan for people (text, colour on a terminal) and for programs (JSON).
//!
//! Rules kept here: secrets are always shown as `(sensitive value)` and unknowns as
//! `(known after apply)`, in text and JSON alike; changes are grouped by component in plan
//! order; the last line is the summary `Plan: N to create, N to update, N to replace, N to
//! delete.`

use std::fmt::Write as _;

use serde_json::Value;

use crate::plan::{Change, Op, Plan};
use crate::value::{self, Path, PropertyChange};

/// ANSI styling, or none.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    fn op(&self, op: Op, text: &str) -> String {
        let code = match op {
            Op::Create => "32",
            Op::Update => "33",
            Op::Replace => "35",
            Op::Delete => "31",
            Op::Same => "2",
        };
        self.paint(code, text)
    }
    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }
    pub fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }
}

/// Shows a value on one line, redacted.
pub fn show_value(v: &Value) -> String {
    let r = value::redact(v);
    match &r {
        Value::String(s) if s == "(sensitive value)" || s == "(known after apply)" => s.clone(),
        other => {
            let s = other.to_string();
            if s.len() > 120 {
                format!(
                    "{}…",
                    &s[..s.char_indices().nth(117).map(|(i, _)| i).unwrap_or(s.len())]
                )
            } else {
                s
            }
        }
    }
}

fn leaves(v: &Value, path: &Path, out: &mut Vec<(Path, Value)>) {
    match v {
        Value::Object(m) if value::marker(v).is_none() && !m.is_empty() => {
            for (k, x) in m {
                leaves(x, &path.child_key(k), out);
            }
        }
        Value::Array(a) if !a.is_empty() && a.iter().any(|x| x.is_object() || x.is_array()) => {
            for (i, x) in a.iter().enumerate() {
                leaves(x, &path.child_index(i), out);
            }
        }
        Value::Null => {}
        other => out.push((path.clone(), other.clone())),
    }
}

fn property_line(style: &Style, c: &PropertyChange, forces: bool) -> String {
    let mut line = match (&c.before, &c.after) {
        (None, Some(a)) => format!("{}: {}", c.path, style.op(Op::Create, &show_value(a))),
        (Some(b), None) => format!(
            "{}: {} -> {}",
            c.path,
            style.op(Op::Delete, &show_value(b)),
            style.dim("(removed)")
        ),
        (Some(b), Some(a)) => format!(
            "{}: {} -> {}",
            c.path,
            show_value(b),
            style.op(Op::Update, &show_value(a))
        ),
        (None, None) => c.path.to_string(),
    };
    if forces {
        line.push_str(&style.paint("35", "  # forces replacement"));
    }
    line
}

fn render_change(out: &mut String, style: &Style, c: &Change, indent: &str) {
    let symbol = c.op.symbol(c.delete_before_replace);
    let name = if c.deposed {
        format!("{} (old object {})", c.address.name(), c.id.as_deref().unwrap_or("?"))
    } else {
        c.address.name().to_string()
    };
    let _ = writeln!(
        out,
        "{indent}{} {}  {}",
        style.op(c.op, &format!("{symbol:>3}")),
        style.bold(&name),
        style.dim(&c.kind)
    );
    let pad = format!("{indent}      ");
    match c.op {
        Op::Create => {
            let mut ls = Vec::new();
            if let Some(a) = &c.after {
                leaves(a, &Path::default(), &mut ls);
            }
            for (p, v) in ls {
                let _ = writeln!(out, "{pad}{}: {}", p, style.op(Op::Create, &show_value(&v)));
            }
        }
        Op::Update | Op::Replace => {
            if let Some(r) = &c.replace_reason {
                let _ = writeln!(out, "{pad}{}", style.paint("35", &format!("# replaced because {r}")));
            }
            for p in &c.properties {
                let forces = c.replace_paths.contains(&p.path);
                let _ = writeln!(out, "{pad}{}", property_line(style, p, forces));
            }
        }
        Op::Delete => {
            if let Some(id) = &c.id {
                let _ = writeln!(out, "{pad}{}", style.dim(&format!("id: {id}")));
            }
        }
        Op::Same => {}
    }
    for n in &c.notes {
        let op = match n.chars().next() {
            Some('+') => Op::Create,
            Some('-') => Op::Delete,
            _ => Op::Update,
        };
        let _ = writeln!(out, "{pad}{}", style.op(op, &format!("# {n}")));
    }
}

/// The summary line.
pub fn summary_line(plan: &Plan) -> String {
    let s = plan.summary();
    format!(
        "Plan: {} to create, {} to update, {} to replace, {} to delete.",
        s.create, s.update, s.replace, s.delete
    )
}

/// The plan as text.
pub fn text(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    for w in &plan.warnings {
        let _ = writeln!(out, "{} {w}", style.paint("33", "warning:"));
    }
    if !plan.warnings.is_empty() {
        out.push('\n');
    }
    let verb = if plan.destroy { "destroy" } else { "plan" };
    let _ = writeln!(
        out,
        "{}",
        style.bold(&format!("spar {verb}: {} (stack {})", plan.program, plan.stack))
    );
    if !plan.has_changes() {
        let _ = writeln!(
            out,
            "\nNo changes. The infrastructure matches the program ({} resources).",
            plan.summary().same
        );
        return out;
    }
    // One group per component, in order of first appearance; plan order within a group.
    let mut groups: Vec<(&str, Vec<&Change>)> = Vec::new();
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for c in plan.changes.iter().filter(|c| c.op != Op::Same) {
        let comp = c.address.component_path();
        let i = *index.entry(comp).or_insert_with(|| {
            groups.push((comp, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(c);
    }
    for (comp, members) in groups {
        out.push('\n');
        if !comp.is_empty() {
            let _ = writeln!(out, "  {}", style.bold(&format!("{comp}/")));
        }
        for c in members {
            render_change(&mut out, &style, c, if comp.is_empty() { "  " } else { "    " });
        }
    }
    let known_outputs: Vec<_> = plan.outputs.iter().collect();
    if !known_outputs.is_empty() {
        let _ = writeln!(out, "\n  {}", style.bold("Outputs:"));
        for (k, v) in known_outputs {
            let _ = writeln!(out, "    {k} = {}", show_value(v));
        }
    }
    let _ = writeln!(out, "\n{}", style.bold(&summary_line(plan)));
    if !plan.outputs_changed.is_empty() {
        let _ = writeln!(out, "Stack outputs to change: {}.", plan.outputs_changed.join(", "));
    }
    out
}

/// The plan as JSON, secrets redacted.
pub fn json(plan: &Plan) -> Value {
    let mut v = serde_json::to_value(plan).expect("a plan serializes");
    redact_in_place(&mut v);
    v["summary"] = serde_json::to_value(plan.summary()).expect("a summary serializes");
    v
}

fn redact_in_place(v: &mut Value) {
    *v = value::redact(v);
}
