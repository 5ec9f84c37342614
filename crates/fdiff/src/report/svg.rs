//! The timeline chart: per process, its total fds and its groups over the watch (the model
//! the HTML page plots in the browser), and `--svg FILE`, the main chart drawn by plotters'
//! SVG backend.

use crate::track::Report;
use plotters::prelude::*;
use serde::Serialize;
use std::io::{self, Write};

/// Okabe-Ito colours, told apart by colour-blind readers too; leak and churn also differ in
/// weight and dash, never in colour alone.
pub const TOTAL: (u8, u8, u8) = (0, 0, 0);
/// Leaking groups: vermillion, then reddish purple, orange and bluish green.
pub const LEAK: [(u8, u8, u8); 4] = [(213, 94, 0), (204, 121, 167), (230, 159, 0), (0, 158, 115)];
/// Groups that do not leak (churn, steady): blue, drawn thin and faded (dashed in the page).
pub const OTHER: (u8, u8, u8) = (0, 114, 178);
/// The soft limit and the ETA projection.
pub const LIMIT: (u8, u8, u8) = (80, 80, 80);

/// Most groups drawn per chart besides the leaking ones (the largest by peak).
const OTHER_LINES: usize = 6;
/// Most processes charted in a page (leaking ones first).
pub const MAX_CHARTS: usize = 12;

/// One line of a chart: a group of the process.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    /// Index of the group in the report's `groups`.
    pub group: usize,
    pub label: String,
    pub leaking: bool,
    /// `[seconds since the watch began, count]`.
    pub points: Vec<(f64, f64)>,
}

/// One process's chart.
#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    pub pid: i32,
    pub comm: String,
    /// `[seconds since the watch began, total fds in its groups]`.
    pub total: Vec<(f64, f64)>,
    pub lines: Vec<Line>,
    /// Groups of the process not drawn (too many to read).
    pub hidden: usize,
    pub soft_limit: Option<u64>,
    /// The projection of a leak: from the last point at `rate` fds/s until `eta` seconds later.
    pub rate: f64,
    pub eta: Option<f64>,
    /// Draw the limit line: it is within reach (the leak's projection or the data get near).
    pub show_limit: bool,
}

/// The charts of a report: leaking processes first, then the most fds, at most [`MAX_CHARTS`].
pub fn charts(report: &Report) -> Vec<Chart> {
    let t0 = report.started_at.unwrap_or(0.0);
    let mut procs: Vec<&crate::track::ProcessReport> = report.processes.iter().collect();
    procs.sort_by(|a, b| {
        (b.leak_rate_per_sec > 0.0)
            .cmp(&(a.leak_rate_per_sec > 0.0))
            .then(b.fds_peak.cmp(&a.fds_peak))
            .then(a.pid.cmp(&b.pid))
    });
    procs
        .into_iter()
        .take(MAX_CHARTS)
        .map(|p| {
            let mut mine: Vec<(usize, &crate::track::GroupReport)> = report
                .groups
                .iter()
                .enumerate()
                .filter(|(_, g)| g.pid == p.pid && !g.timeline.is_empty())
                .collect();
            let total = sum_timelines(mine.iter().map(|(_, g)| g.timeline.as_slice()), t0);
            // Leaking groups first, then the largest.
            mine.sort_by(|a, b| {
                b.1.counts
                    .leaking
                    .cmp(&a.1.counts.leaking)
                    .then(b.1.counts.peak.cmp(&a.1.counts.peak))
                    .then(a.0.cmp(&b.0))
            });
            let leaking = mine.iter().filter(|(_, g)| g.counts.leaking).count();
            let shown = leaking + OTHER_LINES.min(mine.len() - leaking);
            let lines = mine
                .iter()
                .take(shown)
                .map(|(i, g)| Line {
                    group: *i,
                    label: if g.key.starts_with(g.kind.as_str()) {
                        g.key.clone()
                    } else {
                        format!("{} {}", g.kind.as_str(), g.key)
                    },
                    leaking: g.counts.leaking,
                    points: g.timeline.iter().map(|&(t, y)| (t - t0, y)).collect(),
                })
                .collect();
            let peak = total.iter().map(|p| p.1).fold(0.0, f64::max);
            let soft = p.fd_limit.soft;
            // The limit is drawn when it is within reach: the data get halfway there, or the
            // projection reaches it within the span the chart shows (see projection_secs).
            let duration = report.duration_secs.max(1.0);
            let show_limit = soft.is_some_and(|s| {
                peak >= 0.5 * s as f64 || p.eta_to_limit_secs.is_some_and(|e| e <= duration)
            });
            Chart {
                pid: p.pid,
                comm: p.comm.clone(),
                total,
                lines,
                hidden: mine.len() - shown,
                soft_limit: soft,
                rate: p.leak_rate_per_sec,
                eta: p.eta_to_limit_secs,
                show_limit,
            }
        })
        .collect()
}

