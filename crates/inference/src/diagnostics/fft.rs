//! Autocovariance by FFT (radix-2, zero padded), as in R `posterior`'s `autocovariance`.

/// In-place iterative radix-2 FFT of (re, im); `inverse` uses the conjugate twiddles and does not
/// scale. The length must be a power of two.
fn fft_in_place(re: &mut [f64], im: &mut [f64], inverse: bool) {
    let n = re.len();
    debug_assert!(n.is_power_of_two() && im.len() == n);
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
    let sign = if inverse { 1.0 } else { -1.0 };
    let mut len = 2;
    while len <= n {
        let half = len / 2;
        // Twiddles computed directly (not by recurrence) to keep the rounding error at ~1e-16.
        let step = sign * 2.0 * std::f64::consts::PI / len as f64;
        let twiddles: Vec<(f64, f64)> = (0..half).map(|k| ((step * k as f64).cos(), (step * k as f64).sin())).collect();
        for start in (0..n).step_by(len) {
            for (k, &(wr, wi)) in twiddles.iter().enumerate() {
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

/// Autocovariances of `x` at lags 0..N-1 with the "biased" 1/N scaling Geyer (1992) recommends:
/// `acov[t] = (1/N) Σ_{i < N-t} (x_i - x̄)(x_{i+t} - x̄)`. A constant sequence gives all zeros (as in
/// `posterior`, which special-cases zero variance).
pub fn autocovariance(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    if n == 0 {
        return Vec::new();
    }
    let mean = x.iter().sum::<f64>() / n as f64;
    let size = (2 * n).next_power_of_two();
    let mut re = vec![0.0; size];
    let mut im = vec![0.0; size];
    for (r, &xi) in re.iter_mut().zip(x) {
        *r = xi - mean;
    }
    if re.iter().all(|&v| v == 0.0) {
        return vec![0.0; n];
    }
    fft_in_place(&mut re, &mut im, false);
    for (r, i) in re.iter_mut().zip(im.iter_mut()) {
        *r = *r * *r + *i * *i;
        *i = 0.0;
    }
    fft_in_place(&mut re, &mut im, true);
    let scale = 1.0 / (size as f64 * n as f64);
    re.truncate(n);
    re.iter_mut().for_each(|v| *v *= scale);
    re
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
