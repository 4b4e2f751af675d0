//! `kubernetes:Chart`: a Helm chart rendered by a `helm template`-compatible command, its
//! objects applied and tracked by spar itself (no Helm release, no Tiller-style state).
//!
//! Rules kept here:
//! - rendering runs `<helm> template RELEASE CHART --namespace NS --values - --skip-tests
//!   [--include-crds] [--version V] [--repo URL]` with the values as JSON on stdin; `<helm>` is the `helm`
//!   input, else `SPAR_HELM`, else `helm`; a failed rendering fails the operation with Helm's
//!   own message;
//! - objects are applied server-side as `spar` (as `kubernetes:Object` does): namespaces first,
//!   then CRDs (waited until established), then the rest in Helm's order; then, with `wait`,
//!   every object's readiness is awaited; namespaced objects that name no namespace go to the
//!   release namespace;
//! - what the rendering means is Helm's (see `chart_objects`): `kind: List` documents stand
//!   for their items; a cluster-scoped object's namespace is dropped; hooks are not part of
//!   the release: the `pre-install`/`pre-upgrade` ones run before the objects and the
//!   `post-*` ones after, each awaited and deleted per its delete policy; `pre-delete`,
//!   `post-delete` and test hooks are not run (`--skip-tests`);
//! - the outputs list every object of the release applied (identity and uid; `keep` for a
//!   `crds/` CRD or `helm.sh/resource-policy: keep`); an update applies the new rendering
//!   and then deletes (prunes) the objects that left it, last first; delete removes every
//!   object, last first, CRDs and namespaces after what they hold, waiting until gone;
//!   objects marked `keep` are never deleted, only no longer tracked;
//! - a plan previews a create or an update by rendering the new values: the objects it
//!   adds and the ones it would prune are listed under the change;
//! - `read` renders again and projects each live object of the release onto its rendered
//!   manifest (as applied: namespace resolved or dropped); objects that differ in a path
//!   (with the paths, never the values, which may be secrets) or are missing are reported
//!   under the input `drift` (which the program never sets), so drift shows per object and
//!   the next apply re-applies the chart; an object that differs in no path has not drifted.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;

use super::chart_objects::{self, ChartObject};
use super::connection::Connection;
use super::object::{Placement, apply_manifest, delete_manifest, identity_manifest, read_manifest, wait_applied};
use super::provider::KubeProvider;
use crate::declaration::Expr;
use crate::model::{Handle, Output, Resource};
use crate::provider::{Created, OpContext, ProviderError, ReadResult, ResourceProvider, Schema};

pub const KIND: &str = "kubernetes:Chart";

/// The environment variable naming the `helm template`-compatible command.
pub const HELM_ENV: &str = "SPAR_HELM";

/// A Helm chart installed by spar: chart, release, namespace and values `V` (JSON or any
/// serializable struct, possibly holding outputs and secrets).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Chart<V = Value> {
    provider: Output<Connection>,
    chart: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    repo: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    release: String,
    namespace: String,
    values: V,
    #[serde(skip_serializing_if = "Option::is_none")]
    helm: Option<String>,
    #[serde(skip_serializing_if = "is_false")]
    create_namespace: bool,
    include_crds: bool,
    wait: bool,
    #[serde(skip_serializing_if = "is_false")]
    force: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Chart<Value> {
    /// The chart at `chart` (a local chart directory or `.tgz`) as release `release` in
    /// `namespace`, with no values.
    pub fn new(provider: &Handle<KubeProvider>, chart: &str, release: &str, namespace: &str) -> Self {
        Chart {
            provider: provider.connection(),
            chart: chart.to_string(),
            repo: None,
            version: None,
            release: release.to_string(),
            namespace: namespace.to_string(),
            values: json!({}),
            helm: None,
            create_namespace: false,
            include_crds: true,
            wait: true,
            force: false,
        }
    }
}

