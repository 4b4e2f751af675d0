//! How spar reaches a cluster: the [`Connection`] a `kubernetes:Provider` outputs, the cached
//! `kube::Client` built from it, and EKS authentication tokens.
//!
//! Rules kept here:
//! - a `Connection` holds only non-secret facts (endpoint, CA data, cluster name, region,
//!   kubeconfig path and context, sandbox URL); tokens are made when a client is built and
//!   never leave memory, so they never reach state;
//! - the environment variable `SPAR_KUBE_SANDBOX_URL`, when set, sends every connection to that
//!   simulator instead of the declared cluster (not recorded in state, so switching sandbox
//!   ports does not change any plan); a sandbox URL must be a loopback `http://` address;
//! - clients are cached per connection (EKS clients for ten minutes, as their tokens expire
//!   after fifteen).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::provider::ProviderError;

/// The environment variable that sends every Kubernetes connection to a simulator.
pub const SANDBOX_ENV: &str = "SPAR_KUBE_SANDBOX_URL";

/// How long a client holding an EKS token is reused.
const EKS_CLIENT_TTL: Duration = Duration::from_secs(600);

/// How to reach one cluster (the non-secret parts only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// A simulator's URL (`http://127.0.0.1:PORT`): sandbox mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_url: Option<String>,
    /// An EKS cluster's API endpoint (`https://...eks.amazonaws.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The cluster's CA bundle, base64 PEM (as EKS reports `certificateAuthority.data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_data: Option<String>,
    /// The EKS cluster name (the `x-k8s-aws-id` of its tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    /// The AWS region of the EKS cluster (for the STS endpoint of its tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A kubeconfig file (when not EKS); `None` with no other setting = `KUBECONFIG`/default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<String>,
    /// The kubeconfig context to use (default: its current context).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The namespace of namespaced objects that name none (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl Connection {
    /// The namespace for namespaced objects that name none.
    pub fn default_namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }

    /// A short description for messages (never a secret).
    pub fn describe(&self) -> String {
        if let Some(url) = sandbox_override() {
            return format!("sandbox {url} (from {SANDBOX_ENV})");
        }
        if let Some(url) = &self.sandbox_url {
            return format!("sandbox {url}");
        }
        if let (Some(name), Some(endpoint)) = (&self.cluster_name, &self.endpoint) {
            return format!("EKS cluster {name} at {endpoint}");
        }
        match (&self.kubeconfig, &self.context) {
            (Some(k), Some(c)) => format!("kubeconfig {k} context {c}"),
            (Some(k), None) => format!("kubeconfig {k}"),
            (None, Some(c)) => format!("default kubeconfig context {c}"),
            (None, None) => "default kubeconfig".to_string(),
        }
    }
}

pub(crate) fn sandbox_override() -> Option<String> {
    std::env::var(SANDBOX_ENV).ok().filter(|s| !s.trim().is_empty())
}

/// Checks that a sandbox URL is plain http on a loopback address.
pub fn check_sandbox_url(url: &str) -> Result<(), ProviderError> {
    let rest = url.trim().strip_prefix("http://");
    let host = rest.map(|r| {
        let authority = r.split('/').next().unwrap_or_default();
        if let Some(v6) = authority.strip_prefix('[') {
            format!("[{}", v6.split(']').next().unwrap_or_default())
        } else {
            authority.split(':').next().unwrap_or_default().to_string()
        }
    });
    match host {
        Some(h) if h == "localhost" || h == "[::1" || h.starts_with("127.") => Ok(()),
        _ => Err(ProviderError::msg(format!(
            "sandbox URL `{url}` must be http:// on a loopback address (127.0.0.1); the sandbox never leaves this machine"
        ))),
    }
}

fn parse_url(url: &str, what: &str) -> Result<kube::Config, ProviderError> {
    fn parse<U: std::str::FromStr>(s: &str) -> Result<U, String>
    where
        U::Err: std::fmt::Display,
    {
        s.parse::<U>().map_err(|e| e.to_string())
    }
    let uri = parse(url.trim()).map_err(|e| ProviderError::msg(format!("{what} `{url}` is not a URL: {e}")))?;
    Ok(kube::Config::new(uri))
}

struct Cached {
    client: kube::Client,
    made: Instant,
    expires: bool,
}

