//! Resource quantities (`500m`, `1Gi`, `1e3`): parsing, comparison and the canonical
//! string form.
//!
//! The value is held exactly as a count of nano-units (upstream keeps nano precision and
//! rounds anything finer away from zero). The canonical form matters twice: upstream
//! prints quantities in error messages via their canonical string, and it serializes
//! stored objects that way, so `1024Mi` comes back as `1Gi` and `0.5` as `500m`.

use std::cmp::Ordering;

use serde_json::Value;

/// How a quantity prints: with decimal SI suffixes, binary suffixes, or an exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    DecimalSI,
    BinarySI,
    DecimalExponent,
}

/// Why a quantity string was rejected, worded as upstream's parser words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
    Format,
    #[error("unable to parse quantity's suffix")]
    Suffix,
    #[error("unable to parse quantity's numeric part")]
    Numeric,
    #[error("quantity is too large")]
    Overflow,
}

const NANOS_PER_UNIT: i128 = 1_000_000_000;

/// An exact resource quantity.
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

fn pow10(exp: u32) -> Option<i128> {
    10i128.checked_pow(exp)
}

/// Divides rounding away from zero, which is how upstream drops sub-nano precision.
fn div_away_from_zero(n: i128, d: i128) -> i128 {
    let q = n / d;
    if n % d == 0 {
        q
    } else if n < 0 {
        q - 1
    } else {
        q + 1
    }
}

impl Quantity {
    /// A whole-number quantity printed with decimal suffixes.
    pub fn from_int(v: i64) -> Self {
        Quantity {
            nanos: v as i128 * NANOS_PER_UNIT,
            format: Format::DecimalSI,
        }
    }

    /// Parses the string form.
    pub fn parse(s: &str) -> Result<Self, QuantityError> {
        if s.is_empty() {
            return Err(QuantityError::Format);
        }
        let b = s.as_bytes();
        let mut pos = 0;
        let mut negative = false;
        if b[0] == b'+' || b[0] == b'-' {
            negative = b[0] == b'-';
            pos = 1;
        }
        let int_start = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        let int_part = &s[int_start..pos];
        let mut frac_part = "";
        if pos < b.len() && b[pos] == b'.' {
            pos += 1;
            let frac_start = pos;
            while pos < b.len() && b[pos].is_ascii_digit() {
                pos += 1;
            }
            frac_part = &s[frac_start..pos];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(QuantityError::Numeric);
        }
        let suffix = &s[pos..];
        // The suffix grammar is letters from a fixed set, an optional sign, then digits.
        let sb = suffix.as_bytes();
        let mut i = 0;
        while i < sb.len() && b"eEinumkKMGTP".contains(&sb[i]) {
            i += 1;
        }
        if i < sb.len() && (sb[i] == b'+' || sb[i] == b'-') {
            i += 1;
        }
        if !sb[i..].iter().all(u8::is_ascii_digit) {
            return Err(QuantityError::Format);
        }
        let (base2_pow, exp10, format) = interpret_suffix(suffix).ok_or(QuantityError::Suffix)?;

        let digits = format!("{int_part}{frac_part}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > 36 {
            return Err(QuantityError::Overflow);
        }
        let mut mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| QuantityError::Numeric)?
        };
        mantissa = mantissa
            .checked_mul(
                1i128
                    .checked_shl(base2_pow)
                    .ok_or(QuantityError::Overflow)?,
            )
            .ok_or(QuantityError::Overflow)?;
        let scale = 9 + exp10 - frac_part.len() as i64;
        let nanos = if scale >= 0 {
            let m = pow10(u32::try_from(scale).map_err(|_| QuantityError::Overflow)?)
                .ok_or(QuantityError::Overflow)?;
            mantissa.checked_mul(m).ok_or(QuantityError::Overflow)?
        } else {
            match u32::try_from(-scale).ok().and_then(pow10) {
                Some(d) => div_away_from_zero(mantissa, d),
                // Divisor beyond i128: the value is a sliver above zero, i.e. 1n.
                None => i128::from(mantissa != 0),
            }
        };
        let nanos = if negative { -nanos } else { nanos };
        Ok(Quantity { nanos, format })
    }

    /// Reads a quantity from JSON, which may be a string (`"500m"`) or a number (`1`).
    pub fn from_json(v: &Value) -> Result<Self, QuantityError> {
        match v {
            Value::String(s) => Self::parse(s),
            Value::Number(n) => Self::parse(&n.to_string()),
            _ => Err(QuantityError::Format),
        }
    }

    /// The value in nano-units.
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// True when the milli-value is a whole multiple of 1000 (upstream's integer test).
    pub fn is_integer(&self) -> bool {
        let milli = div_away_from_zero(self.nanos, 1_000_000);
        milli % 1000 == 0
    }

    /// The value rounded up to a whole unit, saturating at i64.
    pub fn value(&self) -> i64 {
        let v = div_away_from_zero(self.nanos, NANOS_PER_UNIT);
        i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
    }

    /// Rounds away from zero to milli precision, as upstream's ResourceList defaulting
    /// does for every request and limit.
    pub fn round_up_to_milli(&mut self) {
        self.nanos = div_away_from_zero(self.nanos, 1_000_000) * 1_000_000;
    }

    /// The canonical string form.
    pub fn canonical(&self) -> String {
        if self.nanos == 0 {
            return "0".to_string();
        }
        let mut format = self.format;
        if format == Format::BinarySI
            && (self.nanos.abs() < 1024 * NANOS_PER_UNIT || self.nanos % NANOS_PER_UNIT != 0)
        {
            // Small or fractional binary values print in decimal to avoid rounding.
            format = Format::DecimalSI;
        }
        match format {
            Format::BinarySI => {
                let mut v = self.nanos / NANOS_PER_UNIT;
                let mut k = 0;
                while k < 6 && v % 1024 == 0 {
                    v /= 1024;
                    k += 1;
                }
                format!("{v}{}", ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][k])
            }
            Format::DecimalSI | Format::DecimalExponent => {
                let mut m = self.nanos;
                let mut e: i32 = -9;
                while m % 10 == 0 {
                    m /= 10;
                    e += 1;
                }
                // Bring the exponent down to a multiple of three.
                let r = e.rem_euclid(3);
                m *= 10i128.pow(r as u32);
                e -= r;
                if format == Format::DecimalExponent {
                    return if e == 0 {
                        m.to_string()
                    } else {
                        format!("{m}e{e}")
                    };
                }
                while e > 18 {
                    m *= 1000;
                    e -= 3;
                }
                let suffix = match e {
                    -9 => "n",
                    -6 => "u",
                    -3 => "m",
                    3 => "k",
                    6 => "M",
                    9 => "G",
                    12 => "T",
                    15 => "P",
                    18 => "E",
                    _ => "",
                };
                format!("{m}{suffix}")
            }
        }
    }
}