impl<V> Chart<V> {
    /// The chart's values (a `json!` value or a typed struct).
    pub fn values<W: Serialize>(self, values: W) -> Chart<W> {
        Chart {
            provider: self.provider,
            chart: self.chart,
            repo: self.repo,
            version: self.version,
            release: self.release,
            namespace: self.namespace,
            values,
            helm: self.helm,
            create_namespace: self.create_namespace,
            include_crds: self.include_crds,
            wait: self.wait,
            force: self.force,
        }
    }

    /// Finds the chart by name in the chart repository at `url` (`--repo`).
    pub fn repository(mut self, url: &str) -> Self {
        self.repo = Some(url.to_string());
        self
    }

    /// The chart version (`--version`).
    pub fn version(mut self, v: &str) -> Self {
        self.version = Some(v.to_string());
        self
    }

    /// The `helm template`-compatible command (default: `SPAR_HELM`, else `helm`).
    pub fn helm(mut self, command: &str) -> Self {
        self.helm = Some(command.to_string());
        self
    }

    /// Creates (and on delete removes) the release namespace.
    pub fn create_namespace(mut self) -> Self {
        self.create_namespace = true;
        self
    }

    /// Leaves the chart's `crds/` out.
    pub fn skip_crds(mut self) -> Self {
        self.include_crds = false;
        self
    }

    /// Does not wait for readiness after applying.
    pub fn no_wait(mut self) -> Self {
        self.wait = false;
        self
    }

    /// Takes over fields other field managers own.
    pub fn force(mut self) -> Self {
        self.force = true;
        self
    }
}

impl<V: Serialize> Resource for Chart<V> {
    fn kind(&self) -> String {
        KIND.into()
    }
    fn provider(&self) -> Arc<dyn ResourceProvider> {
        Arc::new(ChartProvider::new())
    }
}

impl<V> Handle<Chart<V>> {
    /// The objects the chart made: `{apiVersion, kind, name, namespace, uid}` each.
    pub fn objects(&self) -> Output<Vec<Value>> {
        self.output("objects")
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChartInputs {
    provider: Connection,
    #[serde(flatten)]
    template: ChartTemplate,
    #[serde(default = "yes")]
    wait: bool,
    #[serde(default)]
    force: bool,
}

/// What `helm template` needs of a chart's inputs (no connection: rendering needs no cluster).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChartTemplate {
    chart: String,
    #[serde(default)]
    repo: Option<String>,
    #[serde(default)]
    version: Option<String>,
    release: String,
    namespace: String,
    #[serde(default)]
    values: Value,
    #[serde(default)]
    helm: Option<String>,
    #[serde(default)]
    create_namespace: bool,
    #[serde(default = "yes")]
    include_crds: bool,
}

impl std::ops::Deref for ChartInputs {
    type Target = ChartTemplate;
    fn deref(&self) -> &ChartTemplate {
        &self.template
    }
}

fn yes() -> bool {
    true
}

impl ChartInputs {
    fn parse(inputs: &Value) -> Result<Self, ProviderError> {
        serde_json::from_value(inputs.clone())
            .map_err(|e| ProviderError::InvalidInput(format!("invalid kubernetes:Chart inputs: {e}")))
    }

    fn placement(&self) -> Placement<'_> {
        Placement {
            ns_override: None,
            default_ns: Some(&self.namespace),
            drop_cluster_namespace: true,
        }
    }
}

/// The `helm template` command for the chart: the program and its arguments (values come
/// on stdin).
fn template_command(i: &ChartTemplate) -> (String, Vec<String>) {
    let helm = i
        .helm
        .clone()
        .or_else(|| std::env::var(HELM_ENV).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "helm".to_string());
    let mut args: Vec<String> = ["template", &i.release, &i.chart, "--namespace", &i.namespace]
        .into_iter()
        .chain(["--values", "-", "--skip-tests"])
        .map(str::to_string)
        .collect();
    if i.include_crds {
        args.push("--include-crds".into());
    }
    if let Some(v) = &i.version {
        args.extend(["--version".to_string(), v.clone()]);
    }
    if let Some(r) = &i.repo {
        args.extend(["--repo".to_string(), r.clone()]);
    }
    (helm, args)
}

