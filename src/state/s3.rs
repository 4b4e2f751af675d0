//! The S3 backend: a stack's state in a versioned S3 bucket, shared by a team and its CI.
//!
//! Keys under the prefix (`s3://BUCKET/PREFIX`, see [`parse_s3_url`]):
//! - `PREFIX/snapshot.json`: the snapshot. Every write is a compare-and-swap: `If-Match`
//!   with the ETag this backend last read or wrote, or `If-None-Match: *` when it saw no
//!   snapshot, so two machines can never both write over the same state; a refused write
//!   is [`S3Error::StaleSnapshot`] and nothing is overwritten. A write without a read
//!   before it is refused ([`S3Error::SnapshotNotRead`]) rather than made blind.
//! - the history is the bucket's object versions of `snapshot.json` (the bucket must have
//!   versioning enabled; [`S3Backend::connect`] checks): every noncurrent version is a
//!   history entry named by its version id. Pruning old versions is left to the bucket's
//!   lifecycle rules (`NoncurrentVersionExpiration`), as S3 does it better than a client;
//!   the same rule clears the noncurrent versions and delete markers that every lock,
//!   unlock and deleted journal object leaves in a versioned bucket.
//! - `PREFIX/lock.json`: the lock, created with `If-None-Match: *`, so exactly one writer
//!   wins; a loser reads the holder back and fails with [`StateError::Locked`] naming it.
//!   Releasing deletes it only if it is still ours (`If-Match` on its ETag); `state
//!   unlock` deletes it whoever holds it.
//! - `PREFIX/journal/<run>/<seq>.jsonl`: the journal. S3 objects cannot be appended to,
//!   so each group-commit batch is one object, written before `append_journal` returns
//!   (that PUT is the durability point the local backend gets from fsync). `<run>` is a
//!   new id per `reset_journal` (`<unix millis>-<random>`), `<seq>` a zero-padded counter
//!   so that listing order is write order; seq 0 is the header. Rules: at most one run
//!   holds a header object, because `reset_journal` deletes every older journal object
//!   (header objects first) before it writes the new header; a run without its header is
//!   the remains of an interrupted delete and is ignored on load; loading lists the run
//!   with a header and concatenates its objects in seq order (a gap left by a failed PUT
//!   is harmless: the entries it held were reported failed to their caller);
//!   `clear_journal` (compaction, after the snapshot that folds it is written) deletes
//!   every journal object.
//!
//! Every object is written with a conditional PUT; when the answer is "precondition
//! failed", the object is read back and the write counts as done if it holds exactly our
//! bytes, because the SDK retries a PUT whose first attempt may have landed.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, Delete, ObjectIdentifier};
use futures::{StreamExt, TryStreamExt};

use crate::state::StateError;
use crate::state::backend::{HistoryEntry, LockInfo, StateBackend};

/// How many of the newest snapshot versions `history` lists (each costs one HEAD).
const HISTORY_LIST: usize = 50;
/// Concurrent GETs/HEADs when loading a journal or listing the history.
const FETCH_CONCURRENCY: usize = 16;
/// DeleteObjects takes at most this many keys per call.
const DELETE_BATCH: usize = 1000;
/// Object metadata carrying the serial of a snapshot, so history needs no GET per version.
const SERIAL_META: &str = "spar-serial";

/// Why the S3 backend could not be set up, or refused or failed a call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum S3Error {
    #[error("`{url}` is not an S3 state location: {reason} (expected s3://BUCKET/PREFIX)")]
    BadUrl { url: String, reason: String },
    #[error(
        "S3 bucket `{bucket}` does not exist or is not visible with these credentials ({message}); create it with versioning enabled, or fix the bucket name"
    )]
    NoSuchBucket { bucket: String, message: String },
    #[error(
        "S3 bucket `{bucket}` has versioning {status}; spar keeps the state history as object versions, so enable it first: aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled"
    )]
    NotVersioned { bucket: String, status: String },
    #[error(
        "s3://{bucket}/{key} changed since this spar read it (expected {}, found {}): another machine wrote this stack's state, so this write was refused and nothing was overwritten; re-run the command to work from the new state",
        etag_or(.expected, "no snapshot"),
        etag_or(.found, "none")
    )]
    StaleSnapshot {
        bucket: String,
        key: String,
        /// The ETag this backend read (`None`: it saw no snapshot).
        expected: Option<String>,
        /// The ETag in the bucket now (`None`: the snapshot is gone).
        found: Option<String>,
    },
    #[error(
        "s3://{bucket}/{key}: a snapshot write was attempted before the snapshot was read; refused rather than written blind"
    )]
    SnapshotNotRead { bucket: String, key: String },
    #[error("{op} s3://{bucket}/{key}: {message}")]
    Call {
        /// The S3 API call (`PutObject`).
        op: &'static str,
        bucket: String,
        key: String,
        /// S3's error code (`AccessDenied`), when it answered with one.
        code: Option<String>,
        /// The HTTP status, when there was an answer.
        status: Option<u16>,
        /// S3's own message.
        message: String,
    },
}

