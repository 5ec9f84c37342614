//! Drawing one frame of the live view from a [`Model`] and the keys' state ([`Ui`]): header,
//! chart, groups table, latest opens and closes, key line, and the help and detail popups.
//!
//! Colours are the Okabe–Ito palette, which stays distinguishable with the common forms of
//! colour blindness; a leak is never told by colour alone (its rows say `LEAK`, its lines
//! are named in the legend), and without colour (`NO_COLOR`) bold and reverse carry it.

use super::model::{GroupRow, Model, SPARK_POINTS, SortBy, Standing, sort_rows};
use crate::report::human;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Cell, Chart, Clear, Dataset, GraphType, Paragraph, Row, Table,
    TableState, Wrap,
};

/// What the keys have set.
#[derive(Debug, Clone, Default)]
pub struct Ui {
    pub paused: bool,
    pub sort: SortBy,
    pub filter: String,
    /// Typing a filter after `/`.
    pub editing: bool,
    /// Index of the selected row among those shown.
    pub selected: usize,
    pub detail: bool,
    pub help: bool,
    pub color: bool,
}

const BLUE: Color = Color::Rgb(0, 114, 178);
const SKY: Color = Color::Rgb(86, 180, 233);
const GREEN: Color = Color::Rgb(0, 158, 115);
const PURPLE: Color = Color::Rgb(204, 121, 167);
const VERMILLION: Color = Color::Rgb(213, 94, 0);
const ORANGE: Color = Color::Rgb(230, 159, 0);
const YELLOW: Color = Color::Rgb(240, 228, 66);
const GREY: Color = Color::Rgb(150, 150, 150);

/// Process lines and leak lines never share a colour: blues and greens for totals, warm
/// colours for leaks.
const PROC_COLORS: [Color; 4] = [SKY, GREEN, BLUE, YELLOW];
const LEAK_COLORS: [Color; 3] = [VERMILLION, ORANGE, PURPLE];
/// The projection and the limit: neutral, told apart by their marks (dots, a solid bar).
const PROJECTION: Color = Color::Rgb(200, 200, 200);
const LIMIT: Color = Color::Rgb(235, 235, 235);

struct Paint {
    color: bool,
}

impl Paint {
    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }
    fn leak(&self) -> Style {
        if self.color {
            Style::default().fg(VERMILLION).add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        }
    }
    fn dim(&self) -> Style {
        if self.color {
            Style::default().fg(GREY)
        } else {
            Style::default()
        }
    }
    fn bar(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
}

/// The rows shown: filtered, in the chosen order.
pub fn shown_rows(model: &Model, ui: &Ui) -> Vec<GroupRow> {
    let mut rows: Vec<GroupRow> = model
        .groups
        .iter()
        .filter(|g| g.matches(&ui.filter))
        .cloned()
        .collect();
    sort_rows(&mut rows, ui.sort);
    rows
}

/// Draw the whole screen.
pub fn draw(f: &mut Frame, model: &Model, ui: &Ui) {
    let paint = Paint { color: ui.color };
    let area = f.area();
    let h = area.height;
    let chart_h = if h >= 30 {
        h * 35 / 100
    } else {
        (h / 3).max(5)
    };
    let [head, chart, body, foot] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(chart_h),
        Constraint::Min(4),
        Constraint::Length(1),
    ])
    .areas(area);
    let rows = shown_rows(model, ui);
    let selected = ui.selected.min(rows.len().saturating_sub(1));
    header(f, head, model, ui, &paint);
    draw_chart(f, chart, model, &paint);
    // Keys are long (paths, endpoints): the table gets the whole width, and the latest
    // opens and closes sit beside it only on a very wide terminal.
    if body.width >= 160 {
        let [table, events] =
            Layout::horizontal([Constraint::Percentage(64), Constraint::Percentage(36)])
                .areas(body);
        groups_table(f, table, model, &rows, selected, &paint);
        events_pane(f, events, model, &paint);
    } else {
        let ev_h = (body.height / 3).clamp(3, 8);
        let [table, events] =
            Layout::vertical([Constraint::Min(3), Constraint::Length(ev_h)]).areas(body);
        groups_table(f, table, model, &rows, selected, &paint);
        events_pane(f, events, model, &paint);
    }
    footer(f, foot, ui, &paint);
    if ui.detail
        && let Some(row) = rows.get(selected)
    {
        detail(f, area, row, &paint);
    }
    if ui.help {
        help(f, area);
    }
}

