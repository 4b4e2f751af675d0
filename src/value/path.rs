//! Value paths: `spec.containers[0].image`, `tags["kubernetes.io/role/elb"]`, `*` for any
//! key or element; parsing that round-trips with display, reading at a path, and keeping
//! the values at paths (`ignore_changes`).

use super::*;

/// One step of a path into a JSON value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum PathSeg {
    Index(usize),
    Key(String),
}

/// A path into a JSON value, such as `spec.template.spec.containers[0].image`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Path(pub Vec<PathSeg>);

/// Text that is not a path, from [`Path::try_parse`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{text}` is not a value path ({message} at character {at}); write keys as `a.b`, indexes as `[0]`, and keys with other characters as `[\"kubernetes.io/name\"]`"
)]
pub struct PathError {
    pub text: String,
    pub at: usize,
    pub message: &'static str,
}

impl Path {
    /// Parses a path, as [`Path::try_parse`]; text that is not one (an unclosed bracket)
    /// is read the old way, split at every dot, so a literal in code never fails.
    pub fn parse(text: &str) -> Path {
        Path::try_parse(text).unwrap_or_else(|_| {
            Path(
                text.split('.')
                    .map(|s| match s.parse::<usize>() {
                        Ok(i) => PathSeg::Index(i),
                        Err(_) => PathSeg::Key(s.to_string()),
                    })
                    .collect(),
            )
        })
    }

    /// Parses the form [`Path`]'s `Display` writes, so that every path round-trips:
    /// - keys joined by dots (`tags.Name`, `spec.template`); a key is any text without `.`,
    ///   `[` or `]`, and one of digits only is an index (`containers.0` = `containers[0]`);
    /// - `[N]`, an index; `*`, any key or index (`spec.*.image`);
    /// - `["..."]`, a key written as a JSON string, for keys with dots, brackets, quotes or
    ///   nothing at all (`metadata.labels["app.kubernetes.io/name"]`,
    ///   `tags["kubernetes.io/role/elb"]`).
    ///
    /// The empty text is the empty path (the whole value).
    pub fn try_parse(text: &str) -> Result<Path, PathError> {
        let err = |at: usize, message: &'static str| PathError {
            text: text.to_string(),
            at,
            message,
        };
        let b = text.as_bytes();
        let mut segs = Vec::new();
        let mut i = 0;
        let mut expect_key = true; // at the start, or after a dot
        while i < b.len() {
            match b[i] {
                b'[' => {
                    if let Some(rest) = text.get(i + 1..)
                        && rest.starts_with('"')
                    {
                        // A JSON string: find its closing quote (skipping escapes).
                        let start = i + 1;
                        let mut j = start + 1;
                        while j < b.len() && b[j] != b'"' {
                            j += if b[j] == b'\\' { 2 } else { 1 };
                        }
                        if j >= b.len() {
                            return Err(err(start, "an unterminated string"));
                        }
                        let key: String =
                            serde_json::from_str(&text[start..=j]).map_err(|_| err(start, "a bad string"))?;
                        if b.get(j + 1) != Some(&b']') {
                            return Err(err(j + 1, "a string not followed by `]`"));
                        }
                        segs.push(PathSeg::Key(key));
                        i = j + 2;
                    } else {
                        let close = text[i..]
                            .find(']')
                            .map(|k| i + k)
                            .ok_or_else(|| err(i, "an unclosed `[`"))?;
                        let inner = &text[i + 1..close];
                        segs.push(match inner {
                            "*" => PathSeg::Key("*".into()),
                            _ => {
                                PathSeg::Index(inner.parse().map_err(|_| err(i + 1, "an index that is not a number"))?)
                            }
                        });
                        i = close + 1;
                    }
                    expect_key = false;
                }
                b'.' if !expect_key => {
                    i += 1;
                    expect_key = true;
                    if i == b.len() {
                        return Err(err(i, "nothing after a dot"));
                    }
                }
                b'.' | b']' => return Err(err(i, "an empty key")),
                _ if expect_key => {
                    let end = text[i..].find(['.', '[', ']']).map_or(b.len(), |k| i + k);
                    let key = &text[i..end];
                    segs.push(match key.parse::<usize>() {
                        Ok(n) if key.bytes().all(|c| c.is_ascii_digit()) => PathSeg::Index(n),
                        _ => PathSeg::Key(key.to_string()),
                    });
                    i = end;
                    expect_key = false;
                }
                _ => return Err(err(i, "a key not after a dot")),
            }
        }
        Ok(Path(segs))
    }

    pub fn child_key(&self, key: &str) -> Path {
        let mut p = self.clone();
        p.0.push(PathSeg::Key(key.to_string()));
        p
    }

    pub fn child_index(&self, i: usize) -> Path {
        let mut p = self.clone();
        p.0.push(PathSeg::Index(i));
        p
    }

    /// True when `self` (a pattern, `*` = any segment) is a prefix of `path`.
    pub fn is_prefix_of(&self, path: &Path) -> bool {
        self.0.len() <= path.0.len()
            && self.0.iter().zip(&path.0).all(|(pat, seg)| match (pat, seg) {
                (PathSeg::Key(k), _) if k == "*" => true,
                (PathSeg::Key(a), PathSeg::Key(b)) => a == b,
                (PathSeg::Index(a), PathSeg::Index(b)) => a == b,
                (PathSeg::Index(a), PathSeg::Key(b)) => b == &a.to_string(),
                (PathSeg::Key(_), PathSeg::Index(_)) => false,
            })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = String::new();
        for seg in &self.0 {
            match seg {
                PathSeg::Index(i) => {
                    let _ = write!(out, "[{i}]");
                }
                PathSeg::Key(k) if k == "*" || is_plain_key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                PathSeg::Key(k) => {
                    let _ = write!(out, "[{}]", Value::String(k.clone()));
                }
            }
        }
        f.write_str(&out)
    }
}

