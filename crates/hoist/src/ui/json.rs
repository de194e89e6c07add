//! Indenting JSON text without reordering it (foreign JSON keeps its key order on display).

/// Re-indents compact or pretty JSON text with `indent` per level, as Go's `json.MarshalIndent`.
pub fn indent(text: &str, indent: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut level = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let newline = |out: &mut String, level: usize| {
        out.push('\n');
        for _ in 0..level {
            out.push_str(indent);
        }
    };
    while i < chars.len() {
        let c = chars[i];
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                // Empty containers stay on one line: `{}` and `[]`.
                let close = if c == '{' { '}' } else { ']' };
                let mut j = i + 1;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                if j < chars.len() && chars[j] == close {
                    out.push(c);
                    out.push(close);
                    i = j;
                } else {
                    out.push(c);
                    level += 1;
                    newline(&mut out, level);
                }
            }
            '}' | ']' => {
                level = level.saturating_sub(1);
                newline(&mut out, level);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, level);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_indents() {
        let got = indent(r#"{"b":1,"a":[],"c":{"x":"y, z: {"},"d":[1,2]}"#, "    ");
        assert_eq!(
            got,
            "{\n    \"b\": 1,\n    \"a\": [],\n    \"c\": {\n        \"x\": \"y, z: {\"\n    },\n    \"d\": [\n        1,\n        2\n    ]\n}"
        );
    }
}
