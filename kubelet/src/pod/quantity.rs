//! Kubernetes resource quantities (`100m`, `0.5`, `128Mi`, `1e3`, …) as
//! integers: CPU in milli-cores, memory and storage in bytes.
//!
//! A quantity is `<sign><digits>[.<digits>]<suffix>` where the suffix is a
//! binary SI one (`Ki`…`Ei`, powers of 1024), a decimal SI one (`n`, `u`,
//! `m`, ``, `k`, `M`, `G`, `T`, `P`, `E`) or a decimal exponent (`e3`,
//! `E-2`). The value is kept exact (a big mantissa and two exponents) and
//! only rounded when scaled, the way upstream rounds: up, so `0.1m` of CPU
//! is 1 milli-core rather than nothing.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Why a quantity string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("quantity {0:?} must be a number followed by an optional suffix")]
    Format(String),
    #[error("quantity {0:?} has an unknown suffix")]
    Suffix(String),
    #[error("quantity {0:?} is too large")]
    TooLarge(String),
}

/// A parsed quantity: `±mantissa × 2^pow2 × 10^exp10`, exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedQuantity {
    negative: bool,
    mantissa: u128,
    exp10: i32,
    pow2: u32,
}

/// Digits past this many significant ones are dropped: far beyond what any
/// `i64` result needs, and it keeps the mantissa inside `u128`.
const MAX_DIGITS: usize = 36;

/// Parses a quantity string as the API server accepts it.
pub fn parse(input: &str) -> Result<ParsedQuantity, QuantityError> {
    let bad = || QuantityError::Format(input.to_string());
    let bytes = input.as_bytes();
    let mut i = 0;
    let mut negative = false;
    if let Some(&c) = bytes.first() {
        if c == b'+' || c == b'-' {
            negative = c == b'-';
            i = 1;
        }
    }
    let mut mantissa: u128 = 0;
    let mut significant = 0usize;
    let mut exp10: i32 = 0;
    let mut digits = 0usize;
    let mut seen_dot = false;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'.' {
            if seen_dot {
                return Err(bad());
            }
            seen_dot = true;
        } else if c.is_ascii_digit() {
            digits += 1;
            if mantissa == 0 && c == b'0' {
                // Leading zeros carry no precision.
                if seen_dot {
                    exp10 -= 1;
                }
            } else if significant < MAX_DIGITS {
                mantissa = mantissa * 10 + u128::from(c - b'0');
                significant += 1;
                if seen_dot {
                    exp10 -= 1;
                }
            } else if !seen_dot {
                // Out of precision in the integer part: scale instead.
                exp10 += 1;
            }
        } else {
            break;
        }
        i += 1;
    }
    if digits == 0 {
        return Err(bad());
    }
    let (suffix_exp10, pow2) = parse_suffix(&input[i..]).ok_or_else(|| {
        if input[i..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-')
        {
            QuantityError::Suffix(input.to_string())
        } else {
            bad()
        }
    })?;
    Ok(ParsedQuantity {
        negative: negative && mantissa != 0,
        mantissa,
        exp10: exp10 + suffix_exp10,
        pow2,
    })
}

/// A suffix's decimal exponent and binary power.
fn parse_suffix(suffix: &str) -> Option<(i32, u32)> {
    let decimal = |e| Some((e, 0));
    let binary = |p| Some((0, p));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        _ => {
            // `e<int>` / `E<int>`; a lone `E` was exa above.
            let rest = suffix.strip_prefix(['e', 'E'])?;
            let unsigned = rest.strip_prefix(['+', '-']).unwrap_or(rest);
            if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Bounded so the arithmetic below cannot overflow; anything
            // this large is absurd as a resource amount anyway.
            let e: i32 = rest.parse().ok().filter(|e: &i32| e.abs() <= 1000)?;
            decimal(e)
        }
    }
}

