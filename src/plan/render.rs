//! Renders a plan for people (text, colour on a terminal) and for programs (JSON).
//!
//! Rules kept here: secrets are always shown as `(sensitive value)` and unknowns as
//! `(known after apply)`, in text and JSON alike; file modes (a kind's schema
//! `file_modes`) are shown in octal in text and stay numbers in JSON; changes are grouped
//! by component in plan order; the last line is the summary `Plan: N to create, N to
//! update, N to replace, N to delete.`

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
            Op::Read => "36",
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

/// Shows an input value at `path` of a change: as [`show_value`], but a number at one of the
/// kind's file-mode paths ([`crate::provider::Schema::file_modes`]) in octal, `0644`.
pub fn show_input(v: &Value, path: &Path, file_modes: &[Path]) -> String {
    match v.as_u64() {
        Some(mode) if file_modes.iter().any(|p| p.is_prefix_of(path)) => format!("{mode:04o}"),
        _ => show_value(v),
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

fn property_line(style: &Style, c: &PropertyChange, forces: bool, file_modes: &[Path]) -> String {
    let show = |v: &Value| show_input(v, &c.path, file_modes);
    let mut line = match (&c.before, &c.after) {
        (None, Some(a)) => format!("{}: {}", c.path, style.op(Op::Create, &show(a))),
        (Some(b), None) => format!(
            "{}: {} -> {}",
            c.path,
            style.op(Op::Delete, &show(b)),
            style.dim("(removed)")
        ),
        (Some(b), Some(a)) => format!("{}: {} -> {}", c.path, show(b), style.op(Op::Update, &show(a))),
        (None, None) => c.path.to_string(),
    };
    if forces {
        line.push_str(&style.paint("35", "  # forces replacement"));
    }
    line
}

fn render_change(out: &mut String, style: &Style, c: &Change, indent: &str, file_modes: &[Path]) {
    let symbol = match (c.op, &c.moved_from) {
        (Op::Same, Some(_)) => "~",
        _ => c.op.symbol(c.delete_before_replace),
    };
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
    if let Some(from) = &c.moved_from {
        let _ = writeln!(out, "{pad}{}", style.op(Op::Update, &format!("~ moved from {from}")));
    }
    match c.op {
        Op::Create => {
            let mut ls = Vec::new();
            if let Some(a) = &c.after {
                leaves(a, &Path::default(), &mut ls);
            }
            for (p, v) in ls {
                let _ = writeln!(
                    out,
                    "{pad}{}: {}",
                    p,
                    style.op(Op::Create, &show_input(&v, &p, file_modes))
                );
            }
        }
        Op::Update | Op::Replace => {
            if let Some(r) = &c.replace_reason {
                let _ = writeln!(out, "{pad}{}", style.paint("35", &format!("# replaced because {r}")));
            }
            for p in &c.properties {
                let forces = c.replace_paths.contains(&p.path);
                let _ = writeln!(out, "{pad}{}", property_line(style, p, forces, file_modes));
            }
        }
        Op::Delete => {
            if let Some(id) = &c.id {
                let _ = writeln!(out, "{pad}{}", style.dim(&format!("id: {id}")));
            }
        }
        Op::Same => {}
        Op::Read => {
            if let Some(id) = &c.id {
                let _ = writeln!(out, "{pad}{}", style.dim(&format!("id: {id} (read, not managed)")));
            }
        }
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
    let moved = if s.moved > 0 {
        format!(" {} moved.", s.moved)
    } else {
        String::new()
    };
    let read = if s.read > 0 {
        format!(" {} read.", s.read)
    } else {
        String::new()
    };
    format!(
        "Plan: {} to create, {} to update, {} to replace, {} to delete.{moved}{read}",
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
        for c in plan.changes.iter().filter(|c| c.op == Op::Read) {
            let _ = writeln!(
                out,
                "\n  {} {}  {}\n        {}",
                style.op(Op::Read, " <="),
                style.bold(c.address.as_str()),
                style.dim(&c.kind),
                style.dim(&format!("id: {} (read, not managed)", c.id.as_deref().unwrap_or("?")))
            );
        }
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
    for c in plan
        .changes
        .iter()
        .filter(|c| c.op != Op::Same || c.moved_from.is_some())
    {
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
            let file_modes = plan.file_modes.get(&c.kind).map_or(&[][..], Vec::as_slice);
            render_change(
                &mut out,
                &style,
                c,
                if comp.is_empty() { "  " } else { "    " },
                file_modes,
            );
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

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::{Style, text};
    use crate::builtin::local;
    use crate::model::config::StackConfig;
    use crate::model::stack::Stack;
    use crate::plan::diff::{PlanOptions, plan};
    use crate::plan::{Op, Plan};
    use crate::provider::Registry;
    use crate::state::{ResourceState, Snapshot};

    /// Plans one `local:File` of `mode` against a state holding `stored` inputs (none: a
    /// new stack), as a state file written by any spar stores them: the mode as a number.
    fn plan_file(mode: u32, stored: Option<Value>) -> Plan {
        let mut s = Stack::new("p", "dev", StackConfig::empty("dev.toml".into()));
        s.add("f", local::File::new("/srv/f", "x\n").mode(mode)).unwrap();
        let program = s.into_program().unwrap();
        let mut state = Snapshot::empty();
        if let Some(inputs) = stored {
            state.upsert(ResourceState {
                address: "f".parse().unwrap(),
                kind: local::KIND.into(),
                id: "/srv/f".into(),
                inputs,
                outputs: json!({"path": "/srv/f"}),
                dependencies: Vec::new(),
                provider: "local".into(),
                options: Default::default(),
                unfinished: None,
            });
        }
        plan(
            "p",
            "dev",
            &program.graph,
            &state,
            &Registry::builtin(),
            &PlanOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn a_file_mode_shows_in_octal_and_stays_a_number() {
        let stored = json!({"path": "/srv/f", "content": "x\n", "mode": 420});
        let p = plan_file(0o600, Some(stored.clone()));
        assert_eq!(p.changes[0].op, Op::Update);
        let shown = text(&p, Style { color: false });
        assert!(shown.contains("mode: 0644 -> 0600"), "{shown}");
        assert!(!shown.contains("420") && !shown.contains("384"), "{shown}");
        // JSON (and saved plans) keep the number, and say where modes are (paths as
        // segment lists, as `replace_paths` are).
        let j = super::json(&p);
        assert_eq!(j["changes"][0]["properties"][0]["before"], 420);
        assert_eq!(j["changes"][0]["properties"][0]["after"], 384);
        assert_eq!(j["file_modes"]["local:File"], json!([["mode"]]));

        // A create shows it the same way; sticky and setuid bits too.
        let shown = text(&plan_file(0o1777, None), Style { color: false });
        assert!(shown.contains("mode: 1777"), "{shown}");

        // A state file (modes stored as numbers, as ever) with the same mode: no change.
        let p = plan_file(0o644, Some(stored));
        assert_eq!(p.changes[0].op, Op::Same, "{:?}", p.changes[0]);
        assert!(!p.has_changes() && p.file_modes.is_empty(), "{p:?}");
    }
}
