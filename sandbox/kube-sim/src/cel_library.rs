//! The CEL functions a CRD's `x-kubernetes-validations` rules may call, and which of them the
//! simulator evaluates.
//!
//! Owns [`context`] (a `cel` crate context with the standard CEL functions and the Kubernetes
//! extensions below) and [`support`] (is a function name evaluated here, known to Kubernetes
//! but missing here, or unknown everywhere), which the rule compiler uses to refuse a rule the
//! simulator cannot evaluate instead of passing it silently.
//!
//! Rules kept here:
//! - Evaluated, from the `cel` crate (cel-rust, the CEL standard definitions): `size`
//!   (replaced below: CEL counts a string's code points, the crate its bytes), `contains`,
//!   `startsWith`, `endsWith`, `matches`, `int`, `uint`, `double`, `string`, `bytes`,
//!   `duration`, `timestamp` and the timestamp getters, `optional.*`, `hasValue`, `value`,
//!   `or`, `orValue`; the macros `has`, `all`, `exists`, `exists_one`, `map`, `filter` are
//!   expanded by the crate's parser.
//! - Evaluated, written here after their upstream definitions (Kubernetes 1.35):
//!   - cel-go `ext.Strings` (github.com/google/cel-go/ext/strings.go, enabled by
//!     k8s.io/apiserver/pkg/cel/environment/base.go): `charAt`, `indexOf`, `lastIndexOf`,
//!     `lowerAscii`, `upperAscii`, `replace`, `split`, `substring`, `trim`, `join`; indices
//!     count code points, `split`/`replace` take Go's `SplitN`/`Replace` count argument.
//!   - k8s.io/apiserver/pkg/cel/library/regex.go: `find`, `findAll` (RE2 syntax; the `regex`
//!     crate is RE2-compatible).
//!   - k8s.io/apiserver/pkg/cel/library/lists.go: `isSorted`, `sum`, `min`, `max`, `indexOf`,
//!     `lastIndexOf` on lists.
//!   - `dyn` (standard CEL: the identity, a type-checker hint).
//!
//!   Karpenter v1.14's NodePool, NodeClaim and EC2NodeClass rules call `has`, `all`, `exists`,
//!   `filter`, `size`, `int`, `matches`, `startsWith`, `endsWith`, `split` and `find`; the
//!   cert-manager and actions-runner-controller CRDs the sandbox ships have no rules.
//! - Known to Kubernetes but not evaluated here ([`MISSING`]): the quantity, URL, IP/CIDR,
//!   semver, format, sets and authorizer libraries, string `format`/`quote`/`reverse`, the
//!   math extension. A rule calling one is refused when its CRD is written (see
//!   `cel_rules`), never evaluated to a made-up result.

use cel::extractors::{Arguments, This};
use cel::{Context, ExecutionError, FunctionContext, Value};
use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

type Res = Result<Value, ExecutionError>;

/// Named functions evaluated here (the `cel` crate's plus ours).
pub const IMPLEMENTED: &[&str] = &[
    // cel crate built-ins
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "string",
    "bytes",
    "double",
    "int",
    "uint",
    "duration",
    "timestamp",
    "getFullYear",
    "getMonth",
    "getDayOfYear",
    "getDayOfMonth",
    "getDate",
    "getDayOfWeek",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
    "optional.none",
    "optional.of",
    "optional.ofNonZeroValue",
    "value",
    "hasValue",
    "or",
    "orValue",
    // ours
    "size",
    "dyn",
    "charAt",
    "indexOf",
    "lastIndexOf",
    "lowerAscii",
    "upperAscii",
    "replace",
    "split",
    "substring",
    "trim",
    "join",
    "find",
    "findAll",
    "isSorted",
    "sum",
    "min",
    "max",
];

