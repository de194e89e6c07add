//! Small ports of Go standard-library behaviour that docker's `--change` handling leans on:
//! `strconv.Quote`, `time.ParseDuration`, `strconv.ParseInt`, `path.Clean`, `net.SplitHostPort`,
//! go-connections' port specs and moby's signal table. Each function keeps Go's error wording,
//! because docker hands those strings to the user verbatim.

use std::collections::BTreeSet;

/// Go's `unicode.IsSpace`: the Unicode `White_Space` property, which is what Rust's
/// `char::is_whitespace` implements too.
pub(crate) fn is_go_space(c: char) -> bool {
    c.is_whitespace()
}

/// The `[\t\v\f\r ]` class of the Dockerfile parser's `reWhitespace` regexp (ASCII only, and
/// without `\n`, which never occurs inside one line).
pub(crate) fn is_re_ws(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

/// RE2's `\s`: `[\t\n\f\r ]`.
pub(crate) fn is_re2_s(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ')
}

/// `reWhitespace.Split(s, 2)`: the text before the first run of whitespace and everything
/// after that run.
pub(crate) fn split_ws2(s: &str) -> (&str, Option<&str>) {
    match s.find(is_re_ws) {
        None => (s, None),
        Some(i) => {
            let rest = &s[i..];
            let after = rest.trim_start_matches(is_re_ws);
            (&s[..i], Some(after))
        }
    }
}

/// `reWhitespace.Split(s, -1)`.
pub(crate) fn split_ws_all(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_ws = false;
    for c in s.chars() {
        if is_re_ws(c) {
            if !in_ws {
                out.push(std::mem::take(&mut cur));
            }
            in_ws = true;
        } else {
            in_ws = false;
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

/// Go's `strconv.Quote` (also what `%q` and `%#v` print for a string).
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The private `quote` of Go's `time` package, used in duration errors: non-ASCII and
/// control bytes become `\xNN`.
fn time_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if (c as u32) >= 0x80 || c < ' ' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        } else {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// Nanoseconds per unit, as in Go's `time.unitMap`.
const DURATION_UNITS: [(&str, u64); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// The largest magnitude a Go duration accumulates before it reports overflow (`1<<63`).
const DURATION_LIMIT: u64 = 1 << 63;

/// Go's `time.ParseDuration`, returning nanoseconds.
pub(crate) fn parse_duration(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", time_quote(orig));
    let mut s = orig.as_bytes();
    let mut neg = false;
    if let Some(&c) = s.first()
        && (c == b'-' || c == b'+')
    {
        neg = c == b'-';
        s = &s[1..];
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut d: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // leadingInt
        let mut v: u64 = 0;
        let mut i = 0;
        while i < s.len() && s[i].is_ascii_digit() {
            if v > DURATION_LIMIT / 10 {
                return Err(invalid());
            }
            v = v * 10 + u64::from(s[i] - b'0');
            if v > DURATION_LIMIT {
                return Err(invalid());
            }
            i += 1;
        }
        let pre = i > 0;
        s = &s[i..];
        // leadingFraction
        let mut f: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut post = false;
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let mut i = 0;
            let mut overflow = false;
            while i < s.len() && s[i].is_ascii_digit() {
                let digit = u64::from(s[i] - b'0');
                i += 1;
                if overflow {
                    continue;
                }
                if f > (DURATION_LIMIT - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let y = f * 10 + digit;
                if y > DURATION_LIMIT {
                    overflow = true;
                    continue;
                }
                f = y;
                scale *= 10.0;
            }
            post = i > 0;
            s = &s[i..];
        }
        if !pre && !post {
            return Err(invalid());
        }
        let unit_len = s
            .iter()
            .position(|&c| c == b'.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if unit_len == 0 {
            return Err(format!(
                "time: missing unit in duration {}",
                time_quote(orig)
            ));
        }
        let unit_bytes = &s[..unit_len];
        s = &s[unit_len..];
        let Some(&(_, unit)) = DURATION_UNITS
            .iter()
            .find(|(name, _)| name.as_bytes() == unit_bytes)
        else {
            let u = String::from_utf8_lossy(unit_bytes);
            return Err(format!(
                "time: unknown unit {} in duration {}",
                time_quote(&u),
                time_quote(orig)
            ));
        };
        if v > DURATION_LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            // Go computes this in float64 and truncates; the cast saturates the same way.
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > DURATION_LIMIT {
                return Err(invalid());
            }
        }
        d += v;
        if d > DURATION_LIMIT {
            return Err(invalid());
        }
    }
    if neg {
        return Ok((d as i64).wrapping_neg());
    }
    if d > DURATION_LIMIT - 1 {
        return Err(invalid());
    }
    Ok(d as i64)
}

/// Go's `strconv.ParseInt(s, 10, 32)`.
pub(crate) fn parse_int32(s0: &str) -> Result<i64, String> {
    let syntax = || format!("strconv.ParseInt: parsing {}: invalid syntax", quote(s0));
    let range = || {
        format!(
            "strconv.ParseInt: parsing {}: value out of range",
            quote(s0)
        )
    };
    let (neg, digits) = match s0.as_bytes().first() {
        Some(b'+') => (false, &s0[1..]),
        Some(b'-') => (true, &s0[1..]),
        _ => (false, s0),
    };
    if digits.is_empty() {
        return Err(syntax());
    }
    let mut n: u64 = 0;
    for b in digits.bytes() {
        if !b.is_ascii_digit() {
            return Err(syntax());
        }
        n = n * 10 + u64::from(b - b'0');
        if n > u64::from(u32::MAX) {
            return Err(range());
        }
    }
    let cutoff: u64 = 1 << 31;
    if (!neg && n >= cutoff) || (neg && n > cutoff) {
        return Err(range());
    }
    Ok(if neg { -(n as i64) } else { n as i64 })
}

/// Go's `path.Clean` (what `filepath.Clean` does on Unix).
pub(crate) fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Go's `strconv.ParseUint(s, 10, 16)`.
fn parse_u16(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut n: u64 = 0;
    for b in s.bytes() {
        n = n * 10 + u64::from(b - b'0');
        if n > u64::from(u16::MAX) {
            return None;
        }
    }
    Some(n)
}

/// go-connections `nat.ParsePortRange`.
fn parse_port_range(ports: &str) -> Option<(u64, u64)> {
    if ports.is_empty() {
        return None;
    }
    if !ports.contains('-') {
        let p = parse_u16(ports)?;
        return Some((p, p));
    }
    let mut parts = ports.split('-');
    let start = parse_u16(parts.next().unwrap_or(""))?;
    let end = parse_u16(parts.next().unwrap_or(""))?;
    (end >= start).then_some((start, end))
}

/// go-connections `nat.SplitProtoPort`.
fn split_proto_port(raw: &str) -> (String, String) {
    let parts: Vec<&str> = raw.split('/').collect();
    if raw.is_empty() || parts[0].is_empty() {
        return (String::new(), String::new());
    }
    if parts.len() == 1 {
        return ("tcp".into(), raw.into());
    }
    if parts[1].is_empty() {
        return ("tcp".into(), parts[0].into());
    }
    (parts[1].into(), parts[0].into())
}

/// Go's `net.SplitHostPort`, returning only the host (the port is never used here).
fn split_host(hostport: &str) -> Result<String, String> {
    let err = |why: &str| format!("address {hostport}: {why}");
    let Some(i) = hostport.rfind(':') else {
        return Err(err("missing port in address"));
    };
    let (host, j, k);
    if hostport.starts_with('[') {
        let Some(end) = hostport.find(']') else {
            return Err(err("missing ']' in address"));
        };
        if end + 1 == hostport.len() {
            return Err(err("missing port in address"));
        } else if end + 1 != i {
            if hostport.as_bytes()[end + 1] == b':' {
                return Err(err("too many colons in address"));
            }
            return Err(err("missing port in address"));
        }
        host = &hostport[1..end];
        j = 1;
        k = end + 1;
    } else {
        host = &hostport[..i];
        if host.contains(':') {
            return Err(err("too many colons in address"));
        }
        j = 0;
        k = 0;
    }
    if hostport[j..].contains('[') {
        return Err(err("unexpected '[' in address"));
    }
    if hostport[k..].contains(']') {
        return Err(err("unexpected ']' in address"));
    }
    Ok(host.to_string())
}

/// go-connections `nat.ParsePortSpec`, keeping only the exposed container ports
/// (`80/tcp`, one per port of a range), in docker's error wording.
pub(crate) fn parse_port_spec(raw: &str, out: &mut BTreeSet<String>) -> Result<(), String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let (raw_ip, host_port, container) = match n {
        1 => (String::new(), "", parts[0]),
        2 => (String::new(), parts[0], parts[1]),
        3 => (parts[0].to_string(), parts[1], parts[2]),
        _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    let (proto, container_port) = split_proto_port(container);
    let ip = split_host(&format!("{raw_ip}:"))
        .map_err(|e| format!("Invalid ip address {raw_ip}: {e}"))?;
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("Invalid ip address: {ip}"));
    }
    if container_port.is_empty() {
        return Err(format!("No port specified: {raw}<empty>"));
    }
    let (start, end) = parse_port_range(&container_port)
        .ok_or_else(|| format!("Invalid containerPort: {container_port}"))?;
    if !host_port.is_empty() {
        let (hs, he) =
            parse_port_range(host_port).ok_or_else(|| format!("Invalid hostPort: {host_port}"))?;
        if end - start != he - hs && end != start {
            return Err(format!(
                "Invalid ranges specified for container and host Ports: {container_port} and {host_port}"
            ));
        }
    }
    let proto = proto.to_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("Invalid proto: {proto}"));
    }
    for p in start..=end {
        out.insert(format!("{p}/{proto}"));
    }
    Ok(())
}

