//! Feature columns that are not numbers: categories (one-hot, vocabulary fitted on the training
//! rows) and text (token ids, vocabulary fitted on the training rows). Their types come from
//! `[data.columns.NAME]` or are inferred from the training file, with the reason kept for the
//! log; the fitted encoders are saved in run.json, so eval, predict and serve encode alike.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::config::{ColumnSpec, ColumnType, Tokenizer};

/// Rows the type of a column is inferred from.
pub const SNIFF_ROWS: usize = 1000;

/// Text of more words than this on average (or longer than `TEXT_CHARS`) is text, not a
/// category.
const TEXT_WORDS: f64 = 3.0;
const TEXT_CHARS: f64 = 40.0;

/// A non-number feature column and its encoder, fitted on the training rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(flatten)]
    pub encoder: Encoder,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Encoder {
    /// One-hot over `values`; index 0 is "other": values rare in training (beyond the
    /// `max_categories` most frequent), unseen ones and missing cells.
    Category { values: Vec<String> },
    /// Token ids, `max_len` of them per row: 0 pads, 1 is a token not in `vocab`.
    Text {
        tokenizer: Tokenizer,
        lowercase: bool,
        max_len: usize,
        vocab: Vec<String>,
    },
}

/// Category values encoded as `(other)` because training never kept them: a count and the
/// first few values per column, for one warning per file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Unseen {
    by_column: std::collections::BTreeMap<String, (usize, Vec<String>)>,
}

/// Values named per column in the warning.
const UNSEEN_EXAMPLES: usize = 3;

impl Unseen {
    pub fn note(&mut self, column: &str, value: &str) {
        let (count, examples) = self.by_column.entry(column.to_string()).or_default();
        *count += 1;
        if examples.len() < UNSEEN_EXAMPLES && !examples.iter().any(|e| e == value) {
            examples.push(value.to_string());
        }
    }

