//! Invariants a program declares about itself, and commands of its own.
//!
//! A stack knows rules that no single resource can check: a taint on one object must match
//! a toleration on another, one name must be spelled the same in five places. The program
//! states each rule as a [`Check`] while it declares its resources (with the values it
//! declared, so a check can never disagree with the graph), and the CLI refuses to plan or
//! apply while a check fails unless the user waives that check by name.
//!
//! Rules kept here: a check has a stable kebab-case name (what `--waive` takes); a failure
//! is one sentence naming the resources and fields that disagree; a check declared twice
//! under one name keeps every failure; commands run only when asked for.

use std::fmt;

/// One invariant and what breaks it (nothing when it holds).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    pub name: String,
    pub description: String,
    pub failures: Vec<String>,
    /// What the check verified, one line each (a network path and the rules that open it,
    /// where a workload lands): shown by `check`, so a pass says what it proved.
    pub evidence: Vec<String>,
    /// Blocks only apply (plan shows what it would do, with a warning): for what a plan does
    /// not need, such as a secret that is read from the environment.
    pub apply_only: bool,
}

impl Check {
    /// A check named `name` (kebab-case, what `--waive` takes) that holds until a failure
    /// is added.
    pub fn new(name: &str, description: &str) -> Self {
        Check {
            name: name.to_string(),
            description: description.to_string(),
            failures: Vec::new(),
            evidence: Vec::new(),
            apply_only: false,
        }
    }

    /// With these failures.
    pub fn failures(mut self, failures: Vec<String>) -> Self {
        self.failures = failures;
        self
    }

    /// With these lines of evidence.
    pub fn evidence(mut self, evidence: Vec<String>) -> Self {
        self.evidence = evidence;
        self
    }

    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// What the program's lookups read, as a [`LookupCheck`] sees it: each lookup's object by
/// the lookup's address.
pub struct LookedUp<'a> {
    reads: &'a std::collections::BTreeMap<crate::address::Address, crate::provider::ReadResult>,
}

impl<'a> LookedUp<'a> {
    pub fn new(reads: &'a std::collections::BTreeMap<crate::address::Address, crate::provider::ReadResult>) -> Self {
        LookedUp { reads }
    }

    /// The outputs of the object the lookup at `address` read (null when it read none).
    pub fn outputs(&self, address: &crate::address::Address) -> &'a serde_json::Value {
        static NONE: serde_json::Value = serde_json::Value::Null;
        self.reads.get(address).map_or(&NONE, |r| &r.outputs)
    }

    /// The inputs the kind read back for that object, as an import records them.
    pub fn inputs(&self, address: &crate::address::Address) -> &'a serde_json::Value {
        static NONE: serde_json::Value = serde_json::Value::Null;
        self.reads.get(address).map_or(&NONE, |r| &r.inputs)
    }

    /// What the lookup at `address` read: the object's id, inputs and outputs (a set
    /// lookup's one read of every match: [`crate::provider::ReadResult::set`]).
    pub fn read(&self, address: &crate::address::Address) -> Option<&'a crate::provider::ReadResult> {
        self.reads.get(address)
    }

    /// `v` (a declared resource's inputs, say) with every plain reference to what a lookup
    /// read (an output, or `$id`) replaced by the value read; every other reference (to a
    /// managed resource, through a transform) is left as it is.
    pub fn resolve(&self, v: &serde_json::Value) -> serde_json::Value {
        use crate::value::{self, OutputExpr};
        use serde_json::Value;
        // Markers first: a plain reference is a string.
        if let Some(expr) = OutputExpr::from_marker(v) {
            if let OutputExpr::Ref { address, path } = expr
                && let Some(r) = self.reads.get(&address)
            {
                let found = match path.as_str() {
                    "$id" => Some(Value::String(r.id.clone())),
                    _ => value::get_path(&r.outputs, &value::Path::parse(&path)).cloned(),
                };
                if let Some(found) = found {
                    return found;
                }
            }
            return v.clone();
        }
        match v {
            Value::Object(m) => Value::Object(m.iter().map(|(k, x)| (k.clone(), self.resolve(x))).collect()),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.resolve(x)).collect()),
            other => other.clone(),
        }
    }

    /// Each object the set lookup at `address` found, with its id, inputs and outputs
    /// (none when it found none, or is not a set lookup).
    pub fn items(&self, address: &crate::address::Address) -> Vec<crate::provider::ReadResult> {
        self.reads.get(address).map(|r| r.items()).unwrap_or_default()
    }
}