fn etag_or(etag: &Option<String>, none: &str) -> String {
    etag.as_ref().map_or_else(|| none.to_string(), |e| format!("ETag {e}"))
}

impl From<S3Error> for StateError {
    fn from(e: S3Error) -> Self {
        StateError::S3(std::sync::Arc::new(e))
    }
}

/// Splits `s3://bucket/prefix` into the bucket and the prefix (without slashes at either
/// end; empty for `s3://bucket`, which keeps the state at the bucket's root).
pub fn parse_s3_url(url: &str) -> Result<(String, String), S3Error> {
    let bad = |reason: &str| S3Error::BadUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| bad("it does not start with s3://"))?;
    if rest.contains(['?', '#']) {
        return Err(bad("it has a query or fragment, which S3 keys here cannot carry"));
    }
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    check_bucket_name(bucket).map_err(|r| bad(&r))?;
    let prefix = prefix.trim_matches('/');
    check_prefix(prefix).map_err(|r| bad(&r))?;
    Ok((bucket.to_string(), prefix.to_string()))
}

/// S3's bucket naming rules (the ones a typo breaks).
fn check_bucket_name(bucket: &str) -> Result<(), String> {
    if bucket.is_empty() {
        return Err("the bucket name is missing".into());
    }
    if !(3..=63).contains(&bucket.len()) {
        return Err(format!("bucket name `{bucket}` must be 3 to 63 characters long"));
    }
    if !bucket
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
    {
        return Err(format!(
            "bucket name `{bucket}` may hold only lowercase letters, digits, dots and hyphens"
        ));
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !edge_ok(bucket.chars().next()) || !edge_ok(bucket.chars().last()) {
        return Err(format!(
            "bucket name `{bucket}` must begin and end with a letter or digit"
        ));
    }
    Ok(())
}

/// A prefix whose segments are all real names, so keys never hold `//`, `.` or `..`.
fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() {
        return Ok(());
    }
    for seg in prefix.split('/') {
        if seg.is_empty() {
            return Err(format!("prefix `{prefix}` has an empty segment (`//`)"));
        }
        if seg == "." || seg == ".." {
            return Err(format!("prefix `{prefix}` has a `{seg}` segment"));
        }
    }
    if prefix.chars().any(|c| c.is_control()) {
        return Err(format!("prefix `{prefix:?}` has a control character"));
    }
    Ok(())
}

/// What this backend knows of the snapshot object, for the compare-and-swap.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    /// Not read yet: a write would be blind, so it is refused.
    Unread,
    /// Read, and there was none: the next write must create it.
    Absent,
    /// Read or written with this ETag: the next write must replace exactly it.
    Etag(String),
}

/// The journal run this backend is writing.
struct Run {
    id: String,
    next_seq: u64,
}

/// State under `s3://bucket/prefix`.
pub struct S3Backend {
    client: Client,
    bucket: String,
    prefix: String,
    seen: Mutex<Seen>,
    run: Mutex<Option<Run>>,
    written: AtomicU64,
}

impl S3Backend {
    /// A backend for `s3://bucket/prefix` on `client` (the CLI hands over the one built from
    /// the process's AWS configuration, `crate::aws::context::s3_client`), after checking
    /// the names, that the bucket exists and that it is versioned.
    pub async fn connect(client: Client, bucket: &str, prefix: &str) -> Result<Self, S3Error> {
        let url = format!("s3://{bucket}/{prefix}");
        let bad = |reason: String| S3Error::BadUrl {
            url: url.clone(),
            reason,
        };
        check_bucket_name(bucket).map_err(bad)?;
        let prefix = prefix.trim_matches('/');
        check_prefix(prefix).map_err(bad)?;
        let backend = S3Backend::with_client(client, bucket, prefix);
        backend.check_bucket().await?;
        Ok(backend)
    }

