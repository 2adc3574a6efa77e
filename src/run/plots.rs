//! PNG plots of a run, drawn with plotters and the embedded DejaVu Sans font (nothing needs to
//! be installed): learning curves, a confusion matrix, the fitted line of a one-feature
//! regression. Each file is drawn to a temporary name and renamed into place.

use std::path::Path;
use std::sync::Once;

use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::error::{Error, Result};

const FONT: &str = "sans-serif";

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Both are valid TrueType files shipped inside the dejavu crate.
        let _ = register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

/// Draw in memory, encode as PNG, and write to `path` atomically (a failed draw or write leaves
/// the old file, and no temporary one). `durable`: wait until the file is on disk before
/// renaming it into place (`files::write_atomic`), for a file of its own such as a comparison;
/// a run's plots are redrawn as it trains and are not waited for (`files::replace`).
fn draw_png(
    path: &Path,
    size: (u32, u32),
    durable: bool,
    draw: impl FnOnce(
        &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    ) -> std::result::Result<(), String>,
) -> Result<()> {
    register_fonts();
    // A device or pipe (/dev/stdout) takes PNG whatever its name; a file must be named so.
    let special = std::fs::metadata(path).is_ok_and(|m| !m.is_file());
    if !special
        && path
            .extension()
            .is_none_or(|e| !e.eq_ignore_ascii_case("png"))
    {
        return Err(Error::Usage(format!(
            "{}: plots are PNG images; name the file .png",
            path.display()
        )));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let mut pixels = vec![0u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| e.to_string())
            .and_then(|_| draw(&root))
            .and_then(|_| root.present().map_err(|e| e.to_string()))
            .map_err(|e| {
                Error::Runtime(format!("{}: cannot draw the plot: {e}", path.display()))
            })?;
    }
    let image = image::RgbImage::from_raw(size.0, size.1, pixels).expect("the buffer's size");
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| Error::Runtime(format!("{}: cannot encode the plot: {e}", path.display())))?;
    if durable {
        crate::files::write_atomic(path, &png)
    } else {
        crate::files::replace(path, &png)
    }
}

/// One panel of learning curves: a quantity per epoch, for train and (if any) valid.
pub struct Curve {
    pub name: String,
    pub train: Vec<(f64, f64)>,
    pub valid: Vec<(f64, f64)>,
    /// The best epoch by the monitored metric, when this panel shows it: marked on the curve
    /// (`valid` when it has points, else `train`).
    pub best: Option<f64>,
}

/// One line of a panel: a quantity per epoch.
struct Series {
    /// Its legend entry; `None` leaves it out of the legend.
    label: Option<String>,
    color: RGBColor,
    /// Dashed (training curves beside validation ones in a comparison) or solid.
    dashed: bool,
    /// (epoch, value). None at all: a legend entry only, the key to a line style.
    points: Vec<(f64, f64)>,
}

/// Curves of one quantity sharing a chart, the quantity named on its axis.
struct Panel {
    name: String,
    series: Vec<Series>,
    /// The best epoch by the monitored metric: (index into `series`, epoch), marked.
    best: Option<(usize, f64)>,
}

/// Matplotlib's ten default colours (tab10), in its order: train and valid of one run take the
/// first two; the runs of a comparison take one each, in turn.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const TRAIN_COLOR: RGBColor = PALETTE[0];
const VALID_COLOR: RGBColor = PALETTE[1];

fn padded_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.05).max(1e-6);
    (lo - pad)..(hi + pad)
}

/// Whether positive values span more than two decades: a loss from 29,000 down to 2,300 and
/// then to 3 is a flat line on a linear axis.
fn wants_log_scale(values: &[f64]) -> bool {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    !finite.is_empty() && lo > 0.0 && hi / lo > 100.0
}

