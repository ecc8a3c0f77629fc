//! Charts of simulations, comparisons and sweeps, as SVG.
//!
//! Amounts reach the chart as decimals and become binary floats only as
//! drawing coordinates; nothing drawn here feeds back into a number the
//! crate reports.

// Chart coordinates and axis labels are floats by nature (pixels, tick
// positions); the crate's float ban protects money, which never passes
// through here on its way to a report.
#![allow(clippy::float_arithmetic)]

use chrono::{Datelike, NaiveDate};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::stats::{Comparison, SimulationReport, SweepReport, group_thousands};
use crate::error::{Error, Result};

/// The size of every chart, in pixels.
const SIZE: (u32, u32) = (1000, 560);

const FONT: &str = "sans-serif";

/// Distinct colours that stay apart for colour-blind readers (Okabe-Ito),
/// blue first.
const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(230, 159, 0),
    RGBColor(90, 90, 90),
];

fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn f(v: Decimal) -> f64 {
    v.to_f64().unwrap_or(0.0)
}

fn chart_error(e: impl std::fmt::Display) -> Error {
    Error::usage(format!("cannot draw the chart: {e}"))
}

/// A period start as a reader expects on an axis: `Jan 2026` on the first
/// of a month, `15 Jan 2026` otherwise.
fn date_label(d: NaiveDate) -> String {
    if d.day() == 1 {
        d.format("%b %Y").to_string()
    } else {
        d.format("%-d %b %Y").to_string()
    }
}

/// Tick labels for amounts: compact units above ten thousand (`25k`,
/// `1.5M`), thousands separators below, cents only for small ranges.
struct AmountAxis {
    divisor: f64,
    suffix: &'static str,
    places: usize,
}

impl AmountAxis {
    fn for_range(low: f64, high: f64) -> AmountAxis {
        let top = low.abs().max(high.abs());
        let span = (high - low).abs();
        let (divisor, suffix) = if top >= 1e9 {
            (1e9, "B")
        } else if top >= 1e6 {
            (1e6, "M")
        } else if top >= 1e4 {
            (1e3, "k")
        } else {
            (1.0, "")
        };
        // Enough places to tell about eight ticks apart.
        let places = match (suffix, span / divisor) {
            ("", s) if s >= 10.0 => 0,
            ("", _) => 2,
            (_, s) if s >= 40.0 => 0,
            (_, s) if s >= 4.0 => 1,
            _ => 2,
        };
        AmountAxis {
            divisor,
            suffix,
            places,
        }
    }

    fn label(&self, v: f64) -> String {
        let mut text = format!("{:.*}", self.places, v / self.divisor);
        if text
            .trim_start_matches('-')
            .chars()
            .all(|c| c == '0' || c == '.')
        {
            return "0".to_string();
        }
        if !self.suffix.is_empty() && text.contains('.') {
            text = text.trim_end_matches('0').trim_end_matches('.').to_string();
        }
        format!("{}{}", group_thousands(&text), self.suffix)
    }
}

/// A y range that starts at 0 (or below, for credits) and leaves room at
/// the top for the legend.
fn y_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut low, mut high) = (0.0f64, 0.0f64);
    for v in values {
        low = low.min(v);
        high = high.max(v);
    }
    if high - low < 1e-9 {
        high = low + 1.0;
    }
    let span = high - low;
    let low = if low < 0.0 { low - span * 0.05 } else { low };
    (low, high + span * 0.3)
}

/// Labels the x axis with the dates at integer positions only.
fn x_label(dates: &[NaiveDate], x: f64) -> String {
    let i = x.round();
    if (x - i).abs() > 1e-6 || i < 0.0 {
        return String::new();
    }
    dates
        .get(i as usize)
        .map(|d| date_label(*d))
        .unwrap_or_default()
}

/// A band from `low` to `high` at positions `xs`, as one polygon (a
/// single period gets a small box so it stays visible).
fn band(xs: &[f64], low: &[f64], high: &[f64]) -> Vec<(f64, f64)> {
    if xs.len() == 1 {
        let x = xs[0];
        return vec![
            (x - 0.15, low[0]),
            (x + 0.15, low[0]),
            (x + 0.15, high[0]),
            (x - 0.15, high[0]),
        ];
    }
    let mut points: Vec<(f64, f64)> = xs.iter().copied().zip(high.iter().copied()).collect();
    points.extend(xs.iter().copied().zip(low.iter().copied()).rev());
    points
}

/// One contract's fan: positions, p5, p50, p95, mean of the period totals.
struct Fan {
    name: String,
    xs: Vec<f64>,
    p5: Vec<f64>,
    p50: Vec<f64>,
    p95: Vec<f64>,
    mean: Vec<f64>,
}

