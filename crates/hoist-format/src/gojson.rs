//! The small part of Go's `encoding/json` (and `time.Time`'s JSON form) that docker's bytes depend on.
//!
//! Docker computes image IDs and legacy v1 ids as the sha256 of JSON that Go's `json.Marshal` wrote.
//! To get the same digests hoist must write the same bytes, so this module reproduces, from the Go
//! 1.19 sources docker 20.10.24 was built with:
//!
//! - **validation** like `json.Valid` / the decoder's `checkValid` (including the nesting limit and
//!   the fact that Go does *not* reject invalid UTF-8 inside strings);
//! - **compaction** as `json.Marshal` applies it to a `json.RawMessage`: insignificant whitespace is
//!   dropped and `<`, `>`, `&`, U+2028 and U+2029 are escaped (`\u003c`, …), everything else inside
//!   strings (existing escapes, raw UTF-8) is kept byte for byte;
//! - **string encoding** (`encodeState.string` with HTML escaping): `\"`, `\\`, `\n`, `\r`, `\t`,
//!   other control characters as `\u00XX` (Go 1.19 has no `\b`/`\f` short forms), `<>&` and
//!   U+2028/U+2029 as `\uXXXX`;
//! - **string decoding** (`unquote`): invalid UTF-8 and lone surrogates become U+FFFD, byte by byte
//!   as Go's `utf8.DecodeRune` does;
//! - **`map[string]*json.RawMessage`** round trips: unmarshal (last duplicate key wins) and marshal
//!   (keys sorted by bytes, values compacted);
//! - the **struct decoding rules** docker's types rely on: a key matches a field exactly or else
//!   case-insensitively (with Go's Kelvin-sign/long-s folding), `null` leaves a scalar unchanged and
//!   sets a slice, map or pointer to nil, maps merge into existing ones, integers must be integer
//!   literals;
//! - **`time.Time`** JSON: Go 1.19 parses the raw token with `time.Parse(`"`+RFC3339+`"`)` (lenient:
//!   one-digit hours, `,` as decimal separator, more than 9 fraction digits truncated) and writes
//!   RFC 3339 with nanoseconds, trailing zeros trimmed, keeping the parsed UTC offset (`Z` for 0).
//!
//! All functions are pure; none allocates more than the output it returns.

use std::collections::BTreeMap;
use std::fmt;

/// Go's `maxNestingDepth` (encoding/json/scanner.go): deeper input is a syntax error. The scanner
/// here is iterative, so the limit only exists to refuse exactly what Go refuses.
pub const MAX_NESTING_DEPTH: usize = 10_000;

/// Lowercase hex digits, as Go's encoder writes them in `\u00XX` escapes.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// UTF-8 encoding of U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR share these two leading
/// bytes; the third is `0xA8` or `0xA9`. Go escapes both because they end lines in JavaScript.
const LINE_SEPARATOR_PREFIX: [u8; 2] = [0xE2, 0x80];

/// Nanoseconds per second: a parsed fraction must stay below this.
const NANOS_PER_SECOND: u32 = 1_000_000_000;

/// Why bytes are not what Go would accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GoJsonError {
    /// The bytes are not JSON (Go: `*json.SyntaxError`).
    #[error("invalid JSON at byte {offset}: found {}, expected {expected}", show_byte(*.found))]
    Syntax {
        /// Offset of the offending byte in the input given to the function.
        offset: usize,
        /// The offending byte, `None` at the end of the input.
        found: Option<u8>,
        /// What the scanner was looking for.
        expected: &'static str,
    },
    /// More than [`MAX_NESTING_DEPTH`] nested arrays/objects.
    #[error("invalid JSON at byte {offset}: nesting deeper than {MAX_NESTING_DEPTH}")]
    TooDeep {
        /// Offset of the bracket that went too deep.
        offset: usize,
    },
    /// A JSON value of the wrong kind for the Go type (Go: `*json.UnmarshalTypeError`).
    #[error("cannot decode a JSON {found} into a Go {expected}")]
    Type {
        /// The Go type that was being decoded.
        expected: &'static str,
        /// What the JSON held.
        found: Kind,
    },
    /// A JSON number that does not fit the Go integer type (Go: `*json.UnmarshalTypeError`).
    #[error("cannot decode the JSON number {number} into a Go {expected}")]
    Number {
        /// The number as written.
        number: String,
        /// The Go type that was being decoded.
        expected: &'static str,
    },
    /// A JSON string that `time.Time.UnmarshalJSON` refuses (Go: `*time.ParseError`).
    #[error("cannot parse {value} as an RFC 3339 time: {reason}")]
    Time {
        /// The raw JSON token, quotes included.
        value: String,
        /// What was wrong.
        reason: &'static str,
    },
}

fn show_byte(b: Option<u8>) -> String {
    match b {
        None => "end of input".to_string(),
        Some(b) if b.is_ascii_graphic() => format!("'{}'", b as char),
        Some(b) => format!("byte 0x{b:02x}"),
    }
}

/// The kind of a JSON value, told by its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `null`
    Null,
    /// `true` or `false`
    Bool,
    /// a number
    Number,
    /// a string
    String,
    /// an array
    Array,
    /// an object
    Object,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Null => "null",
            Kind::Bool => "bool",
            Kind::Number => "number",
            Kind::String => "string",
            Kind::Array => "array",
            Kind::Object => "object",
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Scanning and validation
// ---------------------------------------------------------------------------------------------

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn skip_space(src: &[u8], mut i: usize) -> usize {
    while i < src.len() && is_space(src[i]) {
        i += 1;
    }
    i
}

fn syntax(src: &[u8], offset: usize, expected: &'static str) -> GoJsonError {
    GoJsonError::Syntax {
        offset,
        found: src.get(offset).copied(),
        expected,
    }
}

/// Scans a string starting at its opening quote; returns the offset after the closing quote.
/// Like Go, bytes >= 0x80 are not checked for UTF-8 validity.
fn scan_string(src: &[u8], start: usize) -> Result<usize, GoJsonError> {
    if src.get(start) != Some(&b'"') {
        return Err(syntax(src, start, "'\"' starting a string"));
    }
    let mut i = start + 1;
    loop {
        match src.get(i) {
            None => return Err(syntax(src, i, "'\"' ending a string")),
            Some(b'"') => return Ok(i + 1),
            Some(b'\\') => match src.get(i + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                Some(b'u') => {
                    for k in 0..4 {
                        if !src.get(i + 2 + k).is_some_and(u8::is_ascii_hexdigit) {
                            return Err(syntax(src, i + 2 + k, "a hex digit in a \\u escape"));
                        }
                    }
                    i += 6;
                }
                _ => return Err(syntax(src, i + 1, "an escape character after '\\'")),
            },
            Some(&b) if b < 0x20 => return Err(syntax(src, i, "no control character in a string")),
            Some(_) => i += 1,
        }
    }
}

