//! The report's charts (plotters), each drawn once per backend: SVG for the HTML page, PNG for
//! the workbook. Monthly RPL per region against TPL and MPL, and a month's response-time
//! distribution per region with the TRTs marked.
//!
//! Text in the PNGs is rendered with DejaVu Sans compiled into the binary, so charts come out
//! the same on a machine with no fonts installed.

use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::error::ReportError;
use super::year::{REGIONS, Year, measure_trts_ms, month_label};
use crate::engine::domain::Basis;
use crate::sink::month::RplLine;

/// Width and height in pixels of every chart.
pub(crate) const SIZE: (u32, u32) = (800, 450);

/// A series' colour: the three regions and the pooled row keep theirs across every chart.
pub(crate) fn region_colour(region: &str) -> RGBColor {
    match region {
        "north" => RGBColor(31, 119, 180),
        "central" => RGBColor(255, 127, 14),
        "south" => RGBColor(44, 160, 44),
        // Not grey: the levels are drawn in greys.
        _ => RGBColor(227, 119, 194),
    }
}

// The levels are drawn in greys, long and short dashes, so no level can be taken for a region's
// series (a green TPL beside the green south read as one line; issue 33).
const TPL_COLOUR: RGBColor = RGBColor(30, 30, 30);
const MPL_COLOUR: RGBColor = RGBColor(130, 130, 130);
const TRT_COLOUR: RGBColor = RGBColor(120, 0, 160);

/// One chart, drawn for both backends.
#[derive(Debug, Clone)]
pub(crate) struct Chart {
    /// File stem, e.g. `rpl-PM4.3` (written as `charts/<stem>.svg` and `.png`).
    pub stem: String,
    /// What it shows, for captions and alt text.
    pub title: String,
    /// The SVG document.
    pub svg: String,
    /// The PNG file.
    pub png: Vec<u8>,
}

/// A line of a chart: its name, colour and points.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// Legend text.
    pub name: String,
    /// Colour.
    pub colour: RGBColor,
    /// Points (x, y); gaps are simply absent x values.
    pub points: Vec<(f64, f64)>,
}

/// Monthly RPL (%) per region over a regulatory year. `months` label the x axis (index 0–11);
/// a series' x values are those indexes.
pub(crate) struct RplChart<'a> {
    /// File stem.
    pub stem: String,
    /// Title.
    pub title: String,
    /// Month labels (`Apr 23` …).
    pub months: &'a [String],
    /// One line per region.
    pub series: Vec<Series>,
    /// Target Performance Level (%), if the measure has one.
    pub tpl: Option<f64>,
    /// Minimum Performance Level (%).
    pub mpl: Option<f64>,
}

/// The cumulative response-time distribution of one month per region: the share of requests
/// (%) answered by each time, on a log time axis, with the measure's TRTs as vertical lines.
pub(crate) struct RtChart {
    /// File stem.
    pub stem: String,
    /// Title.
    pub title: String,
    /// One line per region: (ms, cumulative %).
    pub series: Vec<Series>,
    /// The TRTs (ms) to mark.
    pub trts_ms: Vec<u64>,
}

/// Registers the embedded font with plotters, once per process.
fn fonts() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        for (style, bytes) in [
            (FontStyle::Normal, dejavu::sans::regular()),
            (FontStyle::Bold, dejavu::sans::bold()),
        ] {
            plotters::style::register_font("sans-serif", style, bytes)
                .map_err(|_| "the embedded DejaVu Sans font could not be loaded".to_string())?;
        }
        Ok(())
    })
    .clone()
}

fn err<E: std::fmt::Debug>(what: &str) -> impl Fn(E) -> String + '_ {
    move |e| format!("cannot draw {what}: {e:?}")
}

/// What can draw itself on any plotters backend.
trait Draw {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

/// Draws a chart on both backends and encodes the PNG.
fn both<D: Draw>(stem: String, title: String, d: &D) -> Result<Chart, String> {
    fonts()?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        d.draw(&root)?;
        root.present().map_err(err(&stem))?;
    }
    let mut rgb = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
        d.draw(&root)?;
        root.present().map_err(err(&stem))?;
    }
    let png = encode_png(&rgb, SIZE).map_err(|e| format!("cannot encode {stem}.png: {e}"))?;
    Ok(Chart {
        stem,
        title,
        svg,
        png,
    })
}

fn encode_png(rgb: &[u8], (w, h): (u32, u32)) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::with_capacity(rgb.len() / 8);
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header()?;
        writer.write_image_data(rgb)?;
    }
    Ok(out)
}

