//! The Dockerfile line parser, a port of BuildKit's `frontend/dockerfile/parser` as vendored
//! in moby 20.10: parser directives (`# escape=`), comments, line continuations, builder
//! flags (`--interval=5s`) and the per-instruction argument shapes (JSON arrays, words,
//! `key=value` pairs). Arguments keep their quotes; [`super::lex`] removes them later.

use super::goutil::{is_go_space, is_re2_s, quote, split_ws_all, split_ws2};

/// One parsed instruction.
#[derive(Debug)]
pub(crate) struct Node {
    /// The instruction keyword, lowercased (`cmd`, `env`, …).
    pub(crate) cmd: String,
    /// The whole logical line, continuations joined.
    pub(crate) original: String,
    /// `--flag[=value]` words between the keyword and the arguments.
    pub(crate) flags: Vec<String>,
    /// The arguments, flattened as BuildKit's `nodeArgs` does (ONBUILD: the trigger keyword,
    /// then its arguments).
    pub(crate) args: Vec<String>,
    /// Whether the arguments came from a JSON array (exec form).
    pub(crate) json: bool,
}

/// Parser directive state (`directives` in BuildKit).
struct Directives {
    escape: char,
    done: bool,
    seen: Vec<String>,
}

/// `bufio.MaxScanTokenSize`: the longest line Go's scanner accepts.
const MAX_LINE: usize = 64 * 1024;

/// The UTF-8 byte order mark BuildKit strips from the first line.
const BOM: char = '\u{feff}';

/// Parses the joined `--change` text into instructions.
pub(crate) fn parse(text: &str) -> Result<(Vec<Node>, char), String> {
    let mut d = Directives {
        escape: '\\',
        done: false,
        seen: Vec::new(),
    };
    let mut lines = scan_lines(text)?.into_iter().enumerate().peekable();
    let mut nodes = Vec::new();
    while let Some((n, raw)) = lines.next() {
        let raw = if n == 0 {
            raw.strip_prefix(BOM).unwrap_or(raw)
        } else {
            raw
        };
        let processed = process_line(&mut d, raw, true)?;
        let (mut line, mut eol) = trim_continuation(&processed, d.escape);
        if eol && line.is_empty() {
            continue;
        }
        while !eol {
            let Some((_, raw)) = lines.next() else { break };
            let processed = process_line(&mut d, raw, false)?;
            if is_comment(raw) || processed.trim_start_matches(is_go_space).is_empty() {
                continue;
            }
            let (cont, e) = trim_continuation(&processed, d.escape);
            line.push_str(&cont);
            eol = e;
        }
        nodes.push(node_from_line(&line, &d)?);
    }
    if nodes.is_empty() {
        return Err("file with no instructions".into());
    }
    Ok((nodes, d.escape))
}

/// `bufio.ScanLines`: split on `\n`, drop one trailing `\r`, no empty last line.
fn scan_lines(text: &str) -> Result<Vec<&str>, String> {
    let mut lines: Vec<&str> = text.split('\n').collect();
    if text.ends_with('\n') || text.is_empty() {
        lines.pop();
    }
    lines
        .into_iter()
        .map(|l| {
            if l.len() >= MAX_LINE {
                Err(format!(
                    "dockerfile line greater than max allowed size of {}",
                    MAX_LINE - 1
                ))
            } else {
                Ok(l.strip_suffix('\r').unwrap_or(l))
            }
        })
        .collect()
}

fn is_comment(line: &str) -> bool {
    line.trim_start_matches(is_go_space).starts_with('#')
}

/// `processLine`: optionally trim leading space, drop a whole-line comment, and look for a
/// parser directive.
fn process_line(d: &mut Directives, token: &str, strip_left: bool) -> Result<String, String> {
    let token = if strip_left {
        token.trim_start_matches(is_go_space)
    } else {
        token
    };
    possible_directive(d, token)?;
    Ok(if token.starts_with('#') {
        String::new()
    } else {
        token.to_string()
    })
}

fn possible_directive(d: &mut Directives, line: &str) -> Result<(), String> {
    if d.done {
        return Ok(());
    }
    let Some((key, value)) = match_directive(line) else {
        d.done = true;
        return Ok(());
    };
    let key = key.to_lowercase();
    if key != "escape" && key != "syntax" {
        d.done = true;
        return Ok(());
    }
    if d.seen.contains(&key) {
        return Err(format!("only one {key} parser directive can be used"));
    }
    d.seen.push(key.clone());
    if key == "escape" {
        if value != "`" && value != "\\" {
            return Err(format!(
                "invalid escape token '{value}' does not match ` or \\"
            ));
        }
        d.escape = value.chars().next().unwrap_or('\\');
    }
    Ok(())
}