fn scan_digits(src: &[u8], mut i: usize) -> usize {
    while src.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

/// Scans a number (JSON grammar, as Go's scanner); returns the offset after it.
fn scan_number(src: &[u8], start: usize) -> Result<usize, GoJsonError> {
    let mut i = start;
    if src.get(i) == Some(&b'-') {
        i += 1;
    }
    match src.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = scan_digits(src, i + 1),
        _ => return Err(syntax(src, i, "a digit")),
    }
    if src.get(i) == Some(&b'.') {
        if !src.get(i + 1).is_some_and(u8::is_ascii_digit) {
            return Err(syntax(src, i + 1, "a digit after the decimal point"));
        }
        i = scan_digits(src, i + 1);
    }
    if matches!(src.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(src.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !src.get(i).is_some_and(u8::is_ascii_digit) {
            return Err(syntax(src, i, "a digit in the exponent"));
        }
        i = scan_digits(src, i);
    }
    Ok(i)
}

fn scan_literal(src: &[u8], start: usize, word: &'static [u8]) -> Result<usize, GoJsonError> {
    for (k, &w) in word.iter().enumerate() {
        if src.get(start + k) != Some(&w) {
            return Err(syntax(src, start + k, "a literal true, false or null"));
        }
    }
    Ok(start + word.len())
}

/// After a key: spaces, `:`, spaces. Returns the offset of the value.
fn scan_colon(src: &[u8], i: usize) -> Result<usize, GoJsonError> {
    let i = skip_space(src, i);
    if src.get(i) != Some(&b':') {
        return Err(syntax(src, i, "':' after an object key"));
    }
    Ok(skip_space(src, i + 1))
}

/// Scans one value starting exactly at `start` (no leading space); returns the offset after it.
/// Iterative, with an explicit stack of open containers, so deep input cannot overflow the stack.
fn scan_value(src: &[u8], start: usize) -> Result<usize, GoJsonError> {
    let mut open: Vec<u8> = Vec::new();
    let mut i = start;
    loop {
        // A value starts at `i`.
        match src.get(i) {
            Some(b'{') | Some(b'[') => {
                let bracket = src[i];
                if open.len() >= MAX_NESTING_DEPTH {
                    return Err(GoJsonError::TooDeep { offset: i });
                }
                let j = skip_space(src, i + 1);
                let close = if bracket == b'{' { b'}' } else { b']' };
                if src.get(j) == Some(&close) {
                    i = j + 1;
                } else {
                    open.push(bracket);
                    i = if bracket == b'{' {
                        scan_colon(src, scan_string(src, j)?)?
                    } else {
                        j
                    };
                    continue;
                }
            }
            Some(b'"') => i = scan_string(src, i)?,
            Some(b'-' | b'0'..=b'9') => i = scan_number(src, i)?,
            Some(b't') => i = scan_literal(src, i, b"true")?,
            Some(b'f') => i = scan_literal(src, i, b"false")?,
            Some(b'n') => i = scan_literal(src, i, b"null")?,
            _ => return Err(syntax(src, i, "the beginning of a value")),
        }
        // A value ended at `i`: close containers until one continues.
        loop {
            let Some(&top) = open.last() else {
                return Ok(i);
            };
            i = skip_space(src, i);
            match (top, src.get(i)) {
                (b'{', Some(b',')) => {
                    i = scan_colon(src, scan_string(src, skip_space(src, i + 1))?)?;
                    break;
                }
                (b'[', Some(b',')) => {
                    i = skip_space(src, i + 1);
                    break;
                }
                (b'{', Some(b'}')) | (b'[', Some(b']')) => {
                    open.pop();
                    i += 1;
                }
                (b'{', _) => return Err(syntax(src, i, "',' or '}' after an object value")),
                _ => return Err(syntax(src, i, "',' or ']' after an array element")),
            }
        }
    }
}

/// Checks that `src` is exactly one JSON value with optional surrounding whitespace, as Go's
/// `json.Valid` and `json.Unmarshal` do before decoding anything.
pub fn validate(src: &[u8]) -> Result<(), GoJsonError> {
    value_span(src).map(|_| ())
}

/// The span of the single value in `src` (validated), without surrounding whitespace.
fn value_span(src: &[u8]) -> Result<(usize, usize), GoJsonError> {
    let start = skip_space(src, 0);
    let end = scan_value(src, start)?;
    let rest = skip_space(src, end);
    if rest != src.len() {
        return Err(syntax(
            src,
            rest,
            "the end of the input after the top-level value",
        ));
    }
    Ok((start, end))
}

/// The first JSON value in `src` (leading whitespace skipped), ignoring whatever follows it: what
/// one `json.Decoder.Decode` call reads from a file.
pub fn first_value(src: &[u8]) -> Result<&[u8], GoJsonError> {
    let start = skip_space(src, 0);
    let end = scan_value(src, start)?;
    Ok(&src[start..end])
}

/// The kind of a value, by its first non-space byte. The value should be valid (see
/// [`validate`]); anything unrecognised is reported as [`Kind::Null`].
pub fn kind_of(value: &[u8]) -> Kind {
    match value.get(skip_space(value, 0)) {
        Some(b'{') => Kind::Object,
        Some(b'[') => Kind::Array,
        Some(b'"') => Kind::String,
        Some(b't' | b'f') => Kind::Bool,
        Some(b'-' | b'0'..=b'9') => Kind::Number,
        _ => Kind::Null,
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/// Appends `src` compacted the way `json.Marshal` writes a `json.RawMessage`: whitespace outside
/// strings removed; `<`, `>`, `&`, U+2028 and U+2029 escaped; all other bytes (including existing
/// escapes and non-ASCII UTF-8) copied unchanged. Fails, writing nothing, if `src` is not valid.
pub fn compact_into(dst: &mut Vec<u8>, src: &[u8]) -> Result<(), GoJsonError> {
    let (start, end) = value_span(src)?;
    let src = &src[start..end];
    dst.reserve(src.len());
    let mut in_string = false;
    let mut i = 0;
    while i < src.len() {
        let b = src[i];
        if in_string {
            match b {
                b'\\' => {
                    // Copy the escape and the escaped byte; `\uXXXX` digits follow as plain bytes.
                    dst.extend_from_slice(&src[i..i + 2]);
                    i += 2;
                    continue;
                }
                b'"' => in_string = false,
                b'<' | b'>' | b'&' => {
                    push_u00(dst, b);
                    i += 1;
                    continue;
                }
                _ if src[i..].starts_with(&LINE_SEPARATOR_PREFIX)
                    && src.get(i + 2).is_some_and(|&c| c & !1 == 0xA8) =>
                {
                    dst.extend_from_slice(b"\\u202");
                    dst.push(HEX[usize::from(src[i + 2] & 0xF)]);
                    i += 3;
                    continue;
                }
                _ => {}
            }
            dst.push(b);
        } else if !is_space(b) {
            if b == b'"' {
                in_string = true;
            }
            dst.push(b);
        }
        i += 1;
    }
    Ok(())
}

/// [`compact_into`] into a new buffer: the bytes `json.Marshal(json.RawMessage(src))` returns.
pub fn compact(src: &[u8]) -> Result<Vec<u8>, GoJsonError> {
    let mut out = Vec::with_capacity(src.len());
    compact_into(&mut out, src)?;
    Ok(out)
}

fn push_u00(dst: &mut Vec<u8>, b: u8) {
    dst.extend_from_slice(b"\\u00");
    dst.push(HEX[usize::from(b >> 4)]);
    dst.push(HEX[usize::from(b & 0xF)]);
}

/// Appends `s` as a JSON string exactly as Go's `json.Marshal` writes a string (HTML escaping on).
pub fn write_string(dst: &mut Vec<u8>, s: &str) {
    dst.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let escape: Option<&[u8]> = match c {
            '"' => Some(b"\\\""),
            '\\' => Some(b"\\\\"),
            '\n' => Some(b"\\n"),
            '\r' => Some(b"\\r"),
            '\t' => Some(b"\\t"),
            '\u{2028}' => Some(b"\\u2028"),
            '\u{2029}' => Some(b"\\u2029"),
            _ => None,
        };
        let needs_u00 = c < ' ' || matches!(c, '<' | '>' | '&');
        if escape.is_none() && !needs_u00 {
            continue;
        }
        dst.extend_from_slice(&bytes[start..i]);
        match escape {
            Some(e) => dst.extend_from_slice(e),
            // Only ASCII reaches here, so the cast is exact.
            None => push_u00(dst, c as u8),
        }
        start = i + c.len_utf8();
    }
    dst.extend_from_slice(&bytes[start..]);
    dst.push(b'"');
}

/// `s` as Go's `json.Marshal` would write it, quotes included.
pub fn quote(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 2);
    write_string(&mut out, s);
    // `write_string` only adds ASCII to valid UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/// Decodes one UTF-8 sequence the way Go's `utf8.DecodeRune` does: `None` (consume one byte) for
/// anything invalid, including surrogates, overlong forms and truncated sequences.
fn decode_rune(s: &[u8]) -> (Option<char>, usize) {
    let width = match s.first() {
        Some(0x00..=0x7F) => 1,
        Some(0xC2..=0xDF) => 2,
        Some(0xE0..=0xEF) => 3,
        Some(0xF0..=0xF4) => 4,
        _ => return (None, 1),
    };
    match s.get(..width).and_then(|seq| std::str::from_utf8(seq).ok()) {
        Some(text) => (text.chars().next(), width),
        None => (None, 1),
    }
}

fn hex4(s: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(s.get(..4)?).ok()?;
    u32::from_str_radix(text, 16).ok()
}

/// Decodes a JSON string token (quotes included) as Go's `unquote` does: escapes resolved, a valid
/// surrogate pair joined, a lone surrogate or an invalid UTF-8 byte replaced by U+FFFD.
pub fn unquote(token: &[u8]) -> Result<String, GoJsonError> {
    let (start, end) = value_span(token)?;
    if token[start] != b'"' {
        return Err(GoJsonError::Type {
            expected: "string",
            found: kind_of(token),
        });
    }
    let s = &token[start + 1..end - 1];
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'\\' => {
                let simple = match s[i + 1] {
                    b'"' => Some('"'),
                    b'\\' => Some('\\'),
                    b'/' => Some('/'),
                    b'b' => Some('\u{8}'),
                    b'f' => Some('\u{c}'),
                    b'n' => Some('\n'),
                    b'r' => Some('\r'),
                    b't' => Some('\t'),
                    _ => None,
                };
                if let Some(c) = simple {
                    out.push(c);
                    i += 2;
                    continue;
                }
                // `\uXXXX`, validated by the scanner.
                let unit = hex4(&s[i + 2..]).unwrap_or(0xFFFD);
                i += 6;
                if (0xD800..0xE000).contains(&unit) {
                    // Go's utf16.DecodeRune: a high surrogate followed by a `\u` low one.
                    let high = (0xD800..0xDC00).contains(&unit);
                    let low = if s[i..].starts_with(b"\\u") {
                        hex4(&s[i + 2..])
                    } else {
                        None
                    };
                    match low {
                        Some(low) if high && (0xDC00..0xE000).contains(&low) => {
                            let c = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                            out.push(char::from_u32(c).unwrap_or('\u{FFFD}'));
                            i += 6;
                        }
                        _ => out.push('\u{FFFD}'),
                    }
                } else {
                    out.push(char::from_u32(unit).unwrap_or('\u{FFFD}'));
                }
            }
            _ => {
                let (c, width) = decode_rune(&s[i..]);
                out.push(c.unwrap_or('\u{FFFD}'));
                i += width;
            }
        }
    }
    Ok(out)
}

