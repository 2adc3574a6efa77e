//! "Did you mean" for misspelt names, by edit distance.

/// Levenshtein distance between two short strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// `; did you mean "x"?` for the closest candidate within a third of the word's length (at
/// least 2 edits, and fewer than the word's length: "d" suggests nothing), or an empty string.
pub fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    let len = word.chars().count();
    let limit = (len / 3).max(2);
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|&(d, _)| d <= limit && d < len)
        .min()
        .map(|(_, c)| format!("; did you mean \"{c}\"?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_known_name() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            did_you_mean("unit", &["units", "rate"]),
            "; did you mean \"units\"?"
        );
        assert_eq!(
            did_you_mean("epoch", &["epochs", "batch_size"]),
            "; did you mean \"epochs\"?"
        );
        assert_eq!(did_you_mean("zzzzzz", &["units"]), "");
        assert_eq!(did_you_mean("d", &["a", "b"]), "");
    }
}