/// A tick label of a value to three significant digits: `0.931`, `31.6`, `1.2e4`.
fn tick(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e4).contains(&a) {
        return format!("{v:.1e}");
    }
    let decimals = if a == 0.0 {
        0
    } else {
        (2 - a.log10().floor() as i32).max(0) as usize
    };
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `plots/learning_curves.png`: one panel per quantity, train against valid, with the epoch
/// axis in whole epochs, the quantity named on its axis, a log axis when a curve spans more
/// than two decades, and the best epoch marked.
pub fn learning_curves(path: &Path, curves: &[Curve]) -> Result<()> {
    let panels: Vec<Panel> = curves
        .iter()
        .map(|c| {
            let series: Vec<Series> = [
                ("train", TRAIN_COLOR, &c.train),
                ("valid", VALID_COLOR, &c.valid),
            ]
            .into_iter()
            .filter(|(_, _, points)| !points.is_empty())
            .map(|(label, color, points)| Series {
                label: Some(label.to_string()),
                color,
                dashed: false,
                points: points.clone(),
            })
            .collect();
            // The best epoch is marked on valid when there is one (the last series), else train.
            let best = c
                .best
                .filter(|_| !series.is_empty())
                .map(|e| (series.len() - 1, e));
            Panel {
                name: c.name.clone(),
                series,
                best,
            }
        })
        .collect();
    draw_panels(path, (460, 340), false, &panels)
}

/// Size of each panel of a comparison, in pixels: the PNG is `COMPARISON_PANEL.0` wide per
/// quantity.
const COMPARISON_PANEL: (u32, u32) = (560, 420);

/// Several runs' curves overlaid, one panel per quantity in `quantities` (a run without it is
/// left out of that panel): one colour per run, named in the legend; train dashed, valid solid.
/// Each run is (its name, its curves by quantity).
pub fn comparison(path: &Path, quantities: &[String], runs: &[(String, Vec<Curve>)]) -> Result<()> {
    let panels: Vec<Panel> = quantities
        .iter()
        .map(|q| {
            let mut series = Vec::new();
            for (i, (run, curves)) in runs.iter().enumerate() {
                let Some(c) = curves.iter().find(|c| c.name == *q) else {
                    continue;
                };
                let color = PALETTE[i % PALETTE.len()];
                // The run is named once, on its valid curve when it has one.
                for (dashed, points, named) in [
                    (true, &c.train, c.valid.is_empty()),
                    (false, &c.valid, true),
                ] {
                    if !points.is_empty() {
                        series.push(Series {
                            label: named.then(|| run.clone()),
                            color,
                            dashed,
                            points: points.clone(),
                        });
                    }
                }
            }
            // The key to the two line styles, when both are drawn.
            let drawn = |dashed: bool| series.iter().any(|s| s.dashed == dashed);
            if drawn(true) && drawn(false) {
                for (label, dashed) in [("train", true), ("valid", false)] {
                    series.push(Series {
                        label: Some(label.to_string()),
                        color: RGBColor(90, 90, 90),
                        dashed,
                        points: Vec::new(),
                    });
                }
            }
            Panel {
                name: q.clone(),
                series,
                best: None,
            }
        })
        .collect();
    draw_panels(path, COMPARISON_PANEL, true, &panels)
}

/// Panels side by side, each `size` pixels: the epoch axis in whole epochs, the quantity named
/// on its axis, a log axis when its curves span more than two decades.
fn draw_panels(path: &Path, size: (u32, u32), durable: bool, panels: &[Panel]) -> Result<()> {
    let count = panels.len().max(1);
    draw_png(path, (size.0 * count as u32, size.1), durable, |root| {
        for (area, panel) in root.split_evenly((1, count)).iter().zip(panels) {
            draw_panel(area, panel)?;
        }
        Ok(())
    })
}