/// One member of a JSON object: the decoded key and the raw bytes of the value.
pub type Member<'a> = (String, &'a [u8]);

/// The members of a JSON object, in source order (duplicates kept), each as the decoded key and
/// the raw bytes of its value (without surrounding whitespace). `Ok(None)` for `null`, as Go
/// leaves a map nil; any other kind is a [`GoJsonError::Type`].
pub fn object_entries(src: &[u8]) -> Result<Option<Vec<Member<'_>>>, GoJsonError> {
    let (start, end) = value_span(src)?;
    match src[start] {
        b'n' => return Ok(None),
        b'{' => {}
        _ => {
            return Err(GoJsonError::Type {
                expected: "object",
                found: kind_of(src),
            });
        }
    }
    let mut entries = Vec::new();
    let mut i = skip_space(src, start + 1);
    if src[i] == b'}' {
        return Ok(Some(entries));
    }
    while i < end {
        let key_end = scan_string(src, i)?;
        let key = unquote(&src[i..key_end])?;
        let value_start = scan_colon(src, key_end)?;
        let value_end = scan_value(src, value_start)?;
        entries.push((key, &src[value_start..value_end]));
        // Skip `,` or the closing `}` (validated already).
        i = skip_space(src, skip_space(src, value_end) + 1);
    }
    Ok(Some(entries))
}

