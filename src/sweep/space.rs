//! What a sweep tries: `--grid KEY=V1,V2,...` lists and `--range KEY=LO:HI[:log]` intervals, and
//! the trials drawn from them: every combination of the grids, or `--random N` seeded draws.

use crate::error::{Error, Result};
use crate::tensor::Rng;

/// One config key and the values a grid tries, each as TOML text (`0.01`, `"relu"`, `[8, 4]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    pub key: String,
    pub values: Vec<String>,
}

/// One config key drawn from an interval: uniformly, or log-uniformly with `:log`; whole
/// numbers when both ends are written as integers.
#[derive(Clone, Debug, PartialEq)]
pub struct Range {
    pub key: String,
    pub lo: f64,
    pub hi: f64,
    pub log: bool,
    pub integer: bool,
}

/// One setting of the swept keys: `(key, TOML value)` pairs, in the order the keys were given.
pub type Setting = Vec<(String, String)>;

/// `KEY=V1,V2,...`: the values split at commas outside brackets, braces and quotes, so a list
/// value (`[16, 8]`) stays whole. A bare word is a string, as `--set` takes it.
pub fn parse_grid(arg: &str) -> Result<Grid> {
    let bad = |why: &str| Error::Usage(format!("--grid {arg}: {why}"));
    let (key, list) = arg
        .split_once('=')
        .ok_or_else(|| bad("expected KEY=V1,V2,..."))?;
    let key = checked_key(key).map_err(|w| bad(&w))?;
    let values: Vec<String> = split_top_level(list)
        .into_iter()
        .map(|v| toml_value(v.trim()))
        .collect();
    if values.iter().any(|v| v.is_empty() || v == "\"\"") {
        return Err(bad("an empty value; write the values as V1,V2,..."));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(d) = values.iter().find(|v| !seen.insert(v.as_str())) {
        return Err(bad(&format!("{d} is listed twice")));
    }
    Ok(Grid { key, values })
}

/// `KEY=LO:HI` or `KEY=LO:HI:log`.
pub fn parse_range(arg: &str) -> Result<Range> {
    let bad = |why: &str| Error::Usage(format!("--range {arg}: {why}"));
    let (key, spec) = arg
        .split_once('=')
        .ok_or_else(|| bad("expected KEY=LO:HI or KEY=LO:HI:log"))?;
    let key = checked_key(key).map_err(|w| bad(&w))?;
    let parts: Vec<&str> = spec.split(':').map(str::trim).collect();
    let log = match parts.as_slice() {
        [_, _] => false,
        [_, _, "log"] => true,
        _ => return Err(bad("expected LO:HI or LO:HI:log")),
    };
    let number = |s: &str| -> Result<f64> {
        s.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| bad(&format!("\"{s}\" is not a number")))
    };
    let (lo, hi) = (number(parts[0])?, number(parts[1])?);
    if lo >= hi {
        return Err(bad("LO must be below HI"));
    }
    if log && lo <= 0.0 {
        return Err(bad("a log range needs LO above 0"));
    }
    let integer = parts[..2].iter().all(|p| p.parse::<i64>().is_ok());
    Ok(Range {
        key,
        lo,
        hi,
        log,
        integer,
    })
}

/// A dotted key of letters, digits, `_` and `-` (a list index is a number: `model.layers.0.units`).
fn checked_key(key: &str) -> std::result::Result<String, String> {
    let key = key.trim();
    let ok = !key.is_empty()
        && key.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    if ok {
        Ok(key.to_string())
    } else {
        Err(format!(
            "\"{key}\" is not a config key (dotted, as --set takes it: optimizer.lr)"
        ))
    }
}

