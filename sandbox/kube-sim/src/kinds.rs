//! The resource types the simulator serves.
//!
//! Owns [`ResourceType`] (group, version, kind, plural, scope, short names, subresources,
//! generation rule, where its schema comes from) and [`Kinds`], the registry of built-in types
//! plus the types registered by established CustomResourceDefinitions.
//!
//! Rules kept here:
//! - Built-in scopes are the real ones (Namespace, ClusterRole, PriorityClass, CRD, webhook
//!   configurations are cluster-scoped; the rest namespaced).
//! - A custom resource type exists only while its CRD is established; removing the CRD removes it.
//! - Lookups are by (group, version, plural) for URLs and by (group, kind) for bodies.

use crate::crd::CrSchema;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Which top-level fields bump `metadata.generation` when they change.
#[derive(Debug, Clone, PartialEq)]
pub enum GenerationRule {
    /// No generation is kept (ConfigMap, Secret, Namespace, RBAC, ...).
    None,
    /// Generation starts at 1 and is bumped when one of these top-level fields changes.
    Fields(&'static [&'static str]),
    /// Every top-level field but `metadata` (and `status` when the status subresource is on).
    AllButMetadataAndStatus,
}

/// Where the schema of a type comes from.
#[derive(Debug, Clone)]
pub enum SchemaSource {
    /// A definition name in the official `_definitions.json`.
    Builtin(&'static str),
    /// A CRD version's `openAPIV3Schema`.
    Custom(Arc<CrSchema>),
}

/// One served resource type (one group/version/resource).
#[derive(Debug, Clone)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub status_subresource: bool,
    pub generation: GenerationRule,
    pub schema: SchemaSource,
    /// Name of the owning CRD for custom resources.
    pub crd: Option<String>,
    /// `additionalPrinterColumns` of a custom resource version: (name, type, jsonPath).
    pub printer_columns: Vec<(String, String, String)>,
    /// Is this the storage/preferred version of its group-resource?
    pub preferred: bool,
}

impl ResourceType {
    /// `apps/v1` or `v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Is this a custom resource?
    pub fn is_custom(&self) -> bool {
        self.crd.is_some()
    }

    /// Verbs listed in discovery.
    pub fn verbs(&self) -> Vec<&'static str> {
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }
}

/// One row of the built-in table.
struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    categories: &'static [&'static str],
    status: bool,
    generation: GenerationRule,
    def: &'static str,
}

const SPEC: GenerationRule = GenerationRule::Fields(&["spec"]);