/// The elements of a JSON array as raw bytes. `Ok(None)` for `null` (Go: a nil slice); any other
/// kind is a [`GoJsonError::Type`].
pub fn array_elements(src: &[u8]) -> Result<Option<Vec<&[u8]>>, GoJsonError> {
    let (start, end) = value_span(src)?;
    match src[start] {
        b'n' => return Ok(None),
        b'[' => {}
        _ => {
            return Err(GoJsonError::Type {
                expected: "array",
                found: kind_of(src),
            });
        }
    }
    let mut elements = Vec::new();
    let mut i = skip_space(src, start + 1);
    if src[i] == b']' {
        return Ok(Some(elements));
    }
    while i < end {
        let value_end = scan_value(src, i)?;
        elements.push(&src[i..value_end]);
        i = skip_space(src, skip_space(src, value_end) + 1);
    }
    Ok(Some(elements))
}

/// A Go `map[string]*json.RawMessage`: keys (Go sorts them by bytes when marshalling, as
/// `BTreeMap<String, _>` iterates) to raw JSON values.
pub type RawMap = BTreeMap<String, Vec<u8>>;

/// `field "a.b": ` before an error about the field at dotted path `field` (nothing for the
/// document itself).
pub fn field_prefix(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("field {field:?}: ")
    }
}

/// `json.Unmarshal(src, &m)` with `m map[string]*json.RawMessage`: the last of duplicate keys wins;
/// `null` gives an empty map (Go: a nil map). Values are kept as written (not yet compacted).
pub fn unmarshal_raw_map(src: &[u8]) -> Result<RawMap, GoJsonError> {
    let mut map = RawMap::new();
    for (key, value) in object_entries(src)?.unwrap_or_default() {
        map.insert(key, value.to_vec());
    }
    Ok(map)
}

/// `json.Marshal(m)` with `m map[string]*json.RawMessage`: `{"k":v,...}` with keys sorted by bytes
/// and escaped as Go escapes strings, values compacted (see [`compact_into`]).
pub fn marshal_raw_map(map: &RawMap) -> Result<Vec<u8>, GoJsonError> {
    let mut out = Vec::with_capacity(map.iter().map(|(k, v)| k.len() + v.len() + 4).sum());
    out.push(b'{');
    for (n, (key, value)) in map.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        write_string(&mut out, key);
        out.push(b':');
        compact_into(&mut out, value)?;
    }
    out.push(b'}');
    Ok(out)
}

/// Whether the JSON object key `key` selects the Go struct field whose JSON name is `field`
/// when there is no exact match: ASCII letters compare case-insensitively, and Go's folding also
/// lets U+212A KELVIN SIGN stand for `k` and U+017F LATIN SMALL LETTER LONG S for `s`
/// (encoding/json `foldFunc`). Other characters must be equal. `field` is ASCII in docker's types.
pub fn field_name_folds(field: &str, key: &str) -> bool {
    let mut key_chars = key.chars();
    for f in field.chars() {
        let Some(k) = key_chars.next() else {
            return false;
        };
        let same = f == k
            || (f.is_ascii_alphabetic() && f.eq_ignore_ascii_case(&k))
            || (k == '\u{212A}' && f.eq_ignore_ascii_case(&'k'))
            || (k == '\u{17F}' && f.eq_ignore_ascii_case(&'s'));
        if !same {
            return false;
        }
    }
    key_chars.next().is_none()
}

/// Decodes a JSON object into a Go struct whose JSON field names are `fields` (in declaration
/// order): each member goes to the field named exactly like its key, else to the first field
/// whose name folds to it (see [`field_name_folds`]); unknown keys are ignored; members are
/// visited in source order, so a later duplicate decodes over an earlier one. `null` leaves the
/// struct unchanged. `decode_field` gets the field's index and the member's raw value.
///
/// Only the members of `fields` are decoded: an unknown member is skipped whatever it holds
/// (a number no float can hold, nesting up to [`MAX_NESTING_DEPTH`]), as Go skips it.
pub fn decode_struct<E: From<GoJsonError>>(
    src: &[u8],
    fields: &[&str],
    decode_field: impl FnMut(usize, &[u8]) -> Result<(), E>,
) -> Result<(), E> {
    decode_struct_keeping_unknown(src, fields, decode_field, |_, _| Ok(()))
}

