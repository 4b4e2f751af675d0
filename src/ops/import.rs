//! Import: adopting objects that exist into state, one or many in one locked run.
//!
//! Rules kept here: every entry is checked before anything is read (a kind the program
//! knows, an address, not already in state, not listed twice, the kind the program
//! declares there if it declares it); every object is then read (in parallel, bounded),
//! and if any read fails or finds nothing, nothing is imported; otherwise all are recorded
//! in one save. An object the program does not declare yet is recorded protected and
//! `imported`, so no plan deletes it until the program declares it (whose options then
//! apply) or the user unprotects or forgets it. Secrets the program marks stay secret.
//! [`declarations`] writes, for each object adopted, the Rust statement that would declare
//! it (each kind's [`crate::provider::ResourceProvider::declaration`]), for `import` to print.

use futures::StreamExt as _;
use serde::Deserialize;

use crate::address::Address;
use crate::ops::Session;
use crate::provider::OpContext;
use crate::state::ResourceState;
use crate::value;
use crate::{Error, Result};

/// An entry checked: with its address and the provider of its kind.
type Checked<'e> = (
    &'e ImportEntry,
    Address,
    std::sync::Arc<dyn crate::provider::ResourceProvider>,
);

/// One object to adopt: an `[[import]]` table of an imports file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportEntry {
    /// The resource kind, such as `aws:ec2:Vpc`.
    pub kind: String,
    /// The address to record it at.
    pub address: String,
    /// The object's id, as the kind names it (`vpc-...`, a role name, `namespace/name`).
    pub id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportsFile {
    #[serde(default)]
    import: Vec<toml::Value>,
}

/// Reads an imports file: `[[import]]` tables with `kind`, `address` and `id`.
pub fn parse_imports(text: &str, file: &str) -> Result<Vec<ImportEntry>> {
    let parsed: ImportsFile = toml::from_str(text).map_err(|e| {
        Error::Usage(format!(
            "{file}: {}; write one [[import]] table per object with kind, address and id",
            e.message()
        ))
    })?;
    if parsed.import.is_empty() {
        return Err(Error::Usage(format!(
            "{file}: no [[import]] tables; write one per object with kind, address and id"
        )));
    }
    parsed
        .import
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let named = v
                .get("address")
                .and_then(|a| a.as_str())
                .map(|a| format!(" (`{a}`)"))
                .unwrap_or_default();
            v.try_into::<ImportEntry>().map_err(|e| {
                Error::Usage(format!(
                    "{file}: import #{}{named}: {}; each needs kind, address and id, nothing else",
                    i + 1,
                    e.message()
                ))
            })
        })
        .collect()
}

/// The Rust declaration of an adopted object, from its live inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    pub address: Address,
    /// The component its address puts it in (`network` for `network/vpc`), empty at the
    /// top: the statement belongs inside `stack.component("network", |stack| ...)`.
    pub component: String,
    /// `stack.add("vpc", ec2::Vpc::new(...))?;` (a `// comment` line first when the
    /// reader must fill something in), or `None` when its kind cannot write one.
    pub code: Option<String>,
}

/// The declaration of each object in `adopted`, in order, written by its kind from the
/// live inputs (secret values are never written out).
pub fn declarations(registry: &crate::provider::Registry, adopted: &[ResourceState]) -> Vec<Declaration> {
    adopted
        .iter()
        .map(|r| Declaration {
            address: r.address.clone(),
            component: r.address.component_path().to_string(),
            code: registry
                .get(&r.kind)
                .ok()
                .and_then(|p| p.declaration(r.address.name(), &r.inputs)),
        })
        .collect()
}

impl Session {
    /// Adopts an existing object of `kind` with `id` at `address`.
    pub async fn import(&self, kind: &str, address: &Address, id: &str) -> Result<ResourceState> {
        let entry = ImportEntry {
            kind: kind.to_string(),
            address: address.to_string(),
            id: id.to_string(),
        };
        let mut done = self.import_many(&[entry], 1).await?;
        Ok(done.remove(0))
    }