/// Functions of the Kubernetes CEL environment the simulator does not evaluate, with the
/// upstream file that defines them.
pub const MISSING: &[(&str, &str)] = &[
    ("bool", "cel-go standard library"),
    ("type", "cel-go standard library"),
    ("format", "github.com/google/cel-go/ext/strings.go"),
    ("quote", "github.com/google/cel-go/ext/strings.go"),
    ("reverse", "github.com/google/cel-go/ext/strings.go"),
    ("strings.quote", "github.com/google/cel-go/ext/strings.go"),
    ("base64.encode", "github.com/google/cel-go/ext/encoders.go"),
    ("base64.decode", "github.com/google/cel-go/ext/encoders.go"),
    ("sets.contains", "github.com/google/cel-go/ext/sets.go"),
    ("sets.equivalent", "github.com/google/cel-go/ext/sets.go"),
    ("sets.intersects", "github.com/google/cel-go/ext/sets.go"),
    ("math.greatest", "github.com/google/cel-go/ext/math.go"),
    ("math.least", "github.com/google/cel-go/ext/math.go"),
    ("math.ceil", "github.com/google/cel-go/ext/math.go"),
    ("math.floor", "github.com/google/cel-go/ext/math.go"),
    ("math.round", "github.com/google/cel-go/ext/math.go"),
    ("math.abs", "github.com/google/cel-go/ext/math.go"),
    ("math.sign", "github.com/google/cel-go/ext/math.go"),
    ("math.isNaN", "github.com/google/cel-go/ext/math.go"),
    ("math.isInf", "github.com/google/cel-go/ext/math.go"),
    ("math.isFinite", "github.com/google/cel-go/ext/math.go"),
    ("math.bitAnd", "github.com/google/cel-go/ext/math.go"),
    ("math.bitOr", "github.com/google/cel-go/ext/math.go"),
    ("math.bitXor", "github.com/google/cel-go/ext/math.go"),
    ("math.bitNot", "github.com/google/cel-go/ext/math.go"),
    ("math.bitShiftLeft", "github.com/google/cel-go/ext/math.go"),
    ("math.bitShiftRight", "github.com/google/cel-go/ext/math.go"),
    ("lists.range", "github.com/google/cel-go/ext/lists.go"),
    ("distinct", "github.com/google/cel-go/ext/lists.go"),
    ("flatten", "github.com/google/cel-go/ext/lists.go"),
    ("slice", "github.com/google/cel-go/ext/lists.go"),
    ("sort", "github.com/google/cel-go/ext/lists.go"),
    ("sortBy", "github.com/google/cel-go/ext/lists.go"),
    ("url", "k8s.io/apiserver/pkg/cel/library/urls.go"),
    ("isURL", "k8s.io/apiserver/pkg/cel/library/urls.go"),
    ("getScheme", "k8s.io/apiserver/pkg/cel/library/urls.go"),
    ("getHost", "k8s.io/apiserver/pkg/cel/library/urls.go"),
    ("getHostname", "k8s.io/apiserver/pkg/cel/library/urls.go"),
    ("getPort", "k8s.io/apiserver/pkg/cel/library/urls.go"),
    ("getEscapedPath", "k8s.io/apiserver/pkg/cel/library/urls.go"),
    ("getQuery", "k8s.io/apiserver/pkg/cel/library/urls.go"),
    ("quantity", "k8s.io/apiserver/pkg/cel/library/quantity.go"),
    ("isQuantity", "k8s.io/apiserver/pkg/cel/library/quantity.go"),
    ("sign", "k8s.io/apiserver/pkg/cel/library/quantity.go"),
    ("isGreaterThan", "k8s.io/apiserver/pkg/cel/library/quantity.go"),
    ("isLessThan", "k8s.io/apiserver/pkg/cel/library/quantity.go"),
    ("compareTo", "k8s.io/apiserver/pkg/cel/library/quantity.go"),
    ("add", "k8s.io/apiserver/pkg/cel/library/quantity.go"),
    ("sub", "k8s.io/apiserver/pkg/cel/library/quantity.go"),
    ("asInteger", "k8s.io/apiserver/pkg/cel/library/quantity.go"),
    ("isInteger", "k8s.io/apiserver/pkg/cel/library/quantity.go"),
    ("asApproximateFloat", "k8s.io/apiserver/pkg/cel/library/quantity.go"),
    ("ip", "k8s.io/apiserver/pkg/cel/library/ip.go"),
    ("isIP", "k8s.io/apiserver/pkg/cel/library/ip.go"),
    ("ip.isCanonical", "k8s.io/apiserver/pkg/cel/library/ip.go"),
    ("family", "k8s.io/apiserver/pkg/cel/library/ip.go"),
    ("isUnspecified", "k8s.io/apiserver/pkg/cel/library/ip.go"),
    ("isLoopback", "k8s.io/apiserver/pkg/cel/library/ip.go"),
    ("isLinkLocalMulticast", "k8s.io/apiserver/pkg/cel/library/ip.go"),
    ("isLinkLocalUnicast", "k8s.io/apiserver/pkg/cel/library/ip.go"),
    ("isGlobalUnicast", "k8s.io/apiserver/pkg/cel/library/ip.go"),
    ("cidr", "k8s.io/apiserver/pkg/cel/library/cidr.go"),
    ("isCIDR", "k8s.io/apiserver/pkg/cel/library/cidr.go"),
    ("containsIP", "k8s.io/apiserver/pkg/cel/library/cidr.go"),
    ("containsCIDR", "k8s.io/apiserver/pkg/cel/library/cidr.go"),
    ("masked", "k8s.io/apiserver/pkg/cel/library/cidr.go"),
    ("prefixLength", "k8s.io/apiserver/pkg/cel/library/cidr.go"),
    ("format.named", "k8s.io/apiserver/pkg/cel/library/format.go"),
    ("validate", "k8s.io/apiserver/pkg/cel/library/format.go"),
    ("semver", "k8s.io/apiserver/pkg/cel/library/semverlib.go"),
    ("isSemver", "k8s.io/apiserver/pkg/cel/library/semverlib.go"),
    ("major", "k8s.io/apiserver/pkg/cel/library/semverlib.go"),
    ("minor", "k8s.io/apiserver/pkg/cel/library/semverlib.go"),
    ("patch", "k8s.io/apiserver/pkg/cel/library/semverlib.go"),
];