fn builtin_table() -> Vec<Builtin> {
    use GenerationRule::None as NoGen;
    let all: &'static [&'static str] = &["all"];
    vec![
        Builtin {
            group: "",
            version: "v1",
            kind: "Namespace",
            plural: "namespaces",
            namespaced: false,
            short: &["ns"],
            categories: &[],
            status: true,
            generation: NoGen,
            def: "io.k8s.api.core.v1.Namespace",
        },
        Builtin {
            group: "",
            version: "v1",
            kind: "ServiceAccount",
            plural: "serviceaccounts",
            namespaced: true,
            short: &["sa"],
            categories: &[],
            status: false,
            generation: NoGen,
            def: "io.k8s.api.core.v1.ServiceAccount",
        },
        Builtin {
            group: "",
            version: "v1",
            kind: "Secret",
            plural: "secrets",
            namespaced: true,
            short: &[],
            categories: &[],
            status: false,
            generation: NoGen,
            def: "io.k8s.api.core.v1.Secret",
        },
        Builtin {
            group: "",
            version: "v1",
            kind: "ConfigMap",
            plural: "configmaps",
            namespaced: true,
            short: &["cm"],
            categories: &[],
            status: false,
            generation: NoGen,
            def: "io.k8s.api.core.v1.ConfigMap",
        },
        Builtin {
            group: "",
            version: "v1",
            kind: "Service",
            plural: "services",
            namespaced: true,
            short: &["svc"],
            categories: all,
            status: true,
            generation: NoGen,
            def: "io.k8s.api.core.v1.Service",
        },
        Builtin {
            group: "",
            version: "v1",
            kind: "Pod",
            plural: "pods",
            namespaced: true,
            short: &["po"],
            categories: all,
            status: true,
            generation: SPEC,
            def: "io.k8s.api.core.v1.Pod",
        },
        Builtin {
            group: "",
            version: "v1",
            kind: "Endpoints",
            plural: "endpoints",
            namespaced: true,
            short: &["ep"],
            categories: &[],
            status: false,
            generation: NoGen,
            def: "io.k8s.api.core.v1.Endpoints",
        },
        Builtin {
            group: "",
            version: "v1",
            kind: "Event",
            plural: "events",
            namespaced: true,
            short: &["ev"],
            categories: &[],
            status: false,
            generation: NoGen,
            def: "io.k8s.api.core.v1.Event",
        },
        Builtin {
            group: "",
            version: "v1",
            kind: "PersistentVolumeClaim",
            plural: "persistentvolumeclaims",
            namespaced: true,
            short: &["pvc"],
            categories: &[],
            status: true,
            generation: NoGen,
            def: "io.k8s.api.core.v1.PersistentVolumeClaim",
        },
        Builtin {
            group: "",
            version: "v1",
            kind: "ResourceQuota",
            plural: "resourcequotas",
            namespaced: true,
            short: &["quota"],
            categories: &[],
            status: true,
            generation: NoGen,
            def: "io.k8s.api.core.v1.ResourceQuota",
        },
        Builtin {
            group: "",
            version: "v1",
            kind: "LimitRange",
            plural: "limitranges",
            namespaced: true,
            short: &["limits"],
            categories: &[],
            status: false,
            generation: NoGen,
            def: "io.k8s.api.core.v1.LimitRange",
        },
        Builtin {
            group: "",
            version: "v1",
            kind: "Node",
            plural: "nodes",
            namespaced: false,
            short: &["no"],
            categories: &[],
            status: true,
            generation: NoGen,
            def: "io.k8s.api.core.v1.Node",
        },
        Builtin {
            group: "apps",
            version: "v1",
            kind: "Deployment",
            plural: "deployments",
            namespaced: true,
            short: &["deploy"],
            categories: all,
            status: true,
            generation: SPEC,
            def: "io.k8s.api.apps.v1.Deployment",
        },
        Builtin {
            group: "apps",
            version: "v1",
            kind: "DaemonSet",
            plural: "daemonsets",
            namespaced: true,
            short: &["ds"],
            categories: all,
            status: true,
            generation: SPEC,
            def: "io.k8s.api.apps.v1.DaemonSet",
        },
        Builtin {
            group: "apps",
            version: "v1",
            kind: "StatefulSet",
            plural: "statefulsets",
            namespaced: true,
            short: &["sts"],
            categories: all,
            status: true,
            generation: SPEC,
            def: "io.k8s.api.apps.v1.StatefulSet",
        },
        Builtin {
            group: "apps",
            version: "v1",
            kind: "ReplicaSet",
            plural: "replicasets",
            namespaced: true,
            short: &["rs"],
            categories: all,
            status: true,
            generation: SPEC,
            def: "io.k8s.api.apps.v1.ReplicaSet",
        },
        Builtin {
            group: "batch",
            version: "v1",
            kind: "Job",
            plural: "jobs",
            namespaced: true,
            short: &[],
            categories: all,
            status: true,
            generation: SPEC,
            def: "io.k8s.api.batch.v1.Job",
        },
        Builtin {
            group: "batch",
            version: "v1",
            kind: "CronJob",
            plural: "cronjobs",
            namespaced: true,
            short: &["cj"],
            categories: all,
            status: true,
            generation: SPEC,
            def: "io.k8s.api.batch.v1.CronJob",
        },
        Builtin {
            group: "rbac.authorization.k8s.io",
            version: "v1",
            kind: "ClusterRole",
            plural: "clusterroles",
            namespaced: false,
            short: &[],
            categories: &[],
            status: false,
            generation: NoGen,
            def: "io.k8s.api.rbac.v1.ClusterRole",
        },
        Builtin {
            group: "rbac.authorization.k8s.io",
            version: "v1",
            kind: "ClusterRoleBinding",
            plural: "clusterrolebindings",
            namespaced: false,
            short: &[],
            categories: &[],
            status: false,
            generation: NoGen,
            def: "io.k8s.api.rbac.v1.ClusterRoleBinding",
        },
        Builtin {
            group: "rbac.authorization.k8s.io",
            version: "v1",
            kind: "Role",
            plural: "roles",
            namespaced: true,
            short: &[],
            categories: &[],
            status: false,
            generation: NoGen,
            def: "io.k8s.api.rbac.v1.Role",
        },
        Builtin {
            group: "rbac.authorization.k8s.io",
            version: "v1",
            kind: "RoleBinding",
            plural: "rolebindings",
            namespaced: true,
            short: &[],
            categories: &[],
            status: false,
            generation: NoGen,
            def: "io.k8s.api.rbac.v1.RoleBinding",
        },
        Builtin {
            group: "scheduling.k8s.io",
            version: "v1",
            kind: "PriorityClass",
            plural: "priorityclasses",
            namespaced: false,
            short: &["pc"],
            categories: &[],
            status: false,
            generation: NoGen,
            def: "io.k8s.api.scheduling.v1.PriorityClass",
        },
        Builtin {
            group: "apiextensions.k8s.io",
            version: "v1",
            kind: "CustomResourceDefinition",
            plural: "customresourcedefinitions",
            namespaced: false,
            short: &["crd", "crds"],
            categories: &["api-extensions"],
            status: true,
            generation: SPEC,
            def: "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
        },
        Builtin {
            group: "admissionregistration.k8s.io",
            version: "v1",
            kind: "ValidatingWebhookConfiguration",
            plural: "validatingwebhookconfigurations",
            namespaced: false,
            short: &[],
            categories: &["api-extensions"],
            status: false,
            generation: GenerationRule::Fields(&["webhooks"]),
            def: "io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration",
        },
        Builtin {
            group: "admissionregistration.k8s.io",
            version: "v1",
            kind: "MutatingWebhookConfiguration",
            plural: "mutatingwebhookconfigurations",
            namespaced: false,
            short: &[],
            categories: &["api-extensions"],
            status: false,
            generation: GenerationRule::Fields(&["webhooks"]),
            def: "io.k8s.api.admissionregistration.v1.MutatingWebhookConfiguration",
        },
        Builtin {
            group: "policy",
            version: "v1",
            kind: "PodDisruptionBudget",
            plural: "poddisruptionbudgets",
            namespaced: true,
            short: &["pdb"],
            categories: &[],
            status: true,
            generation: SPEC,
            def: "io.k8s.api.policy.v1.PodDisruptionBudget",
        },
        Builtin {
            group: "coordination.k8s.io",
            version: "v1",
            kind: "Lease",
            plural: "leases",
            namespaced: true,
            short: &[],
            categories: &[],
            status: false,
            generation: NoGen,
            def: "io.k8s.api.coordination.v1.Lease",
        },
        Builtin {
            group: "networking.k8s.io",
            version: "v1",
            kind: "NetworkPolicy",
            plural: "networkpolicies",
            namespaced: true,
            short: &["netpol"],
            categories: &[],
            status: false,
            generation: SPEC,
            def: "io.k8s.api.networking.v1.NetworkPolicy",
        },
        Builtin {
            group: "networking.k8s.io",
            version: "v1",
            kind: "Ingress",
            plural: "ingresses",
            namespaced: true,
            short: &["ing"],
            categories: &[],
            status: true,
            generation: SPEC,
            def: "io.k8s.api.networking.v1.Ingress",
        },
        Builtin {
            group: "storage.k8s.io",
            version: "v1",
            kind: "StorageClass",
            plural: "storageclasses",
            namespaced: false,
            short: &["sc"],
            categories: &[],
            status: false,
            generation: NoGen,
            def: "io.k8s.api.storage.v1.StorageClass",
        },
        Builtin {
            group: "autoscaling",
            version: "v2",
            kind: "HorizontalPodAutoscaler",
            plural: "horizontalpodautoscalers",
            namespaced: true,
            short: &["hpa"],
            categories: all,
            status: true,
            generation: SPEC,
            def: "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler",
        },
    ]
}

