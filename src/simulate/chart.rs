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

/// Titles and axis labels for a chart, set by the caller; each `None`
/// keeps the chart's own wording.
///
/// ```
/// use outcome_billing::simulate::ChartLabels;
/// let labels = ChartLabels::new()
///     .title("Per-resolution pricing vs seat plan")
///     .x("resolved conversations a month");
/// assert_eq!(labels.y, None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChartLabels {
    /// The title above the chart.
    pub title: Option<String>,
    /// The line under the title (what was simulated: runs, history).
    pub subtitle: Option<String>,
    /// The horizontal axis' description.
    pub x: Option<String>,
    /// The vertical axis' description.
    pub y: Option<String>,
}

impl ChartLabels {
    /// No label set: every chart keeps its own wording.
    pub fn new() -> ChartLabels {
        ChartLabels::default()
    }

    /// Sets the title.
    pub fn title(mut self, title: impl Into<String>) -> ChartLabels {
        self.title = Some(title.into());
        self
    }

    /// Sets the subtitle.
    pub fn subtitle(mut self, subtitle: impl Into<String>) -> ChartLabels {
        self.subtitle = Some(subtitle.into());
        self
    }

    /// The labels of a comparison settled on history: the subtitle says
    /// which periods were settled, those due at `as_of` (its text as given)
    /// or, without it, those due now.
    ///
    /// # Example
    /// ```
    /// use outcome_billing::simulate::ChartLabels;
    /// let labels = ChartLabels::history(Some("2026-07-01"));
    /// assert_eq!(
    ///     labels.subtitle.as_deref(),
    ///     Some("history: the periods due at 2026-07-01, settled on the metrics given")
    /// );
    /// ```
    pub fn history(as_of: Option<&str>) -> ChartLabels {
        ChartLabels::new().subtitle(match as_of {
            Some(t) => format!("history: the periods due at {t}, settled on the metrics given"),
            None => "history: the periods due now, settled on the metrics given".to_string(),
        })
    }

    /// Sets the horizontal axis' description.
    pub fn x(mut self, x: impl Into<String>) -> ChartLabels {
        self.x = Some(x.into());
        self
    }

    /// Sets the vertical axis' description.
    pub fn y(mut self, y: impl Into<String>) -> ChartLabels {
        self.y = Some(y.into());
        self
    }

    fn pick(value: &Option<String>, default: impl FnOnce() -> String) -> String {
        value.clone().unwrap_or_else(default)
    }
}

/// An id as words for a title: `paid_claims` reads `paid claims`.
fn words(id: &str) -> String {
    id.replace(['_', '-'], " ")
}

/// A round step (1, 2, 2.5 or 5 times a power of ten) giving about
/// `count` intervals over `span`.
fn nice_step(span: f64, count: usize) -> f64 {
    let raw = (span / count.max(1) as f64).abs();
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0] {
        if magnitude * m >= raw * (1.0 - 1e-9) {
            return magnitude * m;
        }
    }
    magnitude * 10.0
}

/// The multiples of `step` from `low` to `high`, both included when they
/// fall on one (within rounding); 0 exactly, never -0.
fn multiples(low: f64, high: f64, step: f64) -> Vec<f64> {
    let mut ticks = Vec::new();
    let mut k = (low / step - 1e-9).ceil();
    while k * step <= high + step * 1e-9 && ticks.len() < 1000 {
        let t = k * step;
        ticks.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        k += 1.0;
    }
    ticks
}

/// Amount ticks: round steps, 0 among them, and the range's low end moved
/// down to a step so a negative range gets its labels too.
fn amount_ticks(low: f64, high: f64) -> (f64, Vec<f64>) {
    let step = nice_step(high - low, 7);
    let low = if low < 0.0 {
        (low / step - 1e-9).floor() * step
    } else {
        low
    };
    (low, multiples(low, high, step))
}

