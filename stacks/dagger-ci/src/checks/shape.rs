//! The flagship's shape checks (section 8, invariants 1-16 of the reference design): that
//! the values the components declared agree with each other (a taint here, a toleration
//! there; one cluster name in five places).
//!
//! Rules kept here: each function reads the declared manifests and values (never the
//! config restated) and returns one sentence per disagreement, naming the resources and
//! fields; the behaviour checks (what can reach what, what lands where, which process gets
//! which value) live in `network`, `placement` and `wiring`.

use serde_json::Value;

use super::{
    Ctx, EksDeclared, KARPENTER_MIN, addresses_with, duration_seconds, is_nvme_family, list, selects, tolerates,
    version_tuple,
};
use crate::arc::ArcMode;
use crate::karpenter::NODE_ROLE_SLOT;
use crate::network::Network;
use crate::values::refers_to;

/// Taints and tolerations.
pub(super) fn taints_match(c: &Ctx<'_>) -> Vec<String> {
    let d = c.d;
    let nodes = &c.runner_nodes;
    let pod_spec = &c.pod_spec;
    let engine_name = &c.engine_name;
    let mut f = Vec::new();
    for t in &nodes.taints {
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
                "{} taints {shown} but the engine DaemonSet `{engine_name}` spec.tolerations do not tolerate it",
                nodes.what
            ));
        }
        for r in &d.arc.runners {
            if !list(&r.template["spec"]["tolerations"])
                .iter()
                .any(|tol| tolerates(tol, key, value, effect))
            {
                f.push(format!(
                    "the taint {shown} of {} is not tolerated by the runner pods of `{}` (arc.runner_tolerations)",
                    nodes.what, r.group
                ));
            }
        }
    }
    f
}

