//! Calling AWS: typed errors that name the API call, bounded retries, and waiters.
//!
//! Rules kept here:
//! - every error names the API call and carries AWS's own code and message
//!   (`CreateVpc: InvalidParameterValue: ...`); the engine adds the resource address;
//! - throttling, 5xx answers and transport failures are retried with exponential backoff
//!   (plus codes a caller names, for eventual consistency, optionally only with a message
//!   that says "not yet": [`Retry::only_if`]) within a bounded time budget (shorter while
//!   nothing answers at all: [`UNANSWERED_BUDGET`]), and every retry is reported through
//!   `ctx.retrying("retrying X: reason")`, which the run counts for its summary;
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
    /// By the error code AWS answered with, never by its message.
    fn from(e: AwsError) -> Self {
        if e.cancelled {
            return ProviderError::Cancelled;
        }
        let text = e.to_string();
        let code = e.code.as_deref().unwrap_or_default();
        if e.is_not_found() {
            ProviderError::NotFound(text)
        } else if is_throttling(code) {
            ProviderError::Throttled(text)
        } else if code.contains("LimitExceeded") || code.contains("QuotaExceeded") || code == "AddressLimitExceeded" {
            ProviderError::Quota(text)
        } else if matches!(
            code,
            "ResourceInUseException"
                | "DependencyViolation"
                | "DeleteConflict"
                | "ConflictException"
                | "IncorrectState"
                | "InvalidRequestException"
                | "EntityAlreadyExists"
                | "ResourceAlreadyExistsException"
                | "QueueAlreadyExists"
        ) || code.ends_with(".Duplicate")
            || code.ends_with(".InUse")
        {
            ProviderError::Conflict(text)
        } else if code.starts_with("InvalidParameter")
            || code.starts_with("Invalid") && !code.ends_with("NotFound")
            || matches!(
                code,
                "ValidationError" | "ValidationException" | "MalformedPolicyDocument" | "MissingParameter"
            )
        {
            ProviderError::InvalidInput(text)
        } else {
            ProviderError::Failed(text)
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
    /// When set, an error with one of `codes` is "not yet" only if this holds as well: for a
    /// code AWS also answers real mistakes with, told apart by the message (EKS's
    /// `InvalidParameterException` for a role not yet assumable, and for a bad subnet).
    pub not_yet: Option<fn(&AwsError) -> bool>,
    /// How long to keep retrying in all.
    pub budget: Duration,
    /// How long to keep retrying while nothing answers at all (connection refused, DNS,
    /// TLS): most often a wrong endpoint or no network rather than a passing blip, so it is
    /// reported in seconds, not after the whole `budget`.
    pub unanswered: Duration,
}

/// The default [`Retry::unanswered`].
pub const UNANSWERED_BUDGET: Duration = Duration::from_secs(20);

impl Retry<'static> {
    /// Throttling and transient failures only, for up to two minutes.
    pub const TRANSIENT: Retry<'static> = Retry {
        codes: &[],
        not_yet: None,
        budget: Duration::from_secs(120),
        unanswered: UNANSWERED_BUDGET,
    };
}

impl<'a> Retry<'a> {
    /// Also retries on `codes` (for up to `budget`).
    pub fn on(codes: &'a [&'a str], budget: Duration) -> Self {
        Retry {
            codes,
            not_yet: None,
            budget,
            unanswered: UNANSWERED_BUDGET,
        }
    }

    /// Retries on `codes` only when `not_yet` holds for the error as well (see
    /// [`Retry::not_yet`]).
    pub fn only_if(self, not_yet: fn(&AwsError) -> bool) -> Self {
        Retry {
            not_yet: Some(not_yet),
            ..self
        }
    }

    /// True when `err` is one this retry waits out: transient, or "not yet".
    pub fn retries(&self, err: &AwsError) -> bool {
        err.is_transient() || (err.is_any(self.codes) && self.not_yet.is_none_or(|f| f(err)))
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
        let budget = if err.status.is_none() {
            retry.budget.min(retry.unanswered)
        } else {
            retry.budget
        };
        if !retry.retries(&err) || started.elapsed() + delay > budget {
            return Err(err);
        }
        ctx.retrying(&format!("retrying {op}: {}", err.reason()));
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
/// Every item of a list call that pages with `NextToken`, each page through [`call0`]:
/// `send(token)` sends one page's request (`None` for the first); `items(&page)` gives what
/// the page holds and its next token (none, or empty, on the last page).
pub async fn all_pages<P, T, E, F, Fut>(
    ctx: &OpContext,
    op: &'static str,
    mut send: F,
    items: impl Fn(&P) -> (Vec<T>, Option<String>),
) -> Result<Vec<T>, AwsError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<P, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = call0(ctx, op, || send(token.clone())).await?;
        let (got, next) = items(&page);
        all.extend(got);
        match next.filter(|t| !t.is_empty()) {
            Some(t) => token = Some(t),
            None => return Ok(all),
        }
    }
}

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

