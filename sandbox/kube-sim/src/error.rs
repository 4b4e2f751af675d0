//! Typed errors of the simulator.
//!
//! Owns two error types and nothing else:
//! - [`SimError`]: failures of the simulator itself (bad configuration, schemas that
//!   cannot be found or parsed, a port that cannot be bound). Returned by the library API.
//! - [`ApiError`]: a Kubernetes API failure answered to a client. Every variant renders as a
//!   real `Status` object (`kind: Status, apiVersion: v1, status: Failure, message, reason,
//!   details, code`) with the HTTP code and `reason` the real kube-apiserver uses for that case,
//!   and the message text in the apiserver's wording, so clients' error helpers
//!   (`IsNotFound`, `IsConflict`, kube-rs `ErrorResponse`) classify them the same way.

use serde_json::{Value, json};
use std::path::PathBuf;

/// A failure of the simulator itself (not of an API request).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The Kubernetes JSON schema directory could not be found.
    #[error("Kubernetes JSON schemas not found: {0}")]
    SchemasNotFound(String),
    /// A schema file could not be read.
    #[error("cannot read schema file {path}: {source}")]
    SchemaRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A schema file is not valid JSON or not of the expected shape.
    #[error("invalid schema file {path}: {message}")]
    SchemaParse { path: PathBuf, message: String },
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// Any other I/O failure.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// One `details.causes` entry of a `Status`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// `reason` of the cause, e.g. `FieldValueRequired`, `FieldManagerConflict`.
    pub reason: String,
    /// Human readable message.
    pub message: String,
    /// Field path, e.g. `spec.replicas` or `.spec.replicas` for apply conflicts.
    pub field: String,
}

/// Identifies the object a failure is about, for `details`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Target {
    /// API group ("" for core).
    pub group: String,
    /// `details.kind`: the resource (plural) for NotFound/AlreadyExists/Conflict, the Kind for Invalid.
    pub kind: String,
    /// Object name.
    pub name: String,
}

/// A Kubernetes API failure, rendered as a `Status` body.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    NotFound { message: String, target: Target },
    #[error("{message}")]
    AlreadyExists { message: String, target: Target },
    /// Optimistic-concurrency or apply conflict (409, reason Conflict).
    #[error("{message}")]
    Conflict {
        message: String,
        target: Target,
        causes: Vec<Cause>,
    },
    /// Semantic validation failure (422, reason Invalid).
    #[error("{message}")]
    Invalid {
        message: String,
        target: Target,
        causes: Vec<Cause>,
    },
    #[error("{message}")]
    BadRequest { message: String },
    #[error("{message}")]
    Forbidden { message: String, target: Target },
    #[error("{message}")]
    MethodNotAllowed { message: String, target: Target },
    #[error("{message}")]
    UnsupportedMediaType { message: String },
    #[error("{message}")]
    NotAcceptable { message: String },
    /// Watch from a resourceVersion that is no longer in the event window (410, reason Expired).
    #[error("{message}")]
    Gone { message: String },
    #[error("{message}")]
    Internal { message: String },
}

/// `deployments.apps` / `configmaps` as the apiserver prints a group resource.
pub fn group_resource(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

/// `Deployment.apps` / `ConfigMap` as the apiserver prints a group kind.
pub fn group_kind(group: &str, kind: &str) -> String {
    if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    }
}