    /// Adopts every object of `entries` in one locked run, or none of them.
    pub async fn import_many(&self, entries: &[ImportEntry], parallelism: usize) -> Result<Vec<ResourceState>> {
        let checked = self.check_imports(entries)?;
        let mut locked = self.lock_for("import").await?;
        let result = async {
            for (i, (_, address, _)) in checked.iter().enumerate() {
                if locked.snapshot.get(address).is_some() {
                    return Err(Error::Usage(format!(
                        "import #{} (`{address}`): `{address}` is already in state; `state rm` it first to import another object there, or drop the entry",
                        i + 1
                    )));
                }
            }
            let stack = self.stack_id();
            let reads: Vec<_> = futures::stream::iter(checked.iter().map(|(e, address, provider)| {
                let ctx = OpContext::detached(address.clone()).in_stack(&stack);
                async move {
                    let read = provider
                        .read(&ctx, &e.id, &serde_json::Value::Null, &serde_json::Value::Null)
                        .await;
                    (e, address, provider, read)
                }
            }))
            .buffered(parallelism.max(1))
            .collect()
            .await;
            // Every read that failed or found nothing is named, and then nothing is imported.
            let failed: Vec<String> = reads
                .iter()
                .filter_map(|(e, address, _, read)| match read {
                    Ok(Some(_)) => None,
                    Ok(None) => Some(format!("`{address}`: no {} with id `{}` exists", e.kind, e.id)),
                    Err(err) => Some(format!("`{address}`: {err}")),
                })
                .collect();
            if !failed.is_empty() {
                return Err(Error::Usage(format!(
                    "{}; so nothing was imported (fix or drop those entries and import again)",
                    failed.join("; ")
                )));
            }
            let mut adopted = Vec::new();
            for (e, address, provider, read) in reads {
                let Ok(Some(live)) = read else {
                    unreachable!("every read succeeded")
                };
                let mut outputs = live.outputs;
                value::mark_secret_paths(&mut outputs, &provider.schema().secret_outputs);
                let desired = self.graph.get(address);
                let options = match desired {
                    Some(d) => crate::apply::stored_options(&d.options),
                    None => crate::state::StoredOptions {
                        protect: true,
                        imported: true,
                        ..Default::default()
                    },
                };
                adopted.push(ResourceState {
                    address: address.clone(),
                    kind: e.kind.clone(),
                    id: live.id,
                    inputs: match desired {
                        // Keep secrets declared secret by the program secret once imported.
                        Some(d) => value::copy_secret_marks(&d.inputs, live.inputs),
                        None => live.inputs,
                    },
                    outputs,
                    dependencies: desired.map(|d| d.dependencies.clone()).unwrap_or_default(),
                    provider: crate::apply::provider_of(&e.kind),
                    options,
                    unfinished: None,
                });
            }
            for r in &adopted {
                locked.snapshot.upsert(r.clone());
            }
            self.store.save(&mut locked.snapshot).await?;
            Ok(adopted)
        }
        .await;
        locked.lock.release().await?;
        result
    }

    /// Each entry with its address and provider, or the first problem, naming the entry.
    fn check_imports<'e>(&self, entries: &'e [ImportEntry]) -> Result<Vec<Checked<'e>>> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let which = format!("import #{} (`{}`)", i + 1, e.address);
            let address: Address = e
                .address
                .parse()
                .map_err(|err| Error::Usage(format!("{which}: {err}; fix its address")))?;
            let provider = self.registry.get(&e.kind).map_err(|_| {
                Error::Usage(format!(
                    "{which}: no resource kind named `{}` is known to this program; fix its kind (kinds look like aws:ec2:Vpc)",
                    e.kind
                ))
            })?;
            if let Some(d) = self.graph.get(&address)
                && d.kind != e.kind
            {
                return Err(Error::Usage(format!(
                    "{which}: the program declares `{address}` as {}, not {}; give that kind or another address",
                    d.kind, e.kind
                )));
            }
            if !seen.insert(address.clone()) {
                return Err(Error::Usage(format!(
                    "{which}: `{address}` is listed twice; keep one entry per address"
                )));
            }
            out.push((e, address, provider.clone()));
        }
        Ok(out)
    }
}