impl Fan {
    fn of(report: &SimulationReport, position: impl Fn(NaiveDate) -> f64) -> Fan {
        let totals = report
            .periods
            .iter()
            .map(|p| (p.period.start, &p.summary.total));
        let mut fan = Fan {
            name: report.contract.clone(),
            xs: Vec::new(),
            p5: Vec::new(),
            p50: Vec::new(),
            p95: Vec::new(),
            mean: Vec::new(),
        };
        for (start, s) in totals {
            fan.xs.push(position(start));
            fan.p5.push(f(s.p5));
            fan.p50.push(f(s.p50));
            fan.p95.push(f(s.p95));
            fan.mean.push(f(s.mean));
        }
        fan
    }
}

/// Draws fans on period axes: one fan for `simulate`, one per contract for
/// `compare` (bands lighter, the median line per contract, and the mean
/// only when there is one contract).
fn fans_svg(
    title: &str,
    subtitle: &str,
    currency: &str,
    dates: &[NaiveDate],
    fans: &[Fan],
) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let root = root
            .titled(title, (FONT, 24).into_font().color(&BLACK))
            .map_err(chart_error)?;
        let (low, high) = y_range(
            fans.iter()
                .flat_map(|f| f.p5.iter().chain(&f.p95).chain(&f.mean).copied()),
        );
        let axis = AmountAxis::for_range(low, high);
        let last = dates.len().saturating_sub(1) as f64;
        let pad = if dates.len() == 1 { 0.6 } else { 0.4 };
        let mut chart = ChartBuilder::on(&root)
            .caption(
                subtitle,
                (FONT, 15).into_font().color(&RGBColor(80, 80, 80)),
            )
            .margin(18)
            .x_label_area_size(44)
            .y_label_area_size(78)
            .build_cartesian_2d(-pad..last + pad, low..high)
            .map_err(chart_error)?;
        let x_fmt = |x: &f64| x_label(dates, *x);
        let y_fmt = |y: &f64| axis.label(*y);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(dates.len().clamp(1, 13))
            .x_label_formatter(&x_fmt)
            .y_labels(8)
            .y_label_formatter(&y_fmt)
            .x_desc("period (start date)")
            .y_desc(format!("amount per period ({currency})"))
            .axis_desc_style((FONT, 15))
            .label_style((FONT, 13))
            .max_light_lines(1)
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()
            .map_err(chart_error)?;
        let single = fans.len() == 1;
        for (i, fan) in fans.iter().enumerate() {
            let c = if single { colour(0) } else { colour(i) };
            let band_fill = c.mix(if single { 0.22 } else { 0.14 });
            let band_label = if single {
                "5th to 95th percentile".to_string()
            } else {
                format!("{}: 5th to 95th percentile", fan.name)
            };
            chart
                .draw_series(std::iter::once(Polygon::new(
                    band(&fan.xs, &fan.p5, &fan.p95),
                    band_fill.filled(),
                )))
                .map_err(chart_error)?
                .label(band_label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 22, y + 6)], band_fill.filled())
                });
            let median_label = if single {
                "median (50th percentile)".to_string()
            } else {
                format!("{}: median", fan.name)
            };
            chart
                .draw_series(LineSeries::new(
                    fan.xs.iter().copied().zip(fan.p50.iter().copied()),
                    c.stroke_width(3),
                ))
                .map_err(chart_error)?
                .label(median_label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 22, y)], c.stroke_width(3))
                });
            chart
                .draw_series(
                    fan.xs
                        .iter()
                        .zip(&fan.p50)
                        .map(|(&x, &y)| Circle::new((x, y), 3, c.filled())),
                )
                .map_err(chart_error)?;
            if single {
                let m = colour(1);
                chart
                    .draw_series(DashedLineSeries::new(
                        fan.xs.iter().copied().zip(fan.mean.iter().copied()),
                        8,
                        5,
                        m.stroke_width(2),
                    ))
                    .map_err(chart_error)?
                    .label("mean")
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 22, y)], m.stroke_width(2))
                    });
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(190, 190, 190))
            .label_font((FONT, 14))
            .draw()
            .map_err(chart_error)?;
        root.present().map_err(chart_error)?;
    }
    Ok(svg)
}

impl SimulationReport {
    /// A fan chart of the period totals as SVG: the 5th–95th percentile
    /// band, the median and the mean per period, in the contract's
    /// currency.
    ///
    /// # Errors
    /// A usage error if drawing fails (it does not with the SVG backend).
    pub fn chart_svg(&self) -> Result<String> {
        let dates: Vec<NaiveDate> = self.periods.iter().map(|p| p.period.start).collect();
        let fan = Fan::of(self, |d| {
            dates.iter().position(|x| *x == d).unwrap_or(0) as f64
        });
        let runs = if self.runs == 1 {
            "1 run".to_string()
        } else {
            format!("{} runs, seed {}", self.runs, self.seed)
        };
        fans_svg(
            &format!("{}: simulated total per period", self.contract),
            &format!("{runs}; the band holds 90% of runs"),
            self.currency.code(),
            &dates,
            &[fan],
        )
    }
}