    pub fn merge(&mut self, other: Unseen) {
        for (column, (count, examples)) in other.by_column {
            let (c, e) = self.by_column.entry(column).or_default();
            *c += count;
            for v in examples {
                if e.len() < UNSEEN_EXAMPLES && !e.contains(&v) {
                    e.push(v);
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_column.is_empty()
    }

    /// `island: 2 ("Mars", "Venus"), year: 1 ("2030")`.
    pub fn describe(&self) -> String {
        self.by_column
            .iter()
            .map(|(column, (count, examples))| {
                let shown: Vec<String> = examples.iter().map(|e| format!("{e:?}")).collect();
                let more = if *count > examples.len() { ", ..." } else { "" };
                format!("\"{column}\" {count} ({}{more})", shown.join(", "))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The name index 0 of a category column stands for.
pub const OTHER: &str = "(other)";
pub const PAD: &str = "<pad>";
pub const UNKNOWN: &str = "<unk>";

/// Whether a present cell reads as a number.
pub fn is_number(cell: &str) -> bool {
    cell.trim().parse::<f32>().is_ok()
}

/// At least half numbers is a number column: a stray word in it is a bad cell to report with
/// its line, not a reason to read every value as a category.
pub fn mostly_numbers(present: usize, numbers: usize) -> bool {
    numbers * 2 >= present
}

/// The type a column's cells suggest, and why (for the log): numbers, short repeated values
/// (a category), or running text.
pub fn infer(cells: &[&str]) -> (ColumnType, String) {
    let present: Vec<&str> = cells
        .iter()
        .copied()
        .filter(|c| !super::is_missing(c))
        .collect();
    let numbers = present.iter().filter(|c| is_number(c)).count();
    if mostly_numbers(present.len(), numbers) {
        return (ColumnType::Number, "numbers".into());
    }
    let n = present.len().max(1) as f64;
    let words = present
        .iter()
        .map(|c| c.split_whitespace().count())
        .sum::<usize>() as f64
        / n;
    let chars = present.iter().map(|c| c.chars().count()).sum::<usize>() as f64 / n;
    if words > TEXT_WORDS || chars > TEXT_CHARS {
        let why = format!("text: {words:.1} words, {chars:.0} characters a cell on average");
        return (ColumnType::Text, why);
    }
    let distinct = present
        .iter()
        .map(|c| c.trim())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    (
        ColumnType::Category,
        format!("category: {distinct} distinct short values"),
    )
}

/// Text as the tokenizer sees it: Unicode NFKC (compatibility forms folded: "ﬁ" → "fi",
/// full-width letters → ASCII), then lower-cased when asked.
fn normalize(text: &str, lowercase: bool) -> String {
    let s: String = text.nfkc().filter(|&c| !invisible(c)).collect();
    if lowercase {
        s.to_lowercase()
    } else {
        s
    }
}

/// Characters that show nothing and are dropped before tokenizing: zero-width spaces and
/// joiners, direction marks and embeddings, the soft hyphen, word joiners, the byte-order mark,
/// and control characters other than whitespace.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}'
    ) || (c.is_control() && !c.is_whitespace())
}

/// Tokens of a cell: `word` splits into runs of letters and digits (each other visible
/// character its own token: "don't!" → don, ', t, !); `char` takes every character, spaces too.
pub fn tokenize(text: &str, tokenizer: Tokenizer, lowercase: bool) -> Vec<String> {
    let text = normalize(text, lowercase);
    match tokenizer {
        Tokenizer::Char => text.chars().map(String::from).collect(),
        Tokenizer::Word => {
            let mut tokens = Vec::new();
            let mut word = String::new();
            for c in text.chars() {
                if c.is_alphanumeric() {
                    word.push(c);
                    continue;
                }
                if !word.is_empty() {
                    tokens.push(std::mem::take(&mut word));
                }
                if !c.is_whitespace() {
                    tokens.push(c.to_string());
                }
            }
            if !word.is_empty() {
                tokens.push(word);
            }
            tokens
        }
    }
}

/// The most frequent items first (ties by the item), at most `keep`.
fn most_frequent(counts: HashMap<String, usize>, keep: usize) -> Vec<String> {
    let mut items: Vec<(String, usize)> = counts.into_iter().collect();
    items.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    items.into_iter().take(keep).map(|(k, _)| k).collect()
}

impl Column {
    /// Fit the column's encoder on its training cells.
    pub fn fit(name: &str, spec: &ColumnSpec, cells: &[String]) -> Column {
        let encoder = match spec.kind {
            Some(ColumnType::Text) => {
                let (tokenizer, lowercase) = (spec.tokenizer, spec.lowercase);
                let mut counts: HashMap<String, usize> = HashMap::new();
                let mut lengths = Vec::with_capacity(cells.len());
                for c in cells.iter().filter(|c| !super::is_missing(c)) {
                    let tokens = tokenize(c, tokenizer, lowercase);
                    lengths.push(tokens.len());
                    for t in tokens {
                        *counts.entry(t).or_default() += 1;
                    }
                }
                // Default length: the 95th percentile of the training rows', at most 512.
                lengths.sort_unstable();
                let p95 = lengths
                    .get(lengths.len().saturating_mul(95) / 100)
                    .copied()
                    .unwrap_or(1);
                let max_len = spec.max_len.unwrap_or(p95.clamp(1, 512));
                let mut vocab = vec![PAD.to_string(), UNKNOWN.to_string()];
                vocab.extend(most_frequent(counts, spec.vocab_size.saturating_sub(2)));
                Encoder::Text {
                    tokenizer,
                    lowercase,
                    max_len,
                    vocab,
                }
            }
            _ => {
                let mut counts: HashMap<String, usize> = HashMap::new();
                for c in cells.iter().filter(|c| !super::is_missing(c)) {
                    *counts.entry(c.trim().to_string()).or_default() += 1;
                }
                let mut values = vec![OTHER.to_string()];
                values.extend(most_frequent(counts, spec.max_categories.saturating_sub(1)));
                Encoder::Category { values }
            }
        };
        Column {
            name: name.to_string(),
            encoder,
        }
    }

    /// Values the column adds to each row's input: one-hot slots, or token ids.
    pub fn width(&self) -> usize {
        match &self.encoder {
            Encoder::Category { values } => values.len(),
            Encoder::Text { max_len, .. } => *max_len,
        }
    }

    pub fn is_text(&self) -> bool {
        matches!(self.encoder, Encoder::Text { .. })
    }

    /// An encoder of this column's cells (for text, with its token index built once).
    pub fn encoder(&self) -> CellEncoder<'_> {
        let index = match &self.encoder {
            Encoder::Text { vocab, .. } => vocab
                .iter()
                .enumerate()
                .map(|(i, t)| (t.as_str(), i))
                .collect(),
            Encoder::Category { .. } => HashMap::new(),
        };
        CellEncoder {
            column: self,
            index,
        }
    }

    /// What the encoder holds, for the log and `kiln check`.
    pub fn describe(&self) -> String {
        match &self.encoder {
            Encoder::Category { values } => format!(
                "category, one-hot over {} values and {OTHER}",
                values.len() - 1
            ),
            Encoder::Text {
                tokenizer,
                max_len,
                vocab,
                ..
            } => format!(
                "text, {} tokens, {max_len} per row, vocabulary of {}",
                match tokenizer {
                    Tokenizer::Word => "word",
                    Tokenizer::Char => "character",
                },
                vocab.len()
            ),
        }
    }

    /// The vocabulary an embedding over this column needs.
    pub fn vocab_size(&self) -> Option<usize> {
        match &self.encoder {
            Encoder::Text { vocab, .. } => Some(vocab.len()),
            Encoder::Category { .. } => None,
        }
    }
}

/// Encodes cells of one column.
pub struct CellEncoder<'a> {
    column: &'a Column,
    /// Text: token → id.
    index: HashMap<&'a str, usize>,
}

impl CellEncoder<'_> {
    /// Append the encoding of `cell` to `out`; returns whether the cell held a value that is
    /// not one of the column's categories (unseen in training, or too rare to keep), which
    /// is encoded as "other".
    pub fn encode(&self, cell: &str, out: &mut Vec<f32>) -> bool {
        match &self.column.encoder {
            Encoder::Category { values } => {
                let cell = cell.trim();
                let at = values[1..].iter().position(|v| v == cell).map(|i| i + 1);
                let start = out.len();
                out.resize(start + values.len(), 0.0);
                out[start + at.unwrap_or(0)] = 1.0;
                at.is_none() && !super::is_missing(cell)
            }
            Encoder::Text {
                tokenizer,
                lowercase,
                max_len,
                ..
            } => {
                let tokens = if super::is_missing(cell) {
                    Vec::new()
                } else {
                    tokenize(cell, *tokenizer, *lowercase)
                };
                // Truncated after max_len tokens, padded with 0 after the last.
                let ids = tokens
                    .iter()
                    .take(*max_len)
                    .map(|t| self.index.get(t.as_str()).copied().unwrap_or(1) as f32);
                let start = out.len();
                out.extend(ids);
                out.resize(start + max_len, 0.0);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: ColumnType) -> ColumnSpec {
        ColumnSpec {
            kind: Some(kind),
            ..ColumnSpec::default()
        }
    }

    #[test]
    fn types_are_inferred_with_a_reason() {
        assert_eq!(infer(&["1", "2.5", "NA"]).0, ColumnType::Number);
        assert_eq!(
            infer(&["1", "seven", "3"]).0,
            ColumnType::Number,
            "a stray word"
        );
        assert_eq!(infer(&["NA", ""]).0, ColumnType::Number, "nothing to go on");
        assert_eq!(infer(&["red", "green", "red"]).0, ColumnType::Category);
        let (t, why) = infer(&["a fine film with a plot", "dull and far too long for me"]);
        assert_eq!(t, ColumnType::Text);
        assert!(why.contains("words"), "{why}");
    }

    #[test]
    fn words_are_split_normalized_and_lower_cased() {
        assert_eq!(
            tokenize("Don't STOP ﬁve!", Tokenizer::Word, true),
            ["don", "'", "t", "stop", "five", "!"]
        );
        assert_eq!(
            tokenize("Ab c", Tokenizer::Char, false),
            ["A", "b", " ", "c"]
        );
    }

    #[test]
    fn categories_keep_the_most_frequent_and_fold_the_rest_into_other() {
        let cells: Vec<String> = ["a", "b", "a", "c", "a", "b", "d"]
            .map(String::from)
            .to_vec();
        let col = Column::fit(
            "x",
            &ColumnSpec {
                max_categories: 3,
                ..spec(ColumnType::Category)
            },
            &cells,
        );
        assert_eq!(col.width(), 3);
        let mut out = Vec::new();
        let col = col.encoder();
        assert!(!col.encode("b", &mut out));
        assert_eq!(out, [0.0, 0.0, 1.0]);
        out.clear();
        assert!(col.encode("zebra", &mut out), "unseen is reported");
        assert_eq!(out, [1.0, 0.0, 0.0]);
        out.clear();
        assert!(col.encode("c", &mut out), "a rare value is other too");
        assert_eq!(out, [1.0, 0.0, 0.0]);
        out.clear();
        assert!(
            !col.encode("", &mut out),
            "a missing cell is other, silently"
        );
        assert_eq!(out, [1.0, 0.0, 0.0]);
    }

    #[test]
    fn text_becomes_padded_truncated_ids() {
        let cells: Vec<String> = ["good film", "bad film", "good good"]
            .map(String::from)
            .to_vec();
        let col = Column::fit(
            "review",
            &ColumnSpec {
                max_len: Some(3),
                ..spec(ColumnType::Text)
            },
            &cells,
        );
        // <pad>, <unk>, then by frequency: good (3), film (2), bad (1).
        assert_eq!(col.vocab_size(), Some(5));
        let col = col.encoder();
        let mut out = Vec::new();
        col.encode("Good awful film film", &mut out);
        assert_eq!(out, [2.0, 1.0, 3.0]);
        out.clear();
        col.encode("bad", &mut out);
        assert_eq!(out, [4.0, 0.0, 0.0]);
    }
}
