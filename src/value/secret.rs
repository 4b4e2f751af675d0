//! Secrets inside values: unsealing them for a provider, redacting them for display and in
//! messages, and marking outputs that hold or echo them.

use super::*;

/// Removes secret markers, leaving the plain values a provider needs.
pub fn strip_secrets(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            if marker(v) == Some("secret") {
                return strip_secrets(m.get("value").unwrap_or(&Value::Null));
            }
            Value::Object(m.iter().map(|(k, x)| (k.clone(), strip_secrets(x))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(strip_secrets).collect()),
        other => other.clone(),
    }
}

/// Replaces every secret with a placeholder string, for display.
pub fn redact(v: &Value) -> Value {
    match v {
        Value::Object(m) => match marker(v) {
            Some("secret") | Some("encrypted") => Value::String("(sensitive value)".into()),
            Some("unknown") | Some("output") => Value::String("(known after apply)".into()),
            _ => Value::Object(m.iter().map(|(k, x)| (k.clone(), redact(x))).collect()),
        },
        Value::Array(a) => Value::Array(a.iter().map(redact).collect()),
        Value::String(_) if marker(v) == Some("output") => Value::String("(known after apply)".into()),
        other => other.clone(),
    }
}

/// `message` with every secret text found in `values` replaced by `(sensitive value)`: for
/// error messages, which may quote what an operation or a transform was given. Each secret
/// leaf (a string, or a number or boolean's text) of three or more characters is replaced,
/// also in its JSON-escaped form.
pub fn redact_secrets_in(message: &str, values: &Value) -> String {
    let mut secrets = Vec::new();
    collect_secret_texts(values, false, &mut secrets);
    // Longest first, so a secret that contains another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = message.to_string();
    for s in secrets {
        if s.len() < 3 {
            continue;
        }
        let escaped = serde_json::to_string(&s).unwrap_or_default();
        let escaped = escaped.trim_matches('"');
        for form in [s.as_str(), escaped] {
            if out.contains(form) {
                out = out.replace(form, "(sensitive value)");
            }
        }
    }
    out
}

fn collect_secret_texts(v: &Value, inside: bool, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            let inside = inside || marker(v) == Some("secret");
            for (_, x) in m.iter().filter(|(k, _)| k.as_str() != MARKER) {
                collect_secret_texts(x, inside, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_secret_texts(x, inside, out)),
        Value::String(s) if inside => out.push(s.clone()),
        Value::Number(n) if inside => out.push(n.to_string()),
        _ => {}
    }
}

/// Marks the values found at `paths` (patterns) in `v` as secret.
pub fn mark_secret_paths(v: &mut Value, paths: &[Path]) {
    for p in paths {
        mark_at(v, &p.0);
    }
}

fn mark_at(v: &mut Value, pat: &[PathSeg]) {
    let Some((first, rest)) = pat.split_first() else {
        let taken = std::mem::take(v);
        *v = secret(taken);
        return;
    };
    match (first, v) {
        (PathSeg::Key(k), Value::Object(m)) if k == "*" => m.values_mut().for_each(|x| mark_at(x, rest)),
        (PathSeg::Key(k), Value::Array(a)) if k == "*" => a.iter_mut().for_each(|x| mark_at(x, rest)),
        (PathSeg::Key(k), Value::Object(m)) => {
            if let Some(x) = m.get_mut(k) {
                mark_at(x, rest)
            }
        }
        (PathSeg::Index(i), Value::Array(a)) => {
            if let Some(x) = a.get_mut(*i) {
                mark_at(x, rest)
            }
        }
        _ => {}
    }
}

/// Wraps the parts of `new` that sit where `old` has a secret, so a value read back from a
/// live object stays secret.
pub fn copy_secret_marks(old: &Value, new: Value) -> Value {
    if marker(old) == Some("secret") {
        return secret(new);
    }
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => Value::Object(
            n.into_iter()
                .map(|(k, v)| {
                    let v = match o.get(&k) {
                        Some(ov) => copy_secret_marks(ov, v),
                        None => v,
                    };
                    (k, v)
                })
                .collect(),
        ),
        (Value::Array(o), Value::Array(n)) => Value::Array(
            n.into_iter()
                .enumerate()
                .map(|(i, v)| match o.get(i) {
                    Some(ov) => copy_secret_marks(ov, v),
                    None => v,
                })
                .collect(),
        ),
        (_, n) => n,
    }
}

/// Marks as secret every value in `outputs` equal to a secret found in `inputs`, so a
/// provider that echoes a secret input into its outputs cannot leak it.
pub fn mark_echoed_secrets(inputs: &Value, outputs: &mut Value) {
    let mut secrets: Vec<Value> = Vec::new();
    collect_secret_values(inputs, &mut secrets);
    if !secrets.is_empty() {
        wrap_equal(outputs, &secrets);
    }
}

fn collect_secret_values(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Object(m) => {
            if marker(v) == Some("secret") {
                let plain = strip_secrets(v);
                if !matches!(plain, Value::Null | Value::Bool(_)) && plain != Value::String(String::new()) {
                    out.push(plain);
                }
            } else {
                m.values().for_each(|x| collect_secret_values(x, out));
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_secret_values(x, out)),
        _ => {}
    }
}

fn wrap_equal(v: &mut Value, secrets: &[Value]) {
    if marker(v).is_some() {
        return;
    }
    if secrets.contains(v) {
        let taken = std::mem::take(v);
        *v = secret(taken);
        return;
    }
    match v {
        Value::Object(m) => m.values_mut().for_each(|x| wrap_equal(x, secrets)),
        Value::Array(a) => a.iter_mut().for_each(|x| wrap_equal(x, secrets)),
        _ => {}
    }
}