fn percent(fds: u64, limit: Option<u64>) -> Option<f64> {
    limit
        .filter(|&l| l > 0)
        .map(|l| fds as f64 * 100.0 / l as f64)
}

fn header(f: &mut Frame, area: Rect, model: &Model, ui: &Ui, paint: &Paint) {
    let live: Vec<_> = model.procs.iter().filter(|p| !p.exited).collect();
    let fds: u64 = live.iter().map(|p| p.fds).sum();
    let mut first = vec![Span::styled(
        "fdiff ",
        Style::default().add_modifier(Modifier::BOLD),
    )];
    let who = match model.procs.as_slice() {
        [] => "waiting for a process".to_owned(),
        [p] => format!(
            "pid {} ({}){}",
            p.pid,
            p.comm,
            if p.exited { " exited" } else { "" }
        ),
        many => {
            let mut comms: Vec<(&str, usize)> = Vec::new();
            for p in many {
                match comms.iter_mut().find(|c| c.0 == p.comm) {
                    Some(c) => c.1 += 1,
                    None => comms.push((&p.comm, 1)),
                }
            }
            let names: Vec<String> = comms
                .iter()
                .take(3)
                .map(|(c, n)| {
                    if *n > 1 {
                        format!("{c} ×{n}")
                    } else {
                        (*c).to_owned()
                    }
                })
                .collect();
            let more = if comms.len() > 3 { ", …" } else { "" };
            format!(
                "{} processes, {} live ({}{more})",
                many.len(),
                live.len(),
                names.join(", ")
            )
        }
    };
    first.push(Span::raw(format!("· {who} · {} fds", human::count(fds))));
    let worst = live
        .iter()
        .filter_map(|p| percent(p.fds, p.soft_limit).map(|pc| (pc, p.soft_limit)))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((pc, Some(limit))) = worst {
        let of = if live.len() > 1 { "max " } else { "" };
        first.push(Span::raw(format!(
            " ({of}{pc:.1}% of {})",
            human::count(limit)
        )));
    }
    // Narrow: the same facts in fewer words, so the line is not cut.
    if area.width >= 100 {
        first.push(Span::raw(format!(
            " · {} elapsed · every {} · tick {}",
            human::duration(model.elapsed),
            human::interval(model.interval),
            model.ticks
        )));
    } else {
        first.push(Span::raw(format!(
            " · {} every {}",
            human::duration(model.elapsed),
            human::interval(model.interval),
        )));
    }
    let leaks: Vec<&GroupRow> = model
        .groups
        .iter()
        .filter(|g| g.standing == Standing::Leak)
        .collect();
    let mut second = Vec::new();
    if leaks.is_empty() {
        let growing = model
            .groups
            .iter()
            .filter(|g| g.standing == Standing::Growing)
            .count();
        second.push(Span::styled(" no leak so far ", paint.fg(GREEN)));
        if growing > 0 {
            second.push(Span::raw(format!(
                "· {growing} group{} growing, not judged a leak yet",
                if growing == 1 { "" } else { "s" }
            )));
        }
    } else {
        let rate: f64 = leaks.iter().map(|g| g.rate).sum();
        second.push(Span::styled(
            " LEAK ",
            paint.leak().add_modifier(Modifier::REVERSED),
        ));
        second.push(Span::styled(
            format!(
                " {} group{} leak{}, {} in all",
                leaks.len(),
                if leaks.len() == 1 { "" } else { "s" },
                if leaks.len() == 1 { "s" } else { "" },
                human::rate(rate)
            ),
            paint.leak(),
        ));
        let nearest = live
            .iter()
            .filter_map(|p| p.eta_secs.map(|e| (e, p)))
            .min_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((eta, p)) = nearest {
            second.push(Span::raw(format!(
                " · pid {} ({}) reaches its limit in ~{}",
                p.pid,
                p.comm,
                human::duration(eta)
            )));
        }
    }
    if ui.paused {
        second.push(Span::styled(" PAUSED (sampling goes on) ", paint.bar()));
    }
    if let Some(e) = &model.ended {
        second.push(Span::styled(format!(" {e} "), paint.bar()));
    }
    if let Some(w) = model.warnings.last() {
        second.push(Span::styled(
            format!(" warning: {}", crate::util::escape_control(w)),
            paint.fg(ORANGE),
        ));
    }
    f.render_widget(
        Paragraph::new(vec![Line::from(first), Line::from(second)]),
        area,
    );
}

