//! Bounded time series: every group's count per tick, kept in buckets that double in width
//! when full, so a week-long watch stays as small as a minute-long one.

/// Most buckets kept; past this, neighbouring buckets merge and the bucket width doubles.
pub const MAX_BUCKETS: usize = 512;

/// Running means of time and value over one bucket. Each series keeps its own times, so a
/// series that starts in the middle of a bucket is not placed at the whole bucket's mean time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Acc {
    t: f64,
    v: f64,
    n: u32,
}

impl Acc {
    fn add(&mut self, t: f64, v: f64) {
        self.t += t;
        self.v += v;
        self.n += 1;
    }
    fn merge(self, o: Acc) -> Acc {
        Acc {
            t: self.t + o.t,
            v: self.v + o.v,
            n: self.n + o.n,
        }
    }
    fn mean_t(self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.t / f64::from(self.n)
        }
    }
    fn mean(self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.v / f64::from(self.n)
        }
    }
}

/// The shared time axis: which bucket the current tick falls in, and each bucket's mean time.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    width: u64,
    ticks: u64,
    times: Vec<Acc>,
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            width: 1,
            ticks: 0,
            times: Vec::new(),
        }
    }

    /// Start a tick at time `t`; returns whether the buckets were just halved, in which case
    /// every series must be compacted with [`Series::compact`].
    pub fn tick(&mut self, t: f64) -> bool {
        let b = (self.ticks / self.width) as usize;
        self.ticks += 1;
        if b == self.times.len() {
            self.times.push(Acc::default());
        }
        if let Some(acc) = self.times.get_mut(b) {
            acc.add(t, t);
        }
        if self.times.len() > MAX_BUCKETS && (self.ticks % (self.width * 2) == 0) {
            self.times = pairwise(&self.times, 0);
            self.width *= 2;
            return true;
        }
        false
    }

    /// The bucket of the tick in progress.
    pub fn bucket(&self) -> usize {
        (self.ticks.saturating_sub(1) / self.width.max(1)) as usize
    }

    pub fn buckets(&self) -> usize {
        self.times.len()
    }
}

/// One value per tick, bucketed on the [`Clock`]'s axis from bucket `first` on.
#[derive(Debug, Clone, Default)]
pub struct Series {
    first: usize,
    vals: Vec<Acc>,
    /// What [`Series::bump_last`] added to the latest value (a shutdown's closes taken back):
    /// the process's own verdict sees it, a roll-up does not.
    bumped: f64,
}

impl Series {
    /// A series that starts at bucket `first`, with a leading zero at time `zero_at` when set
    /// (a group that appears mid-watch had no fds before).
    pub fn starting_at(first: usize, zero_at: Option<f64>) -> Series {
        Series {
            first,
            vals: zero_at
                .map(|t| Acc { t, v: 0.0, n: 1 })
                .into_iter()
                .collect(),
            bumped: 0.0,
        }
    }

    pub fn add(&mut self, bucket: usize, t: f64, v: f64) {
        let idx = bucket.saturating_sub(self.first);
        while self.vals.len() <= idx {
            self.vals.push(Acc::default());
        }
        if let Some(a) = self.vals.get_mut(idx) {
            a.add(t, v);
        }
    }

    /// Change the latest value by `delta` (a tick's closes taken back).
    pub fn bump_last(&mut self, delta: f64) {
        if let Some(a) = self.vals.iter_mut().rev().find(|a| a.n > 0) {
            a.v += delta;
            self.bumped += delta;
        }
    }

    /// Follow the clock halving its buckets.
    pub fn compact(&mut self) {
        self.vals = pairwise(&self.vals, self.first % 2);
        self.first /= 2;
    }

    /// (mean time, mean value) of each bucket that received a value.
    pub fn points(&self) -> (Vec<f64>, Vec<f64>) {
        self.vals
            .iter()
            .filter(|a| a.n > 0)
            .map(|a| (a.mean_t(), a.mean()))
            .unzip()
    }

    /// Bucket means by bucket index (for summing series across processes).
    pub fn by_bucket(&self) -> impl Iterator<Item = (usize, f64, f64)> + '_ {
        self.vals
            .iter()
            .enumerate()
            .filter(|(_, a)| a.n > 0)
            .map(|(i, a)| (self.first + i, a.mean_t(), a.mean()))
    }

    /// [`Series::by_bucket`] with the counts as they were seen, without what
    /// [`Series::bump_last`] added.
    pub fn by_bucket_as_seen(&self) -> Vec<(usize, f64, f64)> {
        let mut v: Vec<(usize, f64, f64)> = self.by_bucket().collect();
        let n = self.vals.iter().rev().find(|a| a.n > 0).map_or(1, |a| a.n);
        if let Some(last) = v.last_mut() {
            last.2 -= self.bumped / f64::from(n.max(1));
        }
        v
    }
}

impl Series {
    /// (bucket, sum of times, sum of values, ticks) of each bucket that received a value, as
    /// seen (without what [`Series::bump_last`] added): what a roll-up keeps of a member it
    /// folds, merged exactly as the clock halves.
    pub(crate) fn sums_as_seen(&self) -> Vec<(usize, f64, f64, u32)> {
        let mut v: Vec<(usize, f64, f64, u32)> = self
            .vals
            .iter()
            .enumerate()
            .filter(|(_, a)| a.n > 0)
            .map(|(i, a)| (self.first + i, a.t, a.v, a.n))
            .collect();
        if let Some(last) = v.last_mut() {
            last.2 -= self.bumped;
        }
        v
    }
}

/// Merge neighbours (2i, 2i+1) of a run whose first element has global index parity `offset`.
fn pairwise(v: &[Acc], offset: usize) -> Vec<Acc> {
    let mut out = Vec::with_capacity(v.len() / 2 + 1);
    let mut i = 0;
    if offset == 1 && !v.is_empty() {
        out.push(v[0]);
        i = 1;
    }
    while i < v.len() {
        let a = v[i];
        let b = v.get(i + 1).copied().unwrap_or_default();
        out.push(a.merge(b));
        i += 2;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_series_stay_bounded_and_keep_their_slope() {
        let mut clock = Clock::new();
        let mut s = Series::starting_at(0, None);
        let mut late = Series::default();
        for tick in 0..100_000u64 {
            let t = tick as f64;
            if clock.tick(t) {
                s.compact();
                late.compact();
            }
            let b = clock.bucket();
            s.add(b, t, 2.0 * t);
            if tick == 50_000 {
                late = Series::starting_at(b, None);
            }
            if tick >= 50_000 {
                late.add(b, t, t);
            }
        }
        let (t, y) = s.points();
        assert!(t.len() <= MAX_BUCKETS + 1, "{}", t.len());
        for (a, b) in t.iter().zip(&y) {
            assert!((b - 2.0 * a).abs() < 1e-6, "means stay on the line");
        }
        let (t, y) = late.points();
        assert!(!t.is_empty());
        for (a, b) in t.iter().zip(&y) {
            assert!(
                (b - a).abs() < 1e-6,
                "a series started late stays aligned: {a} {b}"
            );
        }
    }
}
