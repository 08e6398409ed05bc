//! Error rates as ISO/IEC 30107-3 and ISO/IEC 19795-1 report them: counts, rates and a
//! one-sided 95 % upper bound, so that zero errors in `n` tries reads "≤ 3/n", never "0 %".

use serde::Serialize;

/// Errors out of tries, with the rate and its one-sided 95 % upper bound.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    /// Errors seen.
    pub errors: usize,
    /// Tries.
    pub n: usize,
    /// errors / n.
    pub rate: f64,
    /// Clopper–Pearson one-sided 95 % upper bound (≈ 3/n with no errors).
    pub upper95: f64,
}

/// P(X ≤ k) for X ~ Binomial(n, p).
fn binom_cdf(k: usize, n: usize, p: f64) -> f64 {
    let (mut term, mut sum) = ((1.0 - p).powi(n as i32), 0.0);
    for i in 0..=k.min(n) {
        if i > 0 {
            term *= (n - i + 1) as f64 / i as f64 * p / (1.0 - p);
        }
        sum += term;
    }
    sum.min(1.0)
}

impl Rate {
    /// The rate of `errors` in `n`.
    pub fn new(errors: usize, n: usize) -> Rate {
        if n == 0 {
            return Rate {
                errors,
                n,
                rate: 0.0,
                upper95: 1.0,
            };
        }
        let upper95 = if errors >= n {
            1.0
        } else {
            // The p at which seeing `errors` or fewer becomes a 5 % event.
            let (mut lo, mut hi) = (errors as f64 / n as f64, 1.0);
            for _ in 0..60 {
                let mid = (lo + hi) / 2.0;
                if binom_cdf(errors, n, mid) > 0.05 {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            hi
        };
        Rate {
            errors,
            n,
            rate: errors as f64 / n as f64,
            upper95,
        }
    }

    /// "2/40 = 5.0 % (≤ 15.5 %)", or "0/40 (≤ 3/40 = 7.5 %)".
    pub fn describe(&self) -> String {
        if self.n == 0 {
            return "no samples".into();
        }
        if self.errors == 0 {
            return format!(
                "0/{} (≤ 3/{} = {:.1} %)",
                self.n,
                self.n,
                300.0 / self.n as f64
            );
        }
        format!(
            "{}/{} = {:.1} % (≤ {:.1} %)",
            self.errors,
            self.n,
            100.0 * self.rate,
            100.0 * self.upper95
        )
    }
}

/// Largest gallery for which identification keeps its false-positive identification rate at
/// or below `fpir`, if each comparison falsely matches with probability `fmr`:
/// FPIR(N) = 1 − (1 − FMR)^N.
pub fn max_gallery(fmr: f64, fpir: f64) -> u64 {
    if fmr <= 0.0 {
        return u64::MAX;
    }
    if fmr >= 1.0 {
        return 0;
    }
    ((1.0 - fpir).ln() / (1.0 - fmr).ln()).floor() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_errors_is_the_rule_of_three() {
        let r = Rate::new(0, 100);
        assert!((r.upper95 - 0.0295).abs() < 0.001, "{r:?}");
        assert!(r.describe().contains("≤ 3/100"));
        let r = Rate::new(5, 100);
        assert!(r.upper95 > 0.09 && r.upper95 < 0.11, "{r:?}");
        assert_eq!(Rate::new(3, 3).upper95, 1.0);
    }

    #[test]
    fn gallery_size_follows_fpir() {
        // FMR 1e-4 keeps FPIR at 1 % up to about a hundred people.
        assert_eq!(max_gallery(1e-4, 0.01), 100);
        assert_eq!(max_gallery(1.2e-3, 0.01), 8);
    }
}
