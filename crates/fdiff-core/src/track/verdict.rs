//! The leak verdict: does a group's count grow steadily, or only churn, burst or fill a pool?

use serde::{Deserialize, Serialize};

/// Fewer points than this cannot tell growth from noise.
pub const MIN_POINTS: usize = 4;
/// A group must gain at least this many fds (and keep that many opened during the watch) to
/// leak: one fd opened once and kept is not a leak.
pub const MIN_GROWTH: f64 = 3.0;
/// The slope must stand this many standard errors above zero.
const MIN_T: f64 = 4.0;
/// The second half of the watch must still grow at this share of the overall rate, so a pool
/// that filled early and stayed flat is not a leak (and the last quarter must set a new high).
const MIN_RECENT_SHARE: f64 = 0.25;

/// Whether a series of counts leaks, and how fast it grows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// It grows steadily: a leak.
    pub leaking: bool,
    /// Least-squares slope of the count over time, fds per second.
    pub rate_per_sec: f64,
}

/// Judge a series of (time in seconds, count) points. `survivors` is how many fds opened during
/// the watch are still open at its end.
pub fn judge(t: &[f64], y: &[f64], survivors: u64) -> Verdict {
    let n = t.len().min(y.len());
    let fit = fit(&t[..n], &y[..n]);
    let rate = fit.as_ref().map_or(0.0, |f| f.slope);
    let mut v = Verdict {
        leaking: false,
        rate_per_sec: if rate.is_finite() { rate } else { 0.0 },
    };
    let Some(fit) = fit else { return v };
    if n < MIN_POINTS || (survivors as f64) < MIN_GROWTH {
        return v;
    }
    // Shape rules: each says why a series with survivors enough is still not a leak.
    if fit.slope <= 0.0 {
        return v;
    }
    let k = (n / 4).max(1);
    let head = mean(&y[..k]);
    let tail = mean(&y[n - k..n]);
    if tail - head < MIN_GROWTH {
        return v;
    }
    if fit.t_stat < MIN_T {
        return v;
    }
    let half = n / 2;
    let recent = self::fit(&t[half..n], &y[half..n]).map_or(0.0, |f| f.slope);
    if recent < MIN_RECENT_SHARE * fit.slope {
        return v;
    }
    // A leak is still setting new highs at the end; a pool that filled up (even late in the
    // watch) and then held flat is not.
    let max = |s: &[f64]| s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max(&y[n - k..n]) <= max(&y[..n - k]) {
        return v;
    }
    v.leaking = true;
    v
}

struct Fit {
    slope: f64,
    /// slope / standard error; infinite for a perfect line.
    t_stat: f64,
}