/// What the simulator knows of a function name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Evaluated here.
    Implemented,
    /// Part of the Kubernetes CEL environment (defined in this upstream file), not evaluated here.
    Missing(&'static str),
    /// Declared nowhere: a real API server refuses the rule too.
    Unknown,
}

/// Classify a function name as called in a rule (`format.dns1123Label` style names of the
/// format library are reported under `format.named`).
pub fn support(name: &str) -> Support {
    if IMPLEMENTED.contains(&name) {
        return Support::Implemented;
    }
    if let Some((_, src)) = MISSING.iter().find(|(n, _)| *n == name) {
        return Support::Missing(src);
    }
    if name.starts_with("format.") {
        return Support::Missing("k8s.io/apiserver/pkg/cel/library/format.go");
    }
    Support::Unknown
}

/// A context with every function of [`IMPLEMENTED`]. Built per evaluation: `cel::Context`
/// is not `Send`, and building it is a few map inserts.
pub fn context<'a>() -> Context<'a> {
    let mut ctx = Context::default();
    ctx.add_function("size", size);
    ctx.add_function("dyn", dyn_);
    ctx.add_function("charAt", char_at);
    ctx.add_function("indexOf", index_of);
    ctx.add_function("lastIndexOf", last_index_of);
    ctx.add_function("lowerAscii", lower_ascii);
    ctx.add_function("upperAscii", upper_ascii);
    ctx.add_function("replace", replace);
    ctx.add_function("split", split);
    ctx.add_function("substring", substring);
    ctx.add_function("trim", trim);
    ctx.add_function("join", join);
    ctx.add_function("find", find);
    ctx.add_function("findAll", find_all);
    ctx.add_function("isSorted", is_sorted);
    ctx.add_function("sum", sum);
    ctx.add_function("min", min);
    ctx.add_function("max", max);
    ctx
}

