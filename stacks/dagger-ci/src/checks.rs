//! The stack's cross-resource invariants (section 8 of the reference design), checked on
//! the values the components actually declared, before anything is planned or applied.
//!
//! Rules kept here: each check reads the declared manifests and values (never the config
//! restated), so a check can fail only when the graph really disagrees with itself; each
//! failure names the resources and fields that disagree; the check names are stable (they
//! are what `--waive` takes).

use serde_json::Value;
use spar::Stack;
use spar::model::checks::Check;

use crate::arc::{Arc, ArcMode};
use crate::cert_manager::CertManager;
use crate::cluster::Cluster;
use crate::engine::{DaggerEngine, SocketLayout};
use crate::karpenter::{Karpenter, NODE_ROLE_SLOT};
use crate::network::Network;
use crate::values::{Recorded, refers_to};

/// Everything the checks read.
pub struct Declared<'a> {
    pub network: &'a Network,
    pub cluster: &'a Cluster,
    pub karpenter: &'a Karpenter,
    pub cert_manager: Option<&'a CertManager>,
    pub arc: &'a Arc,
    pub engine: &'a DaggerEngine,
}

/// Whether `tol` (a Kubernetes toleration as JSON) tolerates the taint `(key, value, effect)`.
pub fn tolerates(tol: &Value, key: &str, value: Option<&str>, effect: &str) -> bool {
    let s = |k: &str| tol[k].as_str().unwrap_or_default();
    let key_ok = s("key") == key || (s("key").is_empty() && s("operator") == "Exists");
    let value_ok = s("operator") == "Exists" || Some(s("value")) == value || (value.is_none() && s("value").is_empty());
    let effect_ok = s("effect").is_empty() || s("effect") == effect;
    key_ok && value_ok && effect_ok
}

fn list(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

/// A Go duration (`2h`, `90m`, `1h30m`, `300s`) in seconds.
pub fn duration_seconds(d: &str) -> Option<u64> {
    let mut total = 0u64;
    let mut num = String::new();
    for c in d.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        total += n * match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
    }
    num.is_empty().then_some(total)
}

/// Instance families with local NVMe (`c6id`, `m7gd`, `i4i`, ...).
pub fn is_nvme_family(f: &str) -> bool {
    f.starts_with('i') || f.ends_with('d')
}

/// The lowest Karpenter release supporting each EKS version (Karpenter's compatibility
/// matrix, `website/content/en/v1.14/upgrading/compatibility.md`).
const KARPENTER_MIN: [(&str, &str); 7] = [
    ("1.29", "0.34.0"),
    ("1.30", "0.37.0"),
    ("1.31", "1.0.5"),
    ("1.32", "1.2.0"),
    ("1.33", "1.5.0"),
    ("1.34", "1.6.0"),
    ("1.35", "1.9.0"),
];