/// Signal names moby accepts on Linux (`pkg/signal/signal_linux.go`, without the `SIG`
/// prefix). `RTMIN+n` and `RTMAX-n` are generated in [`is_valid_signal`].
const SIGNAL_NAMES: [&str; 34] = [
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
    "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
    "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
];

/// The real-time signal offsets moby names (`RTMIN+1`..`RTMIN+15`, `RTMAX-14`..`RTMAX-1`).
const RT_SIGNAL_OFFSETS: std::ops::RangeInclusive<u32> = 1..=15;

/// moby `signal.ParseSignal`: a non-zero integer, or a known name with or without `SIG`.
pub(crate) fn is_valid_signal(raw: &str) -> bool {
    let digits = raw.strip_prefix(['+', '-']).unwrap_or(raw);
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = raw.parse::<i64>()
    {
        return n != 0;
    }
    let upper = raw.to_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if SIGNAL_NAMES.contains(&name) || name == "RTMIN" || name == "RTMAX" {
        return true;
    }
    let rt = |prefix: &str| {
        name.strip_prefix(prefix)
            .and_then(|n| n.parse::<u32>().ok().filter(|_| !n.starts_with('0')))
            .is_some_and(|n| RT_SIGNAL_OFFSETS.contains(&n) && !(prefix == "RTMAX-" && n == 15))
    };
    rt("RTMIN+") || rt("RTMAX-")
}