/// Ticks over a swept range: round steps inside, and both ends always,
/// whether or not they are round (a tick too close to an end gives way).
fn level_ticks(first: f64, last: f64) -> Vec<f64> {
    let step = nice_step(last - first, 8);
    let mut ticks = vec![first];
    ticks.extend(
        multiples(first, last, step)
            .into_iter()
            .filter(|t| (t - first).abs() > step * 0.4 && (last - t).abs() > step * 0.4),
    );
    if (last - first).abs() > 1e-12 {
        ticks.push(last);
    }
    ticks
}

/// A float axis whose ticks are exactly `ticks` (plotters' own
/// `WithKeyPoints` cannot take a label formatter).
struct Ticked {
    inner: plotters::coord::types::RangedCoordf64,
    ticks: Vec<f64>,
}

fn ticked(range: std::ops::Range<f64>, ticks: Vec<f64>) -> Ticked {
    Ticked {
        inner: range.into(),
        ticks,
    }
}

impl Ranged for Ticked {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Bold ticks only: no light lines between them.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
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
    /// Whether the runs differ at all: one run (history) or a scenario
    /// without random series gives every run the same totals.
    spread: bool,
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
            spread: false,
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
            fan.spread |= report.runs > 1 && s.p5 != s.p95;
        }
        fan
    }
}

/// A dark horizontal line at 0, so credits and losses read as below it.
fn zero_line<DB: DrawingBackend, X: Ranged<ValueType = f64>, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    from: f64,
    to: f64,
) -> Result<()> {
    chart
        .draw_series(LineSeries::new(
            [(from, 0.0), (to, 0.0)],
            RGBColor(70, 70, 70).stroke_width(1),
        ))
        .map_err(chart_error)?;
    Ok(())
}

