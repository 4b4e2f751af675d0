//! Kubernetes resource quantities (`250m`, `4Gi`, `1e9`) and the [`Resources`] the
//! scheduler adds up: millicores, bytes and a pod count.
//!
//! Rules kept here (apimachinery `pkg/api/resource/quantity.go`, `ParseQuantity`):
//! - A quantity is an optionally signed decimal number (`2`, `0.5`, `.5`) followed by one
//!   suffix: binary `Ki Mi Gi Ti Pi Ei` (powers of 1024), decimal `n u m k M G T P E`, or a
//!   decimal exponent `e3`/`E3`. `K` is not a suffix; a lone `E` is exa, `E` followed by
//!   digits an exponent.
//! - Conversion rounds up, as `Quantity.MilliValue()`/`Value()` do: `0.0001` CPU is 1m,
//!   `1m` of memory is 1 byte.
//! - Negative requests are refused (the API server's validation does the same).
//!
//! Formatting for messages: CPU as cores with two decimals when fractional (`7.91`, three
//! when two would round: `7.905`), memory as `Gi` with two decimals.

use std::fmt;

use serde_json::Value;

/// CPU, memory and pods: what a pod requests, what a node offers, what is used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Resources {
    /// Millicores (`1` CPU = 1000).
    pub milli_cpu: u64,
    pub memory_bytes: u64,
    pub pods: u64,
}

impl Resources {
    pub const ZERO: Resources = Resources {
        milli_cpu: 0,
        memory_bytes: 0,
        pods: 0,
    };

    /// Component-wise sum, saturating.
    pub fn plus(self, other: Resources) -> Resources {
        Resources {
            milli_cpu: self.milli_cpu.saturating_add(other.milli_cpu),
            memory_bytes: self.memory_bytes.saturating_add(other.memory_bytes),
            pods: self.pods.saturating_add(other.pods),
        }
    }

    /// Component-wise difference, saturating at zero.
    pub fn minus(self, other: Resources) -> Resources {
        Resources {
            milli_cpu: self.milli_cpu.saturating_sub(other.milli_cpu),
            memory_bytes: self.memory_bytes.saturating_sub(other.memory_bytes),
            pods: self.pods.saturating_sub(other.pods),
        }
    }

    /// Component-wise maximum.
    pub fn max(self, other: Resources) -> Resources {
        Resources {
            milli_cpu: self.milli_cpu.max(other.milli_cpu),
            memory_bytes: self.memory_bytes.max(other.memory_bytes),
            pods: self.pods.max(other.pods),
        }
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cpu {}, memory {}, pods {}",
            format_cpu(self.milli_cpu),
            format_memory(self.memory_bytes),
            self.pods
        )
    }
}

/// A quantity that does not parse, naming the string (and where it was, when known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantityError {
    /// The string as written.
    pub quantity: String,
    /// What is wrong with it.
    pub reason: &'static str,
    /// Where it was (`containers[0] (app) resources.requests.cpu`), when known.
    pub at: Option<String>,
}

impl QuantityError {
    fn new(quantity: &str, reason: &'static str) -> Self {
        QuantityError {
            quantity: quantity.to_string(),
            reason,
            at: None,
        }
    }

    /// The same error, located at `at`.
    pub fn at(mut self, at: impl Into<String>) -> Self {
        self.at = Some(at.into());
        self
    }
}

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(at) = &self.at {
            write!(f, "{at}: ")?;
        }
        write!(f, "invalid quantity {:?}: {}", self.quantity, self.reason)
    }
}

impl std::error::Error for QuantityError {}

/// A CPU quantity in millicores: `"250m"` → 250, `"2"` → 2000, `"0.5"` → 500.
pub fn parse_cpu(s: &str) -> Result<u64, QuantityError> {
    parse_scaled(s, 3)
}

/// A memory quantity in bytes: `"4Gi"`, `"512Mi"`, `"1G"`, `"1e9"`, `"100M"`, `"1024"`.
pub fn parse_memory(s: &str) -> Result<u64, QuantityError> {
    parse_scaled(s, 0)
}

/// [`parse_cpu`] of a manifest value; `Ok(None)` when absent or null.
pub(crate) fn cpu_value(v: Option<&Value>) -> Result<Option<u64>, QuantityError> {
    scaled_value(v, 3)
}

