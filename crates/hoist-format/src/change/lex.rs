//! Shell-style word processing of Dockerfile arguments: quotes, escapes and `$VAR` /
//! `${VAR}` / `${VAR:-x}` / `${VAR:+x}` / `${VAR?x}` / `${VAR:?x}` substitution, a port of
//! BuildKit's `frontend/dockerfile/shell/lex.go` as vendored in moby 20.10.

use std::collections::HashMap;

use super::goutil::quote;

/// Expands `word` against `env` (`KEY=VALUE` strings; a later key wins) and removes quotes
/// and escapes. Errors carry docker's wording, `failed to process "<word>": …`.
pub(crate) fn process_word(word: &str, env: &[String], escape: char) -> Result<String, String> {
    process(word, env, escape).map(|(w, _)| w)
}

/// Like [`process_word`], then splits the result on unquoted whitespace (what EXPOSE does).
pub(crate) fn process_words(
    word: &str,
    env: &[String],
    escape: char,
) -> Result<Vec<String>, String> {
    process(word, env, escape).map(|(_, ws)| ws)
}

fn process(word: &str, env: &[String], escape: char) -> Result<(String, Vec<String>), String> {
    let mut envs = HashMap::new();
    for e in env {
        match e.split_once('=') {
            Some((k, v)) => envs.insert(k.to_string(), v.to_string()),
            None => envs.insert(e.clone(), String::new()),
        };
    }
    let mut sw = ShellWord {
        chars: word.chars().collect(),
        pos: 0,
        envs,
        escape,
    };
    sw.process_stop_on(None)
        .map_err(|e| format!("failed to process {}: {e}", quote(word)))
}

/// Word-splitting state of `ProcessWords`.
#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        for c in s.chars() {
            self.add_char(c);
        }
    }

    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

struct ShellWord {
    chars: Vec<char>,
    pos: usize,
    envs: HashMap<String, String>,
    escape: char,
}