/// A check over objects that exist outside the program (an existing cluster's node groups,
/// say), which `define` cannot see: it runs when planning, right after the lookups are
/// read, and is enforced as the other checks are (refused unless waived by name). `check`
/// lists it without running it (it needs the cloud).
pub struct LookupCheck {
    pub name: String,
    pub description: String,
    pub run: Box<dyn Fn(&LookedUp<'_>) -> Check + Send + Sync>,
}

impl fmt::Debug for LookupCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LookupCheck")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Runs `checks` on what the lookups read and refuses a failed one not in `waived`;
/// returns the checks with their verdicts (failed ones waived included).
pub fn run_lookup_checks(
    checks: &[LookupCheck],
    looked_up: &LookedUp<'_>,
    waived: &[String],
) -> Result<Vec<Check>, CheckError> {
    let verdicts: Vec<Check> = checks
        .iter()
        .map(|c| {
            let mut v = (c.run)(looked_up);
            v.name = c.name.clone();
            v.description = c.description.clone();
            v
        })
        .collect();
    // Waivers of the program's other checks were judged with them.
    let waived: Vec<String> = waived
        .iter()
        .filter(|w| checks.iter().any(|c| &c.name == *w))
        .cloned()
        .collect();
    enforce(&verdicts, &waived, false)?;
    Ok(verdicts)
}

/// A command a program adds to its CLI (such as `cost`), run with the loaded configuration.
pub struct StackCommand {
    pub name: String,
    pub about: String,
    pub run: Box<dyn FnOnce() -> Result<String, String>>,
}

impl fmt::Debug for StackCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StackCommand")
            .field("name", &self.name)
            .field("about", &self.about)
            .finish_non_exhaustive()
    }
}

/// Why checks stop a plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("{}", failed_message(.0))]
    Failed(Vec<Check>),
    #[error("--waive `{0}` names no check of this stack; `check` lists them ({1})")]
    UnknownWaiver(String, String),
}

fn failed_message(failed: &[Check]) -> String {
    let parts: Vec<String> = failed
        .iter()
        .map(|c| format!("check `{}` failed: {}", c.name, c.failures.join("; ")))
        .collect();
    let names: Vec<&str> = failed.iter().map(|c| c.name.as_str()).collect();
    format!(
        "{}. Fix the configuration, or waive with {}",
        parts.join(". "),
        names
            .iter()
            .map(|n| format!("`--waive {n}`"))
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// Adds `c` to `checks`, merging it into an earlier check of the same name.
pub(crate) fn push(checks: &mut Vec<Check>, c: Check) {
    match checks.iter_mut().find(|x| x.name == c.name) {
        Some(x) => {
            x.failures.extend(c.failures);
            x.evidence.extend(c.evidence);
        }
        None => checks.push(c),
    }
}

/// The failed checks that are not waived; an error when a waiver names no check. With
/// `for_apply` false, checks that only block apply do not count.
pub fn enforce(checks: &[Check], waived: &[String], for_apply: bool) -> Result<(), CheckError> {
    for w in waived {
        if !checks.iter().any(|c| &c.name == w) {
            let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
            let known = if names.is_empty() {
                "it declares none".to_string()
            } else {
                names.join(", ")
            };
            return Err(CheckError::UnknownWaiver(w.clone(), known));
        }
    }
    let failed: Vec<Check> = checks
        .iter()
        .filter(|c| !c.passed() && !waived.contains(&c.name) && (for_apply || !c.apply_only))
        .cloned()
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CheckError::Failed(failed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, failures: &[&str]) -> Check {
        Check::new(name, "").failures(failures.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn failures_block_until_waived_by_name() {
        let checks = vec![check("a", &[]), check("b", &["x disagrees with y"])];
        let err = enforce(&checks, &[], false).unwrap_err().to_string();
        assert!(err.contains("check `b` failed: x disagrees with y"), "{err}");
        assert!(err.contains("`--waive b`"), "{err}");
        assert!(enforce(&checks, &["b".into()], true).is_ok());
        let err = enforce(&checks, &["c".into()], true).unwrap_err().to_string();
        assert!(
            err.contains("--waive `c` names no check") && err.contains("a, b"),
            "{err}"
        );
    }

    #[test]
    fn apply_only_checks_let_plans_through() {
        let mut c = check("secret-present", &["GITHUB_APP_PRIVATE_KEY is not set"]);
        c.apply_only = true;
        let checks = vec![c];
        assert!(enforce(&checks, &[], false).is_ok());
        assert!(enforce(&checks, &[], true).is_err());
    }

    #[test]
    fn a_name_declared_twice_keeps_every_failure() {
        let mut checks = Vec::new();
        push(&mut checks, check("a", &["one"]));
        push(&mut checks, check("a", &["two"]));
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].failures, vec!["one", "two"]);
    }
}
