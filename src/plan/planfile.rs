//! Saved plans (`plan --out FILE`, `apply FILE`).
//!
//! A plan file holds the plan with its secrets sealed under the stack's key, the state it
//! was made against and the program's fingerprint. Rules kept here: a plan file is
//! applied only to the same stack, the same state (lineage and serial) and the same
//! program; anything else is refused with the reason.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::plan::Plan;
use crate::secrets::SecretKey;

const FORMAT: &str = "spar-plan";
const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    #[error("plan file {file}: {message}")]
    Unreadable { file: String, message: String },
    #[error("plan file {file} was made for stack {planned}, not {current}")]
    OtherStack {
        file: String,
        planned: String,
        current: String,
    },
    #[error(
        "plan file {file} is stale: the state changed since it was made ({planned} -> {current}); run `plan` again"
    )]
    StateMoved {
        file: String,
        planned: String,
        current: String,
    },
    #[error("plan file {file} is stale: the program's desired graph changed since it was made; run `plan` again")]
    ProgramChanged { file: String },
}

#[derive(Serialize, Deserialize)]
struct PlanFile {
    format: String,
    version: u32,
    plan: Plan,
}

/// Writes `plan` to `path` with its secrets sealed.
pub fn save(path: &Path, plan: &Plan, key: &SecretKey) -> Result<(), PlanFileError> {
    let mut sealed = plan.clone();
    for c in &mut sealed.changes {
        c.before = c.before.as_ref().map(|v| key.seal(v));
        c.after = c.after.as_ref().map(|v| key.seal(v));
        for p in &mut c.properties {
            p.before = p.before.as_ref().map(|v| key.seal(v));
            p.after = p.after.as_ref().map(|v| key.seal(v));
        }
    }
    for v in sealed.outputs.values_mut() {
        *v = key.seal(v);
    }
    for p in &mut sealed.pending {
        p.inputs = key.seal(&p.inputs);
    }
    let file = PlanFile {
        format: FORMAT.into(),
        version: VERSION,
        plan: sealed,
    };
    let bytes = serde_json::to_vec_pretty(&file).expect("a plan serializes");
    // Owner-only from the first byte: a plan names the stack's resources and ids.
    let write = || -> std::io::Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(&bytes)?;
        f.sync_all()
    };
    write().map_err(|e| PlanFileError::Unreadable {
        file: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Reads a plan file and opens its secrets.
pub fn load(path: &Path, key: &SecretKey) -> Result<Plan, PlanFileError> {
    let name = path.display().to_string();
    let err = |message: String| PlanFileError::Unreadable {
        file: name.clone(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let file: PlanFile = serde_json::from_slice(&bytes).map_err(|e| err(format!("not a spar plan file: {e}")))?;
    if file.format != FORMAT || file.version > VERSION {
        return Err(err(format!(
            "unsupported plan format {} version {}",
            file.format, file.version
        )));
    }
    let mut plan = file.plan;
    let open = |v: &serde_json::Value| key.open(v).map_err(|e| err(e.to_string()));
    for c in &mut plan.changes {
        c.before = c.before.as_ref().map(open).transpose()?;
        c.after = c.after.as_ref().map(open).transpose()?;
        for p in &mut c.properties {
            p.before = p.before.as_ref().map(open).transpose()?;
            p.after = p.after.as_ref().map(open).transpose()?;
        }
    }
    for v in plan.outputs.values_mut() {
        *v = open(v)?;
    }
    for p in &mut plan.pending {
        p.inputs = open(&p.inputs)?;
    }
    Ok(plan)
}

/// Refuses a saved plan that no longer matches the stack, its state or its program.
pub fn check_current(
    path: &Path,
    plan: &Plan,
    stack: &str,
    state_fingerprint: &str,
    program_fingerprint: &str,
) -> Result<(), PlanFileError> {
    let file = path.display().to_string();
    if plan.stack != stack {
        return Err(PlanFileError::OtherStack {
            file,
            planned: plan.stack.clone(),
            current: stack.to_string(),
        });
    }
    if plan.base_state != state_fingerprint {
        return Err(PlanFileError::StateMoved {
            file,
            planned: plan.base_state.clone(),
            current: state_fingerprint.to_string(),
        });
    }
    if plan.program_fingerprint != program_fingerprint {
        return Err(PlanFileError::ProgramChanged { file });
    }
    Ok(())
}