/// `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`
fn match_directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start_matches(is_re2_s);
    let name_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let (name, rest) = rest.split_at(name_len);
    let rest = rest.trim_start_matches(is_re2_s).strip_prefix('=')?;
    if rest.contains('\n') || rest.is_empty() {
        return None;
    }
    let trimmed = rest.trim_start_matches(is_re2_s);
    let value = if trimmed.is_empty() {
        // `\s*` gives back one character so that `(.+?)` matches.
        let last = rest.char_indices().last().map_or(0, |(i, _)| i);
        &rest[last..]
    } else {
        trimmed.trim_end_matches(is_re2_s)
    };
    Some((name, value))
}

/// Removes a trailing line-continuation escape: `([^\\])\\[ \t]*$|^\\[ \t]*$`.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let body = line.trim_end_matches([' ', '\t']);
    if let Some(before) = body.strip_suffix(escape) {
        if before.is_empty() {
            return (String::new(), false);
        }
        if !before.ends_with(escape) {
            return (before.to_string(), false);
        }
    }
    (line.to_string(), true)
}

fn node_from_line(line: &str, d: &Directives) -> Result<Node, String> {
    let (cmd, flags, rest) = split_command(line)?;
    let (args, json) = match cmd.as_str() {
        "add" | "copy" | "volume" => maybe_json_to_list(&rest)?,
        "arg" => (parse_words(&rest, d.escape), false),
        "cmd" | "entrypoint" | "run" | "shell" => maybe_json(&rest)?,
        "env" => (name_val(&rest, "ENV", d.escape)?, false),
        "label" => (name_val(&rest, "LABEL", d.escape)?, false),
        "expose" | "from" => (whitespace_list(&rest), false),
        "healthcheck" => health_config(&rest)?,
        "maintainer" | "stopsignal" | "user" | "workdir" => (
            if rest.is_empty() {
                vec![]
            } else {
                vec![rest.clone()]
            },
            false,
        ),
        "onbuild" => {
            if rest.is_empty() {
                (vec![], false)
            } else {
                let child = node_from_line(&rest, d)?;
                let mut args = vec![child.cmd];
                args.extend(child.args);
                (args, false)
            }
        }
        _ => (vec![], false),
    };
    Ok(Node {
        cmd,
        original: line.to_string(),
        flags,
        args,
        json,
    })
}

/// `splitCommand`: keyword, builder flags, and the remaining argument text.
fn split_command(line: &str) -> Result<(String, Vec<String>, String), String> {
    let (cmd, rest) = split_ws2(line.trim_matches(is_go_space));
    let (args, flags) = match rest {
        Some(rest) => extract_builder_flags(rest),
        None => (String::new(), vec![]),
    };
    Ok((
        cmd.to_lowercase(),
        flags,
        args.trim_matches(is_go_space).to_string(),
    ))
}

/// `extractBuilderFlags`. It walks bytes, as the Go code does, so a non-ASCII byte inside a
/// flag becomes the Latin-1 character of that byte.
fn extract_builder_flags(line: &str) -> (String, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let b = line.as_bytes();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = 0u8;
    let mut blank_ok = false;
    let mut pos = 0;
    while pos <= b.len() {
        let ch = if pos < b.len() { b[pos] } else { 0 };
        if phase == Phase::Spaces {
            if pos == b.len() {
                break;
            }
            if is_go_space(ch as char) {
                pos += 1;
                continue;
            }
            if ch != b'-' || pos + 1 == b.len() || b[pos + 1] != b'-' {
                return (String::from_utf8_lossy(&b[pos..]).into_owned(), words);
            }
            phase = Phase::Word;
        }
        if pos == b.len() {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if is_go_space(ch as char) {
                phase = Phase::Spaces;
                if word == "--" {
                    return (String::from_utf8_lossy(&b[pos..]).into_owned(), words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == b'\'' || ch == b'"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
            let mut c = ch;
            if c == b'\\' {
                if pos + 1 == b.len() {
                    pos += 1;
                    continue;
                }
                pos += 1;
                c = b[pos];
            }
            word.push(c as char);
            pos += 1;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
            pos += 1;
            continue;
        }
        let mut c = ch;
        if c == b'\\' {
            if pos + 1 == b.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            c = b[pos];
        }
        word.push(c as char);
        pos += 1;
    }
    (String::new(), words)
}

/// `parseWords`: split on whitespace outside quotes, keeping quotes and escapes.
fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut pos = 0;
    while pos <= chars.len() {
        let mut ch = chars.get(pos).copied().unwrap_or('\0');
        if phase == Phase::Spaces {
            if pos == chars.len() {
                break;
            }
            if is_go_space(ch) {
                pos += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if pos == chars.len() {
            if blank_ok || !word.is_empty() {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if is_go_space(ch) {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if pos + 1 == chars.len() {
                    pos += 1;
                    continue;
                }
                word.push(ch);
                pos += 1;
                ch = chars[pos];
            }
            word.push(ch);
            pos += 1;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
        }
        if ch == escape && quote != '\'' {
            if pos + 1 == chars.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            word.push(ch);
            ch = chars[pos];
        }
        word.push(ch);
        pos += 1;
    }
    words
}

/// `parseNameVal` for ENV and LABEL: `k=v k2="v 2"` pairs or the legacy `k v w`.
fn name_val(rest: &str, key: &str, escape: char) -> Result<Vec<String>, String> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(vec![]);
    };
    if !first.contains('=') {
        return match split_ws2(rest) {
            (k, Some(v)) => Ok(vec![k.to_string(), v.to_string()]),
            (_, None) => Err(format!("{key} must have two arguments")),
        };
    }
    let mut out = Vec::new();
    for word in &words {
        let Some((k, v)) = word.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {}. Must be of the form: name=value",
                quote(word)
            ));
        };
        out.push(k.to_string());
        out.push(v.to_string());
    }
    Ok(out)
}