/// Split at commas that are not inside `[]`, `{}` or a quoted string.
fn split_top_level(list: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut quote, mut start) = (Vec::new(), 0i32, None, 0);
    let mut escaped = false;
    for (i, c) in list.char_indices() {
        match (quote, c) {
            (Some(_), '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (Some(q), c) if c == q && !escaped => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                parts.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        escaped = false;
    }
    parts.push(&list[start..]);
    parts
}

/// A value as TOML text, read as `--set` reads it (a bare word is a string).
fn toml_value(raw: &str) -> String {
    crate::config::override_value(raw).to_string()
}

/// Every combination of the grids, the first grid's values varying slowest.
pub fn grid_settings(grids: &[Grid]) -> Vec<Setting> {
    let mut settings: Vec<Setting> = vec![Vec::new()];
    for g in grids {
        settings = settings
            .into_iter()
            .flat_map(|s| {
                g.values.iter().map(move |v| {
                    let mut next = s.clone();
                    next.push((g.key.clone(), v.clone()));
                    next
                })
            })
            .collect();
    }
    settings
}

/// `n` settings drawn with `seed`: each grid key takes one of its values, each range key a
/// value from its interval (3 significant digits, so tables stay readable). A draw equal to
/// an earlier one is drawn again (up to a bound, then kept), so small spaces are not retried.
pub fn random_settings(grids: &[Grid], ranges: &[Range], n: usize, seed: u64) -> Vec<Setting> {
    let mut rng = Rng::derive(seed, SWEEP_STREAM);
    let mut settings: Vec<Setting> = Vec::new();
    for _ in 0..n {
        let mut draw = Vec::new();
        for _attempt in 0..100 {
            draw = Vec::new();
            for g in grids {
                draw.push((g.key.clone(), g.values[rng.below(g.values.len())].clone()));
            }
            for r in ranges {
                draw.push((r.key.clone(), r.draw(&mut rng)));
            }
            if !settings.contains(&draw) {
                break;
            }
        }
        settings.push(draw);
    }
    settings
}

/// The random stream of a sweep's draws, apart from every stream a run uses.
const SWEEP_STREAM: u64 = 0x5eed_5eed;

impl Range {
    fn draw(&self, rng: &mut Rng) -> String {
        let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        if self.integer {
            let v = if self.log {
                let (lo, hi) = (self.lo.ln(), (self.hi + 1.0).ln());
                (lo + u * (hi - lo)).exp().floor()
            } else {
                (self.lo + u * (self.hi - self.lo + 1.0)).floor()
            };
            return (v.min(self.hi) as i64).to_string();
        }
        let v = if self.log {
            (self.lo.ln() + u * (self.hi.ln() - self.lo.ln())).exp()
        } else {
            self.lo + u * (self.hi - self.lo)
        };
        let rounded: f64 = format!("{v:.2e}").parse().unwrap_or(v);
        toml::Value::Float(rounded.clamp(self.lo, self.hi)).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_values_split_outside_lists_and_bare_words_are_strings() {
        let g = parse_grid("model.layers.0.units=[16, 8],[32,16]").unwrap();
        assert_eq!(g.values, ["[16, 8]", "[32, 16]"]);
        let g = parse_grid("model.layers.0.activation=relu, tanh,\"a,b\"").unwrap();
        assert_eq!(g.values, ["\"relu\"", "\"tanh\"", "\"a,b\""]);
        let g = parse_grid("optimizer.lr=0.01,1e-3").unwrap();
        assert_eq!(g.values, ["0.01", "0.001"]);
        for bad in ["lr", "=1,2", "a..b=1", "lr=1,,2", "lr=1,1"] {
            assert!(parse_grid(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_combination_once_the_first_key_slowest() {
        let grids = [parse_grid("a=1,2").unwrap(), parse_grid("b=x,y,z").unwrap()];
        let s = grid_settings(&grids);
        assert_eq!(s.len(), 6);
        assert_eq!(
            s[0],
            [("a".into(), "1".into()), ("b".into(), "\"x\"".into())]
        );
        assert_eq!(
            s[5],
            [("a".into(), "2".into()), ("b".into(), "\"z\"".into())]
        );
        assert_eq!(grid_settings(&[]), [Vec::<(String, String)>::new()]);
    }

    #[test]
    fn random_draws_are_seeded_within_their_ranges() {
        let ranges = [
            parse_range("optimizer.lr=1e-4:1e-1:log").unwrap(),
            parse_range("model.layers.0.units=8:64").unwrap(),
        ];
        assert!(ranges[1].integer && !ranges[0].integer && ranges[0].log);
        let a = random_settings(&[], &ranges, 50, 3);
        assert_eq!(a, random_settings(&[], &ranges, 50, 3));
        assert_ne!(a, random_settings(&[], &ranges, 50, 4));
        let lrs: Vec<f64> = a.iter().map(|s| s[0].1.parse().unwrap()).collect();
        assert!(lrs.iter().all(|&v| (1e-4..=1e-1).contains(&v)), "{lrs:?}");
        // Log-uniform: about a third of the draws in each decade.
        let low = lrs.iter().filter(|&&v| v < 1e-3).count();
        assert!((8..=26).contains(&low), "{low} of 50 below 1e-3");
        let units: Vec<i64> = a.iter().map(|s| s[1].1.parse().unwrap()).collect();
        assert!(units.iter().all(|&u| (8..=64).contains(&u)), "{units:?}");
        assert!(units.contains(&8) || units.contains(&64) || units.len() == 50);
        for bad in ["lr=1:1", "lr=0:1:log", "lr=a:2", "lr=1:2:ln", "lr=1"] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_small_space_is_not_drawn_twice() {
        let grids = [parse_grid("a=1,2").unwrap(), parse_grid("b=3,4").unwrap()];
        let mut s = random_settings(&grids, &[], 4, 1);
        s.sort();
        s.dedup();
        assert_eq!(s.len(), 4);
    }
}