    /// [`parse_s3_url`] then [`S3Backend::connect`]: what `--backend s3://...` calls.
    pub async fn from_url(client: Client, url: &str) -> Result<Self, S3Error> {
        let (bucket, prefix) = parse_s3_url(url)?;
        S3Backend::connect(client, &bucket, &prefix).await
    }

    /// A backend on a given client, with no checks (names are taken as they are).
    pub fn with_client(client: Client, bucket: &str, prefix: &str) -> Self {
        S3Backend {
            client,
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            seen: Mutex::new(Seen::Unread),
            run: Mutex::new(None),
            written: AtomicU64::new(0),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    pub fn snapshot_key(&self) -> String {
        self.key("snapshot.json")
    }

    pub fn lock_key(&self) -> String {
        self.key("lock.json")
    }

    /// The folder every journal object lives under (ends with `/`).
    pub fn journal_prefix(&self) -> String {
        self.key("journal/")
    }

    fn journal_key(&self, run: &str, seq: u64) -> String {
        format!("{}{run}/{seq:010}.jsonl", self.journal_prefix())
    }

    /// The run and seq of a journal object's key, if it is one.
    fn parse_journal_key<'a>(&self, key: &'a str) -> Option<(&'a str, u64)> {
        let rest = key.strip_prefix(&self.journal_prefix())?;
        let (run, file) = rest.split_once('/')?;
        let seq = file.strip_suffix(".jsonl")?.parse().ok()?;
        Some((run, seq))
    }

    fn err<E>(&self, op: &'static str, key: &str, e: SdkError<E, HttpResponse>) -> S3Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let code = e.code().map(str::to_string);
        let status = status(&e);
        let message = match (e.message(), &code, status) {
            (Some(m), _, _) => m.to_string(),
            (None, Some(c), _) => c.clone(),
            // HEAD answers carry no body: the status is all there is.
            (None, None, Some(s)) if s >= 300 => format!("HTTP {s}"),
            // No answer, or one that could not be parsed: the SDK's own account.
            (None, None, _) => DisplayErrorContext(&e).to_string(),
        };
        if code.as_deref() == Some("NoSuchBucket") {
            return S3Error::NoSuchBucket {
                bucket: self.bucket.clone(),
                message,
            };
        }
        S3Error::Call {
            op,
            bucket: self.bucket.clone(),
            key: key.to_string(),
            code,
            status,
            message,
        }
    }

    /// Fails unless the bucket exists and keeps versions.
    async fn check_bucket(&self) -> Result<(), S3Error> {
        if let Err(e) = self.client.head_bucket().bucket(&self.bucket).send().await {
            let st = status(&e);
            let err = self.err("HeadBucket", "", e);
            return Err(match (st, err) {
                (Some(404), S3Error::Call { message, .. }) => S3Error::NoSuchBucket {
                    bucket: self.bucket.clone(),
                    message,
                },
                (_, err) => err,
            });
        }
        let v = self
            .client
            .get_bucket_versioning()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| self.err("GetBucketVersioning", "", e))?;
        match v.status() {
            Some(BucketVersioningStatus::Enabled) => Ok(()),
            other => Err(S3Error::NotVersioned {
                bucket: self.bucket.clone(),
                status: other.map_or("never enabled".to_string(), |s| s.as_str().to_string()),
            }),
        }
    }

