//! CSV exports (RFC 4180), safe to open in a spreadsheet.

/// One CSV record, CRLF-terminated. A field is quoted when it holds a comma, a quote or a
/// line break, and one that a spreadsheet would run as a formula (starting with `=`, `+`,
/// `-`, `@`, a tab or a carriage return) is prefixed with `'`, so that an agent's name or a
/// reason typed by anyone cannot become a formula in an auditor's spreadsheet (CWE-1236).
pub(crate) fn record<I, S>(fields: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut line = String::new();
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        let field = field.as_ref();
        let defused = if field.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{field}")
        } else {
            field.to_owned()
        };
        if defused.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&defused.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(&defused);
        }
    }
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::record;

    #[test]
    fn plain_fields_are_joined() {
        assert_eq!(record(["a", "b c", ""]), "a,b c,\r\n");
    }

    #[test]
    fn separators_quotes_and_line_breaks_are_quoted() {
        assert_eq!(
            record(["x,y", "say \"hi\"", "two\nlines"]),
            "\"x,y\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n"
        );
    }

    #[test]
    fn formulas_are_defused() {
        assert_eq!(
            record([
                "=HYPERLINK(\"http://evil\")",
                "+1",
                "-2",
                "@SUM(A1)",
                "ok=1"
            ]),
            "\"'=HYPERLINK(\"\"http://evil\"\")\",'+1,'-2,'@SUM(A1),ok=1\r\n"
        );
    }
}