impl ApiError {
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        ApiError::NotFound {
            message: format!("{} \"{}\" not found", group_resource(group, resource), name),
            target: Target {
                group: group.into(),
                kind: resource.into(),
                name: name.into(),
            },
        }
    }

    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        ApiError::AlreadyExists {
            message: format!("{} \"{}\" already exists", group_resource(group, resource), name),
            target: Target {
                group: group.into(),
                kind: resource.into(),
                name: name.into(),
            },
        }
    }

    /// The resourceVersion precondition failed.
    pub fn stale(group: &str, resource: &str, name: &str) -> Self {
        ApiError::Conflict {
            message: format!(
                "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                group_resource(group, resource),
                name
            ),
            target: Target {
                group: group.into(),
                kind: resource.into(),
                name: name.into(),
            },
            causes: vec![],
        }
    }

    /// A conflict with a custom explanation (uid precondition, ...).
    pub fn conflict_msg(group: &str, resource: &str, name: &str, why: &str) -> Self {
        ApiError::Conflict {
            message: format!(
                "Operation cannot be fulfilled on {} \"{}\": {}",
                group_resource(group, resource),
                name,
                why
            ),
            target: Target {
                group: group.into(),
                kind: resource.into(),
                name: name.into(),
            },
            causes: vec![],
        }
    }

    /// 422 Invalid for `kind`/`name` with the given causes, message in apiserver format.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let rendered: Vec<String> = causes
            .iter()
            .map(|c| {
                if c.field.is_empty() {
                    c.message.clone()
                } else {
                    format!("{}: {}", c.field, c.message)
                }
            })
            .collect();
        let agg = if rendered.len() == 1 {
            rendered[0].clone()
        } else {
            format!("[{}]", rendered.join(", "))
        };
        ApiError::Invalid {
            message: format!("{} \"{}\" is invalid: {}", group_kind(group, kind), name, agg),
            target: Target {
                group: group.into(),
                kind: kind.into(),
                name: name.into(),
            },
            causes,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            message: message.into(),
        }
    }

    pub fn forbidden(group: &str, resource: &str, name: &str, why: &str) -> Self {
        ApiError::Forbidden {
            message: format!("{} \"{}\" is forbidden: {}", group_resource(group, resource), name, why),
            target: Target {
                group: group.into(),
                kind: resource.into(),
                name: name.into(),
            },
        }
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        ApiError::MethodNotAllowed {
            message: message.into(),
            target: Target::default(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::Internal {
            message: message.into(),
        }
    }

    /// HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            ApiError::NotFound { .. } => 404,
            ApiError::AlreadyExists { .. } | ApiError::Conflict { .. } => 409,
            ApiError::Invalid { .. } => 422,
            ApiError::BadRequest { .. } => 400,
            ApiError::Forbidden { .. } => 403,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::UnsupportedMediaType { .. } => 415,
            ApiError::NotAcceptable { .. } => 406,
            ApiError::Gone { .. } => 410,
            ApiError::Internal { .. } => 500,
        }
    }

    /// `Status.reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } => "NotFound",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::Invalid { .. } => "Invalid",
            ApiError::BadRequest { .. } => "BadRequest",
            ApiError::Forbidden { .. } => "Forbidden",
            ApiError::MethodNotAllowed { .. } => "MethodNotAllowed",
            ApiError::UnsupportedMediaType { .. } => "UnsupportedMediaType",
            ApiError::NotAcceptable { .. } => "NotAcceptable",
            ApiError::Gone { .. } => "Expired",
            ApiError::Internal { .. } => "InternalError",
        }
    }

    /// The full `Status` body.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        let (target, causes): (Option<&Target>, &[Cause]) = match self {
            ApiError::NotFound { target, .. }
            | ApiError::AlreadyExists { target, .. }
            | ApiError::Forbidden { target, .. } => (Some(target), &[]),
            ApiError::MethodNotAllowed { target, .. } if !target.kind.is_empty() => (Some(target), &[]),
            ApiError::Conflict { target, causes, .. } | ApiError::Invalid { target, causes, .. } => {
                (Some(target), causes)
            }
            _ => (None, &[]),
        };
        if let Some(t) = target {
            let mut details = serde_json::Map::new();
            if !t.name.is_empty() {
                details.insert("name".into(), json!(t.name));
            }
            if !t.group.is_empty() {
                details.insert("group".into(), json!(t.group));
            }
            if !t.kind.is_empty() {
                details.insert("kind".into(), json!(t.kind));
            }
            if !causes.is_empty() {
                let c: Vec<Value> = causes
                    .iter()
                    .map(|c| {
                        let mut m = serde_json::Map::new();
                        m.insert("reason".into(), json!(c.reason));
                        m.insert("message".into(), json!(c.message));
                        if !c.field.is_empty() {
                            m.insert("field".into(), json!(c.field));
                        }
                        Value::Object(m)
                    })
                    .collect();
                details.insert("causes".into(), Value::Array(c));
            }
            if !details.is_empty() {
                status["details"] = Value::Object(details);
            }
        }
        status
    }
}

/// Result alias for API operations.
pub type ApiResult<T> = Result<T, ApiError>;