/// Renders the chart: its manifests, namespaces first, then CRDs, then Helm's order.
async fn render(i: &ChartInputs) -> Result<Vec<ChartObject>, ProviderError> {
    let (helm, args) = template_command(i);
    let mut cmd = tokio::process::Command::new(&helm);
    cmd.args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let what = format!("`{helm} template {} {}`", i.release, i.chart);
    let mut child = cmd
        .spawn()
        .map_err(|e| ProviderError::msg(format!("running {what}: {e} (set the chart's `helm` or {HELM_ENV})")))?;
    let values = serde_json::to_vec(&i.values).map_err(|e| ProviderError::msg(e.to_string()))?;
    // The values are written while the output is read: Helm may fail (say, a registry out of
    // reach) before reading values larger than a pipe holds, and its message is the error
    // then, not the broken pipe; closing stdin (the end of the values) is dropping it.
    let stdin = child.stdin.take();
    let feed = async move {
        match stdin {
            Some(mut stdin) => stdin.write_all(&values).await,
            None => Ok(()),
        }
    };
    let (fed, out) = tokio::join!(feed, child.wait_with_output());
    let out = out.map_err(|e| ProviderError::msg(format!("running {what}: {e}")))?;
    rendered(i, &what, out, fed)
}

/// Renders a declared chart (`inputs` as the graph holds them) without a cluster or a
/// network, for offline analyses: `Ok(None)` when the chart is not a local directory
/// (an `oci://` or repository chart needs the registry); values known only after apply
/// are rendered as `(known after apply)`, secrets as `(sensitive value)`.
pub fn render_offline(inputs: &Value) -> Result<Option<Vec<Value>>, ProviderError> {
    let mut i: ChartTemplate = serde_json::from_value(crate::value::redact(inputs))
        .map_err(|e| ProviderError::InvalidInput(format!("invalid kubernetes:Chart inputs: {e}")))?;
    if i.repo.is_some() || !std::path::Path::new(&i.chart).is_dir() {
        return Ok(None);
    }
    i.version = None;
    let (helm, args) = template_command(&i);
    let what = format!("`{helm} template {} {}`", i.release, i.chart);
    let mut child = std::process::Command::new(&helm)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ProviderError::msg(format!("running {what}: {e} (set the chart's `helm` or {HELM_ENV})")))?;
    let values = serde_json::to_vec(&i.values).map_err(|e| ProviderError::msg(e.to_string()))?;
    let stdin = child.stdin.take();
    // Fed from a thread while the output is read, as in `render`.
    let feeder = std::thread::spawn(move || match stdin {
        Some(mut stdin) => std::io::Write::write_all(&mut stdin, &values),
        None => Ok(()),
    });
    let out = child
        .wait_with_output()
        .map_err(|e| ProviderError::msg(format!("running {what}: {e}")))?;
    let fed = feeder
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the values writer panicked")));
    rendered(&i, &what, out, fed).map(|objs| Some(objs.into_iter().map(|o| o.manifest).collect()))
}