fn draw_panel(
    area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    panel: &Panel,
) -> std::result::Result<(), String> {
    let values: Vec<f64> = panel
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .collect();
    let log = wants_log_scale(&values);
    // On a log axis the chart holds log10 of each value, labelled with the value.
    let y = |v: f64| if log { v.log10() } else { v };
    let lines: Vec<Vec<(i32, f64)>> = panel
        .series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .map(|&(e, v)| (e.round() as i32, y(v)))
                .collect()
        })
        .collect();
    let epochs = lines.iter().flatten().map(|p| p.0);
    let (e0, e1) = epochs.fold((i32::MAX, i32::MIN), |(a, b), e| (a.min(e), b.max(e)));
    let (e0, e1) = if e0 > e1 {
        (0, 1)
    } else {
        (e0, e1.max(e0 + 1))
    };
    let ys = padded_range(lines.iter().flatten().map(|p| p.1));
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.name, (FONT, 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(e0..e1, ys)
        .map_err(|e| e.to_string())?;
    let y_desc = if log {
        format!("{} (log scale)", panel.name)
    } else {
        panel.name.clone()
    };
    let y_label = |v: &f64| tick(if log { 10f64.powf(*v) } else { *v });
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_desc)
        .x_labels(((e1 - e0) as usize + 1).min(10))
        .x_label_formatter(&|e| e.to_string())
        .y_label_formatter(&y_label)
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .draw()
        .map_err(|e| e.to_string())?;
    for (s, points) in panel.series.iter().zip(&lines) {
        let style = s.color.stroke_width(2);
        let drawn = if s.dashed {
            chart.draw_series(DashedLineSeries::new(points.iter().copied(), 6, 4, style))
        } else {
            chart.draw_series(LineSeries::new(points.iter().copied(), style))
        }
        .map_err(|e| e.to_string())?;
        if let Some(label) = &s.label {
            let dashed = s.dashed;
            drawn
                .label(label)
                .legend(move |(x, y)| -> DynElement<_, _> {
                    let ends = vec![(x, y), (x + 18, y)];
                    if dashed {
                        DashedPathElement::new(ends, 5, 3, style).into_dyn()
                    } else {
                        PathElement::new(ends, style).into_dyn()
                    }
                });
        }
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, s.color.filled())))
            .map_err(|e| e.to_string())?;
    }
    if let Some(at) = panel.best.and_then(|(i, epoch)| {
        lines[i]
            .iter()
            .find(|p| p.0 == epoch.round() as i32)
            .copied()
    }) {
        let best = PALETTE[2];
        chart
            .draw_series([Circle::new(at, 7, best.stroke_width(3))])
            .map_err(|e| e.to_string())?
            .label(format!("best (epoch {})", at.0))
            .legend(move |(x, y)| Circle::new((x + 9, y), 5, best.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .label_font((FONT, 12))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// A name shortened to `max` characters (with "…").
fn shortened(s: &str, max: usize) -> String {
    if s.chars().count() > max {
        format!(
            "{}…",
            s.chars().take(max.saturating_sub(1)).collect::<String>()
        )
    } else {
        s.to_string()
    }
}

/// A confusion-matrix heatmap: rows are true classes, columns predictions; each cell shows its
/// count, shaded by its share of the row. Sized to its labels: a few classes get large cells,
/// long names a wide margin (up to 24 characters), and the title always fits.
pub fn confusion_matrix(
    path: &Path,
    title: &str,
    classes: &[String],
    m: &[Vec<u64>],
) -> Result<()> {
    let n = classes.len().max(1) as i32;
    let cell = (560 / n).clamp(18, 90);
    let font = (cell / 3).clamp(9, 14);
    // DejaVu Sans at `font` px averages about 0.6·font per character.
    let char_w = |px: i32| (px * 6 + 9) / 10;
    let longest = classes
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(1)
        .min(24) as i32;
    let left = (20 + longest * char_w(font)).clamp(60, 260);
    let top = 70;
    let title_w = 20 + title.chars().count() as i32 * char_w(18);
    let width = (left + cell * n + 30).max(title_w).max(260);
    let size = (width as u32, (top + cell * n + 60) as u32);
    // Column labels get their cell's width.
    let column_chars = ((cell - 4) / char_w(font)).max(2) as usize;
    draw_png(path, size, false, |root| {
        let err = |e: DrawingAreaErrorKind<_>| e.to_string();
        root.draw_text(
            title,
            &(FONT, 18).into_font().style(FontStyle::Bold).color(&BLACK),
            (10, 12),
        )
        .map_err(err)?;
        root.draw_text(
            "predicted →",
            &(FONT, 13).into_text_style(root),
            (left, top - 40),
        )
        .map_err(err)?;
        root.draw_text("true ↓", &(FONT, 13).into_text_style(root), (10, top - 40))
            .map_err(err)?;
        let label = (FONT, font).into_text_style(root);
        for (i, row) in m.iter().enumerate() {
            let total: u64 = row.iter().sum::<u64>().max(1);
            let y = top + i as i32 * cell;
            root.draw_text(&shortened(&classes[i], 24), &label, (10, y + cell / 2 - 6))
                .map_err(err)?;
            for (j, &count) in row.iter().enumerate() {
                let x = left + j as i32 * cell;
                let share = count as f64 / total as f64;
                let shade = |c: f64| (255.0 - share * (255.0 - c)) as u8;
                let fill = RGBColor(shade(8.0), shade(48.0), shade(107.0));
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    fill.filled(),
                ))
                .map_err(err)?;
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    WHITE.stroke_width(1),
                ))
                .map_err(err)?;
                let ink = if share > 0.5 { WHITE } else { BLACK };
                let text = count.to_string();
                let tx = x + (cell - text.len() as i32 * char_w(font)) / 2;
                root.draw_text(&text, &label.color(&ink), (tx.max(x + 1), y + cell / 2 - 6))
                    .map_err(err)?;
            }
        }
        for (j, c) in classes.iter().enumerate() {
            let text = shortened(c, column_chars);
            root.draw_text(&text, &label, (left + j as i32 * cell + 2, top - 18))
                .map_err(err)?;
        }
        Ok(())
    })
}