/// One line of the chart: its legend name, points, style and marker.
type Series = (String, Vec<(f64, f64)>, Style, Marker);

fn draw_chart(f: &mut Frame, area: Rect, model: &Model, paint: &Paint) {
    let elapsed = model.elapsed.max(model.interval).max(1e-3);
    let horizon = (elapsed * 0.25).max(model.interval * 4.0);
    let x_max = elapsed + horizon;
    let mut y_max: f64 = 1.0;
    let mut series: Vec<Series> = Vec::new();
    let shown_procs: Vec<_> = model
        .procs
        .iter()
        .filter(|p| !p.history.is_empty())
        .collect();
    // More processes than colours: their sum, as one line.
    if shown_procs.len() > PROC_COLORS.len() {
        let parts: Vec<Vec<(f64, f64)>> = shown_procs.iter().map(|p| p.history.clone()).collect();
        let n = 200;
        let sum = super::model::resample(&parts, elapsed, n);
        let pts = sum
            .into_iter()
            .enumerate()
            .map(|(i, y)| (elapsed * (i as f64 + 0.5) / n as f64, y))
            .collect();
        series.push((
            format!("{} processes, total fds", shown_procs.len()),
            pts,
            paint.fg(SKY),
            Marker::Braille,
        ));
    } else {
        for (i, p) in shown_procs.iter().enumerate() {
            series.push((
                format!("pid {} all fds", p.pid),
                p.history.clone(),
                paint.fg(PROC_COLORS[i % PROC_COLORS.len()]),
                Marker::Braille,
            ));
        }
    }
    for (i, g) in model
        .groups
        .iter()
        .filter(|g| g.standing == Standing::Leak && !g.timeline.is_empty())
        .take(LEAK_COLORS.len())
        .enumerate()
    {
        let name: String = format!("LEAK {} {}", g.kind, g.key)
            .chars()
            .take(36)
            .collect();
        series.push((
            name,
            g.timeline.clone(),
            paint.fg(LEAK_COLORS[i]).add_modifier(Modifier::BOLD),
            Marker::Braille,
        ));
    }
    for s in &series {
        for &(_, y) in &s.1 {
            y_max = y_max.max(y);
        }
    }
    // The ETA projection of each leaking process, and its limit when the line gets near it.
    let mut limit_line = None;
    for p in model
        .procs
        .iter()
        .filter(|p| !p.exited && p.leak_rate > 0.0)
    {
        let end = p.fds as f64 + p.leak_rate * horizon;
        let (x_end, y_end) = match p.soft_limit {
            Some(l) if end >= l as f64 => {
                (elapsed + (l as f64 - p.fds as f64) / p.leak_rate, l as f64)
            }
            _ => (x_max, end),
        };
        series.push((
            format!("pid {} projected", p.pid),
            line_points((elapsed, p.fds as f64), (x_end, y_end), 24),
            paint.fg(PROJECTION),
            Marker::Dot,
        ));
        y_max = y_max.max(y_end);
        if let Some(l) = p.soft_limit
            && (end >= l as f64 * 0.5 || p.fds as f64 >= l as f64 * 0.5)
        {
            limit_line = Some(limit_line.map_or(l, |m: u64| m.min(l)));
        }
    }
    for p in model.procs.iter().filter(|p| !p.exited) {
        if let Some(l) = p.soft_limit
            && p.fds as f64 >= l as f64 * 0.5
        {
            limit_line = Some(limit_line.map_or(l, |m: u64| m.min(l)));
        }
    }
    if let Some(l) = limit_line {
        series.push((
            format!("soft limit {}", human::count(l)),
            line_points((0.0, l as f64), (x_max, l as f64), 60),
            paint.fg(LIMIT),
            Marker::HalfBlock,
        ));
        y_max = y_max.max(l as f64);
    }
    let y_top = nice_ceiling(y_max * 1.1);
    let datasets: Vec<Dataset> = series
        .iter()
        .map(|(name, pts, style, marker)| {
            Dataset::default()
                .name(name.clone())
                .marker(*marker)
                .graph_type(GraphType::Line)
                .style(*style)
                .data(pts)
        })
        .collect();
    // The legend is a line above the plot (two when it does not fit): ratatui's boxed
    // legend would hide the lines.
    let legend_w: usize = series.iter().map(|s| s.0.chars().count() + 6).sum();
    let legend_h = if legend_w > area.width as usize { 3 } else { 2 };
    let [legend_area, plot_area] =
        Layout::vertical([Constraint::Length(legend_h), Constraint::Min(2)]).areas(area);
    let mut legend = Vec::new();
    for (name, _, style, marker) in &series {
        let sym = match marker {
            Marker::Dot => "•• ",
            Marker::HalfBlock => "▀▀ ",
            _ => "━━ ",
        };
        legend.push(Span::styled(sym, *style));
        legend.push(Span::raw(format!("{name}   ")));
    }
    f.render_widget(
        Paragraph::new(vec![
            Line::styled(
                " open fds over time (dotted: projected at the leak rate) ",
                Style::default().add_modifier(Modifier::BOLD),
            ),
            Line::from(legend),
        ])
        .wrap(Wrap { trim: false }),
        legend_area,
    );
    let xl = |x: f64| Span::raw(human::duration(x));
    let yl = |y: f64| Span::raw(human::count(y.round() as u64));
    let chart = Chart::new(datasets)
        .x_axis(
            Axis::default()
                .title("time")
                .style(paint.dim())
                .bounds([0.0, x_max])
                .labels(vec![xl(0.0), xl(elapsed), xl(x_max)]),
        )
        .y_axis(
            Axis::default()
                .title("fds")
                .style(paint.dim())
                .bounds([0.0, y_top])
                .labels(vec![yl(0.0), yl(y_top / 2.0), yl(y_top)]),
        )
        .legend_position(None);
    f.render_widget(chart, plot_area);
}

