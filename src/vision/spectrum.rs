//! The screen's and the print's fingerprint in the spectrum: moiré, sub-pixel grids and
//! halftone screens put sharp peaks into the high spatial frequencies of a face that skin,
//! lenses and sensor noise never make.
//!
//! A 64x64 grey patch at the camera's own resolution (the face's centre, never resized, so the
//! fine structure survives) is windowed and transformed; the feature is how far the strongest
//! high-frequency bins stand above the typical bin there (a ratio of powers, in dB). Bins on the
//! 8-pixel grid where JPEG and MJPEG block edges put their energy are left out: a compressed but
//! live frame must not look like a screen.

/// Side of the analysed patch.
pub const PATCH: usize = 64;
/// Strongest bins averaged into the peak.
const PEAK_BINS: usize = 6;

/// In-place radix-2 FFT of `re`/`im` (length a power of two).
fn fft(re: &mut [f32], im: &mut [f32]) {
    let n = re.len();
    let mut j = 0;
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
    let mut len = 2;
    while len <= n {
        let ang = -2.0 * std::f32::consts::PI / len as f32;
        for start in (0..n).step_by(len) {
            for k in 0..len / 2 {
                let (s, c) = (ang * k as f32).sin_cos();
                let (a, b) = (start + k, start + k + len / 2);
                let (tr, ti) = (re[b] * c - im[b] * s, re[b] * s + im[b] * c);
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] += tr;
                im[a] += ti;
            }
        }
        len <<= 1;
    }
}

/// Power spectrum of a square grey patch (side a power of two), Hann-windowed, mean removed.
pub fn power(grey: &[f32], n: usize) -> Vec<f32> {
    let mean = grey.iter().sum::<f32>() / grey.len() as f32;
    let hann: Vec<f32> = (0..n)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / n as f32).cos())
        .collect();
    let mut re: Vec<f32> = grey
        .iter()
        .enumerate()
        .map(|(i, v)| (v - mean) * hann[i % n] * hann[i / n])
        .collect();
    let mut im = vec![0f32; n * n];
    for r in 0..n {
        fft(&mut re[r * n..(r + 1) * n], &mut im[r * n..(r + 1) * n]);
    }
    let (mut cr, mut ci) = (vec![0f32; n], vec![0f32; n]);
    for c in 0..n {
        for r in 0..n {
            cr[r] = re[r * n + c];
            ci[r] = im[r * n + c];
        }
        fft(&mut cr, &mut ci);
        for r in 0..n {
            re[r * n + c] = cr[r];
            im[r * n + c] = ci[r];
        }
    }
    re.iter().zip(&im).map(|(a, b)| a * a + b * b).collect()
}

/// Peak-to-typical ratio (dB) of the high-frequency band (0.2–0.5 cycles/pixel) of a grey patch.
pub fn peak_ratio_db(grey: &[f32], n: usize) -> f32 {
    let p = power(grey, n);
    let mut band = Vec::new();
    let block = n / 8;
    for v in 0..n {
        for u in 0..n / 2 + 1 {
            let (fu, fv) = (
                u as f32,
                if v > n / 2 {
                    v as f32 - n as f32
                } else {
                    v as f32
                },
            );
            let r = (fu * fu + fv * fv).sqrt() / n as f32;
            if !(0.2..=0.5).contains(&r) {
                continue;
            }
            let near_grid = |f: f32| {
                let m = f.abs() % block as f32;
                m <= 1.0 || m >= block as f32 - 1.0
            };
            if near_grid(fu) && near_grid(fv) {
                continue;
            }
            band.push(p[v * n + u]);
        }
    }
    if band.is_empty() {
        return 0.0;
    }
    band.sort_by(f32::total_cmp);
    let median = band[band.len() / 2].max(1e-6);
    let k = PEAK_BINS.min(band.len());
    let peak = band[band.len() - k..].iter().sum::<f32>() / k as f32;
    10.0 * (peak / median).log10()
}

/// The moiré feature of a face: the peak ratio of the 64x64 patch at the centre of its box.
pub fn moire_db(frame: &crate::base::frame::Frame, bbox: [f32; 4]) -> f32 {
    let [x, y, w, h] = bbox;
    let mut side = PATCH;
    while side > 16 && side as f32 > w.min(h) {
        side /= 2;
    }
    let (cx, cy) = ((x + w / 2.0) as i64, (y + h / 2.0) as i64);
    let patch = frame.crop(
        cx - side as i64 / 2,
        cy - side as i64 / 2,
        side as u32,
        side as u32,
    );
    peak_ratio_db(&patch.grey(), side)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grating_stands_out_and_smooth_noise_does_not() {
        let n = 64;
        let mut seed = 7u32;
        let mut noise = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        let skin: Vec<f32> = (0..n * n)
            .map(|i| 128.0 + 20.0 * ((i % n) as f32 / 9.0).sin() + 3.0 * noise())
            .collect();
        let screen: Vec<f32> = skin
            .iter()
            .enumerate()
            .map(|(i, v)| v + 12.0 * (2.0 * std::f32::consts::PI * 0.31 * (i % n) as f32).cos())
            .collect();
        let (a, b) = (peak_ratio_db(&skin, n), peak_ratio_db(&screen, n));
        assert!(b > a + 15.0, "skin {a:.1} dB, screen {b:.1} dB");
    }
}