fn fit(t: &[f64], y: &[f64]) -> Option<Fit> {
    let n = t.len();
    if n < 2 {
        return None;
    }
    let nf = n as f64;
    let mt = mean(t);
    let my = mean(y);
    let sxx: f64 = t.iter().map(|x| (x - mt).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = t.iter().zip(y).map(|(x, v)| (x - mt) * (v - my)).sum();
    let slope = sxy / sxx;
    let intercept = my - slope * mt;
    let sse: f64 = t
        .iter()
        .zip(y)
        .map(|(x, v)| (v - (intercept + slope * x)).powi(2))
        .sum();
    let t_stat = if n > 2 && sse > 1e-12 {
        let se = (sse / (nf - 2.0) / sxx).sqrt();
        slope / se
    } else if slope > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    Some(Fit { slope, t_stat })
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Seconds until `current` fds reach `limit` at `rate` fds per second; `None` when not growing.
pub fn eta_to_limit(current: u64, limit: Option<u64>, rate: f64) -> Option<f64> {
    let limit = limit?;
    if rate <= 0.0 || !rate.is_finite() {
        return None;
    }
    Some(limit.saturating_sub(current) as f64 / rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic noise in [-amp, amp] (a small LCG, so the tests never flake).
    fn noise(seed: &mut u64, amp: f64) -> f64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 33) as f64 / (1u64 << 31) as f64 * 2.0 - 1.0) * amp
    }

    fn series(n: usize, dt: f64, f: impl Fn(f64) -> f64) -> (Vec<f64>, Vec<f64>) {
        let t: Vec<f64> = (0..n).map(|i| i as f64 * dt).collect();
        let y = t.iter().map(|&x| f(x).round().max(0.0)).collect();
        (t, y)
    }

    #[test]
    fn steady_growth_of_ten_per_second_leaks() {
        let (t, y) = series(7, 1.0, |x| 20.0 + 10.0 * x);
        let v = judge(&t, &y, 60);
        assert!(v.leaking);
        assert!((v.rate_per_sec - 10.0).abs() < 0.01);
    }

    #[test]
    fn one_per_minute_over_ten_minutes_leaks() {
        let (t, y) = series(601, 1.0, |x| 5.0 + (x / 60.0).floor());
        let v = judge(&t, &y, 10);
        assert!(v.leaking, "{v:?}");
        assert!((v.rate_per_sec - 1.0 / 60.0).abs() < 0.003);
    }

    #[test]
    fn noisy_growth_still_leaks() {
        let mut s = 7;
        let (t, y) = series(11, 1.0, |x| 50.0 + 5.0 * x);
        let y: Vec<f64> = y.iter().map(|v| v + noise(&mut s, 8.0).round()).collect();
        let v = judge(&t, &y, 50);
        assert!(v.leaking, "{v:?}");
        assert!((v.rate_per_sec - 5.0).abs() < 1.5);
    }

    #[test]
    fn churn_at_a_stable_level_does_not_leak() {
        for seed in 0..50u64 {
            let mut s = seed;
            let (t, y) = series(60, 1.0, |_| 50.0);
            let y: Vec<f64> = y.iter().map(|v| v + noise(&mut s, 10.0).round()).collect();
            // Under churn every open fd was opened during the watch.
            let v = judge(&t, &y, 50);
            assert!(!v.leaking, "seed {seed}: {v:?}");
            assert!(v.rate_per_sec.abs() < 0.5);
        }
    }

    #[test]
    fn burst_closed_again_does_not_leak() {
        // A burst of 290, closed again except for a few that replaced baseline fds: the
        // survivors pass the gate, so the shape (back at its level) is what says no.
        let (t, y) = series(30, 1.0, |x| {
            if (12.0..22.0).contains(&x) {
                300.0
            } else {
                10.0
            }
        });
        let v = judge(&t, &y, 5);
        assert!(!v.leaking, "{v:?}");
        assert!(v.rate_per_sec > 0.0, "the burst leans late: {v:?}");
    }

    #[test]
    fn pool_that_fills_then_stays_flat_does_not_leak() {
        let (t, y) = series(30, 1.0, |x| (2.0 + 4.0 * x).min(32.0));
        let v = judge(&t, &y, 30);
        assert!(!v.leaking, "{v:?}");
    }

    #[test]
    fn pool_that_fills_late_then_stays_flat_does_not_leak() {
        // Grows for 70% of the watch, flat for the last 30%.
        let (t, y) = series(40, 1.0, |x| (1.0 + x).min(28.0));
        let v = judge(&t, &y, 28);
        assert!(!v.leaking, "{v:?}");
    }

    #[test]
    fn single_fd_opened_and_kept_does_not_leak() {
        // One more fd than at the start, kept; three fds opened during the watch are open at
        // its end (two replaced baseline ones), so only the size of the growth says no.
        let (t, y) = series(30, 1.0, |x| if x >= 10.0 { 6.0 } else { 5.0 });
        assert!(!judge(&t, &y, 3).leaking);
    }

    #[test]
    fn too_few_points_or_flat_is_not_judged() {
        assert!(!judge(&[0.0, 1.0], &[0.0, 100.0], 100).leaking);
        assert!(!judge(&[], &[], 0).leaking);
        // Flat, with every fd replaced during the watch.
        let v = judge(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], &[5.0; 6], 5);
        assert!(!v.leaking);
        assert_eq!(v.rate_per_sec, 0.0);
    }

    #[test]
    fn eta() {
        assert_eq!(eta_to_limit(24, Some(1024), 10.0), Some(100.0));
        assert_eq!(eta_to_limit(24, None, 10.0), None);
        assert_eq!(eta_to_limit(24, Some(1024), 0.0), None);
    }
}
