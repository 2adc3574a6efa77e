//! A TOML document written line by line, so each choice can carry its reason as a comment
//! (the `toml` crate writes values, not comments).

/// Comments after a value start at this column, as in the shipped configs.
const COMMENT_AT: usize = 31;

/// A line with its comment longer than this puts the comment on a line of its own.
const WIDTH: usize = 100;

#[derive(Default)]
pub struct Doc {
    text: String,
}

impl Doc {
    /// `# text`, one comment line per line of `text`.
    pub fn comment(&mut self, text: &str) {
        for line in text.lines() {
            self.text.push_str(format!("# {line}").trim_end());
            self.text.push('\n');
        }
    }

    /// `key = value`, with `why` as a comment after it (or above it, when the line would be
    /// too long) when not empty. `value` is TOML as written (see `string`, `list`).
    pub fn set(&mut self, key: &str, value: impl std::fmt::Display, why: &str) {
        let line = format!("{} = {value}", bare_or_quoted(key));
        let at = COMMENT_AT.max(line.chars().count() + 2);
        if why.is_empty() {
            self.text.push_str(&line);
        } else if at + 2 + why.chars().count() > WIDTH {
            self.comment(why);
            self.text.push_str(&line);
        } else {
            self.text.push_str(&format!("{line:<at$}# {why}"));
        }
        self.text.push('\n');
    }

    /// `[path]` after a blank line; each part of `path` quoted when it must be.
    pub fn table(&mut self, path: &[&str]) {
        self.header(path, "[", "]");
    }

    /// `[[path]]` after a blank line.
    pub fn array_table(&mut self, path: &[&str]) {
        self.header(path, "[[", "]]");
    }

    /// A comment just before a header stays with it.
    fn header(&mut self, path: &[&str], open: &str, close: &str) {
        let parts: Vec<String> = path.iter().map(|p| bare_or_quoted(p)).collect();
        let last = self.text.lines().next_back();
        if !last.is_some_and(|l| l.starts_with('#')) {
            self.blank();
        }
        self.text
            .push_str(&format!("{open}{}{close}\n", parts.join(".")));
    }

    pub fn blank(&mut self) {
        if !self.text.is_empty() && !self.text.ends_with("\n\n") {
            self.text.push('\n');
        }
    }

    pub fn finish(self) -> String {
        self.text
    }
}

/// A TOML string literal, escaped as TOML needs.
pub fn string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML list of strings.
pub fn list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| string(s)).collect();
    format!("[{}]", items.join(", "))
}

/// A key as TOML allows it bare (letters, digits, `_`, `-`), else quoted.
fn bare_or_quoted(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_string()
    } else {
        string(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_values_and_comments_read_back_as_toml() {
        let mut d = Doc::default();
        d.comment("a starter\nsecond line");
        d.set("name", string("x"), "why");
        d.table(&["data", "columns", "odd name"]);
        d.set("type", string("text \"quoted\""), "");
        d.array_table(&["model", "layers"]);
        d.set("inputs", list(&["a b".into(), "numbers".into()]), "");
        let text = d.finish();
        assert!(
            text.contains("name = \"x\"                     # why\n"),
            "{text}"
        );
        let v: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(
            v["data"]["columns"]["odd name"]["type"].as_str(),
            Some("text \"quoted\"")
        );
        assert_eq!(v["model"]["layers"][0]["inputs"][0].as_str(), Some("a b"));
    }
}
