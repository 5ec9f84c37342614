//! Human-readable numbers: thousands separators, short durations, rates and sparklines.

/// 1024 → "1,024".
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// 190.0 → "3m10s"; 0.4 → "0.4s"; days for long ones.
pub fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "?".to_owned();
    }
    if secs < 10.0 {
        return format!("{:.1}s", secs);
    }
    let s = secs.round() as u64;
    let (d, h, m, s) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m{s:02}s"),
        (0, h, m) => format!("{h}h{m:02}m"),
        (d, h, _) => format!("{d}d{h:02}h"),
    }
}

/// An interval as a user would give it: 250ms, 1s, 1.5s, 2m, 1h (rounded to the millisecond).
pub fn interval(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "?".to_owned();
    }
    let ms = (secs * 1000.0).round() as u64;
    if ms < 1000 {
        return format!("{}ms", ms.max(if secs > 0.0 { 1 } else { 0 }));
    }
    for (unit, n) in [("h", 3_600_000), ("m", 60_000), ("s", 1000)] {
        if ms.is_multiple_of(n) {
            return format!("{}{unit}", ms / n);
        }
    }
    let s = format!("{:.3}", ms as f64 / 1000.0);
    format!("{}s", s.trim_end_matches('0').trim_end_matches('.'))
}

/// A rate in fds per second, with a sign, as "+2.1/s" (or per minute when slow).
pub fn rate(r: f64) -> String {
    if r.abs() < 0.0005 {
        return "0/s".to_owned();
    }
    if r.abs() < 0.1 {
        return format!("{:+.2}/min", r * 60.0);
    }
    format!("{r:+.1}/s")
}

/// ▁▂▃▄▅▆▇█ over the min..max of the values.
pub fn sparkline(v: &[f64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let (lo, hi) = v
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    v.iter()
        .map(|&x| {
            if hi - lo < 1e-9 {
                BARS[0]
            } else {
                BARS[(((x - lo) / (hi - lo)) * 7.0).round().clamp(0.0, 7.0) as usize]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(count(1024), "1,024");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000_000), "1,000,000");
        assert_eq!(duration(190.0), "3m10s");
        assert_eq!(duration(4.25), "4.2s");
        assert_eq!(duration(7300.0), "2h01m");
        assert_eq!(duration(f64::INFINITY), "?");
        assert_eq!(rate(2.14), "+2.1/s");
        assert_eq!(rate(1.0 / 60.0), "+1.00/min");
        assert_eq!(sparkline(&[0.0, 7.0, 14.0]), "▁▅█");
        assert_eq!(sparkline(&[3.0, 3.0]), "▁▁");
    }

    #[test]
    fn issue8_intervals_print_as_given() {
        assert_eq!(interval(0.25), "250ms");
        assert_eq!(interval(0.01), "10ms");
        assert_eq!(interval(1.0), "1s");
        assert_eq!(interval(1.5), "1.5s");
        assert_eq!(interval(1.25), "1.25s");
        assert_eq!(interval(120.0), "2m");
        assert_eq!(interval(90.0), "90s");
        assert_eq!(interval(7200.0), "2h");
        assert_eq!(interval(0.0453), "45ms");
    }
}