/// [`decode_struct`], but every member no field takes is handed to `unknown` (its key and raw
/// value, in source order) instead of being skipped: for types that keep what they do not model.
pub fn decode_struct_keeping_unknown<E: From<GoJsonError>>(
    src: &[u8],
    fields: &[&str],
    mut decode_field: impl FnMut(usize, &[u8]) -> Result<(), E>,
    mut unknown: impl FnMut(String, &[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let Some(entries) = object_entries(src)? else {
        return Ok(());
    };
    for (key, value) in entries {
        let index = fields
            .iter()
            .position(|f| *f == key)
            .or_else(|| fields.iter().position(|f| field_name_folds(f, &key)));
        match index {
            Some(index) => decode_field(index, value)?,
            None => unknown(key, value)?,
        }
    }
    Ok(())
}

/// A decoding error with the dotted path of the field it happened in (`""` for the document
/// itself), built up with [`FieldError::within`] as the error leaves each struct.
#[derive(Debug)]
pub(crate) struct FieldError {
    /// Dotted path of the field, outermost first.
    pub(crate) path: String,
    /// What Go's decoder would have said.
    pub(crate) source: GoJsonError,
}

impl From<GoJsonError> for FieldError {
    fn from(source: GoJsonError) -> Self {
        FieldError {
            path: String::new(),
            source,
        }
    }
}

impl FieldError {
    /// The error, one struct further out: `field` is prefixed to the path.
    pub(crate) fn within(mut self, field: &str) -> Self {
        self.path = if self.path.is_empty() {
            field.to_string()
        } else {
            format!("{field}.{}", self.path)
        };
        self
    }
}

/// Decodes a Go pointer to `T` (a struct): `null` sets it nil (`None`); an object decodes into
/// the existing value (allocated if nil), so a repeated key merges into it as in Go.
pub fn decode_pointer<T: Default, E: From<GoJsonError>>(
    src: &[u8],
    into: &mut Option<T>,
    decode: impl FnOnce(&[u8], &mut T) -> Result<(), E>,
) -> Result<(), E> {
    validate(src)?;
    if kind_of(src) == Kind::Null {
        *into = None;
        return Ok(());
    }
    decode(src, into.get_or_insert_with(T::default))
}

/// Decodes into a Go `string`: a JSON string replaces `into`, `null` leaves it unchanged.
pub fn decode_string(src: &[u8], into: &mut String) -> Result<(), GoJsonError> {
    match kind_of(src) {
        Kind::Null => validate(src),
        Kind::String => {
            *into = unquote(src)?;
            Ok(())
        }
        found => Err(GoJsonError::Type {
            expected: "string",
            found,
        }),
    }
}

/// Decodes a Go `string` field that hoist keeps as an `Option<String>` (so that "absent" shows):
/// a string sets it; `null` keeps it as it was (Go leaves the field unchanged), so a field set by
/// an earlier duplicate key survives a later `null`.
pub fn decode_optional_string(src: &[u8], into: &mut Option<String>) -> Result<(), GoJsonError> {
    if kind_of(src) == Kind::Null {
        return validate(src);
    }
    let mut value = String::new();
    decode_string(src, &mut value)?;
    *into = Some(value);
    Ok(())
}

/// Decodes into a Go `bool`: `true`/`false` replace `into`, `null` leaves it unchanged.
pub fn decode_bool(src: &[u8], into: &mut bool) -> Result<(), GoJsonError> {
    validate(src)?;
    match kind_of(src) {
        Kind::Null => Ok(()),
        Kind::Bool => {
            *into = src[skip_space(src, 0)] == b't';
            Ok(())
        }
        found => Err(GoJsonError::Type {
            expected: "bool",
            found,
        }),
    }
}

/// Decodes into a Go `int64` (also `int` and `time.Duration` on 64-bit platforms): the number must
/// be an integer literal in range (Go uses `strconv.ParseInt(s, 10, 64)`, so `1.0` and `1e3` are
/// refused); `null` leaves `into` unchanged.
pub fn decode_i64(src: &[u8], into: &mut i64) -> Result<(), GoJsonError> {
    let (start, end) = value_span(src)?;
    match kind_of(src) {
        Kind::Null => Ok(()),
        Kind::Number => {
            // The scanner accepted it, so it is ASCII.
            let text = std::str::from_utf8(&src[start..end]).unwrap_or_default();
            *into = text.parse::<i64>().map_err(|_| GoJsonError::Number {
                number: text.to_string(),
                expected: "int64",
            })?;
            Ok(())
        }
        found => Err(GoJsonError::Type {
            expected: "int64",
            found,
        }),
    }
}

/// Decodes into a Go `[]string`: `null` makes it nil (`None`); an array replaces the elements,
/// decoding each into the existing element at that index if there is one (so a `null` element
/// keeps it, else it is `""`), and truncates to the array's length.
pub fn decode_string_slice(src: &[u8], into: &mut Option<Vec<String>>) -> Result<(), GoJsonError> {
    decode_slice(src, into, decode_string)
}

/// Decodes into a Go slice `[]T`: `null` makes it nil (`None`); an array decodes element `i`
/// into the existing element `i` if there is one (Go reuses the slice, so a struct element
/// merges and a `null` element keeps it), else into `T::default()`, and truncates the slice to
/// the array's length.
pub fn decode_slice<T: Default, E: From<GoJsonError>>(
    src: &[u8],
    into: &mut Option<Vec<T>>,
    mut decode_element: impl FnMut(&[u8], &mut T) -> Result<(), E>,
) -> Result<(), E> {
    let Some(elements) = array_elements(src)? else {
        *into = None;
        return Ok(());
    };
    let list = into.get_or_insert_with(Vec::new);
    for (i, element) in elements.iter().enumerate() {
        if i == list.len() {
            list.push(T::default());
        }
        decode_element(element, &mut list[i])?;
    }
    list.truncate(elements.len());
    Ok(())
}

/// Decodes into a Go map with string keys: `null` makes it nil (`None`); an object adds its members
/// to the existing map (created if nil), each value decoded by `decode_value` into a fresh
/// `V::default()`, a later duplicate key replacing an earlier one.
pub fn decode_map<V: Default>(
    src: &[u8],
    into: &mut Option<BTreeMap<String, V>>,
    mut decode_value: impl FnMut(&[u8], &mut V) -> Result<(), GoJsonError>,
) -> Result<(), GoJsonError> {
    let Some(entries) = object_entries(src)? else {
        *into = None;
        return Ok(());
    };
    let map = into.get_or_insert_with(BTreeMap::new);
    for (key, value) in entries {
        let mut decoded = V::default();
        decode_value(value, &mut decoded)?;
        map.insert(key, decoded);
    }
    Ok(())
}

/// Decodes into Go's `struct{}` (the value type of docker's sets): an object (whatever its
/// members) or `null`; anything else is a type error.
pub fn decode_empty_struct(src: &[u8], _into: &mut ()) -> Result<(), GoJsonError> {
    validate(src)?;
    match kind_of(src) {
        Kind::Null | Kind::Object => Ok(()),
        found => Err(GoJsonError::Type {
            expected: "struct{}",
            found,
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// time.Time
// ---------------------------------------------------------------------------------------------

/// A `time.Time` as its JSON form sees it: the wall-clock fields and the UTC offset it was parsed
/// with. Go keeps the offset of a parsed time and writes it back, so hoist never needs to convert
/// to UTC to reproduce docker's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoTime {
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    nanos: u32,
    /// Offset east of UTC in minutes; 0 is written `Z`.
    offset_minutes: i32,
}

impl Default for GoTime {
    fn default() -> Self {
        GoTime::ZERO
    }
}

impl GoTime {
    /// Go's zero `time.Time`, which `json.Marshal` writes as `0001-01-01T00:00:00Z`: what a v1
    /// `json` without `created` yields.
    pub const ZERO: GoTime = GoTime {
        year: 1,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
        nanos: 0,
        offset_minutes: 0,
    };

    /// `time.Unix(0, 0)` on a daemon whose local zone is UTC (docker's default in a container):
    /// `1970-01-01T00:00:00Z`. `docker save` stamps it on every v1 layer below the top one.
    pub const UNIX_EPOCH: GoTime = GoTime {
        year: 1970,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
        nanos: 0,
        offset_minutes: 0,
    };

    /// Parses a raw JSON token (quotes included) as Go 1.19's `time.Time.UnmarshalJSON` does:
    /// `time.Parse("\"2006-01-02T15:04:05Z07:00\"", token)`. The token is matched literally, so a
    /// string written with escapes is refused, as in Go.
    pub fn parse_json_token(token: &[u8]) -> Result<GoTime, GoJsonError> {
        parse_rfc3339_token(token).map_err(|reason| GoJsonError::Time {
            value: String::from_utf8_lossy(token).into_owned(),
            reason,
        })
    }

    /// The JSON token Go's `time.Time.MarshalJSON` writes: `"` + RFC 3339 with up to nine fraction
    /// digits (trailing zeros trimmed) and the offset (`Z` when 0) + `"`.
    pub fn to_json(&self) -> String {
        format!("\"{self}\"")
    }
}

impl fmt::Display for GoTime {
    /// RFC 3339 as Go's `time.RFC3339Nano` layout writes it (no quotes).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )?;
        if self.nanos != 0 {
            let digits = format!("{:09}", self.nanos);
            write!(f, ".{}", digits.trim_end_matches('0'))?;
        }
        if self.offset_minutes == 0 {
            return f.write_str("Z");
        }
        let sign = if self.offset_minutes < 0 { '-' } else { '+' };
        let m = self.offset_minutes.unsigned_abs();
        write!(f, "{sign}{:02}:{:02}", m / 60, m % 60)
    }
}

/// Go's `getnum`: one or two digits (exactly two when `fixed`).
fn getnum(s: &[u8], i: &mut usize, fixed: bool) -> Result<u32, &'static str> {
    let digit = |k: usize| {
        s.get(k)
            .filter(|b| b.is_ascii_digit())
            .map(|b| u32::from(b - b'0'))
    };
    let first = digit(*i).ok_or("expected a digit")?;
    match digit(*i + 1) {
        Some(second) => {
            *i += 2;
            Ok(first * 10 + second)
        }
        None if fixed => Err("expected two digits"),
        None => {
            *i += 1;
            Ok(first)
        }
    }
}

fn expect(s: &[u8], i: &mut usize, c: u8) -> Result<(), &'static str> {
    if s.get(*i) != Some(&c) {
        return Err("does not match the layout \"2006-01-02T15:04:05Z07:00\"");
    }
    *i += 1;
    Ok(())
}

fn days_in(month: u32, year: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn parse_rfc3339_token(s: &[u8]) -> Result<GoTime, &'static str> {
    let mut i = 0;
    expect(s, &mut i, b'"')?;
    // stdLongYear: exactly four digits.
    let year_digits = s.get(i..i + 4).filter(|d| d.iter().all(u8::is_ascii_digit));
    let year = year_digits
        .map(|d| d.iter().fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0')))
        .ok_or("expected a four-digit year")?;
    i += 4;
    expect(s, &mut i, b'-')?;
    let month = getnum(s, &mut i, true)?;
    if !(1..=12).contains(&month) {
        return Err("month out of range");
    }
    expect(s, &mut i, b'-')?;
    let day = getnum(s, &mut i, true)?;
    expect(s, &mut i, b'T')?;
    let hour = getnum(s, &mut i, false)?;
    if hour >= 24 {
        return Err("hour out of range");
    }
    expect(s, &mut i, b':')?;
    let minute = getnum(s, &mut i, true)?;
    if minute >= 60 {
        return Err("minute out of range");
    }
    expect(s, &mut i, b':')?;
    let second = getnum(s, &mut i, true)?;
    if second >= 60 {
        return Err("second out of range");
    }
    // A fraction is taken if a '.' or ',' is followed by a digit; digits past the ninth are
    // ignored (Go's parseNanoseconds).
    let mut nanos = 0u32;
    if matches!(s.get(i), Some(b'.' | b',')) && s.get(i + 1).is_some_and(u8::is_ascii_digit) {
        let digits_end = scan_digits(s, i + 1);
        let mut scale = NANOS_PER_SECOND;
        for &d in &s[i + 1..digits_end.min(i + 10)] {
            scale /= 10;
            nanos += u32::from(d - b'0') * scale;
        }
        i = digits_end;
    }
    // Z07:00
    let offset_minutes = if s.get(i) == Some(&b'Z') {
        i += 1;
        0
    } else {
        let tz = s.get(i..i + 6).ok_or("expected Z or a ±hh:mm offset")?;
        if tz[3] != b':' {
            return Err("expected Z or a ±hh:mm offset");
        }
        let two = |d: &[u8]| -> Result<i32, &'static str> {
            if d.iter().all(u8::is_ascii_digit) {
                Ok(i32::from(d[0] - b'0') * 10 + i32::from(d[1] - b'0'))
            } else {
                Err("expected Z or a ±hh:mm offset")
            }
        };
        let minutes = two(&tz[1..3])? * 60 + two(&tz[4..6])?;
        i += 6;
        match tz[0] {
            b'+' => minutes,
            b'-' => -minutes,
            _ => return Err("expected Z or a ±hh:mm offset"),
        }
    };
    expect(s, &mut i, b'"')?;
    if i != s.len() {
        return Err("extra text after the time");
    }
    if day < 1 || day > days_in(month, year) {
        return Err("day out of range");
    }
    // Every component was range-checked above, so the narrowing casts are exact.
    Ok(GoTime {
        year: year as u16,
        month: month as u8,
        day: day as u8,
        hour: hour as u8,
        minute: minute as u8,
        second: second as u8,
        nanos,
        offset_minutes,
    })
}

/// Decodes into a Go `time.Time`: `null` leaves `into` unchanged, a string must parse (see
/// [`GoTime::parse_json_token`]), anything else is refused.
pub fn decode_time(src: &[u8], into: &mut GoTime) -> Result<(), GoJsonError> {
    let (start, end) = value_span(src)?;
    match kind_of(src) {
        Kind::Null => Ok(()),
        Kind::String => {
            *into = GoTime::parse_json_token(&src[start..end])?;
            Ok(())
        }
        found => Err(GoJsonError::Type {
            expected: "time.Time",
            found,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_matches_go_raw_message_marshal() {
        for (input, expected) in [
            (
                &b" { \"a\" : [ 1 , 2 ] ,\n\t\"b\":null } "[..],
                &b"{\"a\":[1,2],\"b\":null}"[..],
            ),
            (
                b"\"<a href=\\\"x\\\">&amp;</a>\"",
                b"\"\\u003ca href=\\\"x\\\"\\u003e\\u0026amp;\\u003c/a\\u003e\"",
            ),
            // Existing escapes and raw UTF-8 are kept as written; only U+2028/9 are escaped.
            (
                b"\"\\u00e9 \xc3\xa9 \xe2\x80\xa8 \xe2\x80\xa9 \xe2\x80\xaa\"",
                b"\"\\u00e9 \xc3\xa9 \\u2028 \\u2029 \xe2\x80\xaa\"",
            ),
            // Spaces inside strings survive, an escaped quote does not end the string.
            (b"[\"a \\\" b\" , \"\\\\\" ]", b"[\"a \\\" b\",\"\\\\\"]"),
            // Invalid UTF-8 passes through, as in Go.
            (b"\"\xff\"", b"\"\xff\""),
            (b"1.5e+3", b"1.5e+3"),
        ] {
            assert_eq!(
                compact(input).unwrap(),
                expected,
                "input {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn validate_refuses_what_go_refuses() {
        for input in [
            &b""[..],
            b"{",
            b"{\"a\"}",
            b"{\"a\":1,}",
            b"[1,]",
            b"01",
            b"1.",
            b"-",
            b"1e",
            b"\"\t\"",
            b"\"\\x\"",
            b"\"\\u12g4\"",
            b"tru",
            b"nul",
            b"{} {}",
            b"{'a':1}",
            b"[1 2]",
        ] {
            assert!(
                validate(input).is_err(),
                "accepted {:?}",
                String::from_utf8_lossy(input)
            );
        }
        for input in [
            &b" null "[..],
            b"-0.0e-0",
            b"[[],{}]",
            b"{\"\":\"\\ud800\"}",
            b"\"\xff\xfe\"",
        ] {
            assert_eq!(
                validate(input),
                Ok(()),
                "refused {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn nesting_limit_is_gos() {
        let ok = format!(
            "{}{}",
            "[".repeat(MAX_NESTING_DEPTH),
            "]".repeat(MAX_NESTING_DEPTH)
        );
        assert_eq!(validate(ok.as_bytes()), Ok(()));
        let deep = format!(
            "{}{}",
            "[".repeat(MAX_NESTING_DEPTH + 1),
            "]".repeat(MAX_NESTING_DEPTH + 1)
        );
        assert_eq!(
            validate(deep.as_bytes()),
            Err(GoJsonError::TooDeep {
                offset: MAX_NESTING_DEPTH
            })
        );
    }

    #[test]
    fn strings_are_escaped_like_go_1_19() {
        for (input, expected) in [
            ("plain", r#""plain""#),
            ("a\"b\\c", r#""a\"b\\c""#),
            ("\n\r\t", r#""\n\r\t""#),
            ("\u{8}\u{c}\u{0}\u{1f}", r#""\u0008\u000c\u0000\u001f""#),
            ("<x> & y", r#""\u003cx\u003e \u0026 y""#),
            ("\u{2028}\u{2029}", r#""\u2028\u2029""#),
            ("é\u{7f}/", "\"é\u{7f}/\""),
        ] {
            assert_eq!(quote(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn unquote_replaces_like_go() {
        for (input, expected) in [
            (&br#""a\"\\\/\b\f\n\r\t""#[..], "a\"\\/\u{8}\u{c}\n\r\t"),
            (br#""\u00e9\u003c""#, "é<"),
            (br#""\ud83d\ude00""#, "😀"),
            (br#""\ud83dx""#, "\u{FFFD}x"),
            (br#""\ude00\ud83d""#, "\u{FFFD}\u{FFFD}"),
            (br#""\ud83d\u0041""#, "\u{FFFD}A"),
            // Go replaces each byte of a truncated sequence on its own.
            (b"\"\xe2\x82A\"", "\u{FFFD}\u{FFFD}A"),
            (b"\"\xed\xa0\x80\"", "\u{FFFD}\u{FFFD}\u{FFFD}"),
            (b"\"\xc3\xa9\"", "é"),
        ] {
            assert_eq!(
                unquote(input).unwrap(),
                expected,
                "input {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn raw_map_round_trip_sorts_and_keeps_last_duplicate() {
        let map = unmarshal_raw_map(
            b"{ \"b\": [1, 2], \"a\": {\"z\": \"<\"}, \"B\": true, \"b\": \"last\", \"\\u00e9\": null }",
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(marshal_raw_map(&map).unwrap()).unwrap(),
            r#"{"B":true,"a":{"z":"\u003c"},"b":"last","é":null}"#
        );
        assert_eq!(unmarshal_raw_map(b"null").unwrap(), RawMap::new());
        assert!(matches!(
            unmarshal_raw_map(b"[]"),
            Err(GoJsonError::Type {
                expected: "object",
                found: Kind::Array
            })
        ));
    }

    #[test]
    fn field_names_fold_like_go() {
        for (field, key, expected) in [
            ("Hostname", "hostname", true),
            ("Hostname", "HOSTNAME", true),
            ("container_config", "Container_Config", true),
            ("container_config", "container-config", false),
            ("Size", "\u{17F}ize", true),
            ("WorkingDir", "wor\u{212A}ingdir", true),
            ("Cmd", "Cmd ", false),
            ("os", "o", false),
        ] {
            assert_eq!(field_name_folds(field, key), expected, "{field} vs {key:?}");
        }
    }

    #[test]
    fn struct_decoding_prefers_exact_names_and_ignores_unknown_keys() {
        let fields = ["Name", "name", "Other"];
        let mut seen = Vec::new();
        decode_struct::<GoJsonError>(
            br#"{"NAME":1,"name":2,"Name":3,"x":4,"OTHER":5}"#,
            &fields,
            |i, v| {
                seen.push((i, v.to_vec()));
                Ok(())
            },
        )
        .unwrap();
        let expected: Vec<(usize, Vec<u8>)> = vec![
            (0, b"1".to_vec()),
            (1, b"2".to_vec()),
            (0, b"3".to_vec()),
            (2, b"5".to_vec()),
        ];
        assert_eq!(seen, expected);
    }

    #[test]
    fn unknown_members_are_handed_over_in_source_order() {
        let mut known = Vec::new();
        let mut unknown = Vec::new();
        decode_struct_keeping_unknown::<GoJsonError>(
            br#"{"a":1,"x":1e999999,"A":2,"x":[[]],"y":null}"#,
            &["a"],
            |i, v| {
                known.push((i, v.to_vec()));
                Ok(())
            },
            |k, v| {
                unknown.push((k, v.to_vec()));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(known, vec![(0, b"1".to_vec()), (0, b"2".to_vec())]);
        let expected: Vec<(String, Vec<u8>)> = vec![
            ("x".into(), b"1e999999".to_vec()),
            ("x".into(), b"[[]]".to_vec()),
            ("y".into(), b"null".to_vec()),
        ];
        assert_eq!(unknown, expected);
    }

    #[test]
    fn slices_and_pointers_decode_into_what_is_there() {
        // Elements decode into the existing ones (a struct merges), then the slice is cut.
        let mut list: Option<Vec<BTreeMap<String, String>>> = None;
        let decode = |v: &[u8], m: &mut BTreeMap<String, String>| {
            let mut o = Some(std::mem::take(m));
            decode_map(v, &mut o, decode_string)?;
            *m = o.unwrap_or_default();
            Ok::<(), GoJsonError>(())
        };
        decode_slice(br#"[{"a":"1"},{"b":"2"}]"#, &mut list, decode).unwrap();
        decode_slice(br#"[{"c":"3"}]"#, &mut list, decode).unwrap();
        let expected: BTreeMap<String, String> = [("a", "1"), ("c", "3")]
            .map(|(k, v)| (k.into(), v.into()))
            .into();
        assert_eq!(list, Some(vec![expected]));
        decode_slice(b"null", &mut list, decode).unwrap();
        assert_eq!(list, None);

        let mut ptr: Option<Option<Vec<String>>> = None;
        let strings = |v: &[u8], s: &mut Option<Vec<String>>| decode_string_slice(v, s);
        decode_pointer(br#"["a"]"#, &mut ptr, strings).unwrap();
        assert_eq!(ptr, Some(Some(vec!["a".to_string()])));
        decode_pointer(b" null ", &mut ptr, strings).unwrap();
        assert_eq!(ptr, None);

        let mut s = Some("kept".to_string());
        decode_optional_string(b"null", &mut s).unwrap();
        assert_eq!(s.as_deref(), Some("kept"));
        decode_optional_string(br#""""#, &mut s).unwrap();
        assert_eq!(s.as_deref(), Some(""));
        assert!(decode_optional_string(b"1", &mut s).is_err());
    }

    #[test]
    fn scalar_decoding_follows_go() {
        let mut s = "keep".to_string();
        decode_string(b"null", &mut s).unwrap();
        assert_eq!(s, "keep");
        assert!(decode_string(b"1", &mut s).is_err());
        let mut n = 7;
        decode_i64(b"null", &mut n).unwrap();
        assert_eq!(n, 7);
        decode_i64(b"-42", &mut n).unwrap();
        assert_eq!(n, -42);
        for bad in [&b"1.0"[..], b"1e3", b"9223372036854775808", b"\"1\""] {
            assert!(
                decode_i64(bad, &mut n).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut list = Some(vec!["a".to_string(), "b".to_string(), "c".to_string()]);
        decode_string_slice(br#"[null, "x"]"#, &mut list).unwrap();
        assert_eq!(list, Some(vec!["a".to_string(), "x".to_string()]));
        decode_string_slice(b"[]", &mut list).unwrap();
        assert_eq!(list, Some(vec![]));
        decode_string_slice(b"null", &mut list).unwrap();
        assert_eq!(list, None);
        let mut map: Option<BTreeMap<String, String>> = None;
        decode_map(br#"{"a":"1","b":null}"#, &mut map, decode_string).unwrap();
        decode_map(br#"{"c":"3"}"#, &mut map, decode_string).unwrap();
        let expected: BTreeMap<String, String> = [("a", "1"), ("b", ""), ("c", "3")]
            .map(|(k, v)| (k.into(), v.into()))
            .into();
        assert_eq!(map, Some(expected));
        let mut set: Option<BTreeMap<String, ()>> = None;
        assert!(decode_map(br#"{"a":1}"#, &mut set, decode_empty_struct).is_err());
        decode_map(br#"{"a":{"x":1},"b":null}"#, &mut set, decode_empty_struct).unwrap();
        assert_eq!(set.map(|s| s.len()), Some(2));
    }

    #[test]
    fn times_round_trip_like_go_1_19() {
        for (token, expected) in [
            (
                "\"2013-06-13T14:03:50.821769-07:00\"",
                "\"2013-06-13T14:03:50.821769-07:00\"",
            ),
            (
                "\"2015-03-04T21:38:56.769279623Z\"",
                "\"2015-03-04T21:38:56.769279623Z\"",
            ),
            ("\"1970-01-01T00:00:00Z\"", "\"1970-01-01T00:00:00Z\""),
            (
                "\"2020-01-02T03:04:05.100000000Z\"",
                "\"2020-01-02T03:04:05.1Z\"",
            ),
            ("\"2020-01-02T03:04:05.000Z\"", "\"2020-01-02T03:04:05Z\""),
            (
                "\"2020-01-02T03:04:05.1234567891234Z\"",
                "\"2020-01-02T03:04:05.123456789Z\"",
            ),
            (
                "\"2020-01-02T03:04:05,5+00:00\"",
                "\"2020-01-02T03:04:05.5Z\"",
            ),
            ("\"2020-01-02T3:04:05-00:00\"", "\"2020-01-02T03:04:05Z\""),
            (
                "\"2020-01-02T03:04:05+05:75\"",
                "\"2020-01-02T03:04:05+06:15\"",
            ),
            (
                "\"2020-02-29T00:00:00+14:00\"",
                "\"2020-02-29T00:00:00+14:00\"",
            ),
        ] {
            let t = GoTime::parse_json_token(token.as_bytes()).unwrap();
            assert_eq!(t.to_json(), expected, "token {token}");
        }
        for token in [
            "\"2013-06-13 14:03:50Z\"",
            "\"2013-06-13T14:03:50z\"",
            "\"2013-6-13T14:03:50Z\"",
            "\"2013-06-13T14:3:50Z\"",
            "\"2013-06-13T24:00:00Z\"",
            "\"2013-06-13T14:03:60Z\"",
            "\"2019-02-29T00:00:00Z\"",
            "\"2013-13-01T00:00:00Z\"",
            "\"2013-06-13T14:03:50.Z\"",
            "\"2013-06-13T14:03:50+0700\"",
            "\"2013-06-13T14:03:50Z \"",
            "\"\\u0032013-06-13T14:03:50Z\"",
            "\"\"",
        ] {
            assert!(
                GoTime::parse_json_token(token.as_bytes()).is_err(),
                "accepted {token}"
            );
        }
        assert_eq!(GoTime::ZERO.to_json(), "\"0001-01-01T00:00:00Z\"");
        let mut t = GoTime::UNIX_EPOCH;
        decode_time(b"null", &mut t).unwrap();
        assert_eq!(t, GoTime::UNIX_EPOCH);
        assert!(decode_time(b"0", &mut t).is_err());
    }
}