/// [`parse_memory`] of a manifest value; `Ok(None)` when absent or null.
pub(crate) fn memory_value(v: Option<&Value>) -> Result<Option<u64>, QuantityError> {
    scaled_value(v, 0)
}

fn scaled_value(v: Option<&Value>, scale: i64) -> Result<Option<u64>, QuantityError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_scaled(s, scale).map(Some),
        Some(Value::Number(n)) => parse_scaled(&n.to_string(), scale).map(Some),
        Some(other) => Err(QuantityError::new(&other.to_string(), "not a string or a number")),
    }
}

/// `ceil(quantity * 10^scale)` as a whole number.
fn parse_scaled(s: &str, scale: i64) -> Result<u64, QuantityError> {
    let err = |reason| QuantityError::new(s, reason);
    let bytes = s.as_bytes();
    let mut pos = 0;
    let mut negative = false;
    match bytes.first() {
        None => return Err(err("empty")),
        Some(b'+') => pos = 1,
        Some(b'-') => {
            negative = true;
            pos = 1;
        }
        _ => {}
    }
    // Mantissa: the digits on both sides of the point, as one integer, and how many
    // of them were fractional.
    let mut mantissa: u128 = 0;
    let mut digits = 0usize;
    let mut frac_digits: i64 = 0;
    let mut seen_point = false;
    while pos < bytes.len() {
        match bytes[pos] {
            d @ b'0'..=b'9' => {
                digits += 1;
                mantissa = mantissa
                    .checked_mul(10)
                    .and_then(|m| m.checked_add(u128::from(d - b'0')))
                    .ok_or_else(|| err("too many digits"))?;
                if seen_point {
                    frac_digits += 1;
                }
            }
            b'.' if !seen_point => seen_point = true,
            _ => break,
        }
        pos += 1;
    }
    if digits == 0 {
        return Err(err("no number before the suffix"));
    }
    let (pow10, pow2) =
        suffix(&s[pos..]).ok_or_else(|| err("unknown suffix (use Ki Mi Gi Ti Pi Ei, n u m k M G T P E, or e<n>)"))?;
    if negative && mantissa != 0 {
        return Err(err("negative"));
    }
    let value = mantissa.checked_mul(1u128 << pow2).ok_or_else(|| err("too large"))?;
    let exp = pow10 + scale - frac_digits;
    let whole = if exp >= 0 {
        u32::try_from(exp)
            .ok()
            .and_then(|e| 10u128.checked_pow(e))
            .and_then(|p| value.checked_mul(p))
            .ok_or_else(|| err("too large"))?
    } else {
        match u32::try_from(-exp).ok().and_then(|e| 10u128.checked_pow(e)) {
            Some(den) => value.div_ceil(den),
            // Smaller than one unit of anything: rounds up to 1 unless it is zero.
            None => u128::from(value != 0),
        }
    };
    u64::try_from(whole).map_err(|_| err("too large"))
}

/// The suffix's power of ten and power of two.
fn suffix(s: &str) -> Option<(i64, u32)> {
    Some(match s {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        _ => {
            let rest = s.strip_prefix(['e', 'E'])?;
            let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (rest.parse::<i64>().ok()?, 0)
        }
    })
}

/// Millicores as cores: `7910` → `7.91`, `10000` → `10`, `7905` → `7.905`.
pub fn format_cpu(milli: u64) -> String {
    let (whole, frac) = (milli / 1000, milli % 1000);
    if frac == 0 {
        format!("{whole}")
    } else if frac % 10 == 0 {
        format!("{whole}.{:02}", frac / 10)
    } else {
        format!("{whole}.{frac:03}")
    }
}