fn line_points(a: (f64, f64), b: (f64, f64), n: usize) -> Vec<(f64, f64)> {
    (0..=n)
        .map(|i| {
            let k = i as f64 / n as f64;
            (a.0 + (b.0 - a.0) * k, a.1 + (b.1 - a.1) * k)
        })
        .collect()
}

/// 1, 2 or 5 times a power of ten, at least `v`: round axis labels.
fn nice_ceiling(v: f64) -> f64 {
    if !v.is_finite() || v <= 1.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

fn spark(v: &[f64], width: usize) -> String {
    if v.is_empty() || width == 0 {
        return String::new();
    }
    let picked: Vec<f64> = (0..width.min(v.len()))
        .map(|i| v[i * v.len() / width.min(v.len())])
        .collect();
    human::sparkline(&picked)
}

/// `anon_inode` as `anon` in a narrow column.
fn short_kind(kind: &str, width: u16) -> String {
    if kind.len() <= width as usize {
        kind.to_owned()
    } else if kind == "anon_inode" {
        "anon".to_owned()
    } else {
        kind.chars().take(width as usize).collect()
    }
}

fn groups_table(
    f: &mut Frame,
    area: Rect,
    model: &Model,
    rows: &[GroupRow],
    selected: usize,
    paint: &Paint,
) {
    let wide = area.width >= 100;
    let spark_w: u16 = if wide { SPARK_POINTS as u16 } else { 10 };
    let kind_w: u16 = if wide { 10 } else { 6 };
    let mut header = vec!["verdict", "kind", "key", "count"];
    if wide {
        header.push("opened/closed");
    }
    header.extend(["rate", "trend"]);
    let mut widths = vec![
        Constraint::Length(7),
        Constraint::Length(kind_w),
        Constraint::Fill(1),
        Constraint::Length(6),
    ];
    if wide {
        widths.push(Constraint::Length(13));
    }
    widths.extend([Constraint::Length(10), Constraint::Length(spark_w)]);
    let body: Vec<Row> = rows
        .iter()
        .map(|g| {
            let verdict_style = match g.standing {
                Standing::Leak => paint.leak(),
                Standing::Growing => paint.fg(ORANGE),
                Standing::Churn | Standing::Steady => paint.dim(),
                Standing::Falling => paint.fg(SKY),
            };
            let mut cells = vec![
                Cell::from(g.standing.label()).style(verdict_style),
                Cell::from(short_kind(&g.kind, kind_w)),
                Cell::from(g.key.clone()),
                Cell::from(human::count(g.count)),
            ];
            if wide {
                cells.push(Cell::from(format!("+{}/-{}", g.opened, g.closed)));
            }
            let trend_style = if g.standing == Standing::Leak {
                paint.fg(VERMILLION)
            } else {
                paint.fg(SKY)
            };
            cells.extend([
                Cell::from(human::rate(g.rate)),
                Cell::from(spark(&g.spark, spark_w as usize)).style(trend_style),
            ]);
            let mut row = Row::new(cells);
            // The tick a leak is found, the whole row says so.
            if g.leak_since == Some(model.ticks) {
                row = row.style(paint.leak().add_modifier(Modifier::REVERSED));
            }
            row
        })
        .collect();
    let title = format!(" groups: {} shown of {} ", rows.len(), model.groups.len());
    let table = Table::new(body, widths)
        .header(
            Row::new(header)
                .style(Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)),
        )
        .block(Block::default().borders(Borders::TOP).title(title))
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
        .highlight_symbol("›")
        .column_spacing(1);
    let mut state = TableState::default();
    if !rows.is_empty() {
        state.select(Some(selected));
    }
    f.render_stateful_widget(table, area, &mut state);
}