/// Registry of served types.
#[derive(Debug, Clone)]
pub struct Kinds {
    /// Keyed by (group, version, plural).
    types: BTreeMap<(String, String, String), Arc<ResourceType>>,
}

impl Kinds {
    /// The built-in types only.
    pub fn builtin() -> Self {
        let mut types = BTreeMap::new();
        for b in builtin_table() {
            let rt = ResourceType {
                group: b.group.into(),
                version: b.version.into(),
                kind: b.kind.into(),
                list_kind: format!("{}List", b.kind),
                plural: b.plural.into(),
                singular: b.kind.to_lowercase(),
                namespaced: b.namespaced,
                short_names: b.short.iter().map(|s| s.to_string()).collect(),
                categories: b.categories.iter().map(|s| s.to_string()).collect(),
                status_subresource: b.status,
                generation: b.generation,
                schema: SchemaSource::Builtin(b.def),
                crd: None,
                printer_columns: vec![],
                preferred: true,
            };
            types.insert((rt.group.clone(), rt.version.clone(), rt.plural.clone()), Arc::new(rt));
        }
        Kinds { types }
    }

    /// Look a type up by URL parts.
    pub fn by_resource(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .cloned()
    }

    /// Look a type up by group, version and kind.
    pub fn by_kind(&self, group: &str, version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.types
            .values()
            .find(|t| t.group == group && t.version == version && t.kind == kind)
            .cloned()
    }