/// Labels satisfy the runner nodeSelector and the engine's node affinity.
pub(super) fn labels_match(c: &Ctx<'_>) -> Vec<String> {
    let d = c.d;
    let pod_spec = &c.pod_spec;
    let (what, labels) = (&c.runner_nodes.what, &c.runner_nodes.labels);
    let mut f = Vec::new();
    for r in &d.arc.runners {
        if let Some(sel) = r.template["spec"]["nodeSelector"].as_object() {
            for (k, v) in sel {
                if labels.get(k) != Some(v) {
                    f.push(format!(
                        "runner pods of `{}` select {k}={} but the labels of {what} are {labels}",
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
                    "the engine DaemonSet requires node label `{key}` ({}) but the labels of {what} are {labels}",
                    e["operator"].as_str().unwrap_or_default()
                ));
            }
        }
    }
    f
}

/// Everything meant for the critical nodes (every controller and add-on the stack
/// declares: EKS add-ons, charts, ARC's listeners) tolerates the taints of each managed
/// node group, read from the declared node groups and workloads.
pub(super) fn critical_tolerations(c: &Ctx<'_>) -> Vec<String> {
    use spar::analysis::scheduling::{NodeTaint, TaintEffect, Toleration};
    let mut f = Vec::new();
    let taints: Vec<NodeTaint> =
        c.d.resources
            .iter()
            .filter(|r| r.kind == "aws:eks:Nodegroup")
            .flat_map(|r| list(&r.inputs["taints"]))
            .filter_map(|t| {
                let effect = TaintEffect::parse(t["effect"].as_str()?)?;
                (effect != TaintEffect::PreferNoSchedule)
                    .then(|| NodeTaint::new(t["key"].as_str().unwrap_or(""), t["value"].as_str(), effect))
            })
            .collect();
    for w in c
        .analysis()
        .gathered
        .workloads
        .iter()
        .filter(|w| w.role == super::workloads::Role::Controller)
    {
        let tolerations: Vec<Toleration> = list(&w.template.spec["tolerations"])
            .iter()
            .map(Toleration::from_json)
            .collect();
        for t in &taints {
            if !tolerations.iter().any(|x| x.tolerates(t)) {
                f.push(format!(
                    "{} ({}) does not tolerate the critical nodes' taint {}={}:{}",
                    w.template.owner,
                    w.address,
                    t.key,
                    t.value.as_deref().unwrap_or(""),
                    t.effect.as_str()
                ));
            }
        }
    }
    f
}

/// One cluster name everywhere.
pub(super) fn one_cluster_name(c: &Ctx<'_>, e: &EksDeclared<'_>) -> Vec<String> {
    let class_spec = c.class_spec;
    let name = &e.cluster.name;
    let mut f = Vec::new();
    let settings = &e.karpenter.values["settings"];
    if settings["clusterName"] != name.as_str() {
        f.push(format!(
            "Karpenter settings.clusterName is {} but the EKS cluster is `{name}`",
            settings["clusterName"]
        ));
    }
    if settings["interruptionQueue"] != e.karpenter.queue_name.as_str() {
        f.push(format!(
            "Karpenter settings.interruptionQueue is {} but the queue is `{}`",
            settings["interruptionQueue"], e.karpenter.queue_name
        ));
    }
    for (i, tags) in e.network.iter().flat_map(|n| n.private_subnet_tags.iter()).enumerate() {
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
    let policy = &e.karpenter.controller_policy;
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
    f
}

/// The node class role: an EC2_LINUX access entry, the only role Karpenter may pass.
pub(super) fn node_role(c: &Ctx<'_>, e: &EksDeclared<'_>) -> Vec<String> {
    let class_spec = c.class_spec;
    let mut f = Vec::new();
    let role = class_spec["role"].as_str().unwrap_or_default();
    let role_addrs = addresses_with(&e.karpenter.roles, |r| r.str("name") == Some(role));
    if role_addrs.is_empty() {
        f.push(format!(
            "EC2NodeClass role `{role}` is no role this stack declares (roles: {:?})",
            e.karpenter
                .roles
                .iter()
                .map(|r| r.str("name").unwrap_or("?"))
                .collect::<Vec<_>>()
        ));
    }
    let entries = &e.karpenter.access_entry_decls;
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
    let policy = &e.karpenter.controller_policy;
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
    f
}

/// With RAID0, the engine cache lives on the NVMe array (or an emptyDir).
pub(super) fn raid0_cache(c: &Ctx<'_>, _e: &EksDeclared<'_>) -> Vec<String> {
    let pod_spec = &c.pod_spec;
    let mut f = Vec::new();
    if !c.raid0 {
        return f;
    }
    let cache = list(&pod_spec["volumes"]).into_iter().find(|v| v["name"] == "cache");
    let ok = cache.as_ref().is_some_and(|v| {
        v.get("emptyDir").is_some()
            || v["hostPath"]["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/mnt/k8s-disks/0"))
    });
    if !ok {
        f.push(format!(
            "instanceStorePolicy is RAID0 but the engine cache is {}; set engine.cache = \"nvme\"",
            cache
                .map(|v| v["hostPath"]["path"].to_string())
                .unwrap_or("missing".into())
        ));
    }
    f
}

/// With RAID0, the NodePool admits only instance types with local NVMe.
pub(super) fn raid0_nvme(c: &Ctx<'_>, _e: &EksDeclared<'_>) -> Vec<String> {
    let mut f = Vec::new();
    if !c.raid0 {
        return f;
    }
    let reqs = list(&c.pool_spec["requirements"]);
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
        f.push(format!(
            "instanceStorePolicy is RAID0 but NodePool requirements allow types without local NVMe ({}); add karpenter.k8s.aws/instance-local-nvme Gte or NVMe families only",
            if non_nvme.is_empty() { "no family restriction".to_string() } else { non_nvme.join(", ") }
        ));
    }
    f
}