/// Draws the monthly RPL chart.
pub(crate) fn rpl(c: &RplChart) -> Result<Chart, ReportError> {
    both(c.stem.clone(), c.title.clone(), c).map_err(ReportError::Chart)
}

impl Draw for RplChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        draw_rpl(root, self)
    }
}

impl Draw for RtChart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        draw_rt(root, self)
    }
}

fn draw_rpl<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, c: &RplChart) -> Result<(), String> {
    // The y range starts a little below the lowest value or MPL, so a dip and the MPL line are
    // both visible, and ends at 100 %.
    let lowest = c
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(c.mpl)
        .fold(f64::INFINITY, f64::min);
    let lowest = if lowest.is_finite() { lowest } else { 90.0 };
    let y0 = (((lowest - (100.0 - lowest).max(0.5) * 0.15) * 2.0).floor() / 2.0).clamp(0.0, 99.5);
    let months = c.months;
    let e = err::<DrawingAreaErrorKind<DB::ErrorType>>(&c.stem);
    root.fill(&WHITE).map_err(&e)?;
    let n = months.len().max(1);
    let mut chart = ChartBuilder::on(root)
        .caption(&c.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), y0..100.0f64)
        .map_err(&e)?;
    chart
        .configure_mesh()
        .x_labels(n)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                months.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("RPL %")
        .y_label_formatter(&|y| format!("{y:.1}"))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(&e)?;
    let span = (-0.5, n as f64 - 0.5);
    for (level, name, colour, dash) in [
        (c.tpl, "TPL", TPL_COLOUR, 10),
        (c.mpl, "MPL", MPL_COLOUR, 4),
    ] {
        if let Some(v) = level {
            chart
                .draw_series(DashedLineSeries::new(
                    [(span.0, v), (span.1, v)],
                    dash,
                    4,
                    colour.stroke_width(2),
                ))
                .map_err(&e)?
                .label(format!("{name} {v}"))
                // The legend's sample dashed as the line is.
                .legend(move |(x, y)| {
                    let d = dash.min(8);
                    EmptyElement::at((x, y))
                        + PathElement::new([(0, 0), (d, 0)], colour.stroke_width(2))
                        + PathElement::new([(d + 3, 0), (2 * d + 3, 0)], colour.stroke_width(2))
                });
        }
    }
    for s in &c.series {
        let colour = s.colour;
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                colour.stroke_width(2),
            ))
            .map_err(&e)?
            .label(s.name.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2)));
        chart
            .draw_series(s.points.iter().map(|p| Circle::new(*p, 3, colour.filled())))
            .map_err(&e)?;
    }
    legend(&mut chart, SeriesLabelPosition::LowerLeft).map_err(&e)
}

/// Draws the response-time distribution chart.
pub(crate) fn rt(c: &RtChart) -> Result<Chart, ReportError> {
    both(c.stem.clone(), c.title.clone(), c).map_err(ReportError::Chart)
}

/// Tick marks a reader knows, from 10 ms to a day.
const TIME_TICKS_MS: [f64; 9] = [
    10.0,
    100.0,
    1_000.0,
    10_000.0,
    60_000.0,
    600_000.0,
    3_600_000.0,
    21_600_000.0,
    86_400_000.0,
];

fn draw_rt<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, c: &RtChart) -> Result<(), String> {
    let e = err::<DrawingAreaErrorKind<DB::ErrorType>>(&c.stem);
    root.fill(&WHITE).map_err(&e)?;
    let xs = || {
        c.series
            .iter()
            .flat_map(|s| s.points.iter().filter(|p| p.1 > 0.0).map(|p| p.0))
    };
    let longest = xs()
        .chain(c.trts_ms.iter().map(|t| *t as f64))
        .fold(1_000.0f64, f64::max);
    let shortest = xs().fold(f64::INFINITY, f64::min);
    // From the decade below the fastest answer to a little past the slowest (or the TRT).
    let x0 = if shortest.is_finite() {
        10f64.powf(shortest.max(10.0).log10().floor())
    } else {
        10.0
    };
    let x1 = (longest * 1.5).max(x0 * 100.0);
    // The part that matters is the top: the share answered by the TRT. The y axis starts
    // below the lowest curve at the first TRT, so a region a point behind shows.
    let first_trt = c.trts_ms.first().map(|t| *t as f64).unwrap_or(x1);
    let at_trt = c
        .series
        .iter()
        .filter_map(|s| {
            s.points
                .iter()
                .rev()
                .find(|p| p.0 <= first_trt)
                .map(|p| p.1)
        })
        .fold(100.0f64, f64::min);
    let y0 = (((at_trt - 5.0) / 5.0).floor() * 5.0).clamp(0.0, 95.0);
    let ticks: Vec<f64> = TIME_TICKS_MS
        .iter()
        .copied()
        .filter(|t| t.is_finite() && *t >= x0 && *t <= x1)
        .collect();
    let mut chart = ChartBuilder::on(root)
        .caption(&c.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d((x0..x1).log_scale().with_key_points(ticks), y0..100f64)
        .map_err(&e)?;
    chart
        .configure_mesh()
        .x_desc("response time (log scale)")
        .y_desc("answered %")
        .x_label_formatter(&|ms| human_ms(*ms))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(&e)?;
    for t in &c.trts_ms {
        let x = (*t as f64).clamp(x0, x1);
        chart
            .draw_series(DashedLineSeries::new(
                [(x, y0), (x, 100.0)],
                6,
                4,
                TRT_COLOUR.stroke_width(2),
            ))
            .map_err(&e)?
            .label(format!("TRT {}", human_ms(*t as f64)))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], TRT_COLOUR.stroke_width(2)));
    }
    for s in &c.series {
        let colour = s.colour;
        chart
            .draw_series(LineSeries::new(
                above_floor(&s.points, y0)
                    .into_iter()
                    .map(|(x, y)| (x.clamp(x0, x1), y)),
                colour.stroke_width(2),
            ))
            .map_err(&e)?
            .label(s.name.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2)));
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight).map_err(&e)
}