    /// The preferred version of a group-resource.
    pub fn preferred(&self, group: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .values()
            .find(|t| t.group == group && t.plural == plural && t.preferred)
            .cloned()
    }

    /// Every served type.
    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceType>> {
        self.types.values()
    }

    /// Groups with their versions (preferred first), `""` (core) included.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: BTreeMap<String, Vec<(bool, String)>> = BTreeMap::new();
        for t in self.types.values() {
            let e = out.entry(t.group.clone()).or_default();
            if !e.iter().any(|(_, v)| v == &t.version) {
                e.push((t.preferred, t.version.clone()));
            }
        }
        out.into_iter()
            .map(|(g, mut vs)| {
                vs.sort_by(|a, b| {
                    b.0.cmp(&a.0)
                        .then_with(|| version_priority(&b.1).cmp(&version_priority(&a.1)))
                });
                (g, vs.into_iter().map(|(_, v)| v).collect())
            })
            .collect()
    }

    /// Register (or replace) the types of one CRD.
    pub fn register_custom(&mut self, crd_name: &str, types: Vec<ResourceType>) {
        self.remove_custom(crd_name);
        for t in types {
            self.types
                .insert((t.group.clone(), t.version.clone(), t.plural.clone()), Arc::new(t));
        }
    }

    /// Remove the types of one CRD.
    pub fn remove_custom(&mut self, crd_name: &str) {
        self.types.retain(|_, t| t.crd.as_deref() != Some(crd_name));
    }

    /// Which CRD serves this group/plural, if any?
    pub fn custom_owner(&self, group: &str, plural: &str) -> Option<String> {
        self.types
            .values()
            .find(|t| t.group == group && t.plural == plural)
            .and_then(|t| t.crd.clone())
    }
}

/// Kubernetes version ordering: GA > beta > alpha, then by number.
pub fn version_priority(v: &str) -> (u8, u32, u32) {
    let rest = v.strip_prefix('v').unwrap_or(v);
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let major = digits.parse().unwrap_or(0);
    let tail = &rest[digits.len()..];
    if tail.is_empty() {
        (3, major, 0)
    } else if let Some(n) = tail.strip_prefix("beta") {
        (2, major, n.parse().unwrap_or(0))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, major, n.parse().unwrap_or(0))
    } else {
        (0, major, 0)
    }
}
