//! Text forms of the meta/v1 time types: Time, MicroTime and Duration.
//!
//! Kubernetes' JSON writes Time as RFC 3339 in UTC with whole seconds, MicroTime with exactly six
//! fractional digits, and Duration the way Go's `time.Duration.String` does ("1h2m3.5s").  This
//! file owns converting between those strings and the (seconds, nanos) / nanosecond integers of
//! the protobuf messages, in both directions, without panicking on any input.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::OffsetDateTime;

/// Seconds of Go's zero `time.Time` (0001-01-01T00:00:00Z), which Kubernetes renders as `null`.
pub(super) const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

/// Formats a Time ("2006-01-02T15:04:05Z").  Go drops the nanoseconds of a Time read from
/// protobuf, so only the seconds are used.
pub(super) fn format_time(seconds: i64) -> Option<String> {
    let t = OffsetDateTime::from_unix_timestamp(seconds).ok()?;
    t.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .ok()
}

/// Formats a MicroTime ("2006-01-02T15:04:05.000000Z").
pub(super) fn format_micro_time(seconds: i64, nanos: i32) -> Option<String> {
    let nanos = u32::try_from(nanos).ok().filter(|n| *n < 1_000_000_000)?;
    let t = OffsetDateTime::from_unix_timestamp(seconds)
        .ok()?
        .replace_nanosecond(nanos)
        .ok()?;
    t.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    ))
    .ok()
}

/// Parses an RFC 3339 timestamp into (seconds, nanos) since the Unix epoch.
pub(super) fn parse_time(text: &str) -> Option<(i64, i32)> {
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    // A nanosecond count is below 10^9, so it always fits an i32.
    Some((t.unix_timestamp(), i32::try_from(t.nanosecond()).ok()?))
}

/// Formats nanoseconds like Go's `time.Duration.String`.
pub(super) fn format_duration(nanos: i64) -> String {
    let mut out = String::new();
    if nanos < 0 {
        out.push('-');
    }
    let u = nanos.unsigned_abs();
    if u < 1_000_000_000 {
        // Below one second Go picks the largest unit that keeps an integer part.
        let (scale, unit) = match u {
            0 => return "0s".to_owned(),
            1..=999 => (0, "ns"),
            1_000..=999_999 => (3, "µs"),
            _ => (6, "ms"),
        };
        out.push_str(&fraction(u, scale));
        out.push_str(unit);
        return out;
    }
    let secs = u / 1_000_000_000;
    let sub = u % 1_000_000_000;
    let (hours, minutes, seconds) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if secs >= 60 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&fraction(seconds * 1_000_000_000 + sub, 9));
    out.push('s');
    out
}

/// `value / 10^scale` as a decimal with trailing zeros (and a bare point) removed.
fn fraction(value: u64, scale: u32) -> String {
    let div = 10u64.pow(scale);
    let (int, frac) = (value / div, value % div);
    if frac == 0 {
        return int.to_string();
    }
    let digits = format!("{frac:0width$}", width = scale as usize);
    format!("{int}.{}", digits.trim_end_matches('0'))
}

/// Parses a Go duration string ("300ms", "-1.5h", "2h45m") into nanoseconds.
pub(super) fn parse_duration(text: &str) -> Option<i64> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.bytes().take_while(u8::is_ascii_digit).count();
                a.split_at(n)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let unit_len = after
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(after.len(), |(i, _)| i);
        let (unit, after) = after.split_at(unit_len);
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        // Digits beyond what an i64 can hold make the value out of range anyway.
        if int_part.len() > 19 {
            return None;
        }
        let int: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().ok()?
        };
        total += int * scale;
        // Only the first 18 fraction digits can matter at nanosecond resolution.
        let frac_digits = &frac_part[..frac_part.len().min(18)];
        if !frac_digits.is_empty() {
            let frac: i128 = frac_digits.parse().ok()?;
            total += frac * scale / 10i128.pow(frac_digits.len() as u32);
        }
        if total > i128::from(i64::MAX) + 1 {
            return None;
        }
        rest = after;
    }
    let total = if negative { -total } else { total };
    i64::try_from(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_format_like_go() {
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (100_000_000, "100ms"),
            (1_500_000_000, "1.5s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_000_000_000, "1h2m3s"),
            (-2_000_000_000, "-2s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ];
        for (nanos, text) in cases {
            assert_eq!(format_duration(nanos), text);
            assert_eq!(parse_duration(text), Some(nanos), "{text}");
        }
        assert_eq!(parse_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("2h45m"), Some(9_900_000_000_000));
        for bad in ["", "-", "1", "1x", "h", ".s", "99999999999999999999h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn times_format_in_utc() {
        assert_eq!(format_time(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(
            format_micro_time(1_700_000_000, 123_456_789).as_deref(),
            Some("2023-11-14T22:13:20.123456Z")
        );
        assert_eq!(
            parse_time("2023-11-14T23:13:20+01:00"),
            Some((1_700_000_000, 0))
        );
        assert_eq!(format_time(i64::MAX), None);
        assert_eq!(format_micro_time(0, -1), None);
    }
}