fn cache() -> &'static Mutex<HashMap<String, Cached>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Cached>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The client for `conn`, built once and reused.
pub async fn client_for(conn: &Connection) -> Result<kube::Client, ProviderError> {
    let sandbox = sandbox_override();
    let key = format!(
        "{}|{}",
        sandbox.as_deref().unwrap_or(""),
        serde_json::to_string(conn).unwrap_or_default()
    );
    if let Some(c) = cache().lock().expect("client cache").get(&key)
        && (!c.expires || c.made.elapsed() < EKS_CLIENT_TTL)
    {
        return Ok(c.client.clone());
    }
    let (config, expires) = config_for(conn, sandbox.as_deref()).await?;
    let client = kube::Client::try_from(config)
        .map_err(|e| ProviderError::msg(format!("building a client for {}: {e}", conn.describe())))?;
    cache().lock().expect("client cache").insert(
        key,
        Cached {
            client: client.clone(),
            made: Instant::now(),
            expires,
        },
    );
    Ok(client)
}

async fn config_for(conn: &Connection, sandbox: Option<&str>) -> Result<(kube::Config, bool), ProviderError> {
    if let Some(url) = sandbox.or(conn.sandbox_url.as_deref()) {
        check_sandbox_url(url)?;
        let mut config = parse_url(url, "sandbox URL")?;
        config.default_namespace = conn.default_namespace().to_string();
        return Ok((config, false));
    }
    if let (Some(endpoint), Some(name)) = (&conn.endpoint, &conn.cluster_name) {
        let mut config = parse_url(endpoint, "EKS endpoint")?;
        config.default_namespace = conn.default_namespace().to_string();
        if let Some(ca) = &conn.ca_data {
            config.root_cert = Some(pem_certificates(ca)?);
        }
        let region = conn
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .ok_or_else(|| {
                ProviderError::msg(format!("EKS cluster {name}: no region given and AWS_REGION is not set"))
            })?;
        let creds = AwsCredentials::resolve().await?;
        let token = eks_token(name, &region, &creds, SystemTime::now());
        config.auth_info.token = Some(token.into());
        return Ok((config, true));
    }
    let options = kube::config::KubeConfigOptions {
        context: conn.context.clone(),
        ..Default::default()
    };
    let mut config = match &conn.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| ProviderError::msg(format!("reading kubeconfig {path}: {e}")))?;
            kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|e| ProviderError::msg(format!("kubeconfig {path}: {e}")))?
        }
        None if conn.context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| ProviderError::msg(format!("default kubeconfig: {e}")))?,
        None => kube::Config::infer()
            .await
            .map_err(|e| ProviderError::msg(format!("no cluster configured: {e}")))?,
    };
    if let Some(ns) = &conn.namespace {
        config.default_namespace = ns.clone();
    }
    Ok((config, false))
}

/// The DER certificates of a base64 PEM bundle (EKS `certificateAuthority.data`).
fn pem_certificates(ca_b64: &str) -> Result<Vec<Vec<u8>>, ProviderError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let pem = b64
        .decode(ca_b64.trim())
        .map_err(|e| ProviderError::msg(format!("CA data is not base64: {e}")))?;
    let pem = String::from_utf8_lossy(&pem);
    let mut out = Vec::new();
    let mut body = String::new();
    let mut inside = false;
    for line in pem.lines() {
        let line = line.trim();
        if line.starts_with("-----BEGIN CERTIFICATE") {
            inside = true;
            body.clear();
        } else if line.starts_with("-----END CERTIFICATE") {
            inside = false;
            out.push(
                b64.decode(&body)
                    .map_err(|e| ProviderError::msg(format!("CA certificate is not valid PEM: {e}")))?,
            );
        } else if inside {
            body.push_str(line);
        }
    }
    if out.is_empty() {
        return Err(ProviderError::msg("CA data holds no PEM certificate"));
    }
    Ok(out)
}

/// AWS credentials for signing EKS tokens.
#[derive(Clone)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl AwsCredentials {
    /// From the standard AWS chain (environment, profiles, SSO, instance roles) when spar is
    /// built with the `aws` feature; from the environment only otherwise.
    pub async fn resolve() -> Result<Self, ProviderError> {
        #[cfg(feature = "aws")]
        {
            use aws_credential_types::provider::ProvideCredentials as _;
            let config = crate::aws::context::sdk_config().await;
            let provider = config.credentials_provider().ok_or_else(|| {
                ProviderError::msg(
                    "an EKS token needs AWS credentials and the AWS configuration has no credentials provider",
                )
            })?;
            let c = provider.provide_credentials().await.map_err(|e| {
                ProviderError::msg(format!(
                    "an EKS token needs AWS credentials: {e} (set AWS_PROFILE, log in with `aws sso login`, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
                ))
            })?;
            Ok(AwsCredentials {
                access_key_id: c.access_key_id().to_string(),
                secret_access_key: c.secret_access_key().to_string(),
                session_token: c.session_token().map(str::to_string),
            })
        }
        #[cfg(not(feature = "aws"))]
        {
            Self::from_env()
        }
    }

    /// From `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`.
    pub fn from_env() -> Result<Self, ProviderError> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
            (Some(access_key_id), Some(secret_access_key)) => Ok(AwsCredentials {
                access_key_id,
                secret_access_key,
                session_token: get("AWS_SESSION_TOKEN"),
            }),
            _ => Err(ProviderError::msg(
                "an EKS token needs AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN)",
            )),
        }
    }
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(data);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

