//! CRD `x-kubernetes-validations` (CEL) rules: Karpenter's NodePool and EC2NodeClass as the
//! sandbox chart ships them refuse what a real API server refuses, with the rules' messages
//! and the apiserver's error format; transition rules run on update only; ratcheting; CRDs
//! whose rules the simulator cannot evaluate are refused.

mod common;

use common::Sim;
use serde_json::{Value, json};
use std::time::Duration;

const NODEPOOLS: &str = "/apis/karpenter.sh/v1/nodepools";
const NODECLASSES: &str = "/apis/karpenter.k8s.aws/v1/ec2nodeclasses";

/// A CRD of the sandbox's Karpenter chart (`sandbox/charts/karpenter/crds/<file>`).
fn chart_crd(file: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../charts/karpenter/crds")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

async fn establish(sim: &Sim, crd: &Value) {
    let name = crd["metadata"]["name"].as_str().unwrap().to_string();
    let c = sim
        .post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        .await;
    assert_eq!(c.code, 201, "{}", c.body);
    sim.wait_for(
        &format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"),
        Duration::from_secs(5),
        |a| {
            a.body["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Established" && c["status"] == "True"))
        },
    )
    .await;
    // served as soon as the types are registered
    for _ in 0..50 {
        let plural = crd["spec"]["names"]["plural"].as_str().unwrap();
        let group = crd["spec"]["group"].as_str().unwrap();
        if sim.get(&format!("/apis/{group}/v1/{plural}")).await.code == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} not served");
}

async fn karpenter() -> Sim {
    let sim = Sim::start().await;
    establish(&sim, &chart_crd("karpenter.sh_nodepools.yaml")).await;
    establish(&sim, &chart_crd("karpenter.k8s.aws_ec2nodeclasses.yaml")).await;
    sim
}

fn nodepool(name: &str, requirements: Value) -> Value {
    json!({
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "metadata": {"labels": {"github-actions-runner": "true"}},
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
                    "taints": [{"key": "github-actions-runner", "value": "true", "effect": "NoSchedule"}],
                    "requirements": requirements,
                    "expireAfter": "720h",
                    "terminationGracePeriod": "2h",
                }
            },
            "limits": {"cpu": 256, "memory": "1024Gi"},
            "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "10m"},
        }
    })
}

fn good_requirements() -> Value {
    json!([
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]},
        {"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": ["c", "m"], "minValues": 2},
        {"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt", "values": ["5"]},
        {"key": "karpenter.k8s.aws/instance-local-nvme", "operator": "Gte", "values": ["100"]},
        {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["c6id", "m6id", "r6id", "c7gd", "m7gd"]},
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
    ])
}

fn nodeclass(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", "metadata": {"name": name}, "spec": spec})
}

fn good_nodeclass_spec() -> Value {
    json!({
        "role": "KarpenterNodeRole-spar",
        "amiSelectorTerms": [{"alias": "al2023@latest"}],
        "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "spar"}}],
        "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "spar"}}, {"id": "sg-0123abcd"}],
        "tags": {"team": "ci"},
        "kubelet": {"kubeReserved": {"cpu": "100m"}, "imageGCHighThresholdPercent": 85, "imageGCLowThresholdPercent": 80},
        "blockDeviceMappings": [{"deviceName": "/dev/xvda", "rootVolume": true, "ebs": {"volumeSize": "100Gi"}}],
    })
}