impl ParsedQuantity {
    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// The value in units of `10^scale`, rounded away from zero:
    /// `scaled(-3)` is milli-units, `scaled(0)` whole units.
    pub fn scaled(&self, scale: i32, input: &str) -> Result<i64, QuantityError> {
        let too_large = || QuantityError::TooLarge(input.to_string());
        let n = self
            .mantissa
            .checked_mul(1u128 << self.pow2)
            .ok_or_else(too_large)?;
        let k = self.exp10 - scale;
        let magnitude = if n == 0 {
            0
        } else if k >= 0 {
            let factor = 10u128.checked_pow(k as u32).ok_or_else(too_large)?;
            n.checked_mul(factor).ok_or_else(too_large)?
        } else {
            match 10u128.checked_pow(k.unsigned_abs()) {
                Some(d) => n.div_ceil(d),
                // Divided by more than 10^38: a sliver, rounded up to 1.
                None => 1,
            }
        };
        let magnitude = i64::try_from(magnitude).map_err(|_| too_large())?;
        Ok(if self.negative { -magnitude } else { magnitude })
    }
}

/// A quantity in milli-units (CPU milli-cores), rounded up.
pub fn milli_value(input: &str) -> Result<i64, QuantityError> {
    parse(input)?.scaled(-3, input)
}

/// A quantity in whole units (bytes for memory), rounded up.
pub fn value(input: &str) -> Result<i64, QuantityError> {
    parse(input)?.scaled(0, input)
}

/// CPU milli-cores of an API quantity.
pub fn cpu_milli(q: &Quantity) -> Result<i64, QuantityError> {
    milli_value(&q.0)
}

/// Bytes of an API memory (or storage) quantity.
pub fn bytes(q: &Quantity) -> Result<i64, QuantityError> {
    value(&q.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_forms() {
        assert_eq!(milli_value("100m"), Ok(100));
        assert_eq!(milli_value("0.5"), Ok(500));
        assert_eq!(milli_value(".5"), Ok(500));
        assert_eq!(milli_value("1"), Ok(1000));
        assert_eq!(milli_value("2.25"), Ok(2250));
        assert_eq!(milli_value("+3"), Ok(3000));
        assert_eq!(milli_value("1500u"), Ok(2), "rounded up like upstream");
        assert_eq!(milli_value("0.1m"), Ok(1));
        assert_eq!(milli_value("0"), Ok(0));
        assert_eq!(milli_value("0.000"), Ok(0));
        assert_eq!(milli_value("1e-3"), Ok(1));
        assert_eq!(milli_value("5."), Ok(5000));
    }

    #[test]
    fn memory_forms() {
        assert_eq!(value("128Mi"), Ok(128 * 1024 * 1024));
        assert_eq!(value("1G"), Ok(1_000_000_000));
        assert_eq!(value("1e3"), Ok(1000));
        assert_eq!(value("1E3"), Ok(1000));
        assert_eq!(value("1e+3"), Ok(1000));
        assert_eq!(value("1.5Gi"), Ok(1_610_612_736));
        assert_eq!(value("1Ki"), Ok(1024));
        assert_eq!(value("2k"), Ok(2000));
        assert_eq!(value("1E"), Ok(1_000_000_000_000_000_000));
        assert_eq!(value("1Ei"), Ok(1 << 60));
        assert_eq!(value("100m"), Ok(1), "fractional bytes round up");
        assert_eq!(value("0.5Ki"), Ok(512));
        assert_eq!(value("-1Mi"), Ok(-1024 * 1024));
        assert_eq!(value("000123"), Ok(123));
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["", "abc", "1.2.3", "1 Mi", "Mi", ".", "--1", " 1"] {
            assert!(
                matches!(parse(bad), Err(QuantityError::Format(_))),
                "{bad:?}"
            );
        }
        for bad in [
            "1K", "1Mi5", "0x10", "1e", "1mi", "1Mb", "1e3.5", "1ee3", "1kk",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(parse("1K"), Err(QuantityError::Suffix(_))));
    }

    #[test]
    fn overflow_is_an_error() {
        assert!(matches!(value("10E"), Err(QuantityError::TooLarge(_))));
        assert!(matches!(value("1e30"), Err(QuantityError::TooLarge(_))));
        assert_eq!(value("1e-30"), Ok(1));
        assert_eq!(
            value("123456789012345678901234567890123456789e-30"),
            Ok(123_456_790)
        );
    }

    #[test]
    fn api_quantities() {
        assert_eq!(cpu_milli(&Quantity("250m".into())), Ok(250));
        assert_eq!(bytes(&Quantity("64Mi".into())), Ok(67_108_864));
    }
}
