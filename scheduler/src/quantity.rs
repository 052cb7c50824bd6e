//! Resource quantities (`250m`, `1.5`, `64Mi`, `2e3`) as the integers the
//! scheduler adds up: milli-units for CPU, whole units for everything else.
//!
//! `k8s-openapi`'s `Quantity` is only the string, so the scheduler reads it
//! itself. The API server validated every stored quantity, so a string this
//! parser does not understand counts as zero rather than failing a
//! scheduling attempt. Fractions round up, as upstream's `MilliValue` and
//! `Value` do (`0.1m` of CPU is 1 milli-core); values beyond `i64` saturate.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Significant digits kept from the number; the rest only scale it. 30
/// digits times 2^60 (`Ei`) still fits in a `u128`.
const KEPT_DIGITS: u32 = 30;

/// The decimal exponent and binary power a suffix stands for.
fn suffix_scale(suffix: &str) -> Option<(i32, u32)> {
    Some(match suffix {
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
            let exponent = suffix.strip_prefix(['e', 'E'])?;
            let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let e: i32 = exponent.parse().ok()?;
            if e.abs() > 400 {
                return None;
            }
            (e, 0)
        }
    })
}

/// `text` in units of `10^scale`, rounded up in magnitude; `None` when it is
/// not a quantity.
pub fn parse_scaled(text: &str, scale: i32) -> Option<i64> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let number_len = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_len);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return None;
    }
    let (exp10, pow2) = suffix_scale(suffix)?;

    // value = digits × 10^(exp10 - fraction digits) × 2^pow2
    let mut digits: u128 = 0;
    let mut kept = 0;
    let mut exponent = exp10;
    for (i, b) in whole.bytes().chain(fraction.bytes()).enumerate() {
        let in_fraction = i >= whole.len();
        if kept < KEPT_DIGITS {
            digits = digits * 10 + u128::from(b - b'0');
            if digits > 0 {
                kept += 1;
            }
            if in_fraction {
                exponent -= 1;
            }
        } else if !in_fraction {
            // Beyond the kept precision, an integer digit still counts ten.
            exponent += 1;
        } else if b != b'0' {
            // A dropped non-zero fraction digit only matters for rounding up.
            digits += 1;
            break;
        }
    }
    let scaled = digits << pow2;
    let shift = exponent - scale;
    let magnitude = if scaled == 0 {
        0
    } else if shift >= 0 {
        10u128
            .checked_pow(shift.unsigned_abs())
            .and_then(|f| scaled.checked_mul(f))
            .unwrap_or(u128::MAX)
    } else {
        match 10u128.checked_pow(shift.unsigned_abs()) {
            Some(divisor) => scaled.div_ceil(divisor),
            None => 1,
        }
    };
    let magnitude = i64::try_from(magnitude).unwrap_or(i64::MAX);
    Some(if negative { -magnitude } else { magnitude })
}

/// Milli-units of a quantity (CPU in milli-cores).
pub fn milli(q: &Quantity) -> i64 {
    parse_scaled(&q.0, -3).unwrap_or(0)
}

/// Whole units of a quantity (bytes, counts).
pub fn value(q: &Quantity) -> i64 {
    parse_scaled(&q.0, 0).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity(s.to_string())
    }

    #[test]
    fn cpu_in_millicores() {
        for (text, want) in [
            ("1", 1000),
            ("250m", 250),
            ("0.5", 500),
            (".25", 250),
            ("2.", 2000),
            ("1500u", 2),
            ("0.1m", 1),
            ("100n", 1),
            ("1e-3", 1),
            ("3e2", 300_000),
            ("+4", 4000),
            ("0", 0),
            ("0.000", 0),
        ] {
            assert_eq!(milli(&q(text)), want, "{text}");
        }
    }

    #[test]
    fn bytes_and_counts() {
        for (text, want) in [
            ("64Mi", 64 << 20),
            ("1Gi", 1 << 30),
            ("1.5Gi", 3 << 29),
            ("2k", 2000),
            ("1G", 1_000_000_000),
            ("110", 110),
            ("1E", 1_000_000_000_000_000_000),
            ("1Ei", 1 << 60),
            ("1e3", 1000),
            ("1E3", 1000),
            ("500m", 1),
            ("-1Ki", -1024),
            ("007", 7),
        ] {
            assert_eq!(value(&q(text)), want, "{text}");
        }
    }

    #[test]
    fn long_numbers_keep_their_magnitude() {
        assert_eq!(value(&q("1234567890123456789012345678901234")), i64::MAX);
        assert_eq!(
            parse_scaled("123456789012345678901234567890123", -30),
            Some(i64::MAX)
        );
        assert_eq!(value(&q("10.0000000000000000000000000000000001")), 11);
        assert_eq!(value(&q("100E")), i64::MAX, "saturates");
    }

    #[test]
    fn malformed_is_none_and_counts_zero() {
        for bad in [
            "", "-", ".", "1.2.3", "Mi", "1Mb", "1K", "1e", "1e+", " 1", "1 Mi", "0x1",
        ] {
            assert_eq!(parse_scaled(bad, 0), None, "{bad:?}");
        }
        assert_eq!(value(&q("lots")), 0);
    }
}
