//! Face alignment: a 5-point similarity transform onto the standard 112x112 template.
//!
//! The least-squares similarity (rotation, uniform scale, translation; no reflection) from the
//! detected landmarks to the template has a closed form when points are read as complex numbers:
//! with centred points s and d, the transform is d = a·s + b with a = Σ d·conj(s) / Σ |s|².
//! The crop is then sampled bilinearly through the inverse transform.

use crate::base::frame::Frame;

/// The five-point template for 112x112 face crops used by ArcFace-style embedders (eye
/// centres, nose tip, mouth corners; image-left first).
pub const TEMPLATE_112: [[f32; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

/// A 2x3 affine matrix `[[a, b, c], [d, e, f]]` mapping (x, y) to (ax+by+c, dx+ey+f).
pub type Affine = [[f32; 3]; 2];

/// Least-squares similarity transform taking `src` points onto `dst` points.
pub fn similarity(src: &[[f32; 2]; 5], dst: &[[f32; 2]; 5]) -> Affine {
    let n = src.len() as f32;
    let mean = |p: &[[f32; 2]; 5]| {
        let s = p.iter().fold([0f32; 2], |a, q| [a[0] + q[0], a[1] + q[1]]);
        [s[0] / n, s[1] / n]
    };
    let (ms, md) = (mean(src), mean(dst));
    let (mut re, mut im, mut norm) = (0f32, 0f32, 0f32);
    for (s, d) in src.iter().zip(dst) {
        let (sx, sy) = (s[0] - ms[0], s[1] - ms[1]);
        let (dx, dy) = (d[0] - md[0], d[1] - md[1]);
        re += dx * sx + dy * sy;
        im += dy * sx - dx * sy;
        norm += sx * sx + sy * sy;
    }
    let (p, q) = if norm > 0.0 {
        (re / norm, im / norm)
    } else {
        (1.0, 0.0)
    };
    let tx = md[0] - (p * ms[0] - q * ms[1]);
    let ty = md[1] - (q * ms[0] + p * ms[1]);
    [[p, -q, tx], [q, p, ty]]
}

/// Inverts a similarity/affine matrix.
pub fn invert(m: &Affine) -> Affine {
    let [[a, b, c], [d, e, f]] = *m;
    let det = a * e - b * d;
    let (ia, ib, id, ie) = (e / det, -b / det, -d / det, a / det);
    [[ia, ib, -(ia * c + ib * f)], [id, ie, -(id * c + ie * f)]]
}

/// Warps `frame` through `m` (frame -> output coordinates) into a `w` x `h` image.
pub fn warp(frame: &Frame, m: &Affine, w: u32, h: u32) -> Frame {
    let inv = invert(m);
    let mut data = Vec::with_capacity(w as usize * h as usize * 3);
    for y in 0..h {
        for x in 0..w {
            let (xf, yf) = (x as f32, y as f32);
            let sx = inv[0][0] * xf + inv[0][1] * yf + inv[0][2];
            let sy = inv[1][0] * xf + inv[1][1] * yf + inv[1][2];
            let p = frame.sample(sx, sy);
            data.extend(p.iter().map(|v| (v + 0.5) as u8));
        }
    }
    Frame {
        width: w,
        height: h,
        data,
    }
}

/// The aligned 112x112 crop of a face given its five landmarks.
pub fn align_112(frame: &Frame, landmarks: &[[f32; 2]; 5]) -> Frame {
    warp(frame, &similarity(landmarks, &TEMPLATE_112), 112, 112)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_known_similarity() {
        // Rotate 30 degrees, scale 1.7, shift (12, -4).
        let (c, s) = (
            30f32.to_radians().cos() * 1.7,
            30f32.to_radians().sin() * 1.7,
        );
        let src = TEMPLATE_112;
        let dst = src.map(|[x, y]| [c * x - s * y + 12.0, s * x + c * y - 4.0]);
        let m = similarity(&src, &dst);
        for (p, q) in src.iter().zip(&dst) {
            let x = m[0][0] * p[0] + m[0][1] * p[1] + m[0][2];
            let y = m[1][0] * p[0] + m[1][1] * p[1] + m[1][2];
            assert!((x - q[0]).abs() < 1e-3 && (y - q[1]).abs() < 1e-3);
        }
        let back = invert(&m);
        let x = back[0][0] * dst[0][0] + back[0][1] * dst[0][1] + back[0][2];
        assert!((x - src[0][0]).abs() < 1e-3);
    }

    #[test]
    fn identity_warp_copies_pixels() {
        let data: Vec<u8> = (0..112 * 112 * 3).map(|i| (i % 251) as u8).collect();
        let f = Frame::from_rgb(112, 112, data).unwrap();
        let out = warp(&f, &similarity(&TEMPLATE_112, &TEMPLATE_112), 112, 112);
        assert_eq!(out.data, f.data);
    }
}