fn whitespace_list(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        vec![]
    } else {
        split_ws_all(rest)
    }
}

/// Why a JSON-form parse did not produce arguments.
enum JsonError {
    /// Not a JSON array at all: fall back to the shell or list form.
    NotJson,
    /// A JSON array with a non-string element: an error.
    NotStringArray,
}

/// BuildKit's message for a JSON array with a non-string element.
const NOT_STRING_ARRAY: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

/// `parseJSON`: the first JSON value of `rest` (Go's `json.Decoder` ignores what follows),
/// which must be an array of strings.
fn parse_json(rest: &str) -> Result<Vec<String>, JsonError> {
    let rest = rest.trim_start_matches(is_go_space);
    if !rest.starts_with('[') {
        return Err(JsonError::NotJson);
    }
    let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<serde_json::Value>();
    let Some(Ok(serde_json::Value::Array(items))) = stream.next() else {
        return Err(JsonError::NotJson);
    };
    items
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(JsonError::NotStringArray),
        })
        .collect()
}

/// `parseMaybeJSON`: exec form, or the whole text as one shell-form argument.
fn maybe_json(rest: &str) -> Result<(Vec<String>, bool), String> {
    if rest.is_empty() {
        return Ok((vec![], false));
    }
    match parse_json(rest) {
        Ok(args) => Ok((args, true)),
        Err(JsonError::NotStringArray) => Err(NOT_STRING_ARRAY.into()),
        Err(JsonError::NotJson) => Ok((vec![rest.to_string()], false)),
    }
}

/// `parseMaybeJSONToList`: exec form, or whitespace-separated words.
fn maybe_json_to_list(rest: &str) -> Result<(Vec<String>, bool), String> {
    match parse_json(rest) {
        Ok(args) => Ok((args, true)),
        Err(JsonError::NotStringArray) => Err(NOT_STRING_ARRAY.into()),
        Err(JsonError::NotJson) => Ok((whitespace_list(rest), false)),
    }
}

/// `parseHealthConfig`: the type word (`CMD`, `NONE`), then a maybe-JSON command. The split
/// walks bytes like the Go code.
fn health_config(rest: &str) -> Result<(Vec<String>, bool), String> {
    let b = rest.as_bytes();
    let is_space = |c: u8| is_go_space(c as char);
    let sep = b.iter().position(|&c| is_space(c)).unwrap_or(b.len());
    if sep == 0 {
        return Ok((vec![], false));
    }
    let next = b[sep..]
        .iter()
        .position(|&c| !is_space(c))
        .map_or(b.len(), |i| sep + i);
    let typ = String::from_utf8_lossy(&b[..sep]).into_owned();
    let (cmd, json) = maybe_json(&String::from_utf8_lossy(&b[next..]))?;
    let mut args = vec![typ];
    args.extend(cmd);
    Ok((args, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_quotes() {
        for (input, want) in [
            (
                r#"a=1 b="two words" c=x\ y"#,
                vec!["a=1", "b=\"two words\"", "c=x\\ y"],
            ),
            (r#"e=z\ f=1"#, vec!["e=z\\ f=1"]),
            ("'a b' \"\"", vec!["'a b'", "\"\""]),
            ("x\\", vec!["x"]),
        ] {
            assert_eq!(parse_words(input, '\\'), want, "{input:?}");
        }
    }

    #[test]
    fn directives() {
        for (input, want) in [
            ("# escape=`", Some(("escape", "`"))),
            ("#escape = \\  ", Some(("escape", "\\"))),
            ("# escape= ", Some(("escape", " "))),
            ("# escape=", None),
            ("# not a directive", None),
        ] {
            assert_eq!(match_directive(input), want, "{input:?}");
        }
    }

    #[test]
    fn builder_flags() {
        assert_eq!(
            extract_builder_flags("--interval=5s --retries=3 CMD x"),
            (
                "CMD x".to_string(),
                vec!["--interval=5s".to_string(), "--retries=3".to_string()]
            )
        );
        assert_eq!(extract_builder_flags("-- x"), (" x".to_string(), vec![]));
        assert_eq!(
            extract_builder_flags("--a=\"b c\""),
            (String::new(), vec!["--a=b c".into()])
        );
    }
}
