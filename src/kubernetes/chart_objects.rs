//! What a chart's rendering means to `helm install`: the documents `helm template` prints,
//! each with the template it came from, read the way Helm's install reads them.
//!
//! Rules kept here (Helm v3/v4 `pkg/action/install.go`, `pkg/release/hook.go`,
//! `pkg/kube/client.go`; the Helm docs "Chart Hooks", "Custom Resource Definitions" and
//! "Resource policy"):
//! - documents are split on `---` lines; a document that is empty, only comments or `null`
//!   (a template that renders nothing) is no object; a `kind: List` (or `*List`) stands for
//!   its items, which Helm's client flattens;
//! - a key whose value is `null` is no field: the API server stores none (upstream templates
//!   render `annotations:` with nothing under it, and `creationTimestamp: null`), so it is
//!   dropped before an object is applied or compared with what the server holds;
//! - a document whose `# Source:` is under `crds/` (what `--include-crds` prints) is a CRD of
//!   the chart's `crds/` directory: Helm installs it and never deletes it;
//! - an object annotated `helm.sh/resource-policy: keep` is installed and tracked but never
//!   deleted, neither when it leaves the rendering nor when the release goes;
//! - an object annotated `helm.sh/hook` is a hook, not part of the release: it runs at its
//!   events (`pre-install`, `post-install`, `pre-upgrade`, `post-upgrade`, ...), in order of
//!   `helm.sh/hook-weight` (default 0) then rendering order, is awaited, and is deleted as
//!   `helm.sh/hook-delete-policy` says (`before-hook-creation` when it names none,
//!   `hook-succeeded`, `hook-failed`).

use serde_json::Value;

/// The annotation naming a hook's events.
pub const HOOK: &str = "helm.sh/hook";
const HOOK_WEIGHT: &str = "helm.sh/hook-weight";
const HOOK_DELETE_POLICY: &str = "helm.sh/hook-delete-policy";
const RESOURCE_POLICY: &str = "helm.sh/resource-policy";

/// One rendered object.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartObject {
    pub manifest: Value,
    /// The template it came from (`chart/templates/x.yaml`), as `# Source:` said.
    pub source: Option<String>,
    /// It came from the chart's `crds/` directory.
    pub from_crds_dir: bool,
    pub hook: Option<Hook>,
}

impl ChartObject {
    /// Helm never deletes it: a `crds/` CRD, or `helm.sh/resource-policy: keep`.
    pub fn keep(&self) -> bool {
        self.from_crds_dir || annotation(&self.manifest, RESOURCE_POLICY) == Some("keep")
    }
}

/// A hook's annotations, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub events: Vec<String>,
    pub weight: i64,
    pub delete_policies: Vec<String>,
}

impl Hook {
    pub fn runs_on(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == event)
    }

    pub fn deletes(&self, policy: &str) -> bool {
        self.delete_policies.iter().any(|p| p == policy)
    }
}

fn annotation<'a>(m: &'a Value, key: &str) -> Option<&'a str> {
    m["metadata"]["annotations"][key].as_str()
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn hook_of(m: &Value) -> Option<Hook> {
    let events = split_list(annotation(m, HOOK)?);
    if events.is_empty() {
        return None;
    }
    let mut delete_policies = annotation(m, HOOK_DELETE_POLICY).map(split_list).unwrap_or_default();
    if delete_policies.is_empty() {
        delete_policies.push("before-hook-creation".into());
    }
    Some(Hook {
        events,
        weight: annotation(m, HOOK_WEIGHT)
            .and_then(|w| w.trim().parse().ok())
            .unwrap_or(0),
        delete_policies,
    })
}

/// Reads what `helm template` printed; an error names the document that is not YAML.
pub fn parse(text: &str) -> Result<Vec<ChartObject>, String> {
    let mut out = Vec::new();
    let mut doc = String::new();
    let mut docs = Vec::new();
    for line in text.lines() {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            docs.push(std::mem::take(&mut doc));
            continue;
        }
        doc.push_str(line);
        doc.push('\n');
    }
    docs.push(doc);
    // A `# Source:` line names the template of the documents after it, up to the next one:
    // helm prints it once per file, and a `crds/` file that starts with `---` (or holds
    // several documents) puts it on a document of its own.
    let mut source: Option<String> = None;
    for d in docs {
        if let Some(s) = d.lines().find_map(|l| l.trim().strip_prefix("# Source:")) {
            source = Some(s.trim().to_string());
        }
        if d.lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            continue;
        }
        let v: Value = serde_saphyr::from_str(&d).map_err(|e| {
            format!(
                "{} is not YAML spar can read: {e}",
                source.as_deref().unwrap_or("a rendered document")
            )
        })?;
        let from_crds_dir = source.as_deref().is_some_and(|s| s.split('/').any(|p| p == "crds"));
        push_flattened(v, &source, from_crds_dir, &mut out);
    }
    Ok(out)
}

