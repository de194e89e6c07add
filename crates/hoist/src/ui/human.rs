//! docker's human units (go-units `HumanSizeWithPrecision`, `HumanDuration`) and RFC 3339 times.

use std::time::{SystemTime, UNIX_EPOCH};

/// docker's size format: decimal units, 3 significant digits (`HumanSizeWithPrecision(s, 3)`).
pub fn size(bytes: u64) -> String {
    hoist_format::units::human_size(bytes)
}

/// go-units `HumanDuration`, as in docker's CREATED column (`2 weeks` + " ago").
pub fn duration(secs: i64) -> String {
    let s = secs.max(0);
    if s < 1 {
        return "Less than a second".into();
    }
    if s == 1 {
        return "1 second".into();
    }
    if s < 60 {
        return format!("{s} seconds");
    }
    let m = s / 60;
    if m == 1 {
        return "About a minute".into();
    }
    if m < 60 {
        return format!("{m} minutes");
    }
    // Go rounds to the nearest hour here.
    let h = (s + 1800) / 3600;
    if h == 1 {
        return "About an hour".into();
    }
    if h < 48 {
        return format!("{h} hours");
    }
    if h < 24 * 7 * 2 {
        return format!("{} days", h / 24);
    }
    if h < 24 * 30 * 2 {
        return format!("{} weeks", h / 24 / 7);
    }
    if h < 24 * 365 * 2 {
        return format!("{} months", h / 24 / 30);
    }
    format!("{} years", s / 3600 / 24 / 365)
}

/// "N units ago" for an RFC 3339 time, or "N/A" when there is none.
pub fn ago(rfc3339: Option<&str>) -> String {
    match rfc3339.and_then(parse_rfc3339) {
        Some(t) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            format!("{} ago", duration(now - t))
        }
        None => "N/A".into(),
    }
}

/// Seconds since the epoch of an RFC 3339 timestamp (`2023-05-02T16:49:27.123Z`, `…+02:00`).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ')
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    if let Some(r) = rest.strip_prefix('.') {
        rest = r.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "z" => 0,
        r if r.len() == 6 && (r.starts_with('+') || r.starts_with('-')) => {
            let sign = if r.starts_with('-') { -1 } else { 1 };
            sign * (r[1..3].parse::<i64>().ok()? * 3600 + r[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    Some(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Formats seconds since the epoch as docker's `CreatedAt` (`2006-01-02 15:04:05 +0000 UTC`).
pub fn created_at(rfc3339: Option<&str>) -> String {
    let Some(t) = rfc3339.and_then(parse_rfc3339) else {
        return String::new();
    };
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} +0000 UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_go_units() {
        for (n, want) in [
            (0, "0B"),
            (999, "999B"),
            (1000, "1kB"),
            (1234, "1.23kB"),
            (4_500_000, "4.5MB"),
            (12_345_678, "12.3MB"),
            (123_456_789, "123MB"),
            (1_000_000_000, "1GB"),
        ] {
            assert_eq!(size(n), want, "{n}");
        }
    }

    #[test]
    fn durations_like_go_units() {
        for (s, want) in [
            (0, "Less than a second"),
            (1, "1 second"),
            (59, "59 seconds"),
            (60, "About a minute"),
            (3599, "59 minutes"),
            (3600, "About an hour"),
            (47 * 3600, "47 hours"),
            (3 * 86400, "3 days"),
            (15 * 86400, "2 weeks"),
            (90 * 86400, "3 months"),
            (800 * 86400, "2 years"),
        ] {
            assert_eq!(duration(s), want, "{s}");
        }
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2023-05-02T16:49:27Z"), Some(1683046167));
        assert_eq!(
            parse_rfc3339("2023-05-02T18:49:27.123456789+02:00"),
            Some(1683046167)
        );
        assert_eq!(parse_rfc3339("garbage"), None);
        assert_eq!(
            created_at(Some("2023-05-02T16:49:27Z")),
            "2023-05-02 16:49:27 +0000 UTC"
        );
    }
}