    /// The object's bytes and ETag, or `None` when there is no such key.
    async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Option<String>)>, S3Error> {
        match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => {
                let etag = out.e_tag().map(str::to_string);
                let bytes = out.body.collect().await.map_err(|e| S3Error::Call {
                    op: "GetObject",
                    bucket: self.bucket.clone(),
                    key: key.to_string(),
                    code: None,
                    status: None,
                    message: format!("reading the body: {e}"),
                })?;
                Ok(Some((bytes.into_bytes().to_vec(), etag)))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(self.err("GetObject", key, e)),
        }
    }

    /// Creates `key` holding `bytes`; it must not exist yet, unless it already holds
    /// exactly `bytes` (our own write, retried by the SDK after it landed).
    async fn put_new(&self, key: &str, bytes: &[u8]) -> Result<(), S3Error> {
        let r = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .if_none_match("*")
            .body(ByteStream::from(bytes.to_vec()))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_conflict(&e) => match self.get(key).await? {
                Some((b, _)) if b == bytes => Ok(()),
                _ => Err(self.err("PutObject", key, e)),
            },
            Err(e) => Err(self.err("PutObject", key, e)),
        }
    }

    /// Every key under `prefix`, in S3's (lexicographic) order.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, S3Error> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| self.err("ListObjectsV2", prefix, e))?;
            keys.extend(out.contents().iter().filter_map(|o| o.key().map(str::to_string)));
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(keys)
    }

    async fn delete_keys(&self, keys: &[String]) -> Result<(), S3Error> {
        for chunk in keys.chunks(DELETE_BATCH) {
            let objects = chunk
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<Result<Vec<_>, _>>()
                .expect("an object identifier with a key builds");
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .expect("a delete with objects builds");
            let out = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| self.err("DeleteObjects", &chunk[0], e))?;
            if let Some(err) = out.errors().first() {
                return Err(S3Error::Call {
                    op: "DeleteObjects",
                    bucket: self.bucket.clone(),
                    key: err.key().unwrap_or_default().to_string(),
                    code: err.code().map(str::to_string),
                    status: None,
                    message: err.message().unwrap_or("not deleted").to_string(),
                });
            }
        }
        Ok(())
    }

    /// Deletes every journal object, header objects first, so that an interrupted delete
    /// leaves only headless runs, which loading ignores.
    async fn delete_journal(&self) -> Result<(), S3Error> {
        let keys = self.list(&self.journal_prefix()).await?;
        let (headers, rest): (Vec<String>, Vec<String>) = keys
            .into_iter()
            .partition(|k| self.parse_journal_key(k).is_some_and(|(_, seq)| seq == 0));
        self.delete_keys(&headers).await?;
        self.delete_keys(&rest).await
    }

    /// The serial of a snapshot version: its metadata, or (written by something else) its
    /// content.
    async fn version_serial(&self, version: &str) -> Result<u64, S3Error> {
        let key = self.snapshot_key();
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&key)
            .version_id(version)
            .send()
            .await
            .map_err(|e| self.err("HeadObject", &key, e))?;
        if let Some(s) = head
            .metadata()
            .and_then(|m| m.get(SERIAL_META))
            .and_then(|s| s.parse().ok())
        {
            return Ok(s);
        }
        let bytes = self.get_version(version).await?;
        Ok(serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["state"]["serial"].as_u64())
            .unwrap_or(0))
    }

    async fn get_version(&self, version: &str) -> Result<Vec<u8>, S3Error> {
        let key = self.snapshot_key();
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .version_id(version)
            .send()
            .await
            .map_err(|e| self.err("GetObject", &format!("{key}?versionId={version}"), e))?;
        let bytes = out.body.collect().await.map_err(|e| S3Error::Call {
            op: "GetObject",
            bucket: self.bucket.clone(),
            key: key.clone(),
            code: None,
            status: None,
            message: format!("reading the body: {e}"),
        })?;
        Ok(bytes.into_bytes().to_vec())
    }
}

fn status<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    match e {
        SdkError::ServiceError(s) => Some(s.raw().status().as_u16()),
        SdkError::ResponseError(r) => Some(r.raw().status().as_u16()),
        _ => None,
    }
}

/// A conditional write refused: 412 (the condition failed) or 409 (S3's
/// `ConditionalRequestConflict`: another conditional write to the key was in flight).
fn is_conflict<E>(e: &SdkError<E, HttpResponse>) -> bool {
    matches!(status(e), Some(412 | 409))
}

