//! Text forms of the typed scalars: ISO 8601 dates and timestamps, decimals, base64 bytes.
//! Used for JSON and CSV output, where these types have no native form.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeUnit {
    Second,
    Millisecond,
    Microsecond,
    Nanosecond,
}

impl TimeUnit {
    /// How many units make one second.
    pub fn per_second(self) -> i64 {
        match self {
            TimeUnit::Second => 1,
            TimeUnit::Millisecond => 1_000,
            TimeUnit::Microsecond => 1_000_000,
            TimeUnit::Nanosecond => 1_000_000_000,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TimeUnit::Second => "s",
            TimeUnit::Millisecond => "ms",
            TimeUnit::Microsecond => "us",
            TimeUnit::Nanosecond => "ns",
        }
    }

    pub fn from_name(name: &str) -> Option<TimeUnit> {
        Some(match name {
            "s" => TimeUnit::Second,
            "ms" => TimeUnit::Millisecond,
            "us" => TimeUnit::Microsecond,
            "ns" => TimeUnit::Nanosecond,
            _ => return None,
        })
    }
}

/// (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian calendar).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

pub fn format_date(days: i32) -> String {
    let (y, m, d) = civil_from_days(i64::from(days));
    format!("{y:04}-{m:02}-{d:02}")
}

/// A fixed UTC offset in seconds from `UTC`, `Z` or `+HH:MM`; None for a named zone.
pub fn fixed_offset_seconds(tz: &str) -> Option<i64> {
    if tz.eq_ignore_ascii_case("utc") || tz == "Z" {
        return Some(0);
    }
    let sign = match tz.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let rest = tz[1..].replace(':', "");
    if rest.len() != 4 || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i64 = rest[..2].parse().ok()?;
    let minutes: i64 = rest[2..].parse().ok()?;
    Some(sign * (hours * 3600 + minutes * 60))
}

/// ISO 8601, like Python's `isoformat()`: fractional seconds only when not zero. A fixed
/// offset (or UTC) is written as local time with `+HH:MM`; a named zone, whose offsets need a
/// time zone database, as the same instant in UTC with `Z`.
pub fn format_timestamp(value: i64, unit: TimeUnit, tz: Option<&str>) -> String {
    let per = unit.per_second();
    let (offset, suffix) = match tz {
        None => (0, String::new()),
        Some(name) => match fixed_offset_seconds(name) {
            Some(seconds) => {
                let sign = if seconds < 0 { '-' } else { '+' };
                let abs = seconds.abs();
                (seconds, format!("{sign}{:02}:{:02}", abs / 3600, (abs % 3600) / 60))
            }
            None => (0, "Z".to_string()),
        },
    };
    let seconds = value.div_euclid(per) + offset;
    let fraction = value.rem_euclid(per);
    let (y, mo, d) = civil_from_days(seconds.div_euclid(86_400));
    let in_day = seconds.rem_euclid(86_400);
    let mut out = format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}", in_day / 3600, (in_day % 3600) / 60, in_day % 60);
    if fraction != 0 {
        match unit {
            TimeUnit::Second => {}
            TimeUnit::Millisecond => out.push_str(&format!(".{:06}", fraction * 1000)),
            TimeUnit::Microsecond => out.push_str(&format!(".{fraction:06}")),
            TimeUnit::Nanosecond if fraction % 1000 == 0 => out.push_str(&format!(".{:06}", fraction / 1000)),
            TimeUnit::Nanosecond => out.push_str(&format!(".{fraction:09}")),
        }
    }
    out.push_str(&suffix);
    out
}

pub fn format_decimal(value: i128, scale: i8) -> String {
    if scale <= 0 {
        let mut text = value.to_string();
        if value != 0 {
            text.extend(std::iter::repeat_n('0', usize::from(scale.unsigned_abs())));
        }
        return text;
    }
    let digits = value.unsigned_abs().to_string();
    let scale = scale as usize;
    let padded =
        if digits.len() <= scale { format!("{}{digits}", "0".repeat(scale + 1 - digits.len())) } else { digits };
    let (whole, frac) = padded.split_at(padded.len() - scale);
    format!("{}{whole}.{frac}", if value < 0 { "-" } else { "" })
}

/// A decimal's text (`-12.50`, `1E+3`, `3.1e-2`) as (unscaled value, precision, scale).
pub fn parse_decimal(text: &str) -> Result<(i128, u8, i8), String> {
    let fail = || format!("{text:?} is not a finite decimal number");
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], text[at + 1..].parse::<i32>().map_err(|_| fail())?),
        None => (text, 0),
    };
    let (negative, mantissa) = match mantissa.as_bytes().first() {
        Some(b'-') => (true, &mantissa[1..]),
        Some(b'+') => (false, &mantissa[1..]),
        _ => (false, mantissa),
    };
    let (whole, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && frac.is_empty() || !(whole.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())) {
        return Err(fail());
    }
    let mut digits = format!("{whole}{frac}");
    let mut scale = frac.len() as i32 - exponent;
    if scale < 0 {
        digits.extend(std::iter::repeat_n('0', scale.unsigned_abs() as usize));
        scale = 0;
    }
    let trimmed = digits.trim_start_matches('0');
    if trimmed.len() > 38 || scale > 38 {
        return Err(format!("{text:?} has more than 38 digits, the most a decimal128 holds"));
    }
    let unscaled: i128 = if trimmed.is_empty() { 0 } else { trimmed.parse().map_err(|_| fail())? };
    let precision = (trimmed.len() as i32).max(scale).max(1) as u8;
    Ok((if negative { -unscaled } else { unscaled }, precision, scale as i8))
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding: how binary values are written to JSON and CSV.
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_before_and_after_the_epoch() {
        assert_eq!(format_date(0), "1970-01-01");
        assert_eq!(format_date(-1), "1969-12-31");
        assert_eq!(format_date(11_016), "2000-02-29");
    }

    #[test]
    fn timestamps_with_offsets_and_named_zones() {
        assert_eq!(format_timestamp(0, TimeUnit::Second, None), "1970-01-01T00:00:00");
        assert_eq!(format_timestamp(-1, TimeUnit::Millisecond, Some("UTC")), "1969-12-31T23:59:59.999000+00:00");
        assert_eq!(format_timestamp(0, TimeUnit::Second, Some("+05:30")), "1970-01-01T05:30:00+05:30");
        assert_eq!(format_timestamp(1, TimeUnit::Nanosecond, Some("Europe/Paris")), "1970-01-01T00:00:00.000000001Z");
    }

    #[test]
    fn decimals_parse_and_format() {
        assert_eq!(parse_decimal("-12.50").unwrap(), (-1250, 4, 2));
        assert_eq!(parse_decimal("1E+3").unwrap(), (1000, 4, 0));
        assert_eq!(parse_decimal("0.001").unwrap(), (1, 3, 3));
        assert!(parse_decimal("NaN").is_err());
        assert_eq!(format_decimal(5, 3), "0.005");
        assert_eq!(format_decimal(-1250, 2), "-12.50");
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b"hi"), "aGk=");
        assert_eq!(base64(b"abc"), "YWJj");
    }
}