/// The objects `helm template` printed (see `chart_objects`), namespaces first, then CRDs,
/// then Helm's order.
fn rendered(
    i: &ChartTemplate,
    what: &str,
    out: std::process::Output,
    fed: std::io::Result<()>,
) -> Result<Vec<ChartObject>, ProviderError> {
    if !out.status.success() {
        return Err(ProviderError::msg(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    fed.map_err(|e| ProviderError::msg(format!("writing values to {what}: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut objects =
        chart_objects::parse(&text).map_err(|e| ProviderError::msg(format!("{what} printed YAML: {e}")))?;
    if i.create_namespace
        && !objects
            .iter()
            .any(|o| o.manifest["kind"] == "Namespace" && o.manifest["metadata"]["name"] == i.namespace.as_str())
    {
        objects.insert(
            0,
            ChartObject {
                manifest: json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": i.namespace}}),
                source: None,
                from_crds_dir: false,
                hook: None,
            },
        );
    }
    let rank = |o: &ChartObject| match o.manifest["kind"].as_str() {
        Some("Namespace") => 0,
        Some("CustomResourceDefinition") => 1,
        _ => 2,
    };
    objects.sort_by_key(rank); // stable: Helm's order within each rank
    Ok(objects)
}

/// The id of one listed object (as `kubernetes:Object` names it).
fn listed_id(o: &Value) -> String {
    let s = |k: &str| o[k].as_str().unwrap_or_default().to_string();
    match o["namespace"].as_str().filter(|n| !n.is_empty()) {
        Some(ns) => format!("{}:{}:{ns}/{}", s("apiVersion"), s("kind"), s("name")),
        None => format!("{}:{}:{}", s("apiVersion"), s("kind"), s("name")),
    }
}

/// The id of a rendered object found missing: as listed in the outputs when it was applied.
fn missing_id(m: &Value, outputs: &Value) -> String {
    let same = |o: &Value| {
        o["apiVersion"] == m["apiVersion"]
            && o["kind"] == m["kind"]
            && o["name"] == m["metadata"]["name"]
            && m["metadata"]["namespace"]
                .as_str()
                .is_none_or(|ns| o["namespace"].as_str() == Some(ns))
    };
    match listed(outputs).iter().find(|o| same(o)) {
        Some(o) => listed_id(o),
        None => format!(
            "{}:{}:{}",
            m["apiVersion"].as_str().unwrap_or_default(),
            m["kind"].as_str().unwrap_or_default(),
            m["metadata"]["name"].as_str().unwrap_or_default()
        ),
    }
}

/// The provider of `kubernetes:Chart`.
pub struct ChartProvider {
    schema: Schema,
}

impl ChartProvider {
    pub fn new() -> Self {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        ChartProvider {
            schema: SCHEMA
                .get_or_init(|| {
                    // A new release may render objects of the same names: remove the old first.
                    Schema::new()
                        .replace_on(&["release", "namespace"])
                        .volatile_outputs(&["objects"])
                        .delete_before_replace(true)
                })
                .clone(),
        }
    }

    /// Renders and applies every object of the release, with the hooks of `phase`
    /// (`install` or `upgrade`) before and after; returns the outputs listing the release's
    /// objects (hooks are not part of it; objects Helm never deletes are marked `keep`).
    async fn install(&self, ctx: &OpContext, i: &ChartInputs, phase: &str) -> Result<Value, ProviderError> {
        let objects = render(i).await?;
        let release: Vec<&ChartObject> = objects.iter().filter(|o| o.hook.is_none()).collect();
        // As helm install: the release namespace (with --create-namespace) and the CRDs of
        // `crds/` before the pre-install hooks, which may need both; then the rest.
        let early = |o: &ChartObject| o.from_crds_dir || o.manifest["kind"] == "Namespace";
        let (first, rest): (Vec<&ChartObject>, Vec<&ChartObject>) = release.iter().partition(|o| early(o));
        if !first.is_empty() {
            ctx.progress(&format!(
                "applying {} namespaces and crds/ CRDs of {}",
                first.len(),
                i.chart
            ));
        }
        let mut applied = Vec::new();
        for (n, o) in first.iter().chain(&rest).enumerate() {
            if n == first.len() {
                self.run_hooks(ctx, i, &objects, &format!("pre-{phase}")).await?;
                ctx.progress(&format!("applying {} objects of {}", rest.len(), i.chart));
            }
            let m = &o.manifest;
            let a = apply_manifest(&i.provider, m, i.placement(), i.force).await?;
            // Custom resources of the chart need their CRDs served before they are applied.
            if m["kind"] == "CustomResourceDefinition" {
                wait_applied(ctx, &a).await?;
            }
            applied.push(a);
        }
        if rest.is_empty() {
            self.run_hooks(ctx, i, &objects, &format!("pre-{phase}")).await?;
        }
        if i.wait {
            for a in &applied {
                wait_applied(ctx, a).await?;
            }
        }
        self.run_hooks(ctx, i, &objects, &format!("post-{phase}")).await?;
        let listed: Vec<Value> = first
            .iter()
            .chain(&rest)
            .zip(&applied)
            .map(|(o, a)| {
                let mut out = a.outputs.clone();
                if o.keep() {
                    out["keep"] = json!(true);
                }
                out
            })
            .collect();
        Ok(json!({
            "release": i.release,
            "namespace": i.namespace,
            "objects": listed,
        }))
    }

    /// Runs the hooks of `event` as Helm does: in weight order, each deleted first under
    /// `before-hook-creation`, applied, awaited (a Job until it completes), then deleted
    /// under `hook-succeeded` (or, when it failed, `hook-failed`).
    async fn run_hooks(
        &self,
        ctx: &OpContext,
        i: &ChartInputs,
        objects: &[ChartObject],
        event: &str,
    ) -> Result<(), ProviderError> {
        for o in chart_objects::hooks_at(objects, event) {
            let hook = o.hook.as_ref().expect("hooks_at returns hooks");
            let m = &o.manifest;
            let name = format!(
                "{} {}",
                m["kind"].as_str().unwrap_or_default(),
                m["metadata"]["name"].as_str().unwrap_or_default()
            );
            ctx.progress(&format!("running {event} hook {name}"));
            if hook.deletes("before-hook-creation") {
                delete_manifest(ctx, &i.provider, m, i.placement(), None, None).await?;
            }
            let a = apply_manifest(&i.provider, m, i.placement(), i.force).await?;
            match wait_applied(ctx, &a).await {
                Ok(()) => {
                    if hook.deletes("hook-succeeded") {
                        delete_manifest(ctx, &i.provider, m, i.placement(), None, None).await?;
                    }
                }
                Err(e) => {
                    if hook.deletes("hook-failed") {
                        delete_manifest(ctx, &i.provider, m, i.placement(), None, None).await?;
                    }
                    return Err(ProviderError::msg(format!("{event} hook {name} failed: {e}")));
                }
            }
        }
        Ok(())
    }

    /// Deletes the listed objects, last first, except those Helm never deletes (`keep`),
    /// which are left in place and no longer tracked.
    async fn remove(&self, ctx: &OpContext, conn: &Connection, objects: &[Value]) -> Result<(), ProviderError> {
        for o in objects.iter().rev() {
            if o["keep"] == true {
                ctx.progress(&format!("keeping {} (Helm never deletes it)", listed_id(o)));
                continue;
            }
            ctx.progress(&format!("deleting {}", listed_id(o)));
            let uid = o["uid"].as_str().filter(|u| !u.is_empty());
            delete_manifest(ctx, conn, &identity_manifest(o), Placement::default(), None, uid).await?;
        }
        Ok(())
    }
}

impl Default for ChartProvider {
    fn default() -> Self {
        Self::new()
    }
}

/// What a rendering adds to and removes from the objects applied before (`None`: nothing
/// applied yet), one line each: `+ apps/v1 Deployment ns/name`, `- v1 ConfigMap ns/name`.
fn preview_lines(rendered: &[Value], applied: Option<&[Value]>, release_ns: &str) -> Vec<String> {
    let shown = |api: &Value, kind: &Value, ns: Option<&str>, name: &Value| {
        let api = api.as_str().unwrap_or_default();
        let kind = kind.as_str().unwrap_or_default();
        let name = name.as_str().unwrap_or_default();
        match ns.filter(|n| !n.is_empty()) {
            Some(ns) => format!("{api} {kind} {ns}/{name}"),
            None => format!("{api} {kind} {name}"),
        }
    };
    // A rendered object that names no namespace lands in the release namespace, or is
    // cluster-scoped: either listing matches it.
    let same = |m: &Value, o: &Value| {
        o["apiVersion"] == m["apiVersion"]
            && o["kind"] == m["kind"]
            && o["name"] == m["metadata"]["name"]
            && match m["metadata"]["namespace"].as_str() {
                Some(ns) => o["namespace"].as_str().unwrap_or_default() == ns,
                None => {
                    let ns = o["namespace"].as_str().unwrap_or_default();
                    ns.is_empty() || ns == release_ns
                }
            }
    };
    let mut lines = Vec::new();
    let verb = if applied.is_some() { "adds" } else { "creates" };
    for m in rendered {
        if applied.is_none_or(|objs| !objs.iter().any(|o| same(m, o))) {
            let ns = m["metadata"]["namespace"].as_str();
            lines.push(format!(
                "+ {verb} {}",
                shown(&m["apiVersion"], &m["kind"], ns, &m["metadata"]["name"])
            ));
        }
    }
    for o in applied.unwrap_or_default() {
        if !rendered.iter().any(|m| same(m, o)) {
            let verb = if o["keep"] == true {
                "stops tracking (kept)"
            } else {
                "prunes"
            };
            lines.push(format!(
                "- {verb} {}",
                shown(&o["apiVersion"], &o["kind"], o["namespace"].as_str(), &o["name"])
            ));
        }
    }
    lines
}

fn listed(outputs: &Value) -> Vec<Value> {
    outputs["objects"].as_array().cloned().unwrap_or_default()
}

#[async_trait]
impl ResourceProvider for ChartProvider {
    fn declaration(&self, name: &str, inputs: &Value) -> Option<String> {
        declare(inputs).map(|e| e.statement(name))
    }

    fn kind(&self) -> &str {
        KIND
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    async fn preview(
        &self,
        _ctx: &OpContext,
        inputs: &Value,
        old_outputs: Option<&Value>,
    ) -> Result<Vec<String>, ProviderError> {
        let i = ChartInputs::parse(inputs)?;
        let objects = render(&i).await?;
        let rendered: Vec<Value> = objects
            .iter()
            .filter(|o| o.hook.is_none())
            .map(|o| o.manifest.clone())
            .collect();
        let phase = if old_outputs.is_some() { "upgrade" } else { "install" };
        let mut lines = preview_lines(&rendered, old_outputs.map(listed).as_deref(), &i.namespace);
        for event in [format!("pre-{phase}"), format!("post-{phase}")] {
            for o in chart_objects::hooks_at(&objects, &event) {
                let m = &o.manifest;
                lines.push(format!(
                    "~ runs {event} hook {} {}",
                    m["kind"].as_str().unwrap_or_default(),
                    m["metadata"]["name"].as_str().unwrap_or_default()
                ));
            }
        }
        Ok(lines)
    }

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i = ChartInputs::parse(inputs)?;
        let outputs = self.install(ctx, &i, "install").await?;
        Ok(Created {
            id: format!("{}/{}", i.namespace, i.release),
            outputs,
        })
    }

    async fn read(
        &self,
        _ctx: &OpContext,
        id: &str,
        inputs: &Value,
        outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        if inputs.is_null() {
            return Err(ProviderError::msg(
                "a kubernetes:Chart cannot be imported; declare it and apply (its objects are adopted)",
            ));
        }
        let i = ChartInputs::parse(inputs)?;
        let mut drift = BTreeMap::new();
        let mut found = 0;
        let mut live_objects = Vec::new();
        for o in render(&i).await?.into_iter().filter(|o| o.hook.is_none()) {
            let keep = o.keep();
            let m = o.manifest;
            match read_manifest(&i.provider, &m, i.placement()).await? {
                Some(back) => {
                    found += 1;
                    // Only the paths: a rendered value may come from a secret, and the
                    // engine keeps secrets marked only where the program had them. An object
                    // whose projection differs in no path spar compares (an empty map the
                    // server drops, say) has not drifted.
                    let paths: Vec<String> = crate::value::diff(&back.desired, &back.projected)
                        .iter()
                        .map(|c| c.path.to_string())
                        .collect();
                    if !paths.is_empty() {
                        drift.insert(back.id, json!(paths));
                    }
                    let mut out = back.outputs;
                    if keep {
                        out["keep"] = json!(true);
                    }
                    live_objects.push(out);
                }
                None => {
                    drift.insert(missing_id(&m, outputs), json!("missing"));
                }
            }
        }
        if found == 0 && !listed(outputs).is_empty() {
            return Ok(None);
        }
        let mut new_inputs = inputs.clone();
        if let Some(o) = new_inputs.as_object_mut() {
            o.remove("drift");
            if !drift.is_empty() {
                o.insert("drift".into(), json!(drift));
            }
        }
        let mut new_outputs = outputs.clone();
        new_outputs["objects"] = json!(live_objects);
        Ok(Some(ReadResult {
            id: id.to_string(),
            inputs: new_inputs,
            outputs: new_outputs,
        }))
    }

    async fn update(
        &self,
        ctx: &OpContext,
        _id: &str,
        _old: &Value,
        new: &Value,
        old_outputs: &Value,
    ) -> Result<Value, ProviderError> {
        let i = ChartInputs::parse(new)?;
        let outputs = self.install(ctx, &i, "upgrade").await?;
        let kept: Vec<String> = listed(&outputs).iter().map(listed_id).collect();
        let gone: Vec<Value> = listed(old_outputs)
            .into_iter()
            .filter(|o| !kept.contains(&listed_id(o)))
            .collect();
        if !gone.is_empty() {
            ctx.progress(&format!("pruning {} objects that left the chart", gone.len()));
            self.remove(ctx, &i.provider, &gone).await?;
        }
        Ok(outputs)
    }

    async fn delete(&self, ctx: &OpContext, _id: &str, inputs: &Value, outputs: &Value) -> Result<(), ProviderError> {
        let i = ChartInputs::parse(inputs)?;
        self.remove(ctx, &i.provider, &listed(outputs)).await
    }
}

/// `kubernetes::Chart::new(&provider, chart, release, namespace)` with its repository,
/// version, values, helm command and the flags that differ from the defaults.
fn declare(i: &Value) -> Option<Expr> {
    use crate::declaration::{bool_at, json, only_keys, str_at, string};
    if !only_keys(
        i,
        &[
            "provider",
            "chart",
            "repo",
            "version",
            "release",
            "namespace",
            "values",
            "helm",
            "createNamespace",
            "includeCrds",
            "wait",
            "force",
        ],
    ) {
        return None;
    }
    let mut e = Expr::new(
        "kubernetes::Chart::new",
        &[
            "&provider".into(),
            string(str_at(i, "chart")?),
            string(str_at(i, "release")?),
            string(str_at(i, "namespace")?),
        ],
    )
    .str_setter(i, "repo", "repository")?
    .str_setter(i, "version", "version")?;
    match i.get("values") {
        None => {}
        Some(v) if v == &json!({}) => {}
        Some(v) => e = e.call("values", &[json(v)]),
    }
    Some(
        e.str_setter(i, "helm", "helm")?
            .call_if(bool_at(i, "createNamespace", false)?, "create_namespace", &[])
            .call_if(!bool_at(i, "includeCrds", true)?, "skip_crds", &[])
            .call_if(!bool_at(i, "wait", true)?, "no_wait", &[])
            .call_if(bool_at(i, "force", false)?, "force", &[]),
    )
}