impl Comparison {
    /// Every contract's fan on one chart as SVG: a band (5th–95th
    /// percentile) and a median line per contract, one colour each.
    ///
    /// # Errors
    /// A usage error if drawing fails, or when there is no contract.
    pub fn chart_svg(&self) -> Result<String> {
        let first = self
            .contracts
            .first()
            .ok_or_else(|| chart_error("no contract"))?;
        let mut dates: Vec<NaiveDate> = self
            .contracts
            .iter()
            .flat_map(|c| c.periods.iter().map(|p| p.period.start))
            .collect();
        dates.sort_unstable();
        dates.dedup();
        let fans: Vec<Fan> = self
            .contracts
            .iter()
            .map(|c| Fan::of(c, |d| dates.binary_search(&d).unwrap_or(0) as f64))
            .collect();
        let ids: Vec<&str> = self.contracts.iter().map(|c| c.contract.as_str()).collect();
        let runs = if first.runs == 1 {
            "history, 1 run".to_string()
        } else {
            format!(
                "{} runs on identical draws, seed {}",
                first.runs, first.seed
            )
        };
        fans_svg(
            &format!("Compared: {}", ids.join(" vs ")),
            &format!("total per period; {runs}"),
            first.currency.code(),
            &dates,
            &fans,
        )
    }
}

impl SweepReport {
    /// Each contract's term total over the levels as SVG, one line per
    /// contract, break-even levels marked and labelled.
    ///
    /// # Errors
    /// A usage error if drawing fails, or when there is no level.
    pub fn chart_svg(&self) -> Result<String> {
        let (first, last) = match (self.levels.first(), self.levels.last()) {
            (Some(a), Some(b)) => (f(a.level), f(b.level)),
            _ => return Err(chart_error("no level")),
        };
        let (x_low, x_high) = if (last - first).abs() < 1e-12 {
            (first - 1.0, first + 1.0)
        } else {
            (first.min(last), first.max(last))
        };
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
            root.fill(&WHITE).map_err(chart_error)?;
            let root = root
                .titled(
                    &format!("Term total by {}", self.series),
                    (FONT, 24).into_font().color(&BLACK),
                )
                .map_err(chart_error)?;
            let (low, high) = y_range(
                self.levels
                    .iter()
                    .flat_map(|l| l.totals.iter().map(|t| f(*t))),
            );
            let axis = AmountAxis::for_range(low, high);
            let x_axis = AmountAxis::for_range(x_low, x_high);
            let level_text = |b: &super::stats::BreakEven| {
                group_thousands(&crate::money::format_normalized(b.level.round_dp(2)))
            };
            let subtitle = match self.break_even.len() {
                0 if self.contracts.len() > 1 => "no break-even in the range swept".to_string(),
                0 => format!("{} over the levels swept", self.contracts[0]),
                1..=3 => {
                    let each: Vec<String> = self
                        .break_even
                        .iter()
                        .map(|b| {
                            format!("{} = {} at {}", b.contracts.0, b.contracts.1, level_text(b))
                        })
                        .collect();
                    format!("break-even: {}", each.join("; "))
                }
                n => format!("{n} break-evens marked"),
            };
            let mut chart = ChartBuilder::on(&root)
                .caption(
                    subtitle,
                    (FONT, 15).into_font().color(&RGBColor(80, 80, 80)),
                )
                .margin(18)
                .x_label_area_size(44)
                .y_label_area_size(78)
                .build_cartesian_2d(x_low..x_high, low..high)
                .map_err(chart_error)?;
            let x_fmt = |x: &f64| x_axis.label(*x);
            let y_fmt = |y: &f64| axis.label(*y);
            chart
                .configure_mesh()
                .x_labels(10)
                .x_label_formatter(&x_fmt)
                .y_labels(8)
                .y_label_formatter(&y_fmt)
                .x_desc(format!("{} per period", self.series))
                .y_desc(format!("term total ({})", self.currency.code()))
                .axis_desc_style((FONT, 15))
                .label_style((FONT, 13))
                .max_light_lines(1)
                .light_line_style(RGBColor(240, 240, 240))
                .bold_line_style(RGBColor(215, 215, 215))
                .draw()
                .map_err(chart_error)?;
            for (i, id) in self.contracts.iter().enumerate() {
                let c = colour(i);
                let points: Vec<(f64, f64)> = self
                    .levels
                    .iter()
                    .map(|l| (f(l.level), f(l.totals[i])))
                    .collect();
                chart
                    .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(3)))
                    .map_err(chart_error)?
                    .label(id.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 22, y)], c.stroke_width(3))
                    });
                if points.len() <= 41 {
                    chart
                        .draw_series(points.iter().map(|&p| Circle::new(p, 3, c.filled())))
                        .map_err(chart_error)?;
                }
            }
            let grey = RGBColor(60, 60, 60);
            for (k, b) in self.break_even.iter().enumerate() {
                let x = f(b.level);
                let i = self
                    .contracts
                    .iter()
                    .position(|c| *c == b.contracts.0)
                    .unwrap_or(0);
                let y = interpolate(self, i, b.level);
                chart
                    .draw_series(DashedLineSeries::new(
                        [(x, low), (x, y)],
                        6,
                        4,
                        grey.stroke_width(1),
                    ))
                    .map_err(chart_error)?;
                chart
                    .draw_series(std::iter::once(Circle::new(
                        (x, y),
                        6,
                        BLACK.stroke_width(2),
                    )))
                    .map_err(chart_error)?;
                // Labels alternate above-left and below-right of their markers
                // (inward near the edges), and sit on a white box, so neither
                // neighbours nor the lines behind them hide them.
                let text = level_text(b);
                let area = chart.plotting_area();
                let (base_x, base_y) = area.get_base_pixel();
                let (px, py) = area.map_coordinate(&(x, y));
                let (px, py) = (px - base_x, py - base_y);
                let width = 8 * text.chars().count() as i32 + 10;
                let height = 20;
                let near_left = x < x_low + (x_high - x_low) * 0.2;
                let near_right = x > x_low + (x_high - x_low) * 0.8;
                let on_left = near_right || (k % 2 == 0 && !near_left);
                let left = if on_left { px - 10 - width } else { px + 10 };
                let top = if k % 2 == 0 {
                    py - 12 - height
                } else {
                    py + 12
                };
                let pixels = area.strip_coord_spec();
                pixels
                    .draw(&Rectangle::new(
                        [(left, top), (left + width, top + height)],
                        WHITE.mix(0.9).filled(),
                    ))
                    .map_err(chart_error)?;
                pixels
                    .draw(&Rectangle::new(
                        [(left, top), (left + width, top + height)],
                        RGBColor(150, 150, 150).stroke_width(1),
                    ))
                    .map_err(chart_error)?;
                pixels
                    .draw(&Text::new(
                        text,
                        (left + width / 2, top + height / 2),
                        (FONT, 14)
                            .into_font()
                            .color(&BLACK)
                            .pos(Pos::new(HPos::Center, VPos::Center)),
                    ))
                    .map_err(chart_error)?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.9))
                .border_style(RGBColor(190, 190, 190))
                .label_font((FONT, 14))
                .draw()
                .map_err(chart_error)?;
            root.present().map_err(chart_error)?;
        }
        Ok(svg)
    }
}

