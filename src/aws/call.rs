//! Calling AWS: typed errors that name the API call, bounded retries, and waiters.
//!
//! Rules kept here:
//! - every error names the API call and carries AWS's own code and message
//!   (`CreateVpc: InvalidParameterValue: ...`); the engine adds the resource address;
//! - throttling, 5xx answers and transport failures are retried with exponential backoff
//!   (plus codes a caller names, for eventual consistency) within a bounded time budget,
//!   and every retry is reported through `ctx.progress("retrying X: reason")`;
//! - a "no such object" answer is mapped in one place ([`none_if_gone`], [`ok_if_gone`]):
//!   reading what is gone finds nothing, deleting what is gone succeeds;
//! - waits poll with backoff until the user's timeout (`ctx.timeout`) or the kind's
//!   default, report the state they see, and stop at once when `ctx.cancel` fires.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_ec2::config::http::HttpResponse;
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::provider::{OpContext, ProviderError};

/// A failed AWS call.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsError {
    /// The API call (`CreateVpc`).
    pub op: &'static str,
    /// AWS's error code (`InvalidVpcID.NotFound`), when AWS answered with one.
    pub code: Option<String>,
    pub message: String,
    /// The HTTP status, when there was an answer.
    pub status: Option<u16>,
    transient: bool,
    cancelled: bool,
}

impl AwsError {
    /// Converts an SDK error.
    pub fn from_sdk<E>(op: &'static str, e: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let code = e.code().map(str::to_string);
        let status = match &e {
            SdkError::ServiceError(s) => Some(s.raw().status().as_u16()),
            SdkError::ResponseError(r) => Some(r.raw().status().as_u16()),
            _ => None,
        };
        let transient = matches!(
            e,
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
        ) || status.is_some_and(|s| s >= 500 || s == 429)
            || code.as_deref().is_some_and(is_throttling);
        let message = match (e.message(), &code, status) {
            (Some(m), _, _) => m.to_string(),
            // An answer that is no AWS error (an HTML page from a proxy, an emulator's crash):
            // its status says all that is useful.
            (None, None, Some(s)) => format!("HTTP {s} with no AWS error in the answer"),
            (None, _, _) => DisplayErrorContext(&e).to_string(),
        };
        AwsError {
            op,
            code,
            message,
            status,
            transient,
            cancelled: false,
        }
    }

    fn cancelled(op: &'static str) -> Self {
        AwsError {
            op,
            code: None,
            message: "cancelled".into(),
            status: None,
            transient: false,
            cancelled: true,
        }
    }

    /// True when AWS answered with `code`.
    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// True when AWS answered with one of `codes`.
    pub fn is_any(&self, codes: &[&str]) -> bool {
        self.code.as_deref().is_some_and(|c| codes.contains(&c))
    }

    /// True for the "no such object" answers of EC2, IAM, EKS, SQS and EventBridge.
    pub fn is_not_found(&self) -> bool {
        let Some(c) = self.code.as_deref() else {
            return false;
        };
        c.ends_with(".NotFound")
            || c.ends_with("NotFound")
            || matches!(
                c,
                "NoSuchEntity"
                    | "ResourceNotFoundException"
                    | "NotFoundException"
                    | "AWS.SimpleQueueService.NonExistentQueue"
                    | "QueueDoesNotExist"
                    | "InvalidAllocationID.NotFound"
            )
    }

    /// True when the call may succeed if repeated (throttling, 5xx, transport).
    pub fn is_transient(&self) -> bool {
        self.transient
    }

    fn reason(&self) -> String {
        match &self.code {
            Some(c) => format!("{c}: {}", self.message),
            None => self.message.clone(),
        }
    }
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.op, self.reason())
    }
}

impl std::error::Error for AwsError {}

/// Maps a not-found answer to `Ok(None)` (reading what is gone finds nothing).
pub fn none_if_gone<T>(r: Result<T, AwsError>) -> Result<Option<T>, ProviderError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Maps a not-found answer to success (deleting what is gone succeeds).
pub fn ok_if_gone<T>(r: Result<T, AwsError>) -> Result<(), ProviderError> {
    none_if_gone(r).map(|_| ())
}

impl From<AwsError> for ProviderError {
    fn from(e: AwsError) -> Self {
        if e.cancelled {
            ProviderError::Cancelled
        } else {
            ProviderError::Failed(e.to_string())
        }
    }
}

fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestThrottled"
            | "RequestThrottledException"
            | "RequestLimitExceeded"
            | "TooManyRequestsException"
            | "ProvisionedThroughputExceededException"
            | "SlowDown"
            | "ServiceUnavailable"
            | "ServiceUnavailableException"
            | "InternalError"
            | "InternalFailure"
            | "EC2ThrottledException"
            | "PriorRequestNotComplete"
    )
}