/// Draws fans on period axes: one fan for `simulate`, one per contract for
/// `compare` (bands lighter, the median line per contract, and the mean
/// only when there is one contract).
fn fans_svg(labels: [String; 4], dates: &[NaiveDate], fans: &[Fan]) -> Result<String> {
    let [title, subtitle, x_desc, y_desc] = labels;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let root = root
            .titled(&title, (FONT, 24).into_font().color(&BLACK))
            .map_err(chart_error)?;
        let (low, high) = y_range(
            fans.iter()
                .flat_map(|f| f.p5.iter().chain(&f.p95).chain(&f.mean).copied()),
        );
        let axis = AmountAxis::for_range(low, high);
        let (low, y_ticks) = amount_ticks(low, high);
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
            .build_cartesian_2d(-pad..last + pad, ticked(low..high, y_ticks))
            .map_err(chart_error)?;
        let x_fmt = |x: &f64| x_label(dates, *x);
        let y_fmt = |y: &f64| axis.label(*y);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(dates.len().clamp(1, 13))
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .x_desc(x_desc)
            .y_desc(y_desc)
            .axis_desc_style((FONT, 15))
            .label_style((FONT, 13))
            .max_light_lines(1)
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()
            .map_err(chart_error)?;
        if low < 0.0 {
            zero_line(&mut chart, -pad, last + pad)?;
        }
        let single = fans.len() == 1;
        for (i, fan) in fans.iter().enumerate() {
            let c = if single { colour(0) } else { colour(i) };
            // Identical runs (history, a scenario without random series)
            // have no spread: a line per contract says it all.
            if fan.spread {
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
            }
            let line_label = match (single, fan.spread) {
                (true, true) => "median (50th percentile)".to_string(),
                (true, false) => "total".to_string(),
                (false, true) => format!("{}: median", fan.name),
                (false, false) => fan.name.clone(),
            };
            chart
                .draw_series(LineSeries::new(
                    fan.xs.iter().copied().zip(fan.p50.iter().copied()),
                    c.stroke_width(3),
                ))
                .map_err(chart_error)?
                .label(line_label)
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
            if single && fan.spread {
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
        self.chart_svg_with(&ChartLabels::default())
    }

    /// [`chart_svg`](Self::chart_svg) with the caller's title, subtitle
    /// or axis labels where `labels` sets them.
    ///
    /// # Errors
    /// A usage error if drawing fails (it does not with the SVG backend).
    pub fn chart_svg_with(&self, labels: &ChartLabels) -> Result<String> {
        let dates: Vec<NaiveDate> = self.periods.iter().map(|p| p.period.start).collect();
        let fan = Fan::of(self, |d| {
            dates.iter().position(|x| *x == d).unwrap_or(0) as f64
        });
        let subtitle = if self.runs == 1 {
            "one run: the totals as settled".to_string()
        } else if !fan.spread {
            "deterministic scenario: every run gives these totals".to_string()
        } else {
            format!(
                "{} runs, seed {}; the band holds 90% of runs",
                group_thousands(&self.runs.to_string()),
                self.seed
            )
        };
        let currency = self.currency.code();
        fans_svg(
            [
                ChartLabels::pick(&labels.title, || {
                    format!("{}: total per period ({currency})", words(&self.contract))
                }),
                ChartLabels::pick(&labels.subtitle, || subtitle),
                ChartLabels::pick(&labels.x, || "period (start date)".to_string()),
                ChartLabels::pick(&labels.y, || format!("total per period ({currency})")),
            ],
            &dates,
            &[fan],
        )
    }
}

impl Comparison {
    /// Every contract's fan on one chart as SVG: a band (5th–95th
    /// percentile) and a median line per contract, one colour each.
    ///
    /// With one run (history) or identical runs (a scenario without
    /// random series) each contract is a single line and the subtitle says
    /// so.
    ///
    /// # Errors
    /// A usage error if drawing fails, or when there is no contract.
    pub fn chart_svg(&self) -> Result<String> {
        self.chart_svg_with(&ChartLabels::default())
    }

    /// [`chart_svg`](Self::chart_svg) with the caller's title, subtitle
    /// or axis labels where `labels` sets them.
    ///
    /// # Errors
    /// A usage error if drawing fails, or when there is no contract.
    pub fn chart_svg_with(&self, labels: &ChartLabels) -> Result<String> {
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
        let ids: Vec<String> = self.contracts.iter().map(|c| words(&c.contract)).collect();
        let subtitle = if first.runs == 1 {
            "history: one run, each contract settled on the same metrics".to_string()
        } else if !fans.iter().any(|f| f.spread) {
            "deterministic scenario: every run gives these totals".to_string()
        } else {
            format!(
                "{} runs on identical draws, seed {}; bands hold 90% of runs, lines are medians",
                group_thousands(&first.runs.to_string()),
                first.seed
            )
        };
        let currency = first.currency.code();
        fans_svg(
            [
                ChartLabels::pick(&labels.title, || {
                    format!("Total per period ({currency}): {}", ids.join(" vs "))
                }),
                ChartLabels::pick(&labels.subtitle, || subtitle),
                ChartLabels::pick(&labels.x, || "period (start date)".to_string()),
                ChartLabels::pick(&labels.y, || format!("total per period ({currency})")),
            ],
            &dates,
            &fans,
        )
    }
}

impl SweepReport {
    /// Each contract's term total over the levels as SVG, one line per
    /// contract, break-even levels marked and labelled.
    ///
    /// Both ends of the range swept are labelled on the x axis, and
    /// negative totals on the y axis, with a line at 0.
    ///
    /// # Errors
    /// A usage error if drawing fails, or when there is no level.
    pub fn chart_svg(&self) -> Result<String> {
        self.chart_svg_with(&ChartLabels::default())
    }

    /// [`chart_svg`](Self::chart_svg) with the caller's title, subtitle
    /// or axis labels where `labels` sets them.
    ///
    /// # Errors
    /// A usage error if drawing fails, or when there is no level.
    pub fn chart_svg_with(&self, labels: &ChartLabels) -> Result<String> {
        let (first, last) = match (self.levels.first(), self.levels.last()) {
            (Some(a), Some(b)) => (f(a.level), f(b.level)),
            _ => return Err(chart_error("no level")),
        };
        let (x_low, x_high) = if (last - first).abs() < 1e-12 {
            (first - 1.0, first + 1.0)
        } else {
            (first.min(last), first.max(last))
        };
        let x_ticks = level_ticks(first.min(last), first.max(last));
        // A little room either side so the end ticks and markers show whole.
        let x_pad = (x_high - x_low) * 0.02;
        let currency = self.currency.code();
        let series = words(&self.series);
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
            root.fill(&WHITE).map_err(chart_error)?;
            let root = root
                .titled(
                    &ChartLabels::pick(&labels.title, || {
                        format!("Term total ({currency}) by level of {series}")
                    }),
                    (FONT, 24).into_font().color(&BLACK),
                )
                .map_err(chart_error)?;
            let (low, high) = y_range(
                self.levels
                    .iter()
                    .flat_map(|l| l.totals.iter().map(|t| f(*t))),
            );
            let axis = AmountAxis::for_range(low, high);
            let (low, y_ticks) = amount_ticks(low, high);
            let x_axis = AmountAxis::for_range(x_low, x_high);
            let level_text = |b: &super::stats::BreakEven| {
                group_thousands(&crate::money::format_normalized(b.level.round_dp(2)))
            };
            let subtitle = match self.break_even.len() {
                0 if self.contracts.len() > 1 => "no break-even in the range swept".to_string(),
                0 => format!(
                    "{}: the term total at each of {} levels",
                    self.contracts[0],
                    self.levels.len()
                ),
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
            let subtitle = ChartLabels::pick(&labels.subtitle, || subtitle);
            let mut chart = ChartBuilder::on(&root)
                .caption(
                    subtitle,
                    (FONT, 15).into_font().color(&RGBColor(80, 80, 80)),
                )
                .margin(18)
                .x_label_area_size(44)
                .y_label_area_size(78)
                .build_cartesian_2d(
                    ticked(x_low - x_pad..x_high + x_pad, x_ticks),
                    ticked(low..high, y_ticks),
                )
                .map_err(chart_error)?;
            let x_fmt = |x: &f64| x_axis.label(*x);
            let y_fmt = |y: &f64| axis.label(*y);
            chart
                .configure_mesh()
                .x_label_formatter(&x_fmt)
                .y_label_formatter(&y_fmt)
                .x_desc(ChartLabels::pick(&labels.x, || {
                    format!("{series} in every period (level swept)")
                }))
                .y_desc(ChartLabels::pick(&labels.y, || {
                    format!("term total ({currency})")
                }))
                .axis_desc_style((FONT, 15))
                .label_style((FONT, 13))
                .max_light_lines(1)
                .light_line_style(RGBColor(240, 240, 240))
                .bold_line_style(RGBColor(215, 215, 215))
                .draw()
                .map_err(chart_error)?;
            if low < 0.0 {
                zero_line(&mut chart, x_low - x_pad, x_high + x_pad)?;
            }
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
    fn ticks_cover_negatives_zero_and_both_ends() {
        // Proves amount ticks reach below a negative low with 0 among them, and level ticks always hold both ends.
        let (low, ticks) = amount_ticks(-1_800_000.0, 7_000_000.0);
        assert!(low <= -1_800_000.0);
        assert_eq!(ticks.first().copied(), Some(low));
        assert!(ticks.contains(&0.0));
        let t = level_ticks(98.8, 100.0);
        assert_eq!(t.first().copied(), Some(98.8));
        assert_eq!(t.last().copied(), Some(100.0));
        let t = level_ticks(3.0, 97.0);
        assert_eq!((t[0], t[t.len() - 1]), (3.0, 97.0));
        // No interior tick crowds an end.
        assert!(t.windows(2).all(|w| w[1] - w[0] > 4.0), "{t:?}");
        assert_eq!(words("paid_claims"), "paid claims");
    }

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