fn no_overload() -> ExecutionError {
    ExecutionError::NoSuchOverload
}

/// The receiver of a method-style call (every extension function here is one).
fn receiver(ftx: &FunctionContext) -> Result<Value, ExecutionError> {
    ftx.this.clone().ok_or_else(no_overload)
}

fn string_of(v: &Value) -> Result<&str, ExecutionError> {
    match v {
        Value::String(s) => Ok(s.as_str()),
        _ => Err(no_overload()),
    }
}

fn int_of(v: &Value) -> Result<i64, ExecutionError> {
    match v {
        Value::Int(i) => Ok(*i),
        _ => Err(no_overload()),
    }
}

fn string(s: impl Into<String>) -> Value {
    Value::String(Arc::new(s.into()))
}

fn list(items: Vec<Value>) -> Value {
    Value::List(Arc::new(items))
}

/// `size`: code points of a string (CEL spec), else the `cel` crate's meaning.
fn size(ftx: &FunctionContext, This(this): This<Value>) -> Res {
    Ok(Value::Int(match this {
        Value::String(s) => s.chars().count() as i64,
        Value::List(l) => l.len() as i64,
        Value::Map(m) => m.map.len() as i64,
        Value::Bytes(b) => b.len() as i64,
        other => return Err(ftx.error(format!("no such overload: size({other:?})"))),
    }))
}

fn dyn_(This(this): This<Value>) -> Res {
    Ok(this)
}

fn char_at(ftx: &FunctionContext, Arguments(args): Arguments) -> Res {
    let this = receiver(ftx)?;
    let chars: Vec<char> = string_of(&this)?.chars().collect();
    let i = int_of(args.first().ok_or_else(no_overload)?)?;
    if i < 0 || i as usize > chars.len() {
        return Err(ftx.error(format!("index out of range: {i}")));
    }
    Ok(string(chars.get(i as usize).map(|c| c.to_string()).unwrap_or_default()))
}

/// `indexOf` on strings (ext.Strings, code point offsets) and lists (lists.go).
fn index_of(ftx: &FunctionContext, Arguments(args): Arguments) -> Res {
    match receiver(ftx)? {
        Value::List(items) => {
            let needle = args.first().ok_or_else(no_overload)?;
            Ok(Value::Int(
                items.iter().position(|v| v == needle).map(|p| p as i64).unwrap_or(-1),
            ))
        }
        Value::String(s) => {
            let hay: Vec<char> = s.chars().collect();
            let sub: Vec<char> = string_of(args.first().ok_or_else(no_overload)?)?.chars().collect();
            let offset = match args.get(1) {
                Some(v) => int_of(v)?,
                None => 0,
            };
            if offset < 0 || offset as usize > hay.len() {
                return Err(ftx.error(format!("index out of range: {offset}")));
            }
            let start = offset as usize;
            if sub.is_empty() {
                return Ok(Value::Int(offset));
            }
            let found = (start..=hay.len().saturating_sub(sub.len()))
                .find(|&i| i + sub.len() <= hay.len() && hay[i..i + sub.len()] == sub[..]);
            Ok(Value::Int(found.map(|i| i as i64).unwrap_or(-1)))
        }
        _ => Err(no_overload()),
    }
}

/// `lastIndexOf` on strings (ext.Strings) and lists (lists.go).
fn last_index_of(ftx: &FunctionContext, Arguments(args): Arguments) -> Res {
    match receiver(ftx)? {
        Value::List(items) => {
            let needle = args.first().ok_or_else(no_overload)?;
            Ok(Value::Int(
                items.iter().rposition(|v| v == needle).map(|p| p as i64).unwrap_or(-1),
            ))
        }
        Value::String(s) => {
            let hay: Vec<char> = s.chars().collect();
            let sub: Vec<char> = string_of(args.first().ok_or_else(no_overload)?)?.chars().collect();
            let offset = match args.get(1) {
                Some(v) => int_of(v)?,
                None => hay.len() as i64,
            };
            if offset < 0 || offset as usize > hay.len() {
                return Err(ftx.error(format!("index out of range: {offset}")));
            }
            if sub.is_empty() {
                return Ok(Value::Int(offset));
            }
            if sub.len() > hay.len() {
                return Ok(Value::Int(-1));
            }
            let last_start = (offset as usize).min(hay.len() - sub.len());
            let found = (0..=last_start).rev().find(|&i| hay[i..i + sub.len()] == sub[..]);
            Ok(Value::Int(found.map(|i| i as i64).unwrap_or(-1)))
        }
        _ => Err(no_overload()),
    }
}