/// The causes of a 422 as (field, message), in order.
fn causes(a: &common::Ans) -> Vec<(String, String)> {
    a.body["details"]["causes"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    (
                        c["field"].as_str().unwrap_or_default().to_string(),
                        c["message"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn nodepool_requirement_keys_restricted_like_the_apiserver() {
    let sim = karpenter().await;
    let mut reqs = good_requirements();
    reqs.as_array_mut()
        .unwrap()
        .push(json!({"key": "karpenter.sh/nodepool", "operator": "In", "values": ["x"]}));
    let a = sim.post(NODEPOOLS, &nodepool("restricted", reqs)).await;
    assert_eq!(a.code, 422, "{}", a.body);
    assert_eq!(a.body["reason"], "Invalid");
    assert_eq!(
        a.msg(),
        "NodePool.karpenter.sh \"restricted\" is invalid: spec.template.spec.requirements[6].key: Invalid value: \"string\": label \"karpenter.sh/nodepool\" is restricted"
    );
    assert_eq!(a.body["details"]["causes"][0]["reason"], "FieldValueInvalid");
    assert_eq!(a.body["details"]["kind"], "NodePool");
    assert_eq!(a.body["details"]["group"], "karpenter.sh");

    // another key of the karpenter.sh domain, and the AWS domain outside its allow-list
    let reqs = json!([
        {"key": "karpenter.sh/custom", "operator": "Exists"},
        {"key": "team.karpenter.k8s.aws/x", "operator": "Exists"},
    ]);
    let a = sim.post(NODEPOOLS, &nodepool("domains", reqs)).await;
    assert_eq!(a.code, 422, "{}", a.body);
    assert_eq!(
        causes(&a),
        vec![
            (
                "spec.template.spec.requirements[0].key".to_string(),
                "Invalid value: \"string\": label domain \"karpenter.sh\" is restricted".to_string()
            ),
            (
                "spec.template.spec.requirements[1].key".to_string(),
                "Invalid value: \"string\": label domain \"karpenter.k8s.aws\" is restricted".to_string()
            ),
        ]
    );
    assert!(a.msg().starts_with("NodePool.karpenter.sh \"domains\" is invalid: [spec.template.spec.requirements[0].key: Invalid value: \"string\": label domain \"karpenter.sh\" is restricted, spec.template.spec.requirements[1].key: "), "{}", a.msg());

    // the same object without the restricted keys is accepted
    let ok = sim.post(NODEPOOLS, &nodepool("fine", good_requirements())).await;
    assert_eq!(ok.code, 201, "{}", ok.body);
}

#[tokio::test]
async fn nodepool_list_and_map_rules() {
    let sim = karpenter().await;
    let reqs = json!([
        {"key": "karpenter.k8s.aws/instance-cpu", "operator": "Gt", "values": ["4", "8"]},
        {"key": "kubernetes.io/os", "operator": "In", "values": []},
    ]);
    let a = sim.post(NODEPOOLS, &nodepool("ops", reqs)).await;
    assert_eq!(a.code, 422, "{}", a.body);
    assert_eq!(
        causes(&a),
        vec![
            (
                "spec.template.spec.requirements".to_string(),
                "Invalid value: \"array\": requirements with operator 'In' must have a value defined".to_string()
            ),
            (
                "spec.template.spec.requirements".to_string(),
                "Invalid value: \"array\": requirements operator 'Gt', 'Lt', 'Gte', or 'Lte' must have a single positive integer value".to_string()
            ),
        ]
    );

    // minValues larger than the values given
    let reqs =
        json!([{"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["c7i"], "minValues": 3}]);
    let a = sim.post(NODEPOOLS, &nodepool("minvalues", reqs)).await;
    assert_eq!(a.code, 422, "{}", a.body);
    assert_eq!(
        causes(&a)[0].1,
        "Invalid value: \"array\": requirements with 'minValues' must have at least that many values specified in the 'values' field"
    );

    // a label map rule, and a budget list rule
    let mut np = nodepool("labels", good_requirements());
    np["spec"]["template"]["metadata"]["labels"]["kubernetes.io/hostname"] = json!("n1");
    np["spec"]["disruption"] = json!({"consolidateAfter": "30s", "budgets": [{"nodes": "10%", "schedule": "@daily"}]});
    let a = sim.post(NODEPOOLS, &np).await;
    assert_eq!(a.code, 422, "{}", a.body);
    let got = causes(&a);
    assert!(
        got.contains(&(
            "spec.template.metadata.labels".into(),
            "Invalid value: \"object\": label \"kubernetes.io/hostname\" is restricted".into()
        )),
        "{got:?}"
    );
    assert!(
        got.contains(&(
            "spec.disruption.budgets".into(),
            "Invalid value: \"array\": 'schedule' must be set with 'duration'".into()
        )),
        "{got:?}"
    );
    assert_eq!(got.len(), 2, "{got:?}");
}

#[tokio::test]
async fn ec2nodeclass_rules_reject_and_valid_one_is_accepted() {
    let sim = karpenter().await;
    let ok = sim
        .post(NODECLASSES, &nodeclass("default", good_nodeclass_spec()))
        .await;
    assert_eq!(ok.code, 201, "{}", ok.body);
    // the flagship stack's shape (stacks/dagger-ci/src/karpenter.rs node_class_manifest)
    let flagship = json!({
        "role": "spar-karpenter-node",
        "amiSelectorTerms": [{"alias": "al2023@latest"}],
        "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "spar"}}],
        "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "spar"}}, {"id": "sg-0abc1234"}],
        "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"volumeSize": "50Gi", "volumeType": "gp3", "encrypted": true, "deleteOnTermination": true}}],
        "metadataOptions": {"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled", "httpPutResponseHopLimit": 1, "httpTokens": "required"},
        "tags": {"karpenter.sh/discovery": "spar"},
        "instanceStorePolicy": "RAID0",
    });
    let ok = sim.post(NODECLASSES, &nodeclass("flagship", flagship)).await;
    assert_eq!(ok.code, 201, "{}", ok.body);

    // subnet terms: id and tags are mutually exclusive
    let mut spec = good_nodeclass_spec();
    spec["subnetSelectorTerms"] = json!([{"id": "subnet-0abc", "tags": {"a": "b"}}]);
    let a = sim.post(NODECLASSES, &nodeclass("subnets", spec)).await;
    assert_eq!(a.code, 422, "{}", a.body);
    assert_eq!(
        a.msg(),
        "EC2NodeClass.karpenter.k8s.aws \"subnets\" is invalid: spec.subnetSelectorTerms: Invalid value: \"array\": 'id' is mutually exclusive, cannot be set with a combination of other fields in a subnet selector term"
    );

    // an AMI term with none of its fields; both role and instanceProfile
    let mut spec = good_nodeclass_spec();
    spec["amiSelectorTerms"] = json!([{"owner": "self"}]);
    spec["amiFamily"] = json!("AL2023");
    spec["instanceProfile"] = json!("profile");
    let a = sim.post(NODECLASSES, &nodeclass("terms", spec)).await;
    assert_eq!(a.code, 422, "{}", a.body);
    assert_eq!(
        causes(&a),
        vec![
            (
                "spec".to_string(),
                "Invalid value: \"object\": must specify exactly one of ['role', 'instanceProfile']".to_string()
            ),
            (
                "spec.amiSelectorTerms".to_string(),
                "Invalid value: \"array\": expected at least one, got none, ['tags', 'id', 'name', 'alias', 'ssmParameter']"
                    .to_string()
            ),
        ]
    );

    // alias format and family, and the amiFamily an alias implies
    let mut spec = good_nodeclass_spec();
    spec["amiSelectorTerms"] = json!([{"alias": "ubuntu"}]);
    let a = sim.post(NODECLASSES, &nodeclass("alias", spec)).await;
    assert_eq!(a.code, 422, "{}", a.body);
    let got = causes(&a);
    assert!(
        got.contains(&(
            "spec.amiSelectorTerms[0].alias".into(),
            "Invalid value: \"string\": 'alias' is improperly formatted, must match the format 'family@version'".into()
        )),
        "{got:?}"
    );
    assert!(got.contains(&("spec.amiSelectorTerms[0].alias".into(), "Invalid value: \"string\": family is not supported, must be one of the following: 'al2', 'al2023', 'bottlerocket', 'windows2019', 'windows2022', 'windows2025'".into())), "{got:?}");
    let mut spec = good_nodeclass_spec();
    spec["amiSelectorTerms"] = json!([{"alias": "bottlerocket@v1.30"}]);
    spec["amiFamily"] = json!("AL2023");
    let a = sim.post(NODECLASSES, &nodeclass("family", spec)).await;
    assert_eq!(a.code, 422, "{}", a.body);
    assert_eq!(
        causes(&a),
        vec![(
            "spec".to_string(),
            "Invalid value: \"object\": if set, amiFamily must be 'Bottlerocket' or 'Custom' when using a Bottlerocket alias".to_string()
        )]
    );

    // tags and kubelet maps
    let mut spec = good_nodeclass_spec();
    spec["tags"] = json!({"kubernetes.io/cluster/spar": "owned"});
    spec["kubelet"] =
        json!({"systemReserved": {"cpu": "-1"}, "imageGCHighThresholdPercent": 50, "imageGCLowThresholdPercent": 60});
    let a = sim.post(NODECLASSES, &nodeclass("maps", spec)).await;
    assert_eq!(a.code, 422, "{}", a.body);
    let got = causes(&a);
    for want in [
        (
            "spec.tags",
            "Invalid value: \"object\": tag contains a restricted tag matching kubernetes.io/cluster/",
        ),
        (
            "spec.kubelet",
            "Invalid value: \"object\": imageGCHighThresholdPercent must be greater than imageGCLowThresholdPercent",
        ),
        (
            "spec.kubelet.systemReserved",
            "Invalid value: \"object\": systemReserved value cannot be a negative resource quantity",
        ),
    ] {
        assert!(got.contains(&(want.0.into(), want.1.into())), "{want:?} not in {got:?}");
    }
}

#[tokio::test]
async fn schema_errors_block_or_join_the_rules() {
    let sim = karpenter().await;
    // a required field missing: the apiserver does not run the rules and says so
    let mut np = nodepool(
        "incomplete",
        json!([{"key": "karpenter.sh/nodepool", "operator": "Exists"}]),
    );
    np["spec"]["template"]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("nodeClassRef");
    let a = sim.post(NODEPOOLS, &np).await;
    assert_eq!(a.code, 422, "{}", a.body);
    assert_eq!(
        causes(&a),
        vec![
            ("spec.template.spec.nodeClassRef".to_string(), "Required value".to_string()),
            (
                "<nil>".to_string(),
                "Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation".to_string()
            ),
        ]
    );
    // a pattern error does not block the rules: both are reported
    let mut np = nodepool(
        "pattern",
        json!([{"key": "karpenter.sh/nodepool", "operator": "Exists"}]),
    );
    np["spec"]["template"]["spec"]["expireAfter"] = json!("soon");
    let a = sim.post(NODEPOOLS, &np).await;
    assert_eq!(a.code, 422, "{}", a.body);
    let got = causes(&a);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0, "spec.template.spec.expireAfter");
    assert_eq!(
        got[1],
        (
            "spec.template.spec.requirements[0].key".to_string(),
            "Invalid value: \"string\": label \"karpenter.sh/nodepool\" is restricted".to_string()
        )
    );
}

#[tokio::test]
async fn transition_rules_run_on_update_only() {
    let sim = karpenter().await;
    let np = nodepool("moving", good_requirements());
    let c = sim.post(NODEPOOLS, &np).await;
    assert_eq!(c.code, 201, "{}", c.body);
    // changing the node class name is allowed; its kind is immutable
    let ok = sim
        .merge_patch(
            &format!("{NODEPOOLS}/moving"),
            &json!({"spec": {"template": {"spec": {"nodeClassRef": {"name": "other"}}}}}),
        )
        .await;
    assert_eq!(ok.code, 200, "{}", ok.body);
    let a = sim
        .merge_patch(
            &format!("{NODEPOOLS}/moving"),
            &json!({"spec": {"template": {"spec": {"nodeClassRef": {"kind": "NodeClass", "group": "karpenter.example.com"}}}}}),
        )
        .await;
    assert_eq!(a.code, 422, "{}", a.body);
    assert_eq!(
        a.msg(),
        "NodePool.karpenter.sh \"moving\" is invalid: [spec.template.spec.nodeClassRef: Invalid value: \"object\": nodeClassRef.group is immutable, spec.template.spec.nodeClassRef: Invalid value: \"object\": nodeClassRef.kind is immutable]"
    );
    // the same values on a new object: no old value, the transition rules do not run
    let mut fresh = nodepool("fresh", good_requirements());
    fresh["spec"]["template"]["spec"]["nodeClassRef"] =
        json!({"group": "karpenter.example.com", "kind": "NodeClass", "name": "x"});
    let c = sim.post(NODEPOOLS, &fresh).await;
    assert_eq!(c.code, 201, "{}", c.body);
    // server-side apply goes through the same rules
    let mut applied = nodepool("moving", good_requirements());
    applied["spec"]["template"]["spec"]["nodeClassRef"]["kind"] = json!("Other");
    let a = sim.apply(&format!("{NODEPOOLS}/moving"), "spar", true, &applied).await;
    assert_eq!(a.code, 422, "{}", a.body);
    assert!(a.msg().contains("nodeClassRef.kind is immutable"), "{}", a.msg());
}

fn widget_crd(rules: Value, extra: Value) -> Value {
    let mut spec_schema = json!({
        "type": "object",
        "properties": {
            "size": {"type": "integer"},
            "name": {"type": "string"},
            "url": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "mode": {"type": "string", "default": "auto"},
        },
        "x-kubernetes-validations": rules,
    });
    if let Some(m) = extra.as_object() {
        for (k, v) in m {
            spec_schema[k] = v.clone();
        }
    }
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": spec_schema}}}
            }]
        }
    })
}

fn widget(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec})
}

