//! PNG plots of a run, drawn with plotters and the embedded DejaVu Sans font (nothing needs to
//! be installed): learning curves, a confusion matrix, the fitted line of a one-feature
//! regression. Each file is drawn to a temporary name and renamed into place.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::error::{Error, Result};

const FONT: &str = "sans-serif";
const TRAIN_COLOR: RGBColor = RGBColor(31, 119, 180);
const VALID_COLOR: RGBColor = RGBColor(255, 127, 14);

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Both are valid TrueType files shipped inside the dejavu crate.
        let _ = register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

/// Draw into a temporary file beside `path`, then rename it into place.
fn draw_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(
        &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    ) -> std::result::Result<(), String>,
) -> Result<()> {
    register_fonts();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let tmp: PathBuf = path.with_file_name(format!(
        ".{}.tmp.png",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("plot")
    ));
    {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| e.to_string())
            .and_then(|_| draw(&root))
            .and_then(|_| root.present().map_err(|e| e.to_string()))
            .map_err(|e| {
                Error::Runtime(format!("{}: cannot draw the plot: {e}", path.display()))
            })?;
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// One panel of learning curves: a quantity per epoch, for train and (if any) valid.
pub struct Curve {
    pub name: String,
    pub train: Vec<(f64, f64)>,
    pub valid: Vec<(f64, f64)>,
}

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

/// `plots/learning_curves.png`: one panel per quantity, train against valid.
pub fn learning_curves(path: &Path, curves: &[Curve]) -> Result<()> {
    let panels = curves.len().max(1) as u32;
    draw_png(path, (460 * panels, 340), |root| {
        for (area, c) in root
            .split_evenly((1, curves.len().max(1)))
            .iter()
            .zip(curves)
        {
            let all = || c.train.iter().chain(&c.valid);
            let xs = padded_range(all().map(|p| p.0));
            let ys = padded_range(all().map(|p| p.1));
            let mut chart = ChartBuilder::on(area)
                .caption(&c.name, (FONT, 20))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(60)
                .build_cartesian_2d(xs, ys)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .label_style((FONT, 12))
                .axis_desc_style((FONT, 13))
                .draw()
                .map_err(|e| e.to_string())?;
            for (points, color, label) in [
                (&c.train, TRAIN_COLOR, "train"),
                (&c.valid, VALID_COLOR, "valid"),
            ] {
                if points.is_empty() {
                    continue;
                }
                chart
                    .draw_series(LineSeries::new(
                        points.iter().copied(),
                        color.stroke_width(2),
                    ))
                    .map_err(|e| e.to_string())?
                    .label(label)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                    });
                chart
                    .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                    .map_err(|e| e.to_string())?;
            }
            chart
                .configure_series_labels()
                .label_font((FONT, 12))
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

/// A confusion-matrix heatmap: rows are true classes, columns predictions; each cell shows its
/// count, shaded by its share of the row.
pub fn confusion_matrix(
    path: &Path,
    title: &str,
    classes: &[String],
    m: &[Vec<u64>],
) -> Result<()> {
    let n = classes.len().max(1) as i32;
    let cell = (560 / n).clamp(18, 56);
    let (left, top) = (120, 70);
    let size = ((left + cell * n + 30) as u32, (top + cell * n + 60) as u32);
    let short = |s: &str| {
        if s.chars().count() > 10 {
            format!("{}…", s.chars().take(9).collect::<String>())
        } else {
            s.to_string()
        }
    };
    draw_png(path, size, |root| {
        let err = |e: DrawingAreaErrorKind<_>| e.to_string();
        root.draw_text(
            title,
            &(FONT, 18).into_font().style(FontStyle::Bold).color(&BLACK),
            (left, 12),
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
        let label = (FONT, (cell / 3).clamp(9, 14)).into_text_style(root);
        for (i, row) in m.iter().enumerate() {
            let total: u64 = row.iter().sum::<u64>().max(1);
            let y = top + i as i32 * cell;
            root.draw_text(&short(&classes[i]), &label, (10, y + cell / 2 - 6))
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
                let tx = x + cell / 2 - (text.len() as i32 * cell / 10).min(cell / 2 - 2);
                root.draw_text(&text, &label.color(&ink), (tx, y + cell / 2 - 6))
                    .map_err(err)?;
            }
        }
        for (j, c) in classes.iter().enumerate() {
            root.draw_text(&short(c), &label, (left + j as i32 * cell + 2, top - 18))
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
    draw_png(path, (640, 480), |root| {
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