impl ShellWord {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn process_stop_on(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), String> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if stop == Some(ch) {
                self.next();
                return Ok((result, words.finish()));
            }
            match ch {
                '\'' | '"' | '$' => {
                    let tmp = match ch {
                        '\'' => self.single_quote()?,
                        '"' => self.double_quote()?,
                        _ => self.dollar()?,
                    };
                    result.push_str(&tmp);
                    if ch == '$' {
                        words.add_string(&tmp);
                    } else {
                        words.add_raw_string(&tmp);
                    }
                }
                _ => {
                    let mut ch = self.next().unwrap_or(ch);
                    if ch == self.escape {
                        match self.next() {
                            None => break,
                            Some(c) => ch = c,
                        }
                        words.add_raw_char(ch);
                    } else {
                        words.add_char(ch);
                    }
                    result.push(ch);
                }
            }
        }
        if let Some(stop) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        Ok((result, words.finish()))
    }

    fn single_quote(&mut self) -> Result<String, String> {
        self.next();
        let mut result = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    );
                }
                Some('\'') => return Ok(result),
                Some(c) => result.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, String> {
        self.next();
        let mut result = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    );
                }
                Some('"') => {
                    self.next();
                    return Ok(result);
                }
                Some('$') => result.push_str(&self.dollar()?),
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.escape {
                        match self.peek() {
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.escape => {
                                ch = c;
                                self.next();
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn dollar(&mut self) -> Result<String, String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(self.envs.get(&name).cloned().unwrap_or_default());
        }
        self.next();
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            Some(_) => {}
        }
        let name = self.name();
        match self.next() {
            Some('}') => Ok(self.envs.get(&name).cloned().unwrap_or_default()),
            Some('?') => {
                let word = self.stop_on_brace()?;
                match self.envs.get(&name) {
                    Some(v) => Ok(v.clone()),
                    None => {
                        let msg = if word.is_empty() {
                            "is not allowed to be unset"
                        } else {
                            &word
                        };
                        Err(format!("{name}: {msg}"))
                    }
                }
            }
            Some(':') => {
                let modifier = self.next();
                let word = self.stop_on_brace()?;
                let value = self.envs.get(&name).cloned();
                let current = value.clone().unwrap_or_default();
                match modifier {
                    Some('+') => Ok(if current.is_empty() { current } else { word }),
                    Some('-') => Ok(if current.is_empty() { word } else { current }),
                    Some('?') => {
                        if value.is_none() {
                            let msg = if word.is_empty() {
                                "is not allowed to be unset"
                            } else {
                                &word
                            };
                            return Err(format!("{name}: {msg}"));
                        }
                        if current.is_empty() {
                            let msg = if word.is_empty() {
                                "is not allowed to be empty"
                            } else {
                                &word
                            };
                            return Err(format!("{name}: {msg}"));
                        }
                        Ok(current)
                    }
                    m => Err(format!(
                        "unsupported modifier ({}) in substitution",
                        m.map(String::from)
                            .unwrap_or_else(|| "%!c(int32=-1)".into())
                    )),
                }
            }
            _ => Err("missing ':' in substitution".into()),
        }
    }

    /// `processStopOn('}')` inside `${…}`, with the "missing '}'" rewording at end of input.
    fn stop_on_brace(&mut self) -> Result<String, String> {
        match self.process_stop_on(Some('}')) {
            Ok((w, _)) => Ok(w),
            Err(e) => {
                if self.peek().is_none() {
                    Err("syntax error: missing '}'".into())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// `processName`: letters, digits and `_`; a leading digit run or one special parameter
    /// character (`@*#?-$!0`) is a whole name.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_numeric() {
                while let Some(c) = self.peek().filter(|c| c.is_numeric()) {
                    name.push(c);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphabetic() && !ch.is_numeric() && ch != '_' {
                break;
            }
            name.push(ch);
            self.next();
        }
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        let env = vec![
            "H=home".to_string(),
            "P=81 82".to_string(),
            "E=".to_string(),
        ];
        for (input, want) in [
            ("$1$@x$", Ok("x$")),
            ("\\$x", Ok("$x")),
            ("\"\\$x\\y\"", Ok("$x\\y")),
            ("'a\\b'", Ok("a\\b")),
            (
                "${H:+set}${none:+x}${none:-dflt}${H:-no}",
                Ok("setdflthome"),
            ),
            ("$H/$H_x/${H}_x", Ok("home//home_x")),
            ("a\"b c\"d", Ok("ab cd")),
            ("x\\", Ok("x")),
            (
                "${E:-d}${E+x}",
                Err("failed to process \"${E:-d}${E+x}\": missing ':' in substitution"),
            ),
            (
                "\"x",
                Err(
                    "failed to process \"\\\"x\": unexpected end of statement while looking for matching double-quote",
                ),
            ),
            (
                "${b",
                Err("failed to process \"${b\": missing ':' in substitution"),
            ),
            (
                "${}",
                Err("failed to process \"${}\": syntax error: bad substitution"),
            ),
            (
                "${b:?oops}",
                Err("failed to process \"${b:?oops}\": b: oops"),
            ),
            (
                "${b?}",
                Err("failed to process \"${b?}\": b: is not allowed to be unset"),
            ),
            (
                "${E:?}",
                Err("failed to process \"${E:?}\": E: is not allowed to be empty"),
            ),
            (
                "${b:=x}",
                Err("failed to process \"${b:=x}\": unsupported modifier (=) in substitution"),
            ),
            (
                "${b:-x",
                Err("failed to process \"${b:-x\": syntax error: missing '}'"),
            ),
        ] {
            assert_eq!(
                process_word(input, &env, '\\'),
                want.map(String::from).map_err(String::from),
                "{input:?}"
            );
        }
        assert_eq!(
            process_words("$P '8 3' x\\ y", &env, '\\').unwrap(),
            ["81", "82", "8 3", "x y"]
        );
    }
}