/// Appends `s` as a JSON string the way Go's `encoding/json` writes it: HTML-sensitive
/// `<`, `>`, `&` and U+2028/U+2029 as `\u00XX` escapes, control characters as `\n`, `\r`,
/// `\t` or `\u00XX`.
pub(crate) fn write_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_match_go() {
        for (input, want) in [
            ("5s", Ok(5_000_000_000)),
            ("1.5m", Ok(90_000_000_000)),
            ("2h3m4.5s", Ok(7_384_500_000_000)),
            ("10ms", Ok(10_000_000)),
            ("1us", Ok(1_000)),
            ("1\u{b5}s", Ok(1_000)),
            ("0", Ok(0)),
            ("-1s", Ok(-1_000_000_000)),
            ("", Err("time: invalid duration \"\"")),
            ("abc", Err("time: invalid duration \"abc\"")),
            ("5", Err("time: missing unit in duration \"5\"")),
            ("5x", Err("time: unknown unit \"x\" in duration \"5x\"")),
            (
                "1é",
                Err("time: unknown unit \"\\xc3\\xa9\" in duration \"1\\xc3\\xa9\""),
            ),
            (".s", Err("time: invalid duration \".s\"")),
            ("9999999999h", Err("time: invalid duration \"9999999999h\"")),
        ] {
            assert_eq!(
                parse_duration(input),
                want.map_err(String::from),
                "{input:?}"
            );
        }
    }

    #[test]
    fn clean_matches_go() {
        for (input, want) in [
            ("/a/b/../c", "/a/c"),
            ("///a//", "/a"),
            ("/..", "/"),
            ("a/../..", ".."),
            ("", "."),
            ("/x/./y/", "/x/y"),
        ] {
            assert_eq!(clean_path(input), want, "{input:?}");
        }
    }

    #[test]
    fn signals() {
        for (input, ok) in [
            ("SIGKILL", true),
            ("kill", true),
            ("9", true),
            ("0", false),
            ("-3", true),
            ("RTMIN+15", true),
            ("SIGRTMAX-14", true),
            ("RTMAX-15", false),
            ("RTMIN+01", false),
            ("foo", false),
        ] {
            assert_eq!(is_valid_signal(input), ok, "{input:?}");
        }
    }
}
