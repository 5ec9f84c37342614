//! Validated configuration: the command line turned into checked values (pids, durations,
//! regexes) before any logic runs, so every usage error is caught in one place.

use crate::cli::{AnalysisArgs, FormatArg, GroupByArg, SelectArgs, TimingArgs};
use crate::error::Error;
use crate::report::Format;
use crate::source::select::Selector;
use crate::track::{GroupBy, TrackOptions};
use regex::Regex;
use std::time::Duration;

/// Shortest interval accepted: below this the readlink pass itself dominates.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// Longest interval accepted: a slower sample cannot tell a leak from a change of load, and
/// the tick grid's arithmetic stays far from overflow.
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// Longest duration accepted (100 years of 365.25 days, humantime's year): `now + duration`
/// must stay a representable instant, whatever the user types.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 31_557_600);

#[derive(Debug, Clone)]
pub struct Timing {
    pub interval: Duration,
    pub duration: Option<Duration>,
    pub count: Option<u64>,
    pub quiet: bool,
}

#[derive(Debug, Clone)]
pub struct Analysis {
    pub track: TrackOptions,
    pub format: Format,
}

pub fn selector(a: &SelectArgs) -> Result<Selector, Error> {
    let pids = a
        .pids
        .iter()
        .map(|p| pid(p))
        .collect::<Result<Vec<_>, _>>()?;
    let name = a.name.as_deref().map(|r| regex(r, "--name")).transpose()?;
    Ok(Selector {
        pids,
        name,
        full: a.full,
        children: a.children,
    })
}

pub fn has_selection(a: &SelectArgs) -> bool {
    !a.pids.is_empty() || a.name.is_some()
}

fn pid(s: &str) -> Result<i32, Error> {
    match s.trim().parse::<i32>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(Error::usage(format!(
            "invalid pid {}: expected a positive number, as 'ps' shows it",
            quoted(s)
        ))),
    }
}

/// A duration within `max`; anything humantime cannot hold, or longer than `max`, is a usage
/// error naming the value and the range (never an overflow later, when it is added to now).
pub fn duration(s: &str, flag: &str, max: Duration) -> Result<Duration, Error> {
    let range = if flag == "--interval" {
        format!(
            "from {} to {}",
            humantime::format_duration(MIN_INTERVAL),
            humantime::format_duration(max)
        )
    } else {
        format!("at most {}", humantime::format_duration(max))
    };
    let d = humantime::parse_duration(s.trim()).map_err(|e| {
        let why = match e {
            humantime::DurationError::NumberOverflow => format!("out of range ({range})"),
            e => format!("{e} (use e.g. 250ms, 5s, 2m; {range})"),
        };
        Error::usage(format!("invalid duration {} for {flag}: {why}", quoted(s)))
    })?;
    if d > max {
        return Err(Error::usage(format!(
            "{flag} {} is out of range: use {range}",
            quoted(s)
        )));
    }
    Ok(d)
}

/// The interval between ticks: the same checks for a watch, `run` and `demo`.
pub fn interval(s: &str) -> Result<Duration, Error> {
    let d = duration(s, "--interval", MAX_INTERVAL)?;
    if d < MIN_INTERVAL {
        return Err(Error::usage(format!(
            "--interval {} is too short: use from {} to {}",
            quoted(s),
            humantime::format_duration(MIN_INTERVAL),
            humantime::format_duration(MAX_INTERVAL)
        )));
    }
    Ok(d)
}

/// How long a watch runs: the same checks for a watch, `run` and `demo`.
pub fn watch_duration(s: &str) -> Result<Duration, Error> {
    let d = duration(s, "--duration", MAX_DURATION)?;
    if d.is_zero() {
        return Err(Error::usage(format!(
            "--duration {} is too short: give more than 0 (e.g. 5s)",
            quoted(s)
        )));
    }
    Ok(d)
}

/// `s` in single quotes with control and bidi characters escaped: how every outside value
/// appears in a message, so the message stays one line and cannot drive the terminal.
pub fn quoted(s: &str) -> String {
    fdiff_core::util::quoted(s)
}

fn regex(s: &str, flag: &str) -> Result<Regex, Error> {
    Regex::new(s).map_err(|e| {
        let first = e.to_string();
        let detail = first
            .lines()
            .last()
            .unwrap_or("")
            .trim()
            .trim_start_matches("error: ")
            .to_owned();
        Error::usage(format!(
            "invalid regex {} for {flag}: {}",
            quoted(s),
            crate::util::escape_control(&detail)
        ))
    })
}

pub fn timing(t: &TimingArgs) -> Result<Timing, Error> {
    let interval = interval(&t.interval)?;
    let dur = t.duration.as_deref().map(watch_duration).transpose()?;
    if t.count == Some(0) {
        return Err(Error::usage("--count '0': give at least 1 tick"));
    }
    Ok(Timing {
        interval,
        duration: dur,
        count: t.count,
        quiet: t.quiet,
    })
}

pub fn analysis(a: &AnalysisArgs) -> Result<Analysis, Error> {
    Ok(Analysis {
        track: TrackOptions {
            group_by: match a.group_by {
                GroupByArg::Key => GroupBy::Key,
                GroupByArg::Kind => GroupBy::Kind,
                GroupByArg::Target => GroupBy::Target,
            },
            include: a
                .match_
                .as_deref()
                .map(|r| regex(r, "--match"))
                .transpose()?,
            exclude: a
                .exclude
                .as_deref()
                .map(|r| regex(r, "--exclude"))
                .transpose()?,
            ..TrackOptions::default()
        },
        format: format(a.format),
    })
}

pub fn format(f: FormatArg) -> Format {
    match f {
        FormatArg::Table => Format::Table,
        FormatArg::Json => Format::Json,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_are_usage_errors_naming_the_value() {
        let e = pid("abc").unwrap_err();
        assert_eq!(e.code, crate::exit_codes::Exit::Usage);
        assert!(e.message.contains("'abc'"));
        assert!(pid("-3").is_err());
        assert_eq!(pid("42").unwrap(), 42);
        let e = duration("5x", "--interval", MAX_INTERVAL).unwrap_err();
        assert!(
            e.message.contains("'5x'") && e.message.contains("--interval"),
            "{}",
            e.message
        );
        let e = regex("(", "--match").unwrap_err();
        assert!(
            e.message.contains("'('") && !e.message.contains('\n'),
            "{}",
            e.message
        );
    }
}
