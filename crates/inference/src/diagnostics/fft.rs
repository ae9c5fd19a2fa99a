//! Autocovariance by FFT (radix-2, zero padded), as in R `posterior`'s `autocovariance`.

/// A radix-2 FFT plan: the twiddle factors exp(-2πik/n), k < n/2, computed once (directly, not by
/// recurrence, so their rounding error stays ~1e-16) and shared by every transform of that size.
pub(crate) struct Fft {
    n: usize,
    twiddles: Vec<(f64, f64)>,
}

impl Fft {
    /// A plan for transforms of length `n` (a power of two).
    pub(crate) fn new(n: usize) -> Fft {
        assert!(n.is_power_of_two(), "FFT length {n} is not a power of two");
        let step = -2.0 * std::f64::consts::PI / n as f64;
        let twiddles = (0..n / 2).map(|k| ((step * k as f64).cos(), (step * k as f64).sin())).collect();
        Fft { n, twiddles }
    }

    /// Plan for the autocovariances of sequences of length `len` (zero padding to ≥ 2·len).
    pub(crate) fn for_autocovariance(len: usize) -> Fft {
        Fft::new((2 * len.max(1)).next_power_of_two())
    }

    /// In-place iterative transform of (re, im); `inverse` conjugates the twiddles and does not
    /// scale.
    fn transform(&self, re: &mut [f64], im: &mut [f64], inverse: bool) {
        let n = self.n;
        debug_assert!(re.len() == n && im.len() == n);
        // Bit-reversal permutation.
        let mut j = 0usize;
        for i in 1..n {
            let mut bit = n >> 1;
            while j & bit != 0 {
                j ^= bit;
                bit >>= 1;
            }
            j |= bit;
            if i < j {
                re.swap(i, j);
                im.swap(i, j);
            }
        }
        let sign = if inverse { -1.0 } else { 1.0 };
        let mut len = 2;
        while len <= n {
            let half = len / 2;
            let stride = n / len;
            for start in (0..n).step_by(len) {
                for k in 0..half {
                    let (wr, wi) = self.twiddles[k * stride];
                    let wi = sign * wi;
                    let (a, b) = (start + k, start + k + half);
                    let tr = re[b] * wr - im[b] * wi;
                    let ti = re[b] * wi + im[b] * wr;
                    re[b] = re[a] - tr;
                    im[b] = im[a] - ti;
                    re[a] += tr;
                    im[a] += ti;
                }
            }
            len <<= 1;
        }
    }

    /// Autocovariances of `x` at lags 0..N-1 with the "biased" 1/N scaling; see [`autocovariance`].
    pub(crate) fn autocovariance(&self, x: &[f64]) -> Vec<f64> {
        let n = x.len();
        if n == 0 {
            return Vec::new();
        }
        assert!(self.n >= 2 * n, "FFT plan of length {} is too short for {n} values", self.n);
        let mean = x.iter().sum::<f64>() / n as f64;
        let mut re = vec![0.0; self.n];
        let mut im = vec![0.0; self.n];
        for (r, &xi) in re.iter_mut().zip(x) {
            *r = xi - mean;
        }
        if re.iter().all(|&v| v == 0.0) {
            return vec![0.0; n];
        }
        self.transform(&mut re, &mut im, false);
        for (r, i) in re.iter_mut().zip(im.iter_mut()) {
            *r = *r * *r + *i * *i;
            *i = 0.0;
        }
        self.transform(&mut re, &mut im, true);
        let scale = 1.0 / (self.n as f64 * n as f64);
        re.truncate(n);
        re.iter_mut().for_each(|v| *v *= scale);
        re
    }
}

/// Autocovariances of `x` at lags 0..N-1 with the "biased" 1/N scaling Geyer (1992) recommends:
/// `acov[t] = (1/N) Σ_{i < N-t} (x_i - x̄)(x_{i+t} - x̄)`, by zero-padded FFT. A constant sequence
/// gives all zeros (as in `posterior`, which special-cases zero variance).
pub fn autocovariance(x: &[f64]) -> Vec<f64> {
    Fft::for_autocovariance(x.len()).autocovariance(x)
}

/// The same autocovariances by the O(N²) definition; used to check the FFT.
#[cfg(test)]
pub fn autocovariance_direct(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    let mean = x.iter().sum::<f64>() / n as f64;
    (0..n).map(|t| (0..n - t).map(|i| (x[i] - mean) * (x[i + t] - mean)).sum::<f64>() / n as f64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fft_matches_direct() {
        for n in [1usize, 2, 3, 7, 64, 500, 1001] {
            // A deterministic, autocorrelated sequence.
            let mut state = 0.3f64;
            let x: Vec<f64> = (0..n)
                .map(|i| {
                    state = 0.7 * state + ((i as f64 * 12.9898).sin() * 43758.5453).fract();
                    state
                })
                .collect();
            let fast = autocovariance(&x);
            let slow = autocovariance_direct(&x);
            let scale = slow[0].abs().max(1e-300);
            for (f, s) in fast.iter().zip(&slow) {
                assert!((f - s).abs() <= 1e-12 * scale, "n={n}: {f} vs {s}");
            }
        }
        assert_eq!(autocovariance(&[2.0; 5]), vec![0.0; 5]);
    }
}