/// Versions.
pub(super) fn versions(c: &Ctx<'_>) -> Vec<String> {
    let d = c.d;
    let pod_spec = &c.pod_spec;
    let mut f = Vec::new();
    let image = pod_spec["containers"][0]["image"].as_str().unwrap_or_default();
    let tag = image.rsplit(':').next().unwrap_or_default().trim_start_matches('v');
    if tag != d.arc.dagger_version {
        f.push(format!(
            "the engine image is {image} but runners use Dagger {} (arc.dagger_version)",
            d.arc.dagger_version
        ));
    }
    // An existing cluster's version is judged when planning (`existing-cluster`).
    if let Some(e) = d.eks.as_ref().filter(|e| e.cluster.existing.is_none()) {
        match KARPENTER_MIN.iter().find(|(eks, _)| *eks == e.cluster.version) {
            Some((_, min)) if version_tuple(&e.karpenter.chart_version) < version_tuple(min) => f.push(format!(
                "EKS {} needs Karpenter >= {min}, but karpenter.version is {}",
                e.cluster.version, e.karpenter.chart_version
            )),
            Some(_) => {}
            None => f.push(format!(
                "spar's Karpenter compatibility table has no EKS {}; check it by hand and waive `versions`",
                e.cluster.version
            )),
        }
    }
    if d.arc.mode == ArcMode::ScaleSet && d.arc.controller_version != d.arc.scale_set_version {
        f.push(format!(
            "the ARC controller chart is {} but the scale-set chart is {}; they must match",
            d.arc.controller_version, d.arc.scale_set_version
        ));
    }
    f
}

/// Authentication mode allows access entries.
pub(super) fn authentication_mode(_c: &Ctx<'_>, e: &EksDeclared<'_>) -> Vec<String> {
    let mode = e.cluster.authentication_mode.as_str();
    if !e.karpenter.access_entry_decls.is_empty() && !matches!(mode, "API" | "API_AND_CONFIG_MAP") {
        vec![format!(
            "access entries are declared but cluster.authentication_mode is {mode}; use API or API_AND_CONFIG_MAP"
        )]
    } else {
        Vec::new()
    }
}

/// The controller's identity has what it needs. Read from the declared chart values, Pod Identity associations, OIDC providers and policy attachments: the controller's service account must get a role that carries the controller policy, one way or the other.
pub(super) fn controller_identity(_c: &Ctx<'_>, e: &EksDeclared<'_>) -> Vec<String> {
    let mut f = Vec::new();
    let k = e.karpenter;
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
        if !e.cluster.addons.iter().any(|a| a == "eks-pod-identity-agent") {
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
            .any(|p| p.refers("url", e.cluster.eks.address().as_str()))
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
    f
}

/// Critical node group size.
pub(super) fn critical_nodes(_c: &Ctx<'_>, e: &EksDeclared<'_>) -> Vec<String> {
    if e.cluster.existing.is_some() {
        // The existing node group's size is judged when planning (`existing-cluster`).
        return Vec::new();
    }
    let n = &e.cluster.critical_nodes;
    if n.min < 2 || n.desired < 2 {
        vec![format!(
            "the critical node group has min {} / desired {}; Karpenter's 2 replicas with hostname anti-affinity need at least 2",
            n.min, n.desired
        )]
    } else {
        Vec::new()
    }
}

/// Disruption: grace periods and do-not-disrupt.
pub(super) fn disruption(c: &Ctx<'_>, _e: &EksDeclared<'_>) -> Vec<String> {
    let d = c.d;
    let pool_spec = c.pool_spec;
    let pod_spec = &c.pod_spec;
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
    f
}

/// Socket permissions.
pub(super) fn socket_permissions(c: &Ctx<'_>) -> Vec<String> {
    let d = c.d;
    let pod_spec = &c.pod_spec;
    let gid = pod_spec["securityContext"]["runAsGroup"].as_i64();
    d.arc
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
        .collect()
}

/// ARC mode and cert-manager.
pub(super) fn arc_dependencies(c: &Ctx<'_>) -> Vec<String> {
    let d = c.d;
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
    f
}

/// Egress for every subnet Karpenter selects: the declared subnets its selector terms match, each associated with a declared route table whose declared 0.0.0.0/0 route goes to a declared NAT gateway (or to the internet gateway, for a subnet that gives its instances public IPs).
pub(super) fn subnet_egress(c: &Ctx<'_>, _e: &EksDeclared<'_>, net: &Network) -> Vec<String> {
    let class_spec = c.class_spec;
    let mut f = Vec::new();
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
    f
}
