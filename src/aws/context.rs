//! The AWS context: one SDK configuration and one set of service clients per process,
//! shared by every AWS kind.
//!
//! Rules kept here: the configuration comes from the standard chain
//! (`aws_config::defaults(BehaviorVersion::latest()).load()`: `AWS_ENDPOINT_URL`,
//! `AWS_REGION`, `AWS_PROFILE`, SSO, ...) the first time a kind needs it, unless a program
//! or a test installed one with [`use_config`] before; clients are built once from it with
//! the SDK's own retries turned off, because spar's calls retry themselves (see
//! [`super::call`]) so that every retry is reported to the user.

use aws_config::{BehaviorVersion, SdkConfig};
use tokio::sync::OnceCell;

static CONFIG: OnceCell<SdkConfig> = OnceCell::const_new();
static CLIENTS: OnceCell<Clients> = OnceCell::const_new();

/// The service clients the AWS kinds use.
#[derive(Clone, Debug)]
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub iam: aws_sdk_iam::Client,
    pub eks: aws_sdk_eks::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub events: aws_sdk_eventbridge::Client,
}

/// Why [`use_config`] refused a configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an AWS configuration is already in use in this process")]
pub struct AlreadyConfigured;

/// Installs `config` as the process's AWS configuration (a test endpoint, explicit
/// credentials). Fails when a configuration is already in use.
pub fn use_config(config: SdkConfig) -> Result<(), AlreadyConfigured> {
    CONFIG.set(config).map_err(|_| AlreadyConfigured)
}

/// The process's AWS configuration, loaded from the standard chain on first use.
pub async fn sdk_config() -> &'static SdkConfig {
    CONFIG
        .get_or_init(|| async { aws_config::defaults(BehaviorVersion::latest()).load().await })
        .await
}

/// The shared clients, built on first use.
pub async fn clients() -> &'static Clients {
    CLIENTS
        .get_or_init(|| async {
            let cfg = sdk_config().await;
            let no_retry = aws_sdk_ec2::config::retry::RetryConfig::disabled;
            Clients {
                ec2: aws_sdk_ec2::Client::from_conf(
                    aws_sdk_ec2::config::Builder::from(cfg).retry_config(no_retry()).build(),
                ),
                iam: aws_sdk_iam::Client::from_conf(
                    aws_sdk_iam::config::Builder::from(cfg).retry_config(no_retry()).build(),
                ),
                eks: aws_sdk_eks::Client::from_conf(
                    aws_sdk_eks::config::Builder::from(cfg).retry_config(no_retry()).build(),
                ),
                sqs: aws_sdk_sqs::Client::from_conf(
                    aws_sdk_sqs::config::Builder::from(cfg).retry_config(no_retry()).build(),
                ),
                events: aws_sdk_eventbridge::Client::from_conf(
                    aws_sdk_eventbridge::config::Builder::from(cfg)
                        .retry_config(no_retry())
                        .build(),
                ),
            }
        })
        .await
}

/// The EC2 client.
pub async fn ec2() -> &'static aws_sdk_ec2::Client {
    &clients().await.ec2
}

/// The IAM client.
pub async fn iam() -> &'static aws_sdk_iam::Client {
    &clients().await.iam
}

/// The S3 client for state backends, built once from the process's configuration
/// ([`sdk_config`]). The SDK's standard retries stay on: state calls have no progress view
/// to report spar-side retries to, and every state write is conditional and checked
/// (`crate::state::s3`), so a retried PUT cannot do harm.
pub async fn s3_client() -> &'static aws_sdk_s3::Client {
    static CLIENT: OnceCell<aws_sdk_s3::Client> = OnceCell::const_new();
    CLIENT
        .get_or_init(|| async {
            let cfg = sdk_config().await;
            let mut b = aws_sdk_s3::config::Builder::from(cfg);
            // An emulator or an S3-compatible store on a plain host (`127.0.0.1:PORT`)
            // cannot serve `BUCKET.host` names.
            if cfg.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some() {
                b = b.force_path_style(true);
            }
            aws_sdk_s3::Client::from_conf(b.build())
        })
        .await
}