/// How a call retries beyond throttling and transient failures.
#[derive(Debug, Clone, Copy)]
pub struct Retry<'a> {
    /// Error codes that mean "not yet" (eventual consistency, dependencies still going).
    pub codes: &'a [&'a str],
    /// How long to keep retrying in all.
    pub budget: Duration,
}

impl Retry<'static> {
    /// Throttling and transient failures only, for up to two minutes.
    pub const TRANSIENT: Retry<'static> = Retry {
        codes: &[],
        budget: Duration::from_secs(120),
    };
}

impl<'a> Retry<'a> {
    /// Also retries on `codes` (for up to `budget`).
    pub fn on(codes: &'a [&'a str], budget: Duration) -> Self {
        Retry { codes, budget }
    }

    /// Also retries on `codes`, for the user's timeout (`ctx.timeout`) or else `default`.
    pub fn within(ctx: &OpContext, codes: &'a [&'a str], default: Duration) -> Self {
        Retry::on(codes, ctx.timeout.unwrap_or(default))
    }
}

/// The first delay between attempts; it doubles up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(200);
const MAX_DELAY: Duration = Duration::from_secs(10);

fn jitter(d: Duration) -> Duration {
    use rand::Rng as _;
    let ms = d.as_millis() as u64;
    Duration::from_millis(ms / 2 + rand::rng().random_range(0..=ms / 2))
}

/// Sleeps for `d` unless `ctx.cancel` fires first (then returns false).
pub async fn sleep(ctx: &OpContext, d: Duration) -> bool {
    tokio::select! {
        _ = ctx.cancel.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

/// Runs the AWS call `f` named `op`, retrying per `retry`.
pub async fn call<T, E, F, Fut>(ctx: &OpContext, op: &'static str, retry: Retry<'_>, mut f: F) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let started = Instant::now();
    let mut delay = FIRST_DELAY;
    loop {
        if ctx.cancel.is_cancelled() {
            return Err(AwsError::cancelled(op));
        }
        let err = match f().await {
            Ok(v) => return Ok(v),
            Err(e) => AwsError::from_sdk(op, e),
        };
        let retryable = err.is_transient() || err.is_any(retry.codes);
        if !retryable || started.elapsed() + delay > retry.budget {
            return Err(err);
        }
        ctx.progress(&format!("retrying {op}: {}", err.reason()));
        if !sleep(ctx, jitter(delay)).await {
            return Err(AwsError::cancelled(op));
        }
        delay = (delay * 2).min(MAX_DELAY);
    }
}

/// Runs `f` with the default retries (throttling and transient failures only).
pub async fn call0<T, E, F, Fut>(ctx: &OpContext, op: &'static str, f: F) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    call(ctx, op, Retry::TRANSIENT, f).await
}

/// Runs `f` like [`call0`]; a not-found answer is `Ok(None)` (see [`none_if_gone`]).
pub async fn call_found<T, E, F, Fut>(ctx: &OpContext, op: &'static str, f: F) -> Result<Option<T>, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    none_if_gone(call0(ctx, op, f).await)
}

/// What one poll of a waiter saw.
pub enum Poll<T> {
    /// The wait is over.
    Ready(T),
    /// Not yet; the state seen (`pending`, `CREATING`).
    Pending(String),
}

impl<T> Poll<T> {
    /// Not yet, in the state AWS reports (`pending`, `CREATING`; empty when it reports none).
    pub fn state<S: AsRef<str>>(state: Option<&S>) -> Self {
        Poll::Pending(state.map(|s| s.as_ref().to_string()).unwrap_or_default())
    }
}

/// Polls `poll` with backoff until it is ready, for the user's timeout or `default`.
pub async fn wait_for<T, F, Fut>(
    ctx: &OpContext,
    what: &str,
    default: Duration,
    mut poll: F,
) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Poll<T>, ProviderError>>,
{
    let timeout = ctx.timeout.unwrap_or(default);
    let started = Instant::now();
    let mut delay = Duration::from_millis(250);
    let mut last_state = String::new();
    loop {
        if ctx.cancel.is_cancelled() {
            return Err(ProviderError::Cancelled);
        }
        match poll().await? {
            Poll::Ready(t) => return Ok(t),
            Poll::Pending(state) => {
                if state != last_state {
                    ctx.progress(&format!("waiting for {what} (now {state})"));
                    last_state = state;
                }
            }
        }
        if started.elapsed() + delay > timeout {
            return Err(ProviderError::Timeout {
                what: format!("{what} (last seen {last_state})"),
                after: timeout,
            });
        }
        if !sleep(ctx, delay).await {
            return Err(ProviderError::Cancelled);
        }
        delay = (delay.mul_f32(1.5)).min(MAX_DELAY);
    }
}
