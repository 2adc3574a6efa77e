//! Plain-text tables for the terminal: cells padded to their column's widest cell.

/// Rows of cells as lines, each column padded to its widest cell and `gap` spaces apart, with
/// no trailing spaces; an empty row is an empty line.
pub fn aligned(rows: &[Vec<String>], gap: usize) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join(&" ".repeat(gap)).trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_pad_to_their_widest_cell() {
        let rows = vec![
            vec!["a".to_string(), "bb".into(), "c".into()],
            vec![],
            vec!["ddd".into(), "é".into(), "f".into()],
        ];
        assert_eq!(aligned(&rows, 2), "a    bb  c\n\nddd  é   f\n");
        assert_eq!(aligned(&[], 2), "");
    }
}