fn push_flattened(v: Value, source: &Option<String>, from_crds_dir: bool, out: &mut Vec<ChartObject>) {
    if v.as_object().is_none_or(|o| o.is_empty()) {
        return;
    }
    let is_list = v["kind"].as_str().is_some_and(|k| k.ends_with("List")) && v["items"].is_array();
    if is_list {
        for item in v["items"].as_array().cloned().unwrap_or_default() {
            push_flattened(item, source, from_crds_dir, out);
        }
        return;
    }
    let v = without_nulls(v);
    out.push(ChartObject {
        hook: hook_of(&v),
        manifest: v,
        source: source.clone(),
        from_crds_dir,
    });
}

/// `v` without the object keys whose value is `null` (at any depth; list items stay).
fn without_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, x)| !x.is_null())
                .map(|(k, x)| (k, without_nulls(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

/// The hooks of `objects` that run at `event`, in Helm's order: weight, then rendering.
pub fn hooks_at<'a>(objects: &'a [ChartObject], event: &str) -> Vec<&'a ChartObject> {
    let mut hooks: Vec<(usize, &ChartObject)> = objects
        .iter()
        .enumerate()
        .filter(|(_, o)| o.hook.as_ref().is_some_and(|h| h.runs_on(event)))
        .collect();
    hooks.sort_by_key(|(i, o)| (o.hook.as_ref().map_or(0, |h| h.weight), *i));
    hooks.into_iter().map(|(_, o)| o).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_lists_and_empty_templates() {
        let text = "---\n# Source: c/templates/empty.yaml\n\n---\n# Source: c/crds/y.yaml\n---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: ys.example.com\n---\n# Source: c/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n# Source: c/templates/list.yaml\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: b\n- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: c\n---\n# Source: c/crds/x.yaml\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: xs.example.com\n---\nnull\n";
        let objs = parse(text).unwrap();
        let names: Vec<&str> = objs
            .iter()
            .map(|o| o.manifest["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["ys.example.com", "a", "b", "c", "xs.example.com"]);
        assert_eq!(objs[2].source.as_deref(), Some("c/templates/list.yaml"));
        assert!(objs[0].from_crds_dir, "a crds/ file's Source on a document of its own");
        assert!(!objs[1].keep());
        assert!(objs[4].from_crds_dir && objs[4].keep());
        assert!(parse("---\nkind: [unclosed\n").unwrap_err().contains("not YAML"));
        let nulls = parse("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  creationTimestamp: null\n  annotations:\ndata:\n  a: x\n").unwrap();
        assert_eq!(
            nulls[0].manifest,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "x"}})
        );
    }

    #[test]
    fn hooks_and_keep() {
        let m = |name: &str, ann: Value| json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "annotations": ann}});
        let objs: Vec<ChartObject> = [
            m(
                "late",
                json!({"helm.sh/hook": "post-install,post-upgrade", "helm.sh/hook-weight": "5"}),
            ),
            m(
                "early",
                json!({"helm.sh/hook": "post-install", "helm.sh/hook-weight": "-5",
                "helm.sh/hook-delete-policy": "hook-succeeded, before-hook-creation"}),
            ),
            m("kept", json!({"helm.sh/resource-policy": "keep"})),
        ]
        .into_iter()
        .map(|v| ChartObject {
            hook: hook_of(&v),
            manifest: v,
            source: None,
            from_crds_dir: false,
        })
        .collect();
        let post: Vec<&str> = hooks_at(&objs, "post-install")
            .iter()
            .map(|o| o.manifest["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(post, ["early", "late"]);
        assert_eq!(hooks_at(&objs, "post-upgrade").len(), 1);
        assert!(hooks_at(&objs, "pre-install").is_empty());
        let late = objs[0].hook.as_ref().unwrap();
        assert_eq!(late.delete_policies, ["before-hook-creation"], "Helm's default policy");
        assert!(objs[1].hook.as_ref().unwrap().deletes("hook-succeeded"));
        assert!(objs[2].hook.is_none() && objs[2].keep());
    }
}