#[async_trait]
impl StateBackend for S3Backend {
    fn describe(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    async fn read_snapshot(&self) -> Result<Option<Vec<u8>>, StateError> {
        let got = self.get(&self.snapshot_key()).await?;
        *self.seen.lock().expect("seen mutex") = match &got {
            None => Seen::Absent,
            Some((_, Some(etag))) => Seen::Etag(etag.clone()),
            // An answer without an ETag cannot be compared-and-swapped against.
            Some((_, None)) => Seen::Unread,
        };
        Ok(got.map(|(b, _)| b))
    }

    async fn write_snapshot(&self, bytes: &[u8], serial: u64) -> Result<(), StateError> {
        let key = self.snapshot_key();
        let seen = self.seen.lock().expect("seen mutex").clone();
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .metadata(SERIAL_META, serial.to_string())
            .body(ByteStream::from(bytes.to_vec()));
        let (req, expected) = match seen {
            Seen::Unread => {
                return Err(S3Error::SnapshotNotRead {
                    bucket: self.bucket.clone(),
                    key,
                }
                .into());
            }
            Seen::Absent => (req.if_none_match("*"), None),
            Seen::Etag(e) => (req.if_match(e.clone()), Some(e)),
        };
        let etag = match req.send().await {
            Ok(out) => out.e_tag().map(str::to_string),
            // 404: an If-Match write to a snapshot deleted since it was read.
            Err(e) if is_conflict(&e) || (status(&e) == Some(404) && e.code() != Some("NoSuchBucket")) => {
                match self.get(&key).await? {
                    Some((b, etag)) if b == bytes => etag,
                    found => {
                        return Err(S3Error::StaleSnapshot {
                            bucket: self.bucket.clone(),
                            key,
                            expected,
                            found: found.and_then(|(_, e)| e),
                        }
                        .into());
                    }
                }
            }
            Err(e) => return Err(self.err("PutObject", &key, e).into()),
        };
        *self.seen.lock().expect("seen mutex") = etag.map_or(Seen::Unread, Seen::Etag);
        self.written.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    async fn read_journal(&self) -> Result<Option<Vec<u8>>, StateError> {
        let mut runs: BTreeMap<String, BTreeMap<u64, String>> = BTreeMap::new();
        for key in self.list(&self.journal_prefix()).await? {
            if let Some((run, seq)) = self.parse_journal_key(&key) {
                runs.entry(run.to_string()).or_default().insert(seq, key.clone());
            }
        }
        // Run ids begin with a timestamp: should two headed runs ever exist, the newest wins.
        let Some(objects) = runs.into_values().rev().find(|objs| objs.contains_key(&0)) else {
            return Ok(None);
        };
        let parts: Vec<Option<Vec<u8>>> = futures::stream::iter(objects.into_values())
            .map(|key| async move { self.get(&key).await.map(|o| o.map(|(b, _)| b)) })
            .buffered(FETCH_CONCURRENCY)
            .try_collect()
            .await?;
        // An object gone between listing and reading means the journal was being deleted
        // (another run folded it; only a reader without the lock can see this): as with a
        // journal file removed, there is no journal.
        if parts.iter().any(Option::is_none) {
            return Ok(None);
        }
        Ok(Some(parts.into_iter().flatten().flatten().collect()))
    }

    async fn reset_journal(&self, header: &[u8]) -> Result<(), StateError> {
        *self.run.lock().expect("run mutex") = None;
        self.delete_journal().await?;
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let id = format!("{millis:013}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        self.put_new(&self.journal_key(&id, 0), header).await?;
        *self.run.lock().expect("run mutex") = Some(Run { id, next_seq: 1 });
        self.written.fetch_add(header.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    async fn append_journal(&self, bytes: &[u8]) -> Result<(), StateError> {
        // A flush with nothing queued: every earlier batch was durable when it returned.
        if bytes.is_empty() {
            return Ok(());
        }
        // The seq is taken even if the PUT fails, so a retry never collides with an object
        // whose PUT landed after all.
        let key = {
            let mut run = self.run.lock().expect("run mutex");
            let run = run.as_mut().ok_or_else(|| S3Error::Call {
                op: "PutObject",
                bucket: self.bucket.clone(),
                key: self.journal_prefix(),
                code: None,
                status: None,
                message: "journal not started".into(),
            })?;
            run.next_seq += 1;
            self.journal_key(&run.id, run.next_seq - 1)
        };
        self.put_new(&key, bytes).await?;
        self.written.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    async fn clear_journal(&self) -> Result<(), StateError> {
        *self.run.lock().expect("run mutex") = None;
        Ok(self.delete_journal().await?)
    }

    async fn lock(&self, info: &LockInfo) -> Result<(), StateError> {
        let key = self.lock_key();
        let body = serde_json::to_vec_pretty(info).expect("lock info serializes");
        // A lock released between our refused write and our read of it: try again, a few
        // times, rather than report a holder that is gone.
        for _ in 0..3 {
            let r = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(&key)
                .if_none_match("*")
                .content_type("application/json")
                .body(ByteStream::from(body.clone()))
                .send()
                .await;
            match r {
                Ok(_) => return Ok(()),
                Err(e) if is_conflict(&e) => {
                    let Some((b, _)) = self.get(&key).await? else { continue };
                    let holder = serde_json::from_slice::<LockInfo>(&b).ok();
                    // Our own write, retried by the SDK after it landed.
                    if holder.as_ref().is_some_and(|h| h.id == info.id) {
                        return Ok(());
                    }
                    return Err(StateError::Locked {
                        location: self.describe(),
                        holder: holder.map(Box::new),
                    });
                }
                Err(e) => return Err(self.err("PutObject", &key, e).into()),
            }
        }
        Err(StateError::Locked {
            location: self.describe(),
            holder: None,
        })
    }

    async fn unlock(&self, id: &str) -> Result<(), StateError> {
        let key = self.lock_key();
        let Some((b, etag)) = self.get(&key).await? else {
            return Ok(());
        };
        if !serde_json::from_slice::<LockInfo>(&b).is_ok_and(|l| l.id == id) {
            return Ok(());
        }
        let mut req = self.client.delete_object().bucket(&self.bucket).key(&key);
        // Only the lock we read: if it was broken and taken by another since, theirs stays.
        if let Some(etag) = etag {
            req = req.if_match(etag);
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_conflict(&e) => Ok(()),
            // A store without conditional deletes: the lock was ours a moment ago.
            Err(e) if status(&e) == Some(501) => {
                self.client
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(&key)
                    .send()
                    .await
                    .map_err(|e| self.err("DeleteObject", &key, e))?;
                Ok(())
            }
            Err(e) => Err(self.err("DeleteObject", &key, e).into()),
        }
    }

    async fn read_lock(&self) -> Result<Option<LockInfo>, StateError> {
        Ok(self
            .get(&self.lock_key())
            .await?
            .and_then(|(b, _)| serde_json::from_slice(&b).ok()))
    }

    async fn force_unlock(&self) -> Result<Option<LockInfo>, StateError> {
        let key = self.lock_key();
        let Some((b, _)) = self.get(&key).await? else {
            return Ok(None);
        };
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| self.err("DeleteObject", &key, e))?;
        Ok(serde_json::from_slice(&b).ok())
    }

    async fn history(&self) -> Result<Vec<HistoryEntry>, StateError> {
        let key = self.snapshot_key();
        let mut versions = Vec::new();
        let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
        loop {
            let out = self
                .client
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(&key)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|e| self.err("ListObjectVersions", &key, e))?;
            versions.extend(
                out.versions()
                    .iter()
                    // The prefix also matches `snapshot.json.x`; the latest is the current snapshot.
                    .filter(|v| v.key() == Some(key.as_str()) && v.is_latest() != Some(true))
                    .filter_map(|v| {
                        let modified = v.last_modified().map(|d| (d.secs(), d.subsec_nanos()));
                        Some((modified, v.version_id()?.to_string(), v.size().unwrap_or(0)))
                    }),
            );
            if out.is_truncated() != Some(true) {
                break;
            }
            key_marker = out.next_key_marker().map(str::to_string);
            version_marker = out.next_version_id_marker().map(str::to_string);
            if key_marker.is_none() && version_marker.is_none() {
                break;
            }
        }
        versions.sort_by_key(|v| std::cmp::Reverse(v.0));
        versions.truncate(HISTORY_LIST);
        let mut out: Vec<HistoryEntry> = futures::stream::iter(versions)
            .map(|(_, version, size)| async move {
                let serial = self.version_serial(&version).await?;
                Ok::<_, S3Error>(HistoryEntry {
                    name: version,
                    serial,
                    bytes: u64::try_from(size).unwrap_or(0),
                })
            })
            .buffered(FETCH_CONCURRENCY)
            .try_collect()
            .await?;
        out.sort_by_key(|h| h.serial);
        Ok(out)
    }

    async fn read_history(&self, name: &str) -> Result<Vec<u8>, StateError> {
        Ok(self.get_version(name).await?)
    }

    fn bytes_written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}
