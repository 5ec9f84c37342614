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
const MIN_INTERVAL: Duration = Duration::from_millis(10);

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
            "invalid pid '{s}': expected a positive number, as 'ps' shows it"
        ))),
    }
}

pub fn duration(s: &str, flag: &str) -> Result<Duration, Error> {
    humantime::parse_duration(s.trim()).map_err(|e| {
        Error::usage(format!(
            "invalid duration '{s}' for {flag}: {e} (use e.g. 250ms, 5s, 2m)"
        ))
    })
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
        Error::usage(format!("invalid regex '{s}' for {flag}: {detail}"))
    })
}

pub fn timing(t: &TimingArgs) -> Result<Timing, Error> {
    let interval = duration(&t.interval, "--interval")?;
    if interval < MIN_INTERVAL {
        return Err(Error::usage(format!(
            "--interval '{}' is too short: use at least 10ms",
            t.interval
        )));
    }
    let dur = t
        .duration
        .as_deref()
        .map(|d| duration(d, "--duration"))
        .transpose()?;
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
        assert_eq!(e.code, crate::exit_codes::USAGE);
        assert!(e.message.contains("'abc'"));
        assert!(pid("-3").is_err());
        assert_eq!(pid("42").unwrap(), 42);
        let e = duration("5x", "--interval").unwrap_err();
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