fn events_pane(f: &mut Frame, area: Rect, model: &Model, paint: &Paint) {
    let inner_h = area.height.saturating_sub(1) as usize;
    let lines: Vec<Line> = model
        .events
        .iter()
        .take(inner_h)
        .map(|e| {
            let mut spans = vec![Span::styled(
                format!("{:>6} ", human::duration(e.elapsed)),
                paint.dim(),
            )];
            if e.opened > 0 {
                spans.push(Span::styled(format!("+{}", e.opened), paint.fg(SKY)));
            }
            if e.closed > 0 {
                if e.opened > 0 {
                    spans.push(Span::raw("/"));
                }
                spans.push(Span::styled(format!("-{}", e.closed), paint.fg(ORANGE)));
            }
            spans.push(Span::raw(format!(" {} {}", e.kind, e.key)));
            if e.repeats > 1 {
                spans.push(Span::styled(format!(" ({} ticks)", e.repeats), paint.dim()));
            }
            Line::from(spans)
        })
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::TOP)
                .title(" latest opens (+) and closes (-), per group "),
        ),
        area,
    );
}

fn footer(f: &mut Frame, area: Rect, ui: &Ui, paint: &Paint) {
    let text = if ui.editing {
        format!(" filter: {}▏  (Enter keeps it, Esc clears it)", ui.filter)
    } else {
        let filter = if ui.filter.is_empty() {
            String::new()
        } else {
            format!(" [{}]", ui.filter)
        };
        format!(
            " q quit  p {}  s sort: {}  / filter{filter}  ↑↓ select  Enter detail  ? help",
            if ui.paused { "resume" } else { "pause" },
            ui.sort.label(),
        )
    };
    // Padded to the width, so the bar spans the row.
    let text = format!("{text:<w$}", w = area.width as usize);
    f.render_widget(Paragraph::new(text).style(paint.bar()), area);
}