fn version_tuple(v: &str) -> Vec<u64> {
    v.trim_start_matches('v')
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

/// Declares every check on `s`.
pub fn declare(s: &mut Stack, d: &Declared<'_>) {
    for c in evaluate(d) {
        s.check(&c.name, &c.description, c.failures);
    }
}

/// The checks' results, in section 8's order.
struct Results(Vec<Check>);

impl Results {
    fn check(&mut self, name: &str, description: &str, failures: Vec<String>) {
        self.0.push(Check {
            name: name.to_string(),
            description: description.to_string(),
            failures,
            apply_only: false,
        });
    }
}

/// Whether the subnet's tags match a Karpenter `subnetSelectorTerms` term (every tag of
/// the term present, with its value unless the term says `*`).
fn selects(term: &Value, tags: &Value) -> bool {
    term["tags"].as_object().is_some_and(|want| {
        !want.is_empty()
            && want.iter().all(|(k, v)| match (v.as_str(), tags[k].as_str()) {
                (Some("*"), Some(_)) => true,
                (Some(w), Some(t)) => w == t,
                _ => false,
            })
    })
}

fn addresses_with(decls: &[Recorded], pred: impl Fn(&Recorded) -> bool) -> Vec<&str> {
    decls.iter().filter(|r| pred(r)).map(|r| r.address.as_str()).collect()
}

/// Runs every check on what the components declared.
pub fn evaluate(d: &Declared<'_>) -> Vec<Check> {
    let mut results = Results(Vec::new());
    let s = &mut results;
    let pool = &d.karpenter.node_pool;
    let pool_spec = &pool["spec"]["template"]["spec"];
    let pod_spec = d
        .engine
        .daemonset
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|s| serde_json::to_value(s).unwrap_or_default())
        .unwrap_or_default();
    let engine_name = d.engine.daemonset.metadata.name.clone().unwrap_or_default();
    let class_spec = &d.karpenter.node_class["spec"];
    let raid0 = class_spec["instanceStorePolicy"] == "RAID0";

    // 1. Taints and tolerations.
    let mut f = Vec::new();
    for t in list(&pool_spec["taints"]) {
        let (key, value, effect) = (
            t["key"].as_str().unwrap_or_default(),
            t["value"].as_str(),
            t["effect"].as_str().unwrap_or_default(),
        );
        let shown = format!("{key}={}:{effect}", value.unwrap_or(""));
        if !list(&pod_spec["tolerations"])
            .iter()
            .any(|tol| tolerates(tol, key, value, effect))
        {
            f.push(format!(
                "NodePool `{}` taints {shown} but the engine DaemonSet `{engine_name}` spec.tolerations do not tolerate it",
                pool["metadata"]["name"].as_str().unwrap_or_default()
            ));
        }
        for r in &d.arc.runners {
            if !list(&r.template["spec"]["tolerations"])
                .iter()
                .any(|tol| tolerates(tol, key, value, effect))
            {
                f.push(format!(
                    "NodePool taint {shown} is not tolerated by the runner pods of `{}` (arc.runner_tolerations)",
                    r.group
                ));
            }
        }
    }
    s.check(
        "taints-match",
        "NodePool taints are tolerated by the engine and every runner",
        f,
    );

    // 2. Labels satisfy the runner nodeSelector and the engine's node affinity.
    let labels = pool["spec"]["template"]["metadata"]["labels"].clone();
    let mut f = Vec::new();
    for r in &d.arc.runners {
        if let Some(sel) = r.template["spec"]["nodeSelector"].as_object() {
            for (k, v) in sel {
                if labels.get(k) != Some(v) {
                    f.push(format!(
                        "runner pods of `{}` select {k}={} but NodePool labels are {labels}",
                        r.group,
                        v.as_str().unwrap_or_default()
                    ));
                }
            }
        }
    }
    for term in list(
        &pod_spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"],
    ) {
        for e in list(&term["matchExpressions"]) {
            let key = e["key"].as_str().unwrap_or_default();
            let ok = match e["operator"].as_str() {
                Some("Exists") => labels.get(key).is_some(),
                Some("In") => list(&e["values"]).contains(&labels[key]),
                _ => true,
            };
            if !ok {
                f.push(format!(
                    "the engine DaemonSet requires node label `{key}` ({}) but NodePool labels are {labels}",
                    e["operator"].as_str().unwrap_or_default()
                ));
            }
        }
    }
    s.check(
        "labels-match",
        "NodePool labels satisfy the runner nodeSelector and the engine's node affinity",
        f,
    );

    // 3. The socket path agrees everywhere.
    let mut f = Vec::new();
    let vol_path = |spec: &Value, name: &str| {
        list(&spec["volumes"])
            .into_iter()
            .find(|v| v["name"] == name)
            .and_then(|v| v["hostPath"]["path"].as_str().map(str::to_string))
    };
    let sock: &SocketLayout = &d.engine.socket;
    let engine_host = vol_path(&pod_spec, "run");
    let engine_mount = list(&pod_spec["containers"][0]["volumeMounts"])
        .into_iter()
        .find(|m| m["name"] == "run")
        .and_then(|m| m["mountPath"].as_str().map(str::to_string));
    if engine_mount.as_deref() != Some(sock.engine_dir.as_str()) {
        f.push(format!(
            "the engine mounts its socket directory at {engine_mount:?}, not {} where it listens",
            sock.engine_dir
        ));
    }
    for r in &d.arc.runners {
        let c = &r.template["spec"]["containers"][0];
        let mounts = list(&c["volumeMounts"]);
        let Some(m) = mounts.first() else {
            f.push(format!("runner pods of `{}` mount no engine socket", r.group));
            continue;
        };
        let vol = m["name"].as_str().unwrap_or_default();
        let host = vol_path(&r.template["spec"], vol);
        if host != engine_host {
            f.push(format!(
                "runner pods of `{}` mount hostPath {host:?} but the engine's socket hostPath is {engine_host:?}",
                r.group
            ));
        }
        let want = format!("unix://{}/{}", m["mountPath"].as_str().unwrap_or_default(), sock.file);
        let env = list(&c["env"])
            .into_iter()
            .find(|e| e["name"] == "_EXPERIMENTAL_DAGGER_RUNNER_HOST")
            .and_then(|e| e["value"].as_str().map(str::to_string))
            .unwrap_or_default();
        if env != want {
            f.push(format!(
                "runner pods of `{}` set _EXPERIMENTAL_DAGGER_RUNNER_HOST={env} but the socket is at {want}",
                r.group
            ));
        }
        if !env.starts_with("unix:///") {
            f.push(format!(
                "runner pods of `{}`: _EXPERIMENTAL_DAGGER_RUNNER_HOST must be unix:// and an absolute path",
                r.group
            ));
        }
    }
    s.check(
        "socket-path",
        "the engine socket's hostPath, runner mount and _EXPERIMENTAL_DAGGER_RUNNER_HOST agree",
        f,
    );

    // 4. Everything on the critical nodes tolerates their taint.
    let (ck, cv, ce) = &d.cluster.critical_taint;
    let mut workloads: Vec<(String, Vec<Value>)> = vec![
        ("coredns add-on".into(), d.cluster.coredns_tolerations.clone()),
        ("karpenter chart".into(), list(&d.karpenter.values["tolerations"])),
    ];
    workloads.extend(d.arc.critical_workloads.iter().cloned());
    if let Some(cm) = d.cert_manager {
        for (part, path) in [
            ("controller", &cm.values["tolerations"]),
            ("webhook", &cm.values["webhook"]["tolerations"]),
            ("cainjector", &cm.values["cainjector"]["tolerations"]),
            ("startupapicheck", &cm.values["startupapicheck"]["tolerations"]),
        ] {
            workloads.push((format!("cert-manager {part}"), list(path)));
        }
    }
    let f = workloads
        .iter()
        .filter(|(_, tols)| !tols.iter().any(|t| tolerates(t, ck, Some(cv), ce)))
        .map(|(w, _)| format!("{w} does not tolerate the critical nodes' taint {ck}={cv}:{ce}"))
        .collect();
    s.check(
        "critical-tolerations",
        "everything meant for the critical nodes tolerates their taint",
        f,
    );

    // 5. One cluster name everywhere.
    let name = &d.cluster.name;
    let mut f = Vec::new();
    let settings = &d.karpenter.values["settings"];
    if settings["clusterName"] != name.as_str() {
        f.push(format!(
            "Karpenter settings.clusterName is {} but the EKS cluster is `{name}`",
            settings["clusterName"]
        ));
    }
    if settings["interruptionQueue"] != d.karpenter.queue_name.as_str() {
        f.push(format!(
            "Karpenter settings.interruptionQueue is {} but the queue is `{}`",
            settings["interruptionQueue"], d.karpenter.queue_name
        ));
    }
    for (i, tags) in d.network.private_subnet_tags.iter().enumerate() {
        if tags.get("karpenter.sh/discovery") != Some(name) {
            f.push(format!(
                "private subnet {i} has karpenter.sh/discovery={:?}, not `{name}`",
                tags.get("karpenter.sh/discovery")
            ));
        }
    }
    for (what, terms) in [
        ("subnetSelectorTerms", &class_spec["subnetSelectorTerms"]),
        ("securityGroupSelectorTerms", &class_spec["securityGroupSelectorTerms"]),
    ] {
        for t in list(terms) {
            if let Some(v) = t["tags"]["karpenter.sh/discovery"].as_str()
                && v != name
            {
                f.push(format!(
                    "EC2NodeClass {what} select karpenter.sh/discovery={v}, not `{name}`"
                ));
            }
        }
    }
    // The controller policy as declared (its slots are ARNs, never cluster names).
    let policy = &d.karpenter.controller_policy;
    let mut scoped = false;
    for st in &policy.template.statement {
        let sid = st.sid.as_deref().unwrap_or("?");
        for (key, values) in st.condition.values().flat_map(|c| c.iter()) {
            if let Some(tagged) = key.split("kubernetes.io/cluster/").nth(1) {
                scoped = true;
                if tagged != name {
                    f.push(format!(
                        "controller policy `{}` statement {sid} is scoped to cluster `{tagged}` (condition {key}), not `{name}`",
                        policy.address
                    ));
                }
            }
            if key.ends_with("eks:eks-cluster-name") && values.iter().any(|v| v != name) {
                f.push(format!(
                    "controller policy `{}` statement {sid} requires {key} = {values:?}, not `{name}`",
                    policy.address
                ));
            }
        }
        if st.action.iter().any(|a| a == "eks:DescribeCluster") {
            for r in &st.resource {
                if r.rsplit_once(":cluster/").map(|(_, c)| c) != Some(name.as_str()) {
                    f.push(format!(
                        "controller policy `{}` statement {sid} lets Karpenter describe {r}, not cluster `{name}`",
                        policy.address
                    ));
                }
            }
        }
    }
    if !scoped {
        f.push(format!(
            "the controller policy `{}` has no condition on the kubernetes.io/cluster/{name} tag",
            policy.address
        ));
    }
    s.check(
        "one-cluster-name",
        "one cluster name in EKS, Karpenter, tags, selectors and policy",
        f,
    );

    // 6. The node class role: an EC2_LINUX access entry, the only role Karpenter may pass.
    let mut f = Vec::new();
    let role = class_spec["role"].as_str().unwrap_or_default();
    let role_addrs = addresses_with(&d.karpenter.roles, |r| r.str("name") == Some(role));
    if role_addrs.is_empty() {
        f.push(format!(
            "EC2NodeClass role `{role}` is no role this stack declares (roles: {:?})",
            d.karpenter
                .roles
                .iter()
                .map(|r| r.str("name").unwrap_or("?"))
                .collect::<Vec<_>>()
        ));
    }
    let entries = &d.karpenter.access_entry_decls;
    if !entries
        .iter()
        .any(|e| e.str("type") == Some("EC2_LINUX") && role_addrs.iter().any(|a| e.refers("principal_arn", a)))
    {
        f.push(format!(
            "EC2NodeClass role `{role}` has no EC2_LINUX access entry (entries: {})",
            entries
                .iter()
                .map(|e| format!("{} type {}", e.address, e.str("type").unwrap_or("?")))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let policy = &d.karpenter.controller_policy;
    let passes = |a: &str| a == "iam:PassRole" || a == "iam:*" || a == "*";
    for st in policy
        .template
        .statement
        .iter()
        .filter(|st| st.action.iter().any(|a| passes(a)))
    {
        if st.resource != [NODE_ROLE_SLOT] {
            f.push(format!(
                "controller policy `{}` statement {} lets Karpenter pass {:?}, not only the node role",
                policy.address,
                st.sid.as_deref().unwrap_or("?"),
                st.resource
            ));
        }
    }
    if policy.node_role_from.is_empty() || !policy.node_role_from.iter().all(|a| role_addrs.contains(&a.as_str())) {
        f.push(format!(
            "controller policy `{}` passes the role of {:?}, not the EC2NodeClass role `{role}`",
            policy.address, policy.node_role_from
        ));
    }
    s.check(
        "node-role",
        "the node class role has an EC2_LINUX access entry and is the only passable role",
        f,
    );

    // 7 and 8. RAID0: the cache on the array, only NVMe types selected.
    let mut f7 = Vec::new();
    let mut f8 = Vec::new();
    if raid0 {
        let cache = list(&pod_spec["volumes"]).into_iter().find(|v| v["name"] == "cache");
        let ok = cache.as_ref().is_some_and(|v| {
            v.get("emptyDir").is_some()
                || v["hostPath"]["path"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("/mnt/k8s-disks/0"))
        });
        if !ok {
            f7.push(format!(
                "instanceStorePolicy is RAID0 but the engine cache is {}; set engine.cache = \"nvme\"",
                cache
                    .map(|v| v["hostPath"]["path"].to_string())
                    .unwrap_or("missing".into())
            ));
        }
        let reqs = list(&pool_spec["requirements"]);
        let nvme_req = reqs.iter().any(|r| {
            r["key"] == "karpenter.k8s.aws/instance-local-nvme"
                && matches!(r["operator"].as_str(), Some("Gte" | "Gt"))
                && list(&r["values"])
                    .first()
                    .and_then(|v| v.as_str())
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_some_and(|n| n > 0)
        });
        let families = reqs
            .iter()
            .find(|r| r["key"] == "karpenter.k8s.aws/instance-family" && r["operator"] == "In")
            .map(|r| list(&r["values"]))
            .unwrap_or_default();
        let non_nvme: Vec<String> = families
            .iter()
            .filter_map(|v| v.as_str())
            .filter(|f| !is_nvme_family(f))
            .map(str::to_string)
            .collect();
        if !nvme_req && (families.is_empty() || !non_nvme.is_empty()) {
            f8.push(format!(
                "instanceStorePolicy is RAID0 but NodePool requirements allow types without local NVMe ({}); add karpenter.k8s.aws/instance-local-nvme Gte or NVMe families only",
                if non_nvme.is_empty() { "no family restriction".to_string() } else { non_nvme.join(", ") }
            ));
        }
    }
    s.check(
        "raid0-cache",
        "with RAID0, the engine cache lives on the NVMe array or an emptyDir",
        f7,
    );
    s.check(
        "raid0-nvme",
        "with RAID0, the NodePool selects only types with local NVMe",
        f8,
    );

    // 9. Versions.
    let mut f = Vec::new();
    let image = pod_spec["containers"][0]["image"].as_str().unwrap_or_default();
    let tag = image.rsplit(':').next().unwrap_or_default().trim_start_matches('v');
    if tag != d.arc.dagger_version {
        f.push(format!(
            "the engine image is {image} but runners use Dagger {} (arc.dagger_version)",
            d.arc.dagger_version
        ));
    }
    match KARPENTER_MIN.iter().find(|(eks, _)| *eks == d.cluster.version) {
        Some((_, min)) if version_tuple(&d.karpenter.chart_version) < version_tuple(min) => f.push(format!(
            "EKS {} needs Karpenter >= {min}, but karpenter.version is {}",
            d.cluster.version, d.karpenter.chart_version
        )),
        Some(_) => {}
        None => f.push(format!(
            "spar's Karpenter compatibility table has no EKS {}; check it by hand and waive `versions`",
            d.cluster.version
        )),
    }
    if d.arc.mode == ArcMode::ScaleSet && d.arc.controller_version != d.arc.scale_set_version {
        f.push(format!(
            "the ARC controller chart is {} but the scale-set chart is {}; they must match",
            d.arc.controller_version, d.arc.scale_set_version
        ));
    }
    s.check(
        "versions",
        "engine = runners' Dagger, Karpenter supports the EKS version, ARC charts match",
        f,
    );

    // 10. Authentication mode allows access entries.
    let mode = d.cluster.authentication_mode.as_str();
    let f = if !d.karpenter.access_entry_decls.is_empty() && !matches!(mode, "API" | "API_AND_CONFIG_MAP") {
        vec![format!(
            "access entries are declared but cluster.authentication_mode is {mode}; use API or API_AND_CONFIG_MAP"
        )]
    } else {
        Vec::new()
    };
    s.check(
        "authentication-mode",
        "access entries need authenticationMode API or API_AND_CONFIG_MAP",
        f,
    );

    // 11. The controller's identity has what it needs.
    // Read from the declared chart values, Pod Identity associations, OIDC providers and
    // policy attachments: the controller's service account must get a role that carries
    // the controller policy, one way or the other.
    let mut f = Vec::new();
    let k = d.karpenter;
    let sa_ns = k.chart_namespace.as_str();
    let sa_name = k.values["serviceAccount"]["name"].as_str().unwrap_or("karpenter");
    let sa = format!("{sa_ns}/{sa_name}");
    let controller_roles: Vec<String> = k
        .policy_attachments
        .iter()
        .filter(|a| a.refers("policy_arn", &k.controller_policy.address))
        .flat_map(|a| spar::model::stack::references(&a.inputs["role"]))
        .map(|a| a.as_str().to_string())
        .collect();
    if controller_roles.is_empty() {
        f.push(format!(
            "no role has the controller policy `{}` attached",
            k.controller_policy.address
        ));
    }
    let has_policy = |v: &Value| controller_roles.iter().any(|r| refers_to(v, r));
    let mut identities = 0;
    for a in &k.pod_identity_associations {
        let (ns, name) = (
            a.str("namespace").unwrap_or("?"),
            a.str("service_account").unwrap_or("?"),
        );
        if (ns, name) != (sa_ns, sa_name) {
            f.push(format!(
                "Pod Identity association `{}` is for service account {ns}/{name}, but the Karpenter chart runs as {sa}",
                a.address
            ));
        } else if !has_policy(&a.inputs["role_arn"]) {
            f.push(format!(
                "Pod Identity association `{}` gives {sa} a role without the controller policy",
                a.address
            ));
        } else {
            identities += 1;
        }
        if !d.cluster.addons.iter().any(|a| a == "eks-pod-identity-agent") {
            f.push(format!(
                "Pod Identity association `{}` is declared but the eks-pod-identity-agent add-on is not",
                a.address
            ));
        }
    }
    let annotation = ["serviceAccount", "annotations", "eks.amazonaws.com/role-arn"];
    for (path, from) in k.chart_values.output_sources() {
        if path != annotation {
            continue;
        }
        if !from.iter().any(|r| controller_roles.contains(r)) {
            f.push(format!(
                "the Karpenter chart annotates {sa} with the role of {from:?}, which lacks the controller policy"
            ));
        } else {
            identities += 1;
        }
        if !k
            .oidc_providers
            .iter()
            .any(|p| p.refers("url", d.cluster.eks.address().as_str()))
        {
            f.push(format!(
                "{sa} uses IRSA (eks.amazonaws.com/role-arn) but no OIDC provider for the cluster's issuer is declared"
            ));
        }
    }
    if identities == 0 && f.is_empty() {
        f.push(format!(
            "the Karpenter controller ({sa}) gets no AWS identity: no Pod Identity association and no eks.amazonaws.com/role-arn annotation"
        ));
    }
    s.check(
        "controller-identity",
        "Pod Identity has its agent; IRSA has an OIDC provider and annotation",
        f,
    );

    // 12. Critical node group size.
    let n = &d.cluster.critical_nodes;
    let f = if n.min < 2 || n.desired < 2 {
        vec![format!(
            "the critical node group has min {} / desired {}; Karpenter's 2 replicas with hostname anti-affinity need at least 2",
            n.min, n.desired
        )]
    } else {
        Vec::new()
    };
    s.check("critical-nodes", "the critical node group has at least 2 nodes", f);

    // 13. Disruption: grace periods and do-not-disrupt.
    let mut f = Vec::new();
    let grace = pod_spec["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
    match pool_spec["terminationGracePeriod"]
        .as_str()
        .map(|g| (g, duration_seconds(g)))
    {
        Some((g, Some(secs))) if secs < grace => f.push(format!(
            "NodePool terminationGracePeriod {g} is shorter than the engine's terminationGracePeriodSeconds {grace}"
        )),
        Some((g, None)) => f.push(format!(
            "NodePool terminationGracePeriod `{g}` is not a duration such as 2h"
        )),
        _ => {}
    }
    for r in &d.arc.runners {
        if r.template["metadata"]["annotations"]["karpenter.sh/do-not-disrupt"] != "true" {
            f.push(format!(
                "runner pods of `{}` lack karpenter.sh/do-not-disrupt: \"true\"",
                r.group
            ));
        }
    }
    s.check(
        "disruption",
        "nodes outlive the engine's grace period; runners are never disrupted",
        f,
    );

    // 14. Socket permissions.
    let gid = pod_spec["securityContext"]["runAsGroup"].as_i64();
    let f = d
        .arc
        .runners
        .iter()
        .filter(|r| {
            let sc = &r.template["spec"]["containers"][0]["securityContext"];
            sc["runAsGroup"].as_i64().or(sc["runAsUser"].as_i64()) != gid
        })
        .map(|r| {
            format!(
                "runner pods of `{}` do not run with the engine's group {gid:?} (arc.runner_uid)",
                r.group
            )
        })
        .collect();
    s.check(
        "socket-permissions",
        "the engine's runAsGroup is the runners' uid/gid",
        f,
    );

    // 15. ARC mode and cert-manager.
    let mut f = Vec::new();
    if d.arc.mode == ArcMode::Legacy && d.cert_manager.is_none() {
        f.push("legacy ARC needs cert-manager, which is disabled (cert_manager.enabled)".to_string());
    }
    for r in &d.arc.runners {
        if list(&r.template["spec"]["containers"])
            .iter()
            .any(|c| c["name"] == "dind")
        {
            f.push(format!(
                "runner pods of `{}` run a dind sidecar; the Dagger engine replaces it",
                r.group
            ));
        }
    }
    s.check(
        "arc-dependencies",
        "legacy ARC has cert-manager; runners need no dind",
        f,
    );

    // 16. Egress for every subnet Karpenter selects: the declared subnets its selector
    // terms match, each associated with a declared route table whose declared 0.0.0.0/0
    // route goes to a declared NAT gateway (or to the internet gateway, for a subnet that
    // gives its instances public IPs).
    let mut f = Vec::new();
    let net = d.network;
    let terms = list(&class_spec["subnetSelectorTerms"]);
    let nats: Vec<&str> = net.nat_gateway_decls.iter().map(|n| n.address.as_str()).collect();
    let igws: Vec<&str> = net.internet_gateways.iter().map(|n| n.address.as_str()).collect();
    let mut selected = 0;
    for sn in net
        .subnets
        .iter()
        .filter(|sn| terms.iter().any(|t| selects(t, &sn.inputs["tags"])))
    {
        selected += 1;
        let shown = format!(
            "subnet `{}` ({})",
            sn.address,
            sn.inputs["tags"]["Name"].as_str().unwrap_or("no Name tag")
        );
        let tables: Vec<Vec<String>> = net
            .route_table_associations
            .iter()
            .filter(|a| a.refers("subnet_id", &sn.address))
            .map(|a| {
                spar::model::stack::references(&a.inputs["route_table_id"])
                    .iter()
                    .map(|t| t.as_str().to_string())
                    .collect()
            })
            .collect();
        if tables.is_empty() {
            f.push(format!(
                "{shown} is selected by Karpenter but associated with no route table of the stack"
            ));
            continue;
        }
        let public_ip = sn.inputs["map_public_ip_on_launch"] == true;
        let egress = net.routes.iter().any(|r| {
            tables.iter().flatten().any(|t| r.refers("route_table_id", t))
                && r.str("destination_cidr_block") == Some("0.0.0.0/0")
                && (nats.iter().any(|n| r.refers("nat_gateway_id", n))
                    || (public_ip && igws.iter().any(|g| r.refers("gateway_id", g))))
        });
        if !egress {
            f.push(format!(
                "{shown} is selected by Karpenter but its route table {tables:?} has no 0.0.0.0/0 route to a NAT gateway{}",
                if public_ip { " or the internet gateway" } else { "" }
            ));
        }
    }
    if selected == 0 {
        f.push("the EC2NodeClass subnetSelectorTerms select no subnet of the stack".to_string());
    }
    s.check("subnet-egress", "every subnet Karpenter selects has egress", f);
    results.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tolerations_match_taints() {
        let t = json!({"key": "github-actions-runner", "operator": "Exists", "effect": "NoSchedule"});
        assert!(tolerates(&t, "github-actions-runner", Some("true"), "NoSchedule"));
        assert!(!tolerates(&t, "github-actions-runner", Some("true"), "NoExecute"));
        assert!(!tolerates(&t, "runner", Some("true"), "NoSchedule"));
        let eq = json!({"key": "k", "operator": "Equal", "value": "a"});
        assert!(tolerates(&eq, "k", Some("a"), "NoSchedule"));
        assert!(!tolerates(&eq, "k", Some("b"), "NoSchedule"));
    }

    #[test]
    fn durations() {
        assert_eq!(duration_seconds("2h"), Some(7200));
        assert_eq!(duration_seconds("1h30m"), Some(5400));
        assert_eq!(duration_seconds("300s"), Some(300));
        assert_eq!(duration_seconds("2d"), None);
        assert_eq!(duration_seconds("15"), None);
    }

    #[test]
    fn nvme_families() {
        for f in ["c6id", "m6id", "r6id", "c7gd", "m7gd", "i4i"] {
            assert!(is_nvme_family(f), "{f}");
        }
        for f in ["c6i", "m7g", "t4g"] {
            assert!(!is_nvme_family(f), "{f}");
        }
    }
}