/// The sum of timelines on the union of their times, relative to `t0`: a group counts 0
/// before its first point and its last value between and after its points.
fn sum_timelines<'a>(lines: impl Iterator<Item = &'a [(f64, f64)]>, t0: f64) -> Vec<(f64, f64)> {
    let lines: Vec<&[(f64, f64)]> = lines.collect();
    let mut times: Vec<f64> = lines.iter().flat_map(|l| l.iter().map(|p| p.0)).collect();
    times.sort_by(f64::total_cmp);
    times.dedup();
    let mut at = vec![0usize; lines.len()];
    times
        .into_iter()
        .map(|t| {
            let mut sum = 0.0;
            for (l, i) in lines.iter().zip(at.iter_mut()) {
                while *i < l.len() && l[*i].0 <= t {
                    *i += 1;
                }
                if *i > 0 {
                    sum += l[*i - 1].1;
                }
            }
            (round2(t - t0), round2(sum))
        })
        .collect()
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// How far the ETA projection is drawn past the end: up to the limit when it is near, else a
/// third of the watch (the line still shows where it heads).
pub fn projection_secs(c: &Chart, duration: f64) -> Option<f64> {
    let eta = c.eta?;
    (c.rate > 0.0).then(|| eta.min((duration / 3.0).max(eta.min(duration))))
}

/// A duration on an axis or in a label: `45s`, `2m30s`, `1h05m`.
pub fn short_time(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 if s.is_multiple_of(60) => format!("{}m", s / 60),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// `--svg FILE`: the main chart (the first of [`charts`]) alone, as SVG.
pub struct Svg;

impl super::ReportRenderer for Svg {
    fn report(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(render(report, (960, 480))?.as_bytes())
    }
}

fn rgb(c: (u8, u8, u8)) -> RGBColor {
    RGBColor(c.0, c.1, c.2)
}

/// The SVG text of the main chart.
pub fn render(report: &Report, size: (u32, u32)) -> io::Result<String> {
    let mut buf = String::new();
    let charts = charts(report);
    draw(&mut buf, charts.first(), report, size).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(buf)
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// One entry of the legend below the chart: its label, colour, width and dash.
struct Entry {
    label: String,
    color: RGBAColor,
    width: u32,
    dash: Option<(u32, u32)>,
}

fn draw(buf: &mut String, chart: Option<&Chart>, report: &Report, size: (u32, u32)) -> DrawResult {
    let Some(c) = chart else {
        let root = SVGBackend::with_string(buf, size).into_drawing_area();
        root.fill(&WHITE)?;
        root.draw(&Text::new(
            "no process was watched",
            (20, 40),
            ("sans-serif", 18).into_font(),
        ))?;
        root.present()?;
        return Ok(());
    };
    let duration = report.duration_secs.max(1.0);
    let proj = projection_secs(c, duration);
    let end_total = c.total.last().map_or(0.0, |p| p.1);
    let xmax = duration + proj.unwrap_or(0.0);
    let mut ymax = c.total.iter().map(|p| p.1).fold(1.0, f64::max);
    if let Some(p) = proj {
        ymax = ymax.max(end_total + c.rate * p);
    }
    if let (true, Some(s)) = (c.show_limit, c.soft_limit) {
        ymax = ymax.max(s as f64);
    }
    let ymax = ymax * 1.08;

    // The legend goes below the plot, in two columns, so it never hides a line.
    let mut entries = vec![Entry {
        label: "total fds".to_owned(),
        color: rgb(TOTAL).to_rgba(),
        width: 2,
        dash: None,
    }];
    for (i, l) in c.lines.iter().filter(|l| l.leaking).enumerate() {
        entries.push(Entry {
            label: format!("LEAK {}", label(&l.label)),
            color: rgb(LEAK[i % LEAK.len()]).to_rgba(),
            width: 3,
            dash: None,
        });
    }
    for l in c.lines.iter().filter(|l| !l.leaking) {
        entries.push(Entry {
            label: format!("{} (not leaking)", label(&l.label)),
            color: rgb(OTHER).mix(0.6),
            width: 1,
            dash: None,
        });
    }
    if let (true, Some(s)) = (c.show_limit, c.soft_limit) {
        entries.push(Entry {
            label: format!("soft limit {}", super::human::count(s)),
            color: rgb(LIMIT).to_rgba(),
            width: 2,
            dash: Some((10, 6)),
        });
    }
    if proj.is_some() {
        entries.push(Entry {
            label: match c.eta {
                Some(e) => format!(
                    "projection at {}: soft limit in ~{}",
                    super::human::rate(c.rate),
                    short_time(e)
                ),
                None => "projection".to_owned(),
            },
            color: rgb(LEAK[0]).to_rgba(),
            width: 2,
            dash: Some((3, 4)),
        });
    }
    let rows = entries.len().div_ceil(2) as u32;
    let legend_h = rows * 20 + 12;
    let root = SVGBackend::with_string(buf, (size.0, size.1 + legend_h)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(size.1);

    let verdict = if c.rate > 0.0 { "LEAK" } else { "no leak" };
    let caption = format!(
        "pid {} ({}): open fds over {}: {}",
        c.pid,
        crate::util::escape_control(&c.comm),
        short_time(report.duration_secs),
        verdict
    );
    let mut chart = ChartBuilder::on(&top)
        .caption(caption, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..xmax, 0f64..ymax)?;
    chart
        .configure_mesh()
        .x_desc("time since the watch began")
        .y_desc("open fds")
        .x_label_formatter(&|x| short_time(*x))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .max_light_lines(0)
        .bold_line_style(RGBColor(232, 232, 232))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .draw()?;
    // Other groups first, so leaks and the total are drawn over them.
    for l in c.lines.iter().filter(|l| !l.leaking) {
        // One polyline per group (a dashed series would be one element per dash): thin and
        // faded, where a leak is thick and solid.
        let style = rgb(OTHER).mix(0.6).stroke_width(1);
        chart.draw_series(LineSeries::new(l.points.iter().copied(), style))?;
    }
    for (i, l) in c.lines.iter().filter(|l| l.leaking).enumerate() {
        let style = rgb(LEAK[i % LEAK.len()]).stroke_width(3);
        chart.draw_series(LineSeries::new(l.points.iter().copied(), style))?;
    }
    chart.draw_series(LineSeries::new(
        c.total.iter().copied(),
        rgb(TOTAL).stroke_width(2),
    ))?;
    if let (true, Some(s)) = (c.show_limit, c.soft_limit) {
        chart.draw_series(DashedLineSeries::new(
            [(0.0, s as f64), (xmax, s as f64)],
            10,
            6,
            rgb(LIMIT).stroke_width(2),
        ))?;
    }
    if let Some(p) = proj {
        let from = c.total.last().map_or(duration, |q| q.0);
        chart.draw_series(DashedLineSeries::new(
            [(from, end_total), (from + p, end_total + c.rate * p)],
            3,
            4,
            rgb(LEAK[0]).stroke_width(2),
        ))?;
    }
    let col_w = (size.0 as i32 - 80) / 2;
    for (i, e) in entries.iter().enumerate() {
        let (x, y) = (80 + (i as i32 % 2) * col_w, 10 + (i as i32 / 2) * 20);
        let style = ShapeStyle {
            color: e.color,
            filled: false,
            stroke_width: e.width,
        };
        let line = [(x, y), (x + 28, y)];
        match e.dash {
            Some((d, g)) => bottom.draw(&plotters::element::DashedPathElement::new(
                line, d, g, style,
            ))?,
            None => bottom.draw(&PathElement::new(line, style))?,
        }
        bottom.draw(&Text::new(
            e.label.clone(),
            (x + 36, y - 7),
            ("sans-serif", 13).into_font(),
        ))?;
    }
    root.present()?;
    Ok(())
}

/// A legend label: escaped and cut to a width a legend can hold.
fn label(s: &str) -> String {
    let s = crate::util::escape_control(s).into_owned();
    if s.chars().count() > 48 {
        let cut: String = s.chars().take(47).collect();
        format!("{cut}…")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{FdLimit, Kind};
    use crate::track::{Counts, GroupReport, ProcessReport, REPORT_SCHEMA};

    const T0: f64 = 1_700_000_000.0;

    fn group(key: &str, kind: Kind, counts: Counts, f: impl Fn(f64) -> f64) -> GroupReport {
        GroupReport {
            pid: 4242,
            comm: "server".to_owned(),
            kind,
            key: key.to_owned(),
            counts,
            examples: vec![],
            series: vec![],
            timeline: (0..=20).map(|i| (T0 + i as f64, f(i as f64))).collect(),
            survivor_fds: vec![],
        }
    }

    /// A server 20 s into a leak of 40 fds/s toward a soft limit of 1,024, with a churning
    /// group and a steady one.
    pub(crate) fn leaking_report() -> Report {
        let leak = Counts {
            start: 0,
            end: 800,
            peak: 800,
            opened: 800,
            closed: 0,
            survivors: 800,
            rate_per_sec: 40.0,
            leaking: true,
        };
        let churn = Counts {
            start: 10,
            end: 10,
            peak: 14,
            opened: 300,
            closed: 300,
            survivors: 10,
            ..Counts::default()
        };
        let steady = Counts {
            start: 3,
            end: 3,
            peak: 3,
            ..Counts::default()
        };
        Report {
            schema: REPORT_SCHEMA.to_owned(),
            interval_secs: 1.0,
            duration_secs: 20.0,
            ticks: 21,
            achieved_interval_secs: Some(1.0),
            started_at: Some(T0),
            ended_at: Some(T0 + 20.0),
            processes: vec![ProcessReport {
                pid: 4242,
                comm: "server".to_owned(),
                cmdline: vec!["/usr/bin/server".to_owned(), "--port=80".to_owned()],
                start_time: 1,
                fd_limit: FdLimit {
                    soft: Some(1024),
                    hard: Some(4096),
                },
                fds_start: 13,
                fds_end: 813,
                fds_peak: 813,
                first_seen: T0,
                exited: false,
                exited_at: None,
                leak_rate_per_sec: 40.0,
                eta_to_limit_secs: Some(5.3),
                exited_at_fd_limit: false,
            }],
            groups: vec![
                group("/srv/upload-*.pdf", Kind::File, leak, |i| 40.0 * i),
                group("/tmp/churn-*.tmp", Kind::File, churn, |i| 10.0 + (i % 3.0)),
                group("pipe", Kind::Pipe, steady, |_| 3.0),
            ],
            rollup: vec![],
            leaking: true,
            unwatched: vec![],
            folded_processes: 0,
            stacks: None,
        }
    }

    /// What an SVG draws, without the axes' own ticks: each data line (a polyline of more
    /// than two points) with its stroke, width, opacity and point count; the short segments
    /// (dashes, legend samples) counted by stroke and width; every text.
    fn structure(svg: &str) -> String {
        let attr = |el: &str, name: &str| -> String {
            let pat = format!(" {name}=\"");
            el.find(&pat)
                .map(|i| {
                    let rest = &el[i + pat.len()..];
                    rest[..rest.find('"').unwrap_or(rest.len())].to_owned()
                })
                .unwrap_or_default()
        };
        let mut out = String::new();
        let mut segments: std::collections::BTreeMap<String, usize> = Default::default();
        for el in svg.split('<').skip(1) {
            if el.starts_with("polyline") {
                let n = attr(el, "points").split_whitespace().count();
                let (stroke, w) = (attr(el, "stroke"), attr(el, "stroke-width"));
                if n > 2 {
                    out.push_str(&format!(
                        "line stroke={stroke} width={w} opacity={} points={n}\n",
                        attr(el, "opacity")
                    ));
                } else if !(stroke == "#000000" && w == "1") {
                    *segments.entry(format!("{stroke} width={w}")).or_default() += 1;
                }
            } else if el.starts_with("text") {
                let t = el.split_once('>').map_or("", |x| x.1).trim();
                out.push_str(&format!("text {t}\n"));
            }
        }
        for (k, n) in segments {
            out.push_str(&format!("segments {k}: {n}\n"));
        }
        out
    }

    #[test]
    fn issue11_svg_structure_a_line_per_group_limit_and_projection() {
        let svg = render(&leaking_report(), (960, 480)).expect("render");
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
        let s = structure(&svg);
        // A line per group (two not leaking, thin and faded; the leak thick) and the total.
        let lines: Vec<&str> = s.lines().filter(|l| l.starts_with("line ")).collect();
        assert_eq!(lines.len(), 4, "{s}");
        assert!(
            s.contains("line stroke=#D55E00 width=3 opacity=1 points=21"),
            "{s}"
        );
        // The soft limit (dashed grey) and the projection (dotted vermillion) are drawn.
        assert!(s.contains("segments #505050 width=2"), "{s}");
        assert!(s.contains("segments #D55E00 width=2"), "{s}");
        assert!(s.contains("text soft limit 1,024"), "{s}");
        insta::assert_snapshot!(s);
    }

    #[test]
    fn issue11_svg_without_a_process_says_so() {
        let mut r = leaking_report();
        r.processes.clear();
        r.groups.clear();
        let svg = render(&r, (960, 480)).expect("render");
        assert!(svg.contains("no process was watched"));
    }

    #[test]
    fn issue11_total_sums_groups_on_the_union_of_times() {
        let a: Vec<(f64, f64)> = vec![(10.0, 1.0), (11.0, 2.0), (12.0, 3.0)];
        let b: Vec<(f64, f64)> = vec![(11.0, 5.0), (13.0, 4.0)];
        let t = sum_timelines([a.as_slice(), b.as_slice()].into_iter(), 10.0);
        assert_eq!(t, vec![(0.0, 1.0), (1.0, 7.0), (2.0, 8.0), (3.0, 7.0)]);
    }
}