fn lower_ascii(ftx: &FunctionContext) -> Res {
    Ok(string(string_of(&receiver(ftx)?)?.to_ascii_lowercase()))
}

fn upper_ascii(ftx: &FunctionContext) -> Res {
    Ok(string(string_of(&receiver(ftx)?)?.to_ascii_uppercase()))
}

/// `replace(old, new[, n])`: Go's `strings.Replace` (n < 0: all).
fn replace(ftx: &FunctionContext, Arguments(args): Arguments) -> Res {
    let this = receiver(ftx)?;
    let s = string_of(&this)?;
    let old = string_of(args.first().ok_or_else(no_overload)?)?;
    let new = string_of(args.get(1).ok_or_else(no_overload)?)?;
    let n = match args.get(2) {
        Some(v) => int_of(v)?,
        None => -1,
    };
    Ok(string(if n < 0 {
        s.replace(old, new)
    } else {
        s.replacen(old, new, n as usize)
    }))
}

/// `split(sep[, n])`: Go's `strings.SplitN` (n < 0: all, n == 0: empty list, an empty
/// separator splits into code points).
fn split(ftx: &FunctionContext, Arguments(args): Arguments) -> Res {
    let this = receiver(ftx)?;
    let s = string_of(&this)?;
    let sep = string_of(args.first().ok_or_else(no_overload)?)?;
    let n = match args.get(1) {
        Some(v) => int_of(v)?,
        None => -1,
    };
    if n == 0 {
        return Ok(list(vec![]));
    }
    let parts: Vec<String> = if sep.is_empty() {
        let chars: Vec<String> = s.chars().map(|c| c.to_string()).collect();
        if n > 0 && (n as usize) < chars.len() {
            let (head, tail) = chars.split_at(n as usize - 1);
            let mut out = head.to_vec();
            out.push(tail.concat());
            out
        } else {
            chars
        }
    } else if n < 0 {
        s.split(sep).map(String::from).collect()
    } else {
        s.splitn(n as usize, sep).map(String::from).collect()
    };
    Ok(list(parts.into_iter().map(string).collect()))
}

/// `substring(start[, end])` in code points; out of range is an error, as upstream.
fn substring(ftx: &FunctionContext, Arguments(args): Arguments) -> Res {
    let this = receiver(ftx)?;
    let chars: Vec<char> = string_of(&this)?.chars().collect();
    let start = int_of(args.first().ok_or_else(no_overload)?)?;
    let end = match args.get(1) {
        Some(v) => int_of(v)?,
        None => chars.len() as i64,
    };
    if start < 0 || start as usize > chars.len() {
        return Err(ftx.error(format!("index out of range: {start}")));
    }
    if end < 0 || end as usize > chars.len() {
        return Err(ftx.error(format!("index out of range: {end}")));
    }
    if start > end {
        return Err(ftx.error(format!("invalid substring range. start: {start}, end: {end}")));
    }
    Ok(string(chars[start as usize..end as usize].iter().collect::<String>()))
}

fn trim(ftx: &FunctionContext) -> Res {
    Ok(string(string_of(&receiver(ftx)?)?.trim()))
}