fn uri_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An EKS bearer token, as `aws eks get-token` makes it: `k8s-aws-v1.` and the base64url of a
/// SigV4-presigned STS `GetCallerIdentity` URL that signs the `x-k8s-aws-id: <cluster>` header.
pub fn eks_token(cluster: &str, region: &str, creds: &AwsCredentials, now: SystemTime) -> String {
    let stamp = humantime::format_rfc3339_seconds(now).to_string(); // 2026-11-27T22:37:30Z
    let amz_date: String = stamp.chars().filter(|c| *c != '-' && *c != ':').collect(); // 20261127T223730Z
    let date = &amz_date[..8];
    let host = format!("sts.{region}.amazonaws.com");
    let scope = format!("{date}/{region}/sts/aws4_request");
    let mut query = vec![
        ("Action".to_string(), "GetCallerIdentity".to_string()),
        ("Version".to_string(), "2011-06-15".to_string()),
        ("X-Amz-Algorithm".to_string(), "AWS4-HMAC-SHA256".to_string()),
        (
            "X-Amz-Credential".to_string(),
            format!("{}/{scope}", creds.access_key_id),
        ),
        ("X-Amz-Date".to_string(), amz_date.clone()),
        ("X-Amz-Expires".to_string(), "60".to_string()),
        ("X-Amz-SignedHeaders".to_string(), "host;x-k8s-aws-id".to_string()),
    ];
    if let Some(t) = &creds.session_token {
        query.push(("X-Amz-Security-Token".to_string(), t.clone()));
    }
    query.sort();
    let canonical_query = query
        .iter()
        .map(|(k, v)| format!("{}={}", uri_encode(k), uri_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let canonical_request = format!(
        "GET\n/\n{canonical_query}\nhost:{host}\nx-k8s-aws-id:{cluster}\n\nhost;x-k8s-aws-id\n{}",
        hex::encode(Sha256::digest(b""))
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let k_date = hmac_sha256(format!("AWS4{}", creds.secret_access_key).as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, b"sts");
    let k_signing = hmac_sha256(&k_service, b"aws4_request");
    let signature = hex::encode(hmac_sha256(&k_signing, string_to_sign.as_bytes()));
    let url = format!("https://{host}/?{canonical_query}&X-Amz-Signature={signature}");
    format!(
        "k8s-aws-v1.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn eks_token_is_a_presigned_sts_url() {
        let creds = AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: Some("tok/en=".into()),
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let token = eks_token("ci", "us-east-1", &creds, now);
        let b64 = token.strip_prefix("k8s-aws-v1.").expect("prefix");
        let url = String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b64).unwrap()).unwrap();
        assert!(url.starts_with("https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&"));
        assert!(url.contains("X-Amz-Credential=AKIDEXAMPLE%2F20270115%2Fus-east-1%2Fsts%2Faws4_request"));
        assert!(url.contains("X-Amz-Date=20270115T080000Z"));
        assert!(url.contains("X-Amz-SignedHeaders=host%3Bx-k8s-aws-id"));
        assert!(url.contains("X-Amz-Security-Token=tok%2Fen%3D"));
        // The signature botocore 1.44 (`SigV4QueryAuth`, what `aws eks get-token` uses) makes
        // for the same request, credentials and time.
        let sig = url.rsplit("X-Amz-Signature=").next().unwrap();
        assert_eq!(sig, "de2245e9be26b3eaf3256869d8079ed47b6108d639ba4c817b5db7ff057dcb40");
        // Deterministic for the same inputs, different for another cluster.
        assert_eq!(token, eks_token("ci", "us-east-1", &creds, now));
        assert_ne!(token, eks_token("other", "us-east-1", &creds, now));
    }

    #[test]
    fn sandbox_urls_must_be_loopback_http() {
        assert!(check_sandbox_url("http://127.0.0.1:8080").is_ok());
        assert!(check_sandbox_url("http://localhost:1").is_ok());
        assert!(check_sandbox_url("https://127.0.0.1:1").is_err());
        assert!(check_sandbox_url("http://10.0.0.1:80").is_err());
        assert!(check_sandbox_url("http://example.com").is_err());
    }
}
