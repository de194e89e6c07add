//! Column-aligned tables like docker/cli's (text/tabwriter with minwidth 10, padding 3).

/// Minimum cell width, as docker/cli's tabwriter.
const MIN_WIDTH: usize = 10;
/// Spaces after the widest cell of a column, as docker/cli's tabwriter.
const PADDING: usize = 3;

/// Renders rows (the first is the header) with aligned columns; the last column is not padded.
pub fn render(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            line.push_str(c);
            if i + 1 < r.len() {
                let w = (widths[i] + PADDING).max(MIN_WIDTH);
                line.push_str(&" ".repeat(w - c.chars().count()));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_like_docker() {
        let rows = vec![
            vec!["REPOSITORY".to_string(), "TAG".into(), "IMAGE ID".into()],
            vec![
                "busybox".to_string(),
                "latest".into(),
                "0123456789ab".into(),
            ],
        ];
        assert_eq!(
            render(&rows),
            "REPOSITORY   TAG       IMAGE ID\nbusybox      latest    0123456789ab\n"
        );
    }
}