/// A key written bare: letters, digits, `_` and `-`, not all digits (that would read back
/// as an index).
fn is_plain_key(k: &str) -> bool {
    !k.is_empty()
        && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !k.bytes().all(|b| b.is_ascii_digit())
}

/// The value at `path` (exact segments), if any.
pub fn get_path<'v>(v: &'v Value, path: &Path) -> Option<&'v Value> {
    let mut cur = v;
    for seg in &path.0 {
        if marker(cur) == Some("secret") {
            cur = cur.get("value")?;
        }
        cur = match (seg, cur) {
            (PathSeg::Key(k), Value::Object(m)) => m.get(k)?,
            (PathSeg::Index(i), Value::Array(a)) => a.get(*i)?,
            (PathSeg::Index(i), Value::Object(m)) => m.get(&i.to_string())?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Copies the values at the `patterns` from `old` into `new` (or removes them from `new`
/// when `old` has none): how `ignore_changes` keeps a field as it is.
pub fn keep_paths(new: &mut Value, old: &Value, patterns: &[Path]) {
    for p in patterns {
        keep_at(new, Some(old), &p.0);
    }
}

fn keep_at(new: &mut Value, old: Option<&Value>, pat: &[PathSeg]) {
    let Some((first, rest)) = pat.split_first() else {
        if let Some(o) = old {
            *new = o.clone();
        }
        return;
    };
    match first {
        PathSeg::Key(k) if k == "*" => match new {
            Value::Object(m) => {
                for (key, x) in m.iter_mut() {
                    keep_at(x, old.and_then(|o| o.get(key)), rest);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter_mut().enumerate() {
                    keep_at(x, old.and_then(|o| o.get(i)), rest);
                }
            }
            _ => {}
        },
        PathSeg::Key(k) => {
            let old_child = old.and_then(|o| o.get(k));
            if let Value::Object(m) = new {
                if rest.is_empty() {
                    match old_child {
                        Some(o) => {
                            m.insert(k.clone(), o.clone());
                        }
                        None => {
                            m.remove(k);
                        }
                    }
                } else if let Some(x) = m.get_mut(k) {
                    keep_at(x, old_child, rest);
                }
            }
        }
        PathSeg::Index(i) => {
            if let Value::Array(a) = new
                && let Some(x) = a.get_mut(*i)
            {
                keep_at(x, old.and_then(|o| o.get(*i)), rest);
            }
        }
    }
}
