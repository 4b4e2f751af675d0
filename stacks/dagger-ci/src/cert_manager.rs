//! The `CertManager` component: the cert-manager chart with its CRDs, every component
//! tolerating the critical taint.
//!
//! Rule kept here: it is installed when legacy ARC is chosen (its admission webhook needs
//! certificates) or when the configuration asks for it; the scale-set ARC needs none.

use serde::Deserialize;
use serde_json::{Value, json};
use spar::Handle;
use spar::kubernetes::Chart;
use spar::prelude::*;

use crate::StackError;
use crate::config::ChartsConfig;
use crate::target::KubeTarget;

pub const CHART: &str = "oci://quay.io/jetstack/charts/cert-manager";

/// `[cert_manager]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CertManagerConfig {
    /// Install it (default: only when legacy ARC needs it).
    pub enabled: Option<bool>,
    pub version: String,
    pub namespace: String,
}

impl Default for CertManagerConfig {
    fn default() -> Self {
        CertManagerConfig {
            enabled: None,
            version: "v1.21.1".into(),
            namespace: "cert-manager".into(),
        }
    }
}

/// What the component declared.
pub struct CertManager {
    pub chart: Handle<Chart<Value>>,
    pub values: Value,
}

impl CertManager {
    pub fn declare(
        s: &mut Stack,
        cfg: &CertManagerConfig,
        target: &KubeTarget,
        charts: &ChartsConfig,
    ) -> Result<CertManager, StackError> {
        let tol = target.controller_tolerations();
        let values = json!({
            "crds": {"enabled": true},
            "tolerations": tol,
            "webhook": {"tolerations": tol},
            "cainjector": {"tolerations": tol},
            "startupapicheck": {"tolerations": tol},
        });
        let mut chart = Chart::new(
            &target.provider,
            &charts.reference("cert-manager", CHART),
            "cert-manager",
            &cfg.namespace,
        )
        .create_namespace();
        if let Some(v) = charts.version(&cfg.version) {
            chart = chart.version(&v);
        }
        if let Some(h) = &charts.helm {
            chart = chart.helm(h);
        }
        let chart = s.add_with("chart", chart.values(values.clone()), charts.wait(target.after_nodes()))?;
        Ok(CertManager { chart, values })
    }
}