#[cfg(test)]
mod tests {
    //! `call` driven by a closure that answers with constructed SDK errors: what is retried,
    //! what each retry reports, what fails at once, and the budget. (The same paths against
    //! the sandbox emulator, through the SDK's real wire parsing: `tests/aws_retries.rs`.)

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use aws_sdk_ec2::config::http::HttpResponse;
    use aws_sdk_ec2::error::{ErrorMetadata, SdkError};
    use aws_sdk_ec2::operation::create_vpc::CreateVpcError;
    use tokio_util::sync::CancellationToken;

    use super::{AwsError, Retry, call};
    use crate::provider::{OpContext, ProviderError};

    /// What one attempt answers: success (`None`) or AWS's (status, code, message).
    type Answer = Option<(u16, &'static str, String)>;

    /// An AWS error answer: HTTP `status` with AWS's `code` and `message`.
    fn aws(status: u16, code: &str, message: &str) -> SdkError<CreateVpcError, HttpResponse> {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        let raw = HttpResponse::new(status.try_into().expect("a valid status"), "".into());
        SdkError::service_error(CreateVpcError::generic(meta), raw)
    }

    fn throttled() -> Answer {
        Some((503, "RequestLimitExceeded", "Request limit exceeded.".into()))
    }

    /// A context with the user's `timeout`, keeping its progress lines.
    fn context(timeout: Option<Duration>) -> (OpContext, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let keep = lines.clone();
        let ctx = OpContext::new(
            "vpc".parse().expect("an address"),
            timeout,
            CancellationToken::new(),
            Arc::new(move |_, m: &str| keep.lock().unwrap().push(m.to_string())),
        );
        (ctx, lines)
    }

    /// Runs `call("CreateVpc")` whose attempt `n` (from 1) answers `answer(n)`; the result
    /// (the attempt that succeeded, or the error) and the number of attempts.
    async fn drive(
        ctx: &OpContext,
        retry: Retry<'_>,
        answer: impl Fn(usize) -> Answer,
    ) -> (Result<usize, AwsError>, usize) {
        let attempts = AtomicUsize::new(0);
        let r = call(ctx, "CreateVpc", retry, || {
            let n = attempts.fetch_add(1, Ordering::SeqCst) + 1;
            let result = match answer(n) {
                None => Ok(n),
                Some((status, code, message)) => Err(aws(status, code, &message)),
            };
            async move { result }
        })
        .await;
        (r, attempts.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn throttling_is_retried_and_each_retry_reported() {
        let (ctx, lines) = context(None);
        let (r, attempts) = drive(&ctx, Retry::TRANSIENT, |n| if n <= 2 { throttled() } else { None }).await;
        assert_eq!((r, attempts), (Ok(3), 3));
        assert_eq!(
            *lines.lock().unwrap(),
            ["retrying CreateVpc: RequestLimitExceeded: Request limit exceeded."; 2]
        );
        assert_eq!(ctx.retried(), 2, "each retry counted for the run's summary");
    }

    #[test]
    fn transient_answers() {
        let transient = |e| AwsError::from_sdk("CreateVpc", e).is_transient();
        assert!(transient(aws(400, "Throttling", "Rate exceeded")));
        assert!(transient(aws(400, "ThrottlingException", "Rate exceeded")));
        assert!(transient(aws(503, "RequestLimitExceeded", "x")));
        assert!(transient(aws(500, "InternalError", "x")));
        assert!(transient(aws(502, "SomethingNew", "x")), "any 5xx");
        assert!(transient(aws(429, "SomethingNew", "x")), "429");
        assert!(transient(SdkError::timeout_error("took too long")));
        assert!(!transient(aws(400, "InvalidParameterValue", "x")));
        assert!(!transient(aws(403, "UnauthorizedOperation", "x")));
        assert!(!transient(aws(400, "InvalidParameterException", "x")));
        // An answer with no AWS error in it says its status.
        let e = AwsError::from_sdk(
            "CreateVpc",
            SdkError::<CreateVpcError, _>::service_error(
                CreateVpcError::generic(ErrorMetadata::builder().build()),
                HttpResponse::new(502.try_into().unwrap(), "".into()),
            ),
        );
        assert!(e.is_transient());
        assert_eq!(e.to_string(), "CreateVpc: HTTP 502 with no AWS error in the answer");
    }

    #[tokio::test]
    async fn a_refusal_fails_at_once_naming_call_code_and_message() {
        let (ctx, lines) = context(None);
        let msg = "You are not authorized to perform this operation.";
        let (r, attempts) = drive(&ctx, Retry::TRANSIENT, |_| {
            Some((403, "UnauthorizedOperation", msg.into()))
        })
        .await;
        let e = r.unwrap_err();
        assert_eq!(attempts, 1);
        assert!(lines.lock().unwrap().is_empty(), "{:?}", lines.lock().unwrap());
        assert_eq!(
            (e.op, e.code.as_deref(), e.status),
            ("CreateVpc", Some("UnauthorizedOperation"), Some(403))
        );
        let want = format!("CreateVpc: UnauthorizedOperation: {msg}");
        assert_eq!(e.to_string(), want);
        assert!(matches!(ProviderError::from(e), ProviderError::Failed(m) if m == want));
    }

    #[tokio::test]
    async fn the_budget_follows_the_users_timeout_and_the_last_error_is_kept() {
        let budget = Duration::from_secs(1);
        let (ctx, lines) = context(Some(budget));
        let retry = Retry::within(&ctx, &[], Duration::from_secs(300));
        assert_eq!(retry.budget, budget);
        let started = Instant::now();
        let (r, attempts) = drive(&ctx, retry, |n| {
            Some((503, "RequestLimitExceeded", format!("attempt {n}")))
        })
        .await;
        let elapsed = started.elapsed();
        let e = r.unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("CreateVpc: RequestLimitExceeded: attempt {attempts}")
        );
        // 0.2 s, 0.4 s, 0.8 s (each jittered down to half at most): the third wait would end
        // past the budget, so the call gives up before the budget is spent, never after.
        assert!(attempts >= 3, "{attempts} attempts");
        assert!(elapsed < budget, "gave up after {elapsed:?}");
        assert!(elapsed >= Duration::from_millis(300), "gave up after {elapsed:?}");
        let lines = lines.lock().unwrap();
        assert_eq!(lines.len(), attempts - 1, "{lines:?}");
        for (i, line) in lines.iter().enumerate() {
            assert_eq!(
                *line,
                format!("retrying CreateVpc: RequestLimitExceeded: attempt {}", i + 1)
            );
        }
        // With no user timeout, the kind's default.
        let (ctx, _) = context(None);
        assert_eq!(
            Retry::within(&ctx, &[], Duration::from_secs(300)).budget,
            Duration::from_secs(300)
        );
    }

    #[tokio::test]
    async fn an_endpoint_nobody_answers_on_is_given_up_sooner() {
        let (ctx, lines) = context(None);
        let retry = Retry {
            unanswered: Duration::from_millis(700),
            ..Retry::TRANSIENT
        };
        let attempts = AtomicUsize::new(0);
        let started = Instant::now();
        let r: Result<(), AwsError> = call(&ctx, "CreateVpc", retry, || {
            attempts.fetch_add(1, Ordering::SeqCst);
            async {
                Err(SdkError::<CreateVpcError, HttpResponse>::timeout_error(
                    "connection refused",
                ))
            }
        })
        .await;
        let elapsed = started.elapsed();
        let e = r.unwrap_err();
        assert_eq!((e.op, e.status), ("CreateVpc", None));
        // Retried (it may be a blip), but within the short budget, not the two minutes.
        let attempts = attempts.load(Ordering::SeqCst);
        assert!(attempts >= 2, "{attempts} attempts");
        assert!(elapsed < Duration::from_millis(700), "gave up after {elapsed:?}");
        assert_eq!(lines.lock().unwrap().len(), attempts - 1);
        // An answer (throttling) keeps the whole budget.
        let (r, attempts) = drive(&ctx, retry, |n| if n <= 4 { throttled() } else { None }).await;
        assert_eq!((r, attempts), (Ok(5), 5), "0.2+0.4+0.8+1.6 s (jittered) outlast 0.7 s");
    }

    #[tokio::test]
    async fn not_yet_codes_are_retried_only_where_named() {
        let not_found =
            |n: usize| (n == 1).then(|| (400, "InvalidVpcID.NotFound", "The vpc ID 'vpc-1' does not exist".into()));
        let (ctx, lines) = context(None);
        let retry = Retry::on(&["InvalidVpcID.NotFound"], Duration::from_secs(5));
        assert_eq!(drive(&ctx, retry, not_found).await, (Ok(2), 2));
        assert_eq!(
            *lines.lock().unwrap(),
            ["retrying CreateVpc: InvalidVpcID.NotFound: The vpc ID 'vpc-1' does not exist"]
        );
        let (ctx, lines) = context(None);
        let (r, attempts) = drive(&ctx, Retry::TRANSIENT, not_found).await;
        assert_eq!(
            (r.unwrap_err().code.as_deref(), attempts),
            (Some("InvalidVpcID.NotFound"), 1)
        );
        assert!(lines.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_not_yet_code_with_a_condition_is_retried_only_when_it_holds() {
        let retry = Retry::on(&["InvalidParameterException"], Duration::from_secs(5))
            .only_if(|e| e.message.contains("could not be assumed"));
        let first = |message: &'static str| {
            move |n: usize| (n == 1).then(|| (400, "InvalidParameterException", message.into()))
        };
        let (ctx, lines) = context(None);
        let (r, attempts) = drive(&ctx, retry, first("Role with arn: r could not be assumed")).await;
        assert_eq!((r, attempts, lines.lock().unwrap().len()), (Ok(2), 2, 1));
        let (ctx, lines) = context(None);
        let (r, attempts) = drive(&ctx, retry, first("Subnets must be in two AZs")).await;
        assert_eq!(r.unwrap_err().message, "Subnets must be in two AZs");
        assert_eq!((attempts, lines.lock().unwrap().len()), (1, 0));
    }

    #[tokio::test]
    async fn cancelling_stops_the_retries() {
        let (ctx, _) = context(None);
        let cancel = ctx.cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            cancel.cancel();
        });
        let started = Instant::now();
        let (r, _) = drive(&ctx, Retry::TRANSIENT, |_| throttled()).await;
        assert!(matches!(ProviderError::from(r.unwrap_err()), ProviderError::Cancelled));
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    }

    #[test]
    fn aws_errors_become_the_variant_their_code_says() {
        let of = |code: &str| {
            ProviderError::from(AwsError {
                op: "Op",
                code: Some(code.to_string()),
                message: "the message".into(),
                status: Some(400),
                transient: false,
                cancelled: false,
            })
            .category()
        };
        for (code, want) in [
            ("InvalidVpcID.NotFound", "not_found"),
            ("NoSuchEntity", "not_found"),
            ("ResourceNotFoundException", "not_found"),
            ("ThrottlingException", "throttled"),
            ("RequestLimitExceeded", "throttled"),
            ("VpcLimitExceeded", "quota"),
            ("AddressLimitExceeded", "quota"),
            ("ServiceQuotaExceededException", "quota"),
            ("DependencyViolation", "conflict"),
            ("ResourceInUseException", "conflict"),
            ("InvalidGroup.Duplicate", "conflict"),
            ("InvalidParameterValue", "invalid_input"),
            ("InvalidParameterException", "invalid_input"),
            ("ValidationError", "invalid_input"),
            ("MalformedPolicyDocument", "invalid_input"),
            ("InternalFailureX", "failed"),
        ] {
            assert_eq!(of(code), want, "{code}");
        }
    }
}
