//! `--html FILE`: one self-contained page (no network fetch: inline CSS, SVG drawn by a little
//! inline JS from the data embedded in the page) with the verdict, a timeline per process,
//! the groups, roll-ups and what leaking groups left open.
//!
//! The page embeds the report exactly as `--format json` gives it (`#fdiff-report`), so the
//! page of a live watch and of `fdiff report` on its recording carry the same data.

use super::human;
use super::svg::{self, Chart};
use crate::track::Report;
use std::fmt::Write as _;
use std::io::{self, Write};

/// What the page says about how it was made, beside the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Meta {
    /// fdiff's version (with its commit).
    pub version: String,
    /// The fdiff command line that made the page.
    pub command_line: Vec<String>,
}

impl Meta {
    /// This process's own version and arguments.
    pub fn current() -> Meta {
        Meta {
            version: crate::cli::VERSION.to_owned(),
            command_line: std::env::args_os()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
        }
    }
}

/// Escape for HTML text and attribute values; control and bidi characters as fdiff escapes
/// them everywhere, so a target cannot reorder what the page shows.
fn esc(s: &str) -> String {
    let s = crate::util::escape_control(s);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON inside a `<script>`: `<` escaped so no text can close the element, bidi controls too.
fn script_json<T: serde::Serialize>(v: &T) -> io::Result<String> {
    fdiff_core::json::to_string(v, fdiff_core::json::Style::Script).map_err(io::Error::from)
}

fn utc(t: Option<f64>) -> String {
    let Some(t) = t else { return "-".to_owned() };
    let st = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(t.max(0.0));
    let s = humantime::format_rfc3339_seconds(st).to_string();
    s.replace('T', " ").replace('Z', " UTC")
}

/// Write the page.
pub fn write(report: &Report, meta: &Meta, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(page(report, meta)?.as_bytes())
}

/// The whole page as a string.
pub fn page(report: &Report, meta: &Meta) -> io::Result<String> {
    let charts = svg::charts(report);
    let mut h = String::with_capacity(64 << 10);
    let title = if report.leaking {
        "fdiff: LEAK"
    } else {
        "fdiff: no leak"
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{CSS}</style></head><body>\n"
    );
    summary(&mut h, report, meta);
    let _ = write!(h, "<h2>Timeline</h2>");
    if charts.is_empty() {
        let _ = write!(h, "<p>No process was watched.</p>");
    }
    for (i, c) in charts.iter().enumerate() {
        chart_section(&mut h, i, c, report);
    }
    if report.processes.len() > charts.len() {
        let _ = write!(
            h,
            "<p class=\"note\">{} more processes are not charted; every group is in the table.</p>",
            report.processes.len() - charts.len()
        );
    }
    groups_table(&mut h, report);
    stacks_section(&mut h, report);
    rollups_table(&mut h, report);
    survivors(&mut h, report);
    processes_table(&mut h, report);
    let _ = writeln!(
        h,
        "<footer>fdiff {} · <code>{}</code></footer>",
        esc(&meta.version),
        esc(&meta.command_line.join(" "))
    );
    let _ = write!(
        h,
        "<script type=\"application/json\" id=\"fdiff-report\">{}</script>\n\
         <script type=\"application/json\" id=\"fdiff-charts\">{}</script>\n\
         <script type=\"application/json\" id=\"fdiff-meta\">{}</script>\n\
         <script>{JS}</script>\n</body></html>\n",
        script_json(report)?,
        script_json(&charts)?,
        script_json(meta)?,
    );
    Ok(h)
}

fn summary(h: &mut String, r: &Report, meta: &Meta) {
    let leaks = r.groups.iter().filter(|g| g.counts.leaking).count();
    let rleaks = r.rollup.iter().filter(|g| g.counts.leaking).count();
    let (cls, verdict) = if r.leaking {
        let mut v = format!(
            "LEAK: {} leaking group{}",
            leaks,
            if leaks == 1 { "" } else { "s" }
        );
        if rleaks > 0 {
            let _ = write!(
                v,
                ", {rleaks} leaking roll-up{}",
                if rleaks == 1 { "" } else { "s" }
            );
        }
        ("leak", v)
    } else {
        ("ok", "no leak found".to_owned())
    };
    let _ = write!(
        h,
        "<header><h1>fdiff report <span id=\"verdict\" class=\"verdict {cls}\">{}</span></h1>",
        esc(&verdict)
    );
    let _ = write!(h, "<dl class=\"facts\">");
    let mut fact = |k: &str, v: String| {
        let _ = write!(h, "<div><dt>{k}</dt><dd>{v}</dd></div>");
    };
    fact("started", esc(&utc(r.started_at)));
    fact("watched for", esc(&human::duration(r.duration_secs)));
    let achieved = r
        .achieved_interval_secs
        .map(|a| format!(" (achieved {})", human::interval(a)))
        .unwrap_or_default();
    fact(
        "interval",
        esc(&format!("{}{achieved}", human::interval(r.interval_secs))),
    );
    fact("ticks", human::count(r.ticks));
    fact("processes", human::count(r.processes.len() as u64));
    fact("groups", human::count(r.groups.len() as u64));
    fact(
        "command line",
        format!("<code>{}</code>", esc(&meta.command_line.join(" "))),
    );
    fact("fdiff", esc(&meta.version));
    let _ = write!(h, "</dl>");
    for p in r.processes.iter().filter(|p| p.leak_rate_per_sec > 0.0) {
        let eta = p
            .eta_to_limit_secs
            .map(|e| {
                format!(
                    ", soft limit {} in ~{}",
                    limit(p.fd_limit.soft),
                    human::duration(e)
                )
            })
            .unwrap_or_default();
        let _ = write!(
            h,
            "<p class=\"leakline\">pid {} ({}) leaks {} fds: {} → {} fds{}</p>",
            p.pid,
            esc(&p.comm),
            human::rate(p.leak_rate_per_sec),
            p.fds_start,
            p.fds_end,
            esc(&eta)
        );
    }
    h.push_str("</header>\n");
}

fn limit(l: Option<u64>) -> String {
    l.map_or_else(|| "unlimited".to_owned(), human::count)
}

fn chart_section(h: &mut String, i: usize, c: &Chart, r: &Report) {
    let p = r.processes.iter().find(|p| p.pid == c.pid);
    let cmd = p.map(|p| p.cmdline.join(" ")).unwrap_or_default();
    let now = c.total.last().map_or(0.0, |q| q.1);
    let _ = write!(
        h,
        "<section class=\"proc\"><h3>pid {} ({}) <span class=\"sub\">{} fds at the end, soft limit {}{}</span></h3>\
         <p class=\"cmd\"><code>{}</code></p>\
         <div class=\"chartbox\"><svg class=\"chart\" id=\"chart-{i}\" data-chart=\"{i}\" viewBox=\"0 0 960 360\" role=\"img\" aria-label=\"open fds of pid {} over time\"></svg>\
         <div class=\"tip\" hidden></div></div><ul class=\"legend\" data-chart=\"{i}\"></ul>",
        c.pid,
        esc(&c.comm),
        now,
        limit(c.soft_limit),
        if c.show_limit { "" } else { " (off the chart)" },
        esc(&cmd),
        c.pid,
    );
    if c.hidden > 0 {
        let _ = write!(
            h,
            "<p class=\"note\">{} smaller groups of this process are not drawn.</p>",
            c.hidden
        );
    }
    h.push_str("</section>\n");
}

fn groups_table(h: &mut String, r: &Report) {
    let _ = write!(
        h,
        "<h2>Groups</h2><p class=\"note\">Click a row to show only that group in its chart; click again to show all.</p>\
         <table class=\"groups\"><thead><tr><th>verdict</th><th>pid</th><th>kind</th><th>key</th>\
         <th>start</th><th>end</th><th>peak</th><th>opened</th><th>closed</th><th>survivors</th>\
         <th>rate</th><th>examples</th></tr></thead><tbody>"
    );
    for (i, g) in r.groups.iter().enumerate() {
        let c = &g.counts;
        let verdict = if c.leaking {
            "LEAK"
        } else if c.opened > 0 && c.end <= c.start {
            "churn"
        } else {
            ""
        };
        let ex: Vec<String> = g
            .examples
            .iter()
            .map(|e| format!("<code>{}</code>", esc(e)))
            .collect();
        let _ = write!(
            h,
            "<tr class=\"{}\" data-group=\"{i}\" data-pid=\"{}\"><td>{verdict}</td><td>{}</td><td>{}</td><td class=\"key\">{}</td>\
             {}<td class=\"ex\">{}</td></tr>",
            if c.leaking { "leak" } else { "" },
            g.pid,
            g.pid,
            g.kind.as_str(),
            esc(&g.key),
            count_cells(c, Some(c.survivors)),
            ex.join("<br>")
        );
    }
    h.push_str("</tbody></table>\n");
}

/// The count cells a group row and a roll-up row share: start, end, peak, opened, closed,
/// survivors (groups only) and the rate, which only a leak shows.
fn count_cells(c: &crate::track::Counts, survivors: Option<u64>) -> String {
    let mut s = String::new();
    for n in [c.start, c.end, c.peak, c.opened, c.closed]
        .into_iter()
        .chain(survivors)
    {
        let _ = write!(s, "<td>{n}</td>");
    }
    let rate = if c.leaking {
        esc(&human::rate(c.rate_per_sec))
    } else {
        String::new()
    };
    let _ = write!(s, "<td>{rate}</td>");
    s
}

/// With `--stacks`: where each leaking group's surviving fds were opened, most common stack
/// first, and the stacks of its fds that were closed again beside them (the healthy path).
fn stacks_section(h: &mut String, r: &Report) {
    let Some(s) = &r.stacks else { return };
    let _ = write!(
        h,
        "<h2 id=\"stacks\">Where the leaking fds were opened</h2><p class=\"note\">{} opens captured \
         (capture {}); only fds still open at the end are attributed: survival tells the leaking \
         path from a healthy one that opens the same way.</p>",
        s.captured,
        if s.arming == "now" {
            "from the start"
        } else {
            "armed per process once a group leaked"
        }
    );
    if s.groups.is_empty() {
        let _ = write!(h, "<p>No leaking group.</p>");
    }
    for g in &s.groups {
        let _ = write!(
            h,
            "<section class=\"stacks\"><h3>pid {} {} <code>{}</code></h3>",
            g.pid,
            g.kind.as_str(),
            esc(&g.key)
        );
        if let Some(n) = &g.note {
            let _ = write!(h, "<p class=\"note\">{}</p>", esc(n));
        }
        for st in &g.survivor_stacks {
            let head = format!("{} of {} survivors opened at:", st.count, g.survivors);
            stack_list(h, &head, st, true);
        }
        for st in &g.closed_stacks {
            let head = format!("{} opened and closed again at:", st.count);
            stack_list(h, &head, st, false);
        }
        h.push_str("</section>\n");
    }
    if s.dropped_fds + s.dropped_stacks + s.unwind_failed > 0 {
        let _ = write!(
            h,
            "<p class=\"note\">Dropped: {} opens (fd map full), {} stacks (store full), {} not unwound.</p>",
            s.dropped_fds, s.dropped_stacks, s.unwind_failed
        );
    }
}

fn stack_list(h: &mut String, head: &str, st: &crate::track::stacks::StackCount, leak: bool) {
    let _ = write!(
        h,
        "<p class=\"{}\">{}</p><ol class=\"frames\">",
        if leak { "leak" } else { "healthy" },
        esc(head)
    );
    for f in &st.frames {
        let _ = write!(h, "<li><code>{}</code></li>", esc(&f.to_string()));
    }
    h.push_str("</ol>");
}

fn rollups_table(h: &mut String, r: &Report) {
    if r.rollup.is_empty() {
        return;
    }
    let _ = write!(
        h,
        "<h2>Roll-ups across processes</h2><table><thead><tr><th>verdict</th><th>command</th>\
         <th>processes</th><th>kind</th><th>key</th><th>start</th><th>end</th><th>peak</th>\
         <th>opened</th><th>closed</th><th>rate</th><th>note</th></tr></thead><tbody>"
    );
    for g in &r.rollup {
        let c = &g.counts;
        let mut note = String::new();
        if g.leaking_members > 0 {
            let _ = write!(note, "{} leaking members", g.leaking_members);
        }
        if g.masked_by_respawn {
            note.push_str("; masked by respawn");
        }
        if let Some(e) = g.eta_to_limit_secs {
            let _ = write!(note, "; limit in ~{}", human::duration(e));
        }
        let _ = write!(
            h,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"key\">{}</td>\
             {}<td>{}</td></tr>",
            if c.leaking { "leak" } else { "" },
            if c.leaking { "LEAK" } else { "" },
            esc(&g.comm),
            g.pids.len(),
            g.kind.as_str(),
            esc(&g.key),
            count_cells(c, None),
            esc(note.trim_start_matches("; "))
        );
    }
    h.push_str("</tbody></table>\n");
}

fn survivors(h: &mut String, r: &Report) {
    let leaking: Vec<_> = r.groups.iter().filter(|g| g.counts.leaking).collect();
    if leaking.is_empty() {
        return;
    }
    let _ = write!(
        h,
        "<h2>Opened during the watch and still open at its end</h2><p class=\"note\">What each \
         leaking group left behind: the fd numbers (look them up in <code>/proc/PID/fd</code>) and examples of their targets.</p>"
    );
    for g in leaking {
        let fds: Vec<String> = g.survivor_fds.iter().map(i32::to_string).collect();
        let more = g
            .counts
            .survivors
            .saturating_sub(g.survivor_fds.len() as u64);
        let _ = write!(
            h,
            "<div class=\"surv\"><h4>pid {} ({}) {} <code>{}</code>: {} survivors</h4><p>fds {}{}</p><p>{}</p></div>",
            g.pid,
            esc(&g.comm),
            g.kind.as_str(),
            esc(&g.key),
            g.counts.survivors,
            if fds.is_empty() {
                "-".to_owned()
            } else {
                fds.join(", ")
            },
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            },
            g.examples
                .iter()
                .map(|e| format!("<code>{}</code>", esc(e)))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
}

fn processes_table(h: &mut String, r: &Report) {
    let _ = write!(
        h,
        "<h2>Processes</h2><table><thead><tr><th>pid</th><th>command</th><th>fds start</th>\
         <th>end</th><th>peak</th><th>soft limit</th><th>leak rate</th><th>limit in</th><th>state</th></tr></thead><tbody>"
    );
    for p in &r.processes {
        let state = if p.exited_at_fd_limit {
            "exited at its fd limit"
        } else if p.exited {
            "exited"
        } else {
            "running"
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{state}</td></tr>",
            p.pid,
            esc(&p.cmdline.first().cloned().unwrap_or_else(|| p.comm.clone())),
            p.fds_start,
            p.fds_end,
            p.fds_peak,
            limit(p.fd_limit.soft),
            if p.leak_rate_per_sec > 0.0 {
                esc(&human::rate(p.leak_rate_per_sec))
            } else {
                String::new()
            },
            p.eta_to_limit_secs
                .map(|e| esc(&format!("~{}", human::duration(e))))
                .unwrap_or_default(),
        );
    }
    h.push_str("</tbody></table>\n");
    if r.folded_processes > 0 {
        let _ = write!(
            h,
            "<p class=\"note\">{} exited processes are folded into their roll-ups.</p>",
            r.folded_processes
        );
    }
}

const CSS: &str = r##"
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:16px 24px;color:#1a1a1a;background:#fff}
h1{font-size:26px;margin:4px 0 8px}h2{font-size:20px;margin:28px 0 8px;border-bottom:1px solid #ddd}h3{font-size:16px;margin:16px 0 2px}h4{margin:8px 0 2px;font-size:14px}
.verdict{font-size:18px;padding:2px 10px;border-radius:4px;vertical-align:middle;margin-left:8px}
.verdict.leak{background:#D55E00;color:#fff}.verdict.ok{background:#009E73;color:#fff}
.facts{display:flex;flex-wrap:wrap;gap:4px 28px;margin:6px 0}.facts div{display:flex;gap:6px}.facts dt{color:#666}.facts dd{margin:0;font-weight:600}
.leakline{margin:4px 0;font-weight:600;color:#8a3a00}.sub{font-weight:400;color:#555;font-size:14px}.cmd{margin:0;color:#555;font-size:13px}
.chartbox{position:relative}.chart{width:100%;height:auto;display:block;font:12px system-ui,sans-serif}
.chart .axis{stroke:#333;stroke-width:1}.chart .grid{stroke:#ebebeb}.chart text{fill:#333}
.tip{position:absolute;pointer-events:none;background:rgba(255,255,255,.95);border:1px solid #999;border-radius:4px;padding:4px 8px;font-size:12px;white-space:nowrap}
.legend{list-style:none;padding:0;margin:4px 0;display:flex;flex-wrap:wrap;gap:4px 18px;font-size:13px}
.legend li{cursor:pointer;display:flex;align-items:center;gap:6px}.legend li.off{opacity:.35}.legend svg{flex:none}
table{border-collapse:collapse;width:100%;font-size:13px;margin:6px 0}th,td{border-bottom:1px solid #e4e4e4;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td:nth-child(n+5):not(.ex){font-variant-numeric:tabular-nums}
tr.leak td:first-child{color:#fff;background:#D55E00;font-weight:700}tr.leak{background:#fff3ea}
table.groups tbody tr{cursor:pointer}tr.sel{outline:2px solid #0072B2}.key,.ex code{overflow-wrap:anywhere}.ex code{font-size:12px}
.note{color:#666;font-size:13px}footer{margin-top:32px;color:#777;font-size:12px;border-top:1px solid #ddd;padding-top:6px}
#fdiff-js-error{background:#fdd;border:2px solid #c00;padding:8px}
.stacks p.leak{font-weight:600;color:#8a3a00;margin:8px 0 2px}.stacks p.healthy{color:#555;margin:8px 0 2px}
ol.frames{margin:0 0 6px;padding-left:28px;font-size:12px}ol.frames code{overflow-wrap:anywhere}
"##;

/// Draws each chart from `#fdiff-charts`; a hover shows the time and counts at the nearest
/// point, a click on a legend entry or a group row shows only that group. An error anywhere
/// writes `#fdiff-js-error` into the page, which the browser test looks for.
const JS: &str = r##"
(function(){
"use strict";
function fail(msg){var d=document.getElementById("fdiff-js-error");if(!d){d=document.createElement("div");d.id="fdiff-js-error";document.body.insertBefore(d,document.body.firstChild);}d.textContent="fdiff page error: "+msg;}
window.onerror=function(m,src,l){fail(m+" (line "+l+")");};
var NS="http://www.w3.org/2000/svg";
var LEAK=["#D55E00","#CC79A7","#E69F00","#009E73"],OTHER="#0072B2",LIMIT="#505050";
function el(n,a,p){var e=document.createElementNS(NS,n);for(var k in a)e.setAttribute(k,a[k]);if(p)p.appendChild(e);return e;}
function st(s){s=Math.max(0,Math.round(s));if(s<60)return s+"s";if(s<3600)return Math.floor(s/60)+"m"+(s%60?(s%60<10?"0":"")+s%60+"s":"");return Math.floor(s/3600)+"h"+String(Math.floor(s%3600/60)).padStart(2,"0")+"m";}
function nice(max,n){var raw=max/n,p=Math.pow(10,Math.floor(Math.log10(raw))),f=raw/p;var s=f<=1?1:f<=2?2:f<=5?5:10;return s*p;}
function ticks(max,n){var s=nice(max||1,n),out=[];for(var v=0;v<=max+1e-9;v+=s)out.push(v);return out;}
function valueAt(pts,t){var v=null;for(var i=0;i<pts.length&&pts[i][0]<=t+1e-9;i++)v=pts[i][1];return v;}
var report=JSON.parse(document.getElementById("fdiff-report").textContent);
var charts=JSON.parse(document.getElementById("fdiff-charts").textContent);
var dur=Math.max(report.duration_secs||0,1);
var state=charts.map(function(){return null;});
function draw(ci){
 var c=charts[ci],svg=document.getElementById("chart-"+ci);if(!svg)return;
 while(svg.firstChild)svg.removeChild(svg.firstChild);
 var W=960,H=360,L=64,R=20,T=14,B=46,only=state[ci];
 var proj=null;if(c.eta!=null&&c.rate>0){proj=Math.min(c.eta,Math.max(dur/3,Math.min(c.eta,dur)));}
 var last=c.total.length?c.total[c.total.length-1]:[dur,0];
 var xmax=dur+(proj||0),ymax=1;
 c.total.forEach(function(p){ymax=Math.max(ymax,p[1]);});
 if(proj)ymax=Math.max(ymax,last[1]+c.rate*proj);
 if(c.show_limit&&c.soft_limit!=null)ymax=Math.max(ymax,c.soft_limit);
 ymax*=1.08;
 var X=function(t){return L+(W-L-R)*t/xmax;},Y=function(v){return T+(H-T-B)*(1-v/ymax);};
 ticks(ymax,6).forEach(function(v){el("line",{x1:L,x2:W-R,y1:Y(v),y2:Y(v),"class":"grid"},svg);var t=el("text",{x:L-6,y:Y(v)+4,"text-anchor":"end"},svg);t.textContent=Math.round(v).toLocaleString("en");});
 ticks(xmax,8).forEach(function(v){el("line",{x1:X(v),x2:X(v),y1:T,y2:H-B,"class":"grid"},svg);var t=el("text",{x:X(v),y:H-B+16,"text-anchor":"middle"},svg);t.textContent=st(v);});
 el("line",{x1:L,x2:W-R,y1:H-B,y2:H-B,"class":"axis"},svg);el("line",{x1:L,x2:L,y1:T,y2:H-B,"class":"axis"},svg);
 var xl=el("text",{x:(L+W-R)/2,y:H-8,"text-anchor":"middle"},svg);xl.textContent="time since the watch began (started "+new Date((report.started_at||0)*1000).toISOString().replace("T"," ").slice(0,19)+" UTC)";
 var yl=el("text",{x:14,y:(T+H-B)/2,"text-anchor":"middle",transform:"rotate(-90 14 "+((T+H-B)/2)+")"},svg);yl.textContent="open fds";
 if(proj)el("rect",{x:X(dur),y:T,width:X(xmax)-X(dur),height:H-T-B,fill:"#f6f0ea"},svg);
 function path(pts,a){if(!pts.length)return null;var d=pts.map(function(p,i){return(i?"L":"M")+X(p[0]).toFixed(1)+" "+Y(p[1]).toFixed(1);}).join("");a.d=d;a.fill="none";return el("path",a,svg);}
 var li=0;
 c.lines.forEach(function(l,k){if(l.leaking)return;if(only!=null&&only!==k)return;path(l.points,{stroke:OTHER,"stroke-width":1.5,"stroke-dasharray":"6 4",opacity:0.6,"class":"line other","data-group":l.group});});
 c.lines.forEach(function(l,k){if(!l.leaking)return;var col=LEAK[li++%4];if(only!=null&&only!==k)return;path(l.points,{stroke:col,"stroke-width":3,"class":"line leak","data-group":l.group});});
 if(only==null)path(c.total,{stroke:"#000","stroke-width":2,"class":"line total"});
 if(c.show_limit&&c.soft_limit!=null){el("line",{x1:L,x2:W-R,y1:Y(c.soft_limit),y2:Y(c.soft_limit),stroke:LIMIT,"stroke-width":2,"stroke-dasharray":"10 6","class":"limit"},svg);var lt=el("text",{x:W-R-4,y:Y(c.soft_limit)-5,"text-anchor":"end"},svg);lt.textContent="soft limit "+c.soft_limit.toLocaleString("en");}
 if(c.eta!=null&&c.rate>0&&!c.show_limit&&c.soft_limit!=null){var ot=el("text",{x:W-R-4,y:H-B-8,"text-anchor":"end"},svg);ot.textContent="soft limit "+c.soft_limit.toLocaleString("en")+" is off the chart";}
 if(proj&&only==null){el("path",{d:"M"+X(last[0])+" "+Y(last[1])+"L"+X(last[0]+proj)+" "+Y(last[1]+c.rate*proj),stroke:LEAK[0],"stroke-width":2,"stroke-dasharray":"2 4",fill:"none","class":"projection"},svg);var pt=el("text",{x:X(dur)+6,y:T+14},svg);pt.textContent="projection at "+c.rate.toFixed(1)+" fds/s: soft limit in ~"+st(c.eta);}
 var cur=el("line",{y1:T,y2:H-B,stroke:"#888","stroke-width":1,visibility:"hidden"},svg);
 var hit=el("rect",{x:L,y:T,width:W-L-R,height:H-T-B,fill:"transparent"},svg);
 var tip=svg.parentNode.querySelector(".tip");
 hit.addEventListener("mousemove",function(ev){
  var r=svg.getBoundingClientRect(),sx=(ev.clientX-r.left)*W/r.width,t=(sx-L)/(W-L-R)*xmax;
  if(t>dur){cur.setAttribute("visibility","hidden");tip.hidden=true;return;}
  var best=null;c.total.forEach(function(p){if(best==null||Math.abs(p[0]-t)<Math.abs(best-t))best=p[0];});if(best==null)return;
  cur.setAttribute("x1",X(best));cur.setAttribute("x2",X(best));cur.setAttribute("visibility","visible");
  tip.textContent="";var head=document.createElement("b");head.textContent="t = "+st(best)+" ("+best.toFixed(1)+" s)";tip.appendChild(head);
  function row(txt){var d=document.createElement("div");d.textContent=txt;tip.appendChild(d);}
  row("total: "+valueAt(c.total,best));
  c.lines.forEach(function(l,k){if(only!=null&&only!==k)return;var v=valueAt(l.points,best);if(v!=null)row((l.leaking?"LEAK ":"")+l.label+": "+v);});
  tip.hidden=false;var px=(ev.clientX-r.left)+14;if(px>r.width-260)px=(ev.clientX-r.left)-270;tip.style.left=px+"px";tip.style.top=((ev.clientY-r.top)+10)+"px";
 });
 hit.addEventListener("mouseleave",function(){cur.setAttribute("visibility","hidden");tip.hidden=true;});
 legend(ci);
}
function sw(col,w,dash){var s=document.createElementNS(NS,"svg");s.setAttribute("width","26");s.setAttribute("height","10");el("line",{x1:0,x2:26,y1:5,y2:5,stroke:col,"stroke-width":w,"stroke-dasharray":dash||""},s);return s;}
function legend(ci){
 var c=charts[ci],ul=document.querySelector("ul.legend[data-chart=\""+ci+"\"]");if(!ul)return;ul.textContent="";var only=state[ci],li=0;
 function item(sample,txt,k){var e=document.createElement("li");e.appendChild(sample);var s=document.createElement("span");s.textContent=txt;e.appendChild(s);if(k!=null){e.dataset.line=k;if(only!=null&&only!==k)e.className="off";e.addEventListener("click",function(){isolate(ci,k);});}ul.appendChild(e);}
 item(sw("#000",2),"total fds",null);
 c.lines.forEach(function(l,k){if(l.leaking)item(sw(LEAK[li++%4],3),"LEAK "+l.label,k);});
 c.lines.forEach(function(l,k){if(!l.leaking)item(sw(OTHER,1.5,"6 4"),l.label+" (not leaking)",k);});
 if(c.show_limit&&c.soft_limit!=null)item(sw(LIMIT,2,"10 6"),"soft limit",null);
 if(c.eta!=null&&c.rate>0)item(sw(LEAK[0],2,"2 4"),"ETA projection",null);
}
function isolate(ci,k){state[ci]=(state[ci]===k)?null:k;draw(ci);
 document.querySelectorAll("table.groups tr.sel").forEach(function(r){r.classList.remove("sel");});
 if(state[ci]!=null){var g=charts[ci].lines[k].group;var r=document.querySelector("table.groups tr[data-group=\""+g+"\"]");if(r)r.classList.add("sel");}}
document.querySelectorAll("table.groups tbody tr").forEach(function(r){r.addEventListener("click",function(){var g=+r.dataset.group;
 for(var ci=0;ci<charts.length;ci++){var k=charts[ci].lines.findIndex(function(l){return l.group===g;});if(k>=0){isolate(ci,k);document.getElementById("chart-"+ci).scrollIntoView({block:"center"});return;}}});});
try{charts.forEach(function(_,i){draw(i);});document.body.setAttribute("data-rendered","ok");}catch(e){fail(String(e&&e.stack||e));}
})();
"##;

/// `--html FILE` and `--svg FILE`, opened before the watch starts (a bad path or a FIFO
/// nobody reads fails at once, not after the whole watch) and written after the report.
#[derive(Default)]
pub struct ChartFiles {
    html: Option<(std::path::PathBuf, std::fs::File)>,
    svg: Option<(std::path::PathBuf, std::fs::File)>,
}

impl ChartFiles {
    /// Open (create or truncate) the files asked for.
    pub fn open(a: &crate::cli::ChartArgs) -> Result<ChartFiles, crate::error::Error> {
        let open = |p: &Option<std::path::PathBuf>| {
            p.as_ref()
                .map(|p| crate::report::record::create_output(p).map(|f| (p.clone(), f)))
                .transpose()
        };
        Ok(ChartFiles {
            html: open(&a.html)?,
            svg: open(&a.svg)?,
        })
    }

    /// Write the page and the chart of `report`.
    pub fn write(self, report: &Report) -> Result<(), crate::error::Error> {
        let fail = |p: &std::path::Path, e: io::Error| {
            crate::error::Error::io(
                &format!("write {}", crate::util::quoted(&p.to_string_lossy())),
                &e,
            )
        };
        if let Some((p, mut f)) = self.html {
            write(report, &Meta::current(), &mut f)
                .and_then(|()| f.flush())
                .map_err(|e| fail(&p, e))?;
        }
        if let Some((p, mut f)) = self.svg {
            use super::ReportRenderer;
            svg::Svg
                .report(report, &mut f)
                .and_then(|()| f.flush())
                .map_err(|e| fail(&p, e))?;
        }
        Ok(())
    }
}