fn popup(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width.saturating_sub(2)).max(10);
    let h = h.min(area.height.saturating_sub(2)).max(5);
    Rect {
        x: area.x + (area.width.saturating_sub(w)) / 2,
        y: area.y + (area.height.saturating_sub(h)) / 2,
        width: w.min(area.width),
        height: h.min(area.height),
    }
}

fn detail(f: &mut Frame, area: Rect, g: &GroupRow, paint: &Paint) {
    let r = popup(area, area.width * 9 / 10, area.height * 8 / 10);
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("{} ", g.standing.label()), paint.leak()),
            Span::raw(format!("{} {}", g.kind, g.key)),
        ]),
        Line::from(format!(
            "{} fds now · opened {} · closed {} · {}",
            human::count(g.count),
            human::count(g.opened),
            human::count(g.closed),
            human::rate(g.rate)
        )),
        Line::from(""),
        Line::styled(
            "per process: pid, command, fds now, opened/closed, rate",
            Style::default().add_modifier(Modifier::BOLD),
        ),
    ];
    for m in g.members.iter().take(12) {
        lines.push(Line::from(format!(
            "  {:>7} {:<16} {:>6}  +{}/-{}  {}{}",
            m.pid,
            m.comm,
            human::count(m.count),
            m.opened,
            m.closed,
            human::rate(m.rate),
            if m.leaking { "  LEAK" } else { "" }
        )));
    }
    if g.members.len() > 12 {
        lines.push(Line::from(format!("  … and {} more", g.members.len() - 12)));
    }
    lines.push(Line::from(""));
    lines.push(Line::styled(
        "examples (latest opened during the watch)",
        Style::default().add_modifier(Modifier::BOLD),
    ));
    if g.examples.is_empty() {
        lines.push(Line::from("  none opened since the watch began"));
    }
    for e in &g.examples {
        lines.push(Line::from(format!("  {e}")));
    }
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" group detail (Enter or Esc closes) ")),
        r,
    );
}

fn help(f: &mut Frame, area: Rect) {
    let keys = [
        ("q, Ctrl-C", "end the watch and print the report"),
        ("p", "pause the display (sampling goes on)"),
        ("s", "cycle the sort: growth, count, activity, key"),
        ("/", "filter groups by text (kind, key, command, pid)"),
        ("↑ ↓ PgUp PgDn", "select a group"),
        (
            "Enter",
            "the selected group's examples and per-process split",
        ),
        ("Esc", "close a popup, clear the filter"),
        ("?", "this help"),
    ];
    let lines: Vec<Line> = keys
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(
                    format!("{k:>14}  "),
                    Style::default().add_modifier(Modifier::BOLD),
                ),
                Span::raw(*what),
            ])
        })
        .collect();
    let r = popup(area, 70, keys.len() as u16 + 2);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" keys (any key closes) ")),
        r,
    );
}