/// A cumulative curve's points at or above the axis floor `y0`, entering where it crosses the
/// floor (interpolated on the log time axis): drawn clamped, the share answered before then
/// ran flat along the floor as if it were `y0` (issue 33).
fn above_floor(points: &[(f64, f64)], y0: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(points.len());
    let mut before: Option<(f64, f64)> = None;
    for &(x, y) in points {
        if y < y0 {
            before = Some((x, y));
            continue;
        }
        if let Some((bx, by)) = before.take()
            && out.is_empty()
            && bx > 0.0
            && x > 0.0
            && y > by
        {
            let t = (y0 - by) / (y - by);
            out.push(((bx.ln() + t * (x.ln() - bx.ln())).exp(), y0));
        }
        out.push((x, y));
    }
    out
}

/// The legend box, the same on every chart.
fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    at: SeriesLabelPosition,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    chart
        .configure_series_labels()
        .position(at)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 13))
        .draw()
}

/// `250 ms`, `2 s`, `5 min`, `1 h`: axis labels for a log time axis.
pub(crate) fn human_ms(ms: f64) -> String {
    if ms < 1_000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("{} s", trim(ms / 1_000.0))
    } else if ms < 3_600_000.0 {
        format!("{} min", trim(ms / 60_000.0))
    } else {
        format!("{} h", trim(ms / 3_600_000.0))
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

/// The charts of a year: per configured measure with requests in it, the monthly RPL per
/// region (against its TPL and MPL when it has them); per TRT measure, the response-time
/// distribution of the latest month with requests, per region, with its TRTs marked.
pub(crate) fn charts(y: &Year) -> Result<Vec<Chart>, ReportError> {
    let labels: Vec<String> = y.months.iter().map(|m| month_label(*m)).collect();
    let to_f64 = |d: rust_decimal::Decimal| d.to_string().parse::<f64>().ok();
    let mut out = Vec::new();
    for (mi, m) in y.defs.measures.iter().enumerate() {
        let lines: Vec<&RplLine> = y.lines.iter().filter(|l| l.measure == m.id).collect();
        if lines.is_empty() {
            continue;
        }
        let series = REGIONS
            .iter()
            .map(|r| Series {
                name: (*r).to_string(),
                colour: region_colour(r),
                points: lines
                    .iter()
                    .filter(|l| l.region == *r)
                    .filter_map(|l| {
                        let i = y.months.iter().position(|x| *x == l.month)?;
                        Some((i as f64, l.rpl.parse::<f64>().ok()?))
                    })
                    .collect(),
            })
            .filter(|s| !s.points.is_empty())
            .collect();
        let what = match m.basis {
            Basis::Trt => "within TRT",
            Basis::Success => "succeeded",
        };
        out.push(rpl(&RplChart {
            stem: format!("rpl-{}", m.id),
            title: format!("{} {}: monthly RPL ({what}), {}", m.id, m.name, y.label),
            months: &labels,
            series,
            tpl: m.tpl.and_then(to_f64),
            mpl: m.mpl.and_then(to_f64),
        })?);
        if m.basis != Basis::Trt {
            continue;
        }
        let Some(month) = lines.iter().map(|l| l.month).max() else {
            continue;
        };
        let Some((_, _, block)) = y
            .aggregates
            .blocks()
            .into_iter()
            .find(|(bm, bi, _)| *bm == month && *bi as usize == mi)
        else {
            continue;
        };
        let series = REGIONS
            .iter()
            .zip(&block.regions)
            .map(|(r, row)| Series {
                name: (*r).to_string(),
                colour: region_colour(r),
                points: row.answered_curve(),
            })
            .filter(|s| !s.points.is_empty())
            .collect();
        out.push(rt(&RtChart {
            stem: format!("rt-{}-{month}", m.id),
            title: format!("{} response times, {}", m.id, month_label(month)),
            series,
            trts_ms: measure_trts_ms(y.defs, m),
        })?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A year's RPL chart of one region's points against TPL 99 and MPL 96.
    fn year_chart(region: &str, points: Vec<(f64, f64)>) -> Chart {
        let months: Vec<String> = (1..=12).map(|m| format!("M{m}")).collect();
        rpl(&RplChart {
            stem: "rpl-X".into(),
            title: "X".into(),
            months: &months,
            series: vec![Series {
                name: region.into(),
                colour: region_colour(region),
                points,
            }],
            tpl: Some(99.0),
            mpl: Some(96.0),
        })
        .unwrap()
    }

    #[test]
    fn charts_come_out_as_svg_and_png_of_the_stated_size() {
        let c = year_chart("north", vec![(0.0, 99.5), (1.0, 98.0), (3.0, 99.9)]);
        assert!(c.svg.starts_with("<svg"), "{}", &c.svg[..40]);
        assert!(c.svg.contains("TPL 99"), "legend names the TPL");
        let dec = png::Decoder::new(std::io::Cursor::new(&c.png));
        let reader = dec.read_info().unwrap();
        let info = reader.info();
        assert_eq!((info.width, info.height), SIZE);
        let r = rt(&RtChart {
            stem: "rt-X".into(),
            title: "X".into(),
            series: vec![Series {
                name: "south".into(),
                colour: region_colour("south"),
                points: vec![(120.0, 10.0), (2_000.0, 90.0), (40_000.0, 100.0)],
            }],
            trts_ms: vec![25_000],
        })
        .unwrap();
        assert!(r.svg.contains("TRT 25 s"));
    }

    #[test]
    fn a_curve_enters_at_the_floor_where_it_crosses_it_and_never_runs_along_it() {
        let points = [
            (100.0, 10.0),
            (1_000.0, 50.0),
            (10_000.0, 95.0),
            (20_000.0, 99.0),
        ];
        let drawn = above_floor(&points, 90.0);
        assert_eq!(drawn.len(), 3, "{drawn:?}");
        assert_eq!(drawn[0].1, 90.0);
        assert!(drawn[0].0 > 1_000.0 && drawn[0].0 < 10_000.0, "{drawn:?}");
        assert_eq!(&drawn[1..], &points[2..]);
        // Nothing below the floor: drawn as it is.
        assert_eq!(above_floor(&points[2..], 90.0), points[2..].to_vec());
    }

    /// Issue 33: a level line must not be taken for a region's series, and a value far below
    /// the levels is drawn where it is, not on a floor.
    #[test]
    fn the_levels_are_apart_from_every_series_and_a_deep_dip_stays_in_range() {
        let hex = |c: RGBColor| format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2);
        let far = |a: RGBColor, b: RGBColor| {
            let d = |x: u8, y: u8| (i32::from(x) - i32::from(y)).abs();
            d(a.0, b.0) + d(a.1, b.1) + d(a.2, b.2) > 120
        };
        for level in [TPL_COLOUR, MPL_COLOUR] {
            for region in ["north", "central", "south", "all"] {
                assert!(far(level, region_colour(region)), "{region}");
            }
        }
        let c = year_chart("central", vec![(0.0, 99.5), (1.0, 62.0)]);
        assert!(c.svg.contains(&hex(TPL_COLOUR)), "the TPL line is drawn");
        // The y axis reaches below the dip: its lowest label is under 62.
        let labels: Vec<f64> = c
            .svg
            .split('>')
            .filter_map(|t| t.split('<').next())
            .filter_map(|t| t.trim().parse::<f64>().ok())
            .collect();
        let lowest = labels.iter().copied().fold(f64::INFINITY, f64::min);
        assert!(lowest < 62.0, "{labels:?}");
    }

    #[test]
    fn time_labels_read_naturally() {
        assert_eq!(human_ms(250.0), "250 ms");
        assert_eq!(human_ms(25_000.0), "25 s");
        assert_eq!(human_ms(1_500.0), "1.5 s");
        assert_eq!(human_ms(300_000.0), "5 min");
        assert_eq!(human_ms(86_400_000.0), "24 h");
    }
}