/// Bytes as GiB with two decimals: `17179869184` → `16.00Gi`.
pub fn format_memory(bytes: u64) -> String {
    format!("{:.2}Gi", bytes as f64 / (1u64 << 30) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_quantities() {
        assert_eq!(parse_cpu("250m"), Ok(250));
        assert_eq!(parse_cpu("2"), Ok(2000));
        assert_eq!(parse_cpu("0.5"), Ok(500));
        assert_eq!(parse_cpu(".5"), Ok(500));
        assert_eq!(parse_cpu("+1"), Ok(1000));
        assert_eq!(parse_cpu("0.0001"), Ok(1), "rounds up like MilliValue");
        assert_eq!(parse_cpu("100u"), Ok(1));
        assert_eq!(parse_cpu("1k"), Ok(1_000_000));
        assert_eq!(parse_cpu("1e3"), Ok(1_000_000));
        assert_eq!(parse_cpu("-0"), Ok(0));
    }

    #[test]
    fn memory_quantities() {
        assert_eq!(parse_memory("4Gi"), Ok(4 << 30));
        assert_eq!(parse_memory("512Mi"), Ok(512 << 20));
        assert_eq!(parse_memory("1G"), Ok(1_000_000_000));
        assert_eq!(parse_memory("1e9"), Ok(1_000_000_000));
        assert_eq!(parse_memory("1E9"), Ok(1_000_000_000));
        assert_eq!(parse_memory("1E"), Ok(1_000_000_000_000_000_000));
        assert_eq!(parse_memory("100M"), Ok(100_000_000));
        assert_eq!(parse_memory("1024"), Ok(1024));
        assert_eq!(parse_memory("1.5Ki"), Ok(1536));
        assert_eq!(parse_memory("1Ki"), Ok(1024));
        assert_eq!(parse_memory("2Ti"), Ok(2 << 40));
        assert_eq!(parse_memory("1Pi"), Ok(1 << 50));
        assert_eq!(parse_memory("1Ei"), Ok(1 << 60));
        assert_eq!(parse_memory("1k"), Ok(1000));
        assert_eq!(parse_memory("1T"), Ok(1_000_000_000_000));
        assert_eq!(parse_memory("1P"), Ok(1_000_000_000_000_000));
        assert_eq!(parse_memory("1m"), Ok(1), "rounds up like Value");
        assert_eq!(parse_memory("1e-3"), Ok(1));
        assert_eq!(parse_memory("0e-100"), Ok(0));
        assert_eq!(parse_memory("1e-100"), Ok(1));
    }

    #[test]
    fn bad_quantities_name_the_string() {
        for (bad, reason) in [
            ("", "empty"),
            ("abc", "no number"),
            ("1K", "unknown suffix"),
            ("1Gb", "unknown suffix"),
            ("1 Gi", "unknown suffix"),
            ("1.2.3", "unknown suffix"),
            ("1e", "unknown suffix"),
            ("-1", "negative"),
            ("-500m", "negative"),
            ("20Ei", "too large"),
            ("1e30", "too large"),
            ("m", "no number"),
        ] {
            let e = parse_memory(bad).expect_err(bad);
            assert_eq!(e.quantity, bad);
            assert!(e.reason.contains(reason), "{bad}: {e}");
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
        let e = parse_cpu("2 cores")
            .expect_err("bad")
            .at("containers[0] (app) resources.requests.cpu");
        assert_eq!(
            e.to_string(),
            "containers[0] (app) resources.requests.cpu: invalid quantity \"2 cores\": \
             unknown suffix (use Ki Mi Gi Ti Pi Ei, n u m k M G T P E, or e<n>)"
        );
    }

    #[test]
    fn manifest_values_may_be_numbers() {
        assert_eq!(cpu_value(Some(&serde_json::json!(2))), Ok(Some(2000)));
        assert_eq!(cpu_value(Some(&serde_json::json!(0.5))), Ok(Some(500)));
        assert_eq!(memory_value(Some(&serde_json::json!(1e9))), Ok(Some(1_000_000_000)));
        assert_eq!(memory_value(None), Ok(None));
        assert_eq!(memory_value(Some(&Value::Null)), Ok(None));
        assert!(memory_value(Some(&serde_json::json!(true))).is_err());
    }

    #[test]
    fn formatting() {
        assert_eq!(format_cpu(7910), "7.91");
        assert_eq!(format_cpu(10_000), "10");
        assert_eq!(format_cpu(500), "0.50");
        assert_eq!(format_cpu(7905), "7.905");
        assert_eq!(format_memory(16 << 30), "16.00Gi");
        assert_eq!(format_memory(15_461_882_266), "14.40Gi");
    }
}