impl std::fmt::Display for Quantity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.canonical())
    }
}

/// Maps a suffix to (power of two, power of ten, format).
fn interpret_suffix(suffix: &str) -> Option<(u32, i64, Format)> {
    let dec = |e: i64| Some((0, e, Format::DecimalSI));
    let bin = |p: u32| Some((p, 0, Format::BinarySI));
    match suffix {
        "" => dec(0),
        "n" => dec(-9),
        "u" => dec(-6),
        "m" => dec(-3),
        "k" => dec(3),
        "M" => dec(6),
        "G" => dec(9),
        "T" => dec(12),
        "P" => dec(15),
        "E" => dec(18),
        "Ki" => bin(10),
        "Mi" => bin(20),
        "Gi" => bin(30),
        "Ti" => bin(40),
        "Pi" => bin(50),
        "Ei" => bin(60),
        _ => {
            let rest = suffix
                .strip_prefix('e')
                .or_else(|| suffix.strip_prefix('E'))?;
            let e: i64 = rest.parse().ok()?;
            if e.abs() > 100 {
                return None;
            }
            Some((0, e, Format::DecimalExponent))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> String {
        Quantity::parse(s).unwrap().canonical()
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(c("1024Mi"), "1Gi");
        assert_eq!(c("1536Mi"), "1536Mi");
        assert_eq!(c("0.5"), "500m");
        assert_eq!(c("1000m"), "1");
        assert_eq!(c("1500"), "1500");
        assert_eq!(c("2000"), "2k");
        assert_eq!(c("100Ki"), "100Ki");
        assert_eq!(c("512"), "512");
        assert_eq!(c("0.5Ki"), "512");
        assert_eq!(c("1e3"), "1e3");
        assert_eq!(c("0"), "0");
        assert_eq!(c("-1"), "-1");
        assert_eq!(c("0.0000000001"), "1n");
        assert_eq!(c("1.5Gi"), "1536Mi");
        assert_eq!(c("+3"), "3");
    }

    #[test]
    fn parse_errors() {
        assert_eq!(Quantity::parse("abc"), Err(QuantityError::Numeric));
        assert_eq!(Quantity::parse("1x"), Err(QuantityError::Format));
        assert_eq!(Quantity::parse("1Mb"), Err(QuantityError::Format));
        assert_eq!(Quantity::parse("1KiB"), Err(QuantityError::Format));
        assert_eq!(Quantity::parse("1kk"), Err(QuantityError::Suffix));
        assert_eq!(Quantity::parse(""), Err(QuantityError::Format));
    }

    #[test]
    fn compare_and_round() {
        let a = Quantity::parse("1Gi").unwrap();
        let b = Quantity::parse("1073741824").unwrap();
        assert_eq!(a, b);
        assert!(Quantity::parse("500m").unwrap() < Quantity::parse("1").unwrap());
        let mut q = Quantity::parse("0.0001").unwrap();
        q.round_up_to_milli();
        assert_eq!(q.canonical(), "1m");
        assert!(Quantity::parse("2").unwrap().is_integer());
        assert!(!Quantity::parse("1500m").unwrap().is_integer());
        assert_eq!(
            Quantity::from_json(&serde_json::json!(1.5))
                .unwrap()
                .canonical(),
            "1500m"
        );
    }
}
