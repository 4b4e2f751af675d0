//! Shared test harness: starts the simulator in-process and talks plain HTTP to it.
//!
//! Owns [`Sim`] (a running simulator plus a reqwest client) and request helpers that return
//! (status code, JSON body, warning headers) so tests can assert on real `Status` bodies.
#![allow(dead_code)]

use serde_json::{Value, json};
use spar_kube_sim::{SimConfig, SimHandle, Simulator};
use std::time::Duration;

pub struct Sim {
    pub handle: SimHandle,
    pub client: reqwest::Client,
    pub base: String,
}

/// An answer: code, body, warnings.
pub struct Ans {
    pub code: u16,
    pub body: Value,
    pub warnings: Vec<String>,
}

impl Ans {
    pub fn msg(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }
}

impl Sim {
    pub async fn start() -> Sim {
        Self::start_with(SimConfig::default()).await
    }

    pub async fn start_with(cfg: SimConfig) -> Sim {
        let handle = Simulator::start(cfg)
            .await
            .expect("simulator starts (are the kubernetes-validate schemas installed in the repo's .venv?)");
        let base = handle.url();
        Sim {
            handle,
            client: reqwest::Client::new(),
            base,
        }
    }

    pub async fn req(&self, method: reqwest::Method, path: &str, content_type: &str, body: Option<&Value>) -> Ans {
        let mut r = self.client.request(method, format!("{}{}", self.base, path));
        if let Some(b) = body {
            r = r.header("Content-Type", content_type).body(b.to_string());
        }
        let resp = r.send().await.expect("request");
        let code = resp.status().as_u16();
        let warnings = resp
            .headers()
            .get_all("Warning")
            .iter()
            .map(|v| v.to_str().unwrap_or_default().to_string())
            .collect();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ans { code, body, warnings }
    }

    pub async fn get(&self, path: &str) -> Ans {
        self.req(reqwest::Method::GET, path, "", None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Ans {
        self.req(reqwest::Method::POST, path, "application/json", Some(body))
            .await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Ans {
        self.req(reqwest::Method::PUT, path, "application/json", Some(body))
            .await
    }

    pub async fn delete(&self, path: &str) -> Ans {
        self.req(reqwest::Method::DELETE, path, "", None).await
    }

    pub async fn delete_with(&self, path: &str, opts: &Value) -> Ans {
        self.req(reqwest::Method::DELETE, path, "application/json", Some(opts))
            .await
    }

    pub async fn merge_patch(&self, path: &str, body: &Value) -> Ans {
        self.req(reqwest::Method::PATCH, path, "application/merge-patch+json", Some(body))
            .await
    }

    /// Server-side apply as `manager`.
    pub async fn apply(&self, path: &str, manager: &str, force: bool, body: &Value) -> Ans {
        let sep = if path.contains('?') { '&' } else { '?' };
        let p = format!(
            "{path}{sep}fieldManager={manager}{}",
            if force { "&force=true" } else { "" }
        );
        self.req(reqwest::Method::PATCH, &p, "application/apply-patch+yaml", Some(body))
            .await
    }

    /// Create a namespace.
    pub async fn namespace(&self, name: &str) {
        let a = self
            .post(
                "/api/v1/namespaces",
                &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
            )
            .await;
        assert_eq!(a.code, 201, "{}", a.body);
    }

    /// Poll `path` until `pred` holds (or fail after `within`).
    pub async fn wait_for(&self, path: &str, within: Duration, pred: impl Fn(&Ans) -> bool) -> Ans {
        let deadline = std::time::Instant::now() + within;
        loop {
            let a = self.get(path).await;
            if pred(&a) {
                return a;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "condition on {path} not reached; last answer {} {}",
                a.code,
                a.body
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub fn cm(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
}

pub fn deployment(name: &str, replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "main", "image": image}]}}
        }
    })
}

pub fn daemonset(name: &str, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "main", "image": image}]}}
        }
    })
}

/// The managed fields entry of `manager` (and operation) on an object.
pub fn managed<'a>(obj: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
}
