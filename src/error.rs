//! The library's error type: one enum over every module's typed errors.
//!
//! Rules kept here: every message names the thing at fault (address, file, key) and says
//! what to do; the CLI prints it on one line and maps it to an exit code, nothing else
//! does either.

use crate::address::{Address, AddressError};
use crate::graph::GraphError;
use crate::model::config::ConfigError;
use crate::plan::diff::PlanError;
use crate::plan::planfile::PlanFileError;
use crate::provider::ProviderError;
use crate::secrets::SecretError;
use crate::state::StateError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Address(#[from] AddressError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    PlanFile(#[from] PlanFileError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("`{address}`: {source}")]
    Provider { address: Address, source: ProviderError },
    #[error("`{address}`: its inputs cannot be serialized: {message}")]
    Inputs { address: Address, message: String },
    #[error(transparent)]
    Check(#[from] crate::model::checks::CheckError),
    #[error("{0}")]
    Usage(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
