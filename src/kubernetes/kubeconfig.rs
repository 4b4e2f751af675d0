//! Writing a kubeconfig for a stack's cluster (`spar kubeconfig`).
//!
//! Rules kept here: a kubeconfig never holds a token: EKS clusters get an `exec` user that
//! runs `aws eks get-token` (as `aws eks update-kubeconfig` writes it), a sandbox simulator
//! gets its plain loopback URL; the file is JSON, which kubectl reads as YAML.

use serde_json::{Value, json};

use super::connection::{Connection, sandbox_override};

/// Why no kubeconfig can be written for a connection.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum KubeconfigError {
    #[error("the provider already connects through kubeconfig {0}; use that file")]
    AlreadyKubeconfig(String),
    #[error("the provider's connection has no endpoint yet; apply the stack first")]
    NoEndpoint,
}

/// The kubeconfig (as JSON) for `conn`, naming its cluster, user and context `name`.
pub fn render(conn: &Connection, name: &str) -> Result<Value, KubeconfigError> {
    let sandbox = sandbox_override().or_else(|| conn.sandbox_url.clone());
    let (cluster, user) = if let Some(url) = sandbox {
        (json!({"server": url}), json!({}))
    } else if let Some(endpoint) = &conn.endpoint {
        let mut cluster = json!({"server": endpoint});
        if let Some(ca) = &conn.ca_data {
            cluster["certificate-authority-data"] = json!(ca);
        }
        let mut args = vec!["eks".to_string(), "get-token".to_string()];
        if let Some(n) = &conn.cluster_name {
            args.extend(["--cluster-name".to_string(), n.clone()]);
        }
        if let Some(r) = &conn.region {
            args.extend(["--region".to_string(), r.clone()]);
        }
        let user = json!({"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": args,
            "interactiveMode": "Never",
        }});
        (cluster, user)
    } else if let Some(file) = &conn.kubeconfig {
        return Err(KubeconfigError::AlreadyKubeconfig(file.clone()));
    } else {
        return Err(KubeconfigError::NoEndpoint);
    };
    let mut context = json!({"cluster": name, "user": name});
    if let Some(ns) = &conn.namespace {
        context["namespace"] = json!(ns);
    }
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": context}],
        "current-context": name,
        "preferences": {},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eks_clusters_get_an_exec_user_and_no_token() {
        let conn = Connection {
            endpoint: Some("https://ABC.gr7.us-east-1.eks.amazonaws.com".into()),
            ca_data: Some("Y2E=".into()),
            cluster_name: Some("ci".into()),
            region: Some("us-east-1".into()),
            ..Default::default()
        };
        let k = render(&conn, "ci").unwrap();
        assert_eq!(k["clusters"][0]["cluster"]["certificate-authority-data"], "Y2E=");
        assert_eq!(
            k["users"][0]["user"]["exec"]["args"],
            json!(["eks", "get-token", "--cluster-name", "ci", "--region", "us-east-1"])
        );
        assert!(!k.to_string().contains("k8s-aws-v1"));
        assert_eq!(render(&Connection::default(), "x"), Err(KubeconfigError::NoEndpoint));
    }
}