/// Contract `i`'s total at `level`, interpolated between the sweep's
/// steps (for placing a marker).
fn interpolate(report: &SweepReport, i: usize, level: Decimal) -> f64 {
    let x = f(level);
    let points: Vec<(f64, f64)> = report
        .levels
        .iter()
        .map(|l| (f(l.level), f(l.totals[i])))
        .collect();
    for w in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        let (lo, hi) = (x0.min(x1), x0.max(x1));
        if x >= lo && x <= hi {
            if (x1 - x0).abs() < 1e-12 {
                return y0;
            }
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0);
        }
    }
    points.first().map_or(0.0, |p| p.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amount_labels_are_compact_and_grouped() {
        // Proves tick labels use k/M units above ten thousand, separators below, and never print -0.
        let a = AmountAxis::for_range(0.0, 250_000.0);
        assert_eq!(a.label(125_000.0), "125k");
        let a = AmountAxis::for_range(0.0, 12_000.0);
        assert_eq!(a.label(7_500.0), "7.5k");
        assert_eq!(a.label(2_000.0), "2k");
        let a = AmountAxis::for_range(0.0, 3_000_000.0);
        assert_eq!(a.label(2_500_000.0), "2.5M");
        assert_eq!(a.label(0.0), "0");
        let a = AmountAxis::for_range(0.0, 9_000.0);
        assert_eq!(a.label(4_500.0), "4,500");
        let a = AmountAxis::for_range(0.0, 5.0);
        assert_eq!(a.label(2.5), "2.50");
        assert_eq!(a.label(-0.0001), "0");
        assert_eq!(
            date_label(NaiveDate::from_ymd_opt(2026, 1, 15).unwrap()),
            "15 Jan 2026"
        );
        assert_eq!(
            date_label(NaiveDate::from_ymd_opt(2026, 2, 1).unwrap()),
            "Feb 2026"
        );
    }
}