/// The data of a one-feature regression as points and the model's fitted line.
pub fn regression_fit(
    path: &Path,
    feature: &str,
    target: &str,
    points: &[(f64, f64)],
    line: &[(f64, f64)],
) -> Result<()> {
    draw_png(path, (640, 480), false, |root| {
        let xs = padded_range(points.iter().chain(line).map(|p| p.0));
        let ys = padded_range(points.iter().chain(line).map(|p| p.1));
        let mut chart = ChartBuilder::on(root)
            .caption(format!("{target} against {feature}"), (FONT, 20))
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(xs, ys)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(feature)
            .y_desc(target)
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 14))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&p| Circle::new(p, 3, TRAIN_COLOR.mix(0.7).filled())),
            )
            .map_err(|e| e.to_string())?
            .label("data")
            .legend(|(x, y)| Circle::new((x + 8, y), 3, TRAIN_COLOR.filled()));
        chart
            .draw_series(LineSeries::new(line.iter().copied(), RED.stroke_width(3)))
            .map_err(|e| e.to_string())?
            .label("model")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED.stroke_width(3)));
        chart
            .configure_series_labels()
            .label_font((FONT, 13))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_scale_for_curves_over_two_decades() {
        assert!(wants_log_scale(&[29_000.0, 2_300.0, 3.0]));
        assert!(!wants_log_scale(&[0.9, 0.5, 0.02]));
        assert!(!wants_log_scale(&[-1.0, 1000.0])); // r2 can go negative: linear
        assert!(!wants_log_scale(&[]));
    }

    #[test]
    fn ticks_keep_three_significant_digits() {
        assert_eq!(tick(31.6228), "31.6");
        assert_eq!(tick(0.0316228), "0.0316");
        assert_eq!(tick(0.55), "0.55");
        assert_eq!(tick(1.0), "1");
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(25_000.0), "2.5e4");
        assert_eq!(shortened("versicolor", 9), "versicol…");
        assert_eq!(shortened("setosa", 9), "setosa");
    }
}