const WIDGETS: &str = "/apis/example.com/v1/namespaces/default/widgets";

#[tokio::test]
async fn crds_with_rules_the_simulator_cannot_evaluate_are_refused() {
    let sim = Sim::start().await;
    let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    // unknown everywhere: a real API server refuses it too
    let a = sim
        .post(crds, &widget_crd(json!([{"rule": "frobnicate(self.name)"}]), json!({})))
        .await;
    assert_eq!(a.code, 422, "{}", a.body);
    let (field, msg) = causes(&a)[0].clone();
    assert_eq!(
        field,
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule"
    );
    assert!(
        msg.starts_with("Invalid value: apiextensions.ValidationRule{Rule:\"frobnicate(self.name)\""),
        "{msg}"
    );
    assert!(
        msg.contains("compilation failed: ERROR: <input>: undeclared reference to 'frobnicate'"),
        "{msg}"
    );
    assert!(
        a.msg()
            .starts_with("CustomResourceDefinition.apiextensions.k8s.io \"widgets.example.com\" is invalid: "),
        "{}",
        a.msg()
    );

    // a Kubernetes library function the simulator lacks: refused, naming it and its source
    let a = sim
        .post(
            crds,
            &widget_crd(json!([{"rule": "isURL(self.url)", "message": "url"}]), json!({})),
        )
        .await;
    assert_eq!(a.code, 422, "{}", a.body);
    let msg = &causes(&a)[0].1;
    assert!(
        msg.contains("function 'isURL' (k8s.io/apiserver/pkg/cel/library/urls.go)"),
        "{msg}"
    );
    assert!(msg.contains("spar-kube-sim does not evaluate it"), "{msg}");

    // a syntax error, an undeclared variable, a bad reason, a fieldPath to nowhere
    for (rule, want) in [
        (json!({"rule": "self.size >"}), "compilation failed: ERROR: <input>:"),
        (json!({"rule": "other.size > 0"}), "undeclared reference to 'other'"),
        (
            json!({"rule": "self.size > 0", "reason": "Bogus"}),
            "Unsupported value: \"Bogus\"",
        ),
        (
            json!({"rule": "self.size > 0", "fieldPath": ".nope"}),
            "fieldPath must be a valid path",
        ),
    ] {
        let a = sim.post(crds, &widget_crd(json!([rule]), json!({}))).await;
        assert_eq!(a.code, 422, "{rule}: {}", a.body);
        assert!(causes(&a)[0].1.contains(want), "{rule}: {:?}", causes(&a));
    }
    // oldSelf under the items of a list that does not correlate them
    let crd = widget_crd(
        json!([]),
        json!({"properties": {"tags": {"type": "array", "items": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf"}]}}}}),
    );
    let a = sim.post(crds, &crd).await;
    assert_eq!(a.code, 422, "{}", a.body);
    assert!(
        causes(&a)[0]
            .1
            .contains("oldSelf cannot be used on the uncorrelatable portion of the schema"),
        "{:?}",
        causes(&a)
    );

    // nothing was stored
    let l = sim.get(crds).await;
    assert!(l.body["items"].as_array().unwrap().is_empty(), "{}", l.body);
}

#[tokio::test]
async fn message_expression_field_path_reason_and_optional_old_self() {
    let sim = Sim::start().await;
    let crd = widget_crd(
        json!([
            {"rule": "self.size <= 10", "messageExpression": "'size ' + string(self.size) + ' is over 10'", "fieldPath": ".size", "reason": "FieldValueForbidden"},
            {"rule": "!oldSelf.hasValue() || self.size >= oldSelf.value().size", "optionalOldSelf": true, "message": "size may not shrink"},
            {"rule": "self.tags.all(t, t.lowerAscii() == t)"},
            {"rule": "has(self.mode)", "message": "rules see the defaulted object"},
        ]),
        json!({}),
    );
    establish(&sim, &crd).await;
    let a = sim.post(WIDGETS, &widget("big", json!({"size": 12, "tags": []}))).await;
    assert_eq!(a.code, 422, "{}", a.body);
    assert_eq!(a.body["details"]["causes"][0]["reason"], "FieldValueForbidden");
    assert_eq!(
        a.msg(),
        "Widget.example.com \"big\" is invalid: spec.size: Forbidden: size 12 is over 10"
    );

    // no message: the rule is the message
    let a = sim
        .post(WIDGETS, &widget("caps", json!({"size": 1, "tags": ["Upper"]})))
        .await;
    assert_eq!(a.code, 422, "{}", a.body);
    assert_eq!(
        causes(&a),
        vec![(
            "spec".to_string(),
            "Invalid value: \"object\": failed rule: self.tags.all(t, t.lowerAscii() == t)".to_string()
        )]
    );

    // a runtime error (no such key) is reported with the rule
    let a = sim.post(WIDGETS, &widget("nokey", json!({"size": 1}))).await;
    assert_eq!(a.code, 422, "{}", a.body);
    assert_eq!(
        causes(&a),
        vec![(
            "spec".to_string(),
            "Invalid value: \"object\": no such key: tags evaluating rule: self.tags.all(t, t.lowerAscii() == t)"
                .to_string()
        )]
    );

    // optionalOldSelf: runs on create with no old value (passes), and on update
    let c = sim.post(WIDGETS, &widget("w", json!({"size": 5, "tags": []}))).await;
    assert_eq!(c.code, 201, "{}", c.body);
    let a = sim
        .merge_patch(&format!("{WIDGETS}/w"), &json!({"spec": {"size": 4}}))
        .await;
    assert_eq!(a.code, 422, "{}", a.body);
    assert_eq!(
        causes(&a),
        vec![(
            "spec".to_string(),
            "Invalid value: \"object\": size may not shrink".to_string()
        )]
    );
    let ok = sim
        .merge_patch(&format!("{WIDGETS}/w"), &json!({"spec": {"size": 6}}))
        .await;
    assert_eq!(ok.code, 200, "{}", ok.body);
}

#[tokio::test]
async fn unchanged_values_are_ratcheted_into_warnings() {
    let sim = Sim::start().await;
    // first without the rule, so that an object the rule refuses gets stored
    let crd = widget_crd(json!([]), json!({}));
    establish(&sim, &crd).await;
    let c = sim
        .post(
            WIDGETS,
            &widget("old", json!({"size": 1, "name": "UPPER", "tags": ["a"]})),
        )
        .await;
    assert_eq!(c.code, 201, "{}", c.body);
    let mut crd = sim
        .get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com")
        .await
        .body;
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["name"]["x-kubernetes-validations"] =
        json!([{"rule": "self.lowerAscii() == self", "message": "name must be lower case"}]);
    let u = sim
        .put(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com",
            &crd,
        )
        .await;
    assert_eq!(u.code, 200, "{}", u.body);
    // wait for the new generation's rules to be served
    let mut refused = false;
    for _ in 0..50 {
        let a = sim
            .post(WIDGETS, &widget("probe", json!({"size": 1, "name": "X"})))
            .await;
        if a.code == 422 {
            refused = true;
            break;
        }
        sim.delete(&format!("{WIDGETS}/probe")).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused, "the updated CRD's rule is never enforced");
    // another field changes, the invalid name does not: allowed, with a warning
    let ok = sim
        .merge_patch(&format!("{WIDGETS}/old"), &json!({"spec": {"size": 2}}))
        .await;
    assert_eq!(ok.code, 200, "{}", ok.body);
    assert!(
        ok.warnings.iter().any(
            |w| w.contains("spec.name: Invalid value: \\\"string\\\": name must be lower case")
                || w.contains("spec.name: Invalid value: \"string\": name must be lower case")
        ),
        "{:?}",
        ok.warnings
    );
    // changing the name to another invalid one is refused
    let a = sim
        .merge_patch(&format!("{WIDGETS}/old"), &json!({"spec": {"name": "STILL"}}))
        .await;
    assert_eq!(a.code, 422, "{}", a.body);
    assert_eq!(
        a.msg(),
        "Widget.example.com \"old\" is invalid: spec.name: Invalid value: \"string\": name must be lower case"
    );
}