/// `join([sep])` of a list of strings.
fn join(ftx: &FunctionContext, Arguments(args): Arguments) -> Res {
    let Value::List(items) = receiver(ftx)? else {
        return Err(no_overload());
    };
    let sep = match args.first() {
        Some(v) => string_of(v)?.to_string(),
        None => String::new(),
    };
    let parts = items
        .iter()
        .map(|v| string_of(v).map(String::from))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(string(parts.join(&sep)))
}

thread_local! {
    /// Compiled patterns: rules run the same few regexes on every write.
    static PATTERNS: RefCell<HashMap<String, regex::Regex>> = RefCell::new(HashMap::new());
}

fn with_regex<T>(
    ftx: &FunctionContext,
    pattern: &str,
    f: impl FnOnce(&regex::Regex) -> T,
) -> Result<T, ExecutionError> {
    PATTERNS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if !cache.contains_key(pattern) {
            let re = regex::Regex::new(pattern).map_err(|e| ftx.error(format!("invalid regex: {e}")))?;
            if cache.len() > 256 {
                cache.clear();
            }
            cache.insert(pattern.to_string(), re);
        }
        Ok(f(&cache[pattern]))
    })
}

/// `find(re)`: the first match, or "" (regex.go).
fn find(ftx: &FunctionContext, Arguments(args): Arguments) -> Res {
    let this = receiver(ftx)?;
    let s = string_of(&this)?;
    let re = string_of(args.first().ok_or_else(no_overload)?)?;
    with_regex(ftx, re, |re| string(re.find(s).map(|m| m.as_str()).unwrap_or_default()))
}

/// `findAll(re[, n])`: every match (at most n when n >= 0) (regex.go).
fn find_all(ftx: &FunctionContext, Arguments(args): Arguments) -> Res {
    let this = receiver(ftx)?;
    let s = string_of(&this)?;
    let re = string_of(args.first().ok_or_else(no_overload)?)?;
    let n = match args.get(1) {
        Some(v) => int_of(v)?,
        None => -1,
    };
    with_regex(ftx, re, |re| {
        let all = re.find_iter(s).map(|m| string(m.as_str()));
        list(if n < 0 {
            all.collect()
        } else {
            all.take(n as usize).collect()
        })
    })
}

fn compare(ftx: &FunctionContext, a: &Value, b: &Value) -> Result<Ordering, ExecutionError> {
    a.partial_cmp(b)
        .ok_or_else(|| ftx.error(format!("{a:?} can not be compared to {b:?}")))
}

fn receiver_list(ftx: &FunctionContext) -> Result<Arc<Vec<Value>>, ExecutionError> {
    match receiver(ftx)? {
        Value::List(l) => Ok(l),
        _ => Err(no_overload()),
    }
}

/// `isSorted()` (lists.go).
fn is_sorted(ftx: &FunctionContext) -> Res {
    let items = receiver_list(ftx)?;
    for w in items.windows(2) {
        if compare(ftx, &w[0], &w[1])? == Ordering::Greater {
            return Ok(Value::Bool(false));
        }
    }
    Ok(Value::Bool(true))
}

/// `sum()` of ints, uints or doubles; 0 for an empty list (lists.go).
fn sum(ftx: &FunctionContext) -> Res {
    let items = receiver_list(ftx)?;
    let mut acc = match items.first() {
        None => return Ok(Value::Int(0)),
        Some(Value::Int(_)) => Value::Int(0),
        Some(Value::UInt(_)) => Value::UInt(0),
        Some(Value::Float(_)) => Value::Float(0.0),
        Some(_) => return Err(no_overload()),
    };
    for v in items.iter() {
        acc = match (&acc, v) {
            (Value::Int(a), Value::Int(b)) => {
                Value::Int(a.checked_add(*b).ok_or_else(|| ftx.error("integer overflow"))?)
            }
            (Value::UInt(a), Value::UInt(b)) => Value::UInt(
                a.checked_add(*b)
                    .ok_or_else(|| ftx.error("unsigned integer overflow"))?,
            ),
            (Value::Float(a), Value::Float(b)) => Value::Float(a + b),
            _ => return Err(no_overload()),
        };
    }
    Ok(acc)
}

fn extreme(ftx: &FunctionContext, keep: Ordering) -> Res {
    let items = receiver_list(ftx)?;
    let Some(first) = items.first() else {
        return Err(ftx.error(format!("{} called on empty list", ftx.name)));
    };
    let mut best = first.clone();
    for v in items.iter().skip(1) {
        if compare(ftx, v, &best)? == keep {
            best = v.clone();
        }
    }
    Ok(best)
}

/// `min()` of a list (lists.go); errors on an empty list.
fn min(ftx: &FunctionContext) -> Res {
    extreme(ftx, Ordering::Less)
}

/// `max()` of a list (lists.go); errors on an empty list.
fn max(ftx: &FunctionContext) -> Res {
    extreme(ftx, Ordering::Greater)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(expr: &str) -> Value {
        let program = cel::Program::compile(expr).expect("parses");
        program.execute(&context()).unwrap_or_else(|e| panic!("{expr}: {e}"))
    }

    fn is_true(expr: &str) {
        assert_eq!(eval(expr), Value::Bool(true), "{expr}");
    }

    #[test]
    fn strings_follow_cel_go_ext() {
        is_true("'al2023@latest'.split('@') == ['al2023', 'latest']");
        is_true("'a@b@c'.split('@', 2) == ['a', 'b@c']");
        is_true("'abc'.split('', 2) == ['a', 'bc']");
        is_true("'abc'.split('b', 0) == []");
        is_true("'héllo'.size() == 5 && size('héllo') == 5");
        is_true("'héllo'.indexOf('l') == 2 && 'héllo'.lastIndexOf('l') == 3");
        is_true("'hello'.indexOf('') == 0 && 'hello'.indexOf('l', 3) == 3 && 'hello'.indexOf('z') == -1");
        is_true("'hello'.substring(1, 3) == 'el' && 'hello'.substring(2) == 'llo'");
        is_true("'hello'.charAt(1) == 'e' && 'hello'.charAt(5) == ''");
        is_true("'MiXed'.lowerAscii() == 'mixed' && 'MiXed'.upperAscii() == 'MIXED'");
        is_true("'a-b-c'.replace('-', '+') == 'a+b+c' && 'a-b-c'.replace('-', '+', 1) == 'a+b-c'");
        is_true("'  x '.trim() == 'x'");
        is_true("['a', 'b'].join() == 'ab' && ['a', 'b'].join(', ') == 'a, b'");
        assert!(
            cel::Program::compile("'abc'.substring(2, 1)")
                .unwrap()
                .execute(&context())
                .is_err()
        );
    }

    #[test]
    fn regex_and_lists_follow_kubernetes_libraries() {
        is_true("'karpenter.sh/nodepool'.find('^[^/]+') == 'karpenter.sh'");
        is_true("'/x'.find('^[^/]+') == ''");
        is_true("'a1b22c333'.findAll('[0-9]+') == ['1', '22', '333']");
        is_true("'a1b22c333'.findAll('[0-9]+', 2) == ['1', '22']");
        is_true("[1, 2, 2].isSorted() && ![2, 1].isSorted()");
        is_true("[1, 2, 3].sum() == 6 && [].sum() == 0 && [1.5, 2.0].sum() == 3.5");
        is_true("[3, 1, 2].min() == 1 && [3, 1, 2].max() == 3");
        is_true("[1, 2, 1].indexOf(1) == 0 && [1, 2, 1].lastIndexOf(1) == 2");
        assert!(cel::Program::compile("[].max()").unwrap().execute(&context()).is_err());
    }

    #[test]
    fn support_classifies_names() {
        assert_eq!(support("find"), Support::Implemented);
        assert_eq!(
            support("isURL"),
            Support::Missing("k8s.io/apiserver/pkg/cel/library/urls.go")
        );
        assert_eq!(
            support("format.dns1123Label"),
            Support::Missing("k8s.io/apiserver/pkg/cel/library/format.go")
        );
        assert_eq!(support("frobnicate"), Support::Unknown);
    }
}
