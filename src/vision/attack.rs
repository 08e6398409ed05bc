//! Synthetic presentation attacks, made from real portraits, for measuring the liveness
//! decision where no captured attacks exist. Every output is synthetic and is labelled so
//! wherever it is reported.
//!
//! Each attack is rendered as the kiosk's 640x480 camera would see it:
//!
//! - **print**: the photo on paper — paper gamut (raised blacks, dulled whites, warm and less
//!   saturated), a CMY halftone dot screen at the usual angles, the sheet bent (a cylinder
//!   warp with its shading), a glare spot, held in front of a room;
//! - **screen**: the photo on a phone or tablet — display gamma, backlight bleed, the RGB
//!   sub-pixel stripes at a pitch that does not match the camera's (moiré at several scales,
//!   from the sensor integrating the grid), a dark bezel;
//! - **rephoto**: a photograph of the photo — perspective, defocus, a colour cast, JPEG;
//! - **lowres**: a low-resolution replay — the face down-sampled, block-compressed and shown
//!   on a dense screen with a bezel.
//!
//! The camera model (sensor integration by 3x3 super-sampling, defocus, noise) is shared.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::base::frame::Frame;

/// Camera frame the attacks are rendered into.
pub const CAMERA: (u32, u32) = (640, 480);

/// The kinds of synthetic attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum AttackKind {
    /// A printed photo.
    Print,
    /// A photo on a phone or tablet screen.
    Screen,
    /// A photograph of the photo.
    Rephoto,
    /// A low-resolution replay on a screen.
    Lowres,
}

impl AttackKind {
    /// Every kind, in report order.
    pub const ALL: [AttackKind; 4] = [
        AttackKind::Print,
        AttackKind::Screen,
        AttackKind::Rephoto,
        AttackKind::Lowres,
    ];

    /// Directory and report name.
    pub fn name(self) -> &'static str {
        match self {
            AttackKind::Print => "print",
            AttackKind::Screen => "screen",
            AttackKind::Rephoto => "rephoto",
            AttackKind::Lowres => "lowres",
        }
    }
}

/// Where the presented artefact lies in the camera frame and how the photo fills it.
struct Placement {
    /// Artefact rectangle in camera pixels: x, y, w, h.
    rect: [f32; 4],
}

impl Placement {
    /// A rectangle of the photo's aspect, 70–92 % of the frame's height, near the centre.
    fn random(src: &Frame, rng: &mut StdRng) -> Placement {
        let (cw, ch) = (CAMERA.0 as f32, CAMERA.1 as f32);
        let aspect = src.width as f32 / src.height as f32;
        let h = ch * rng.gen_range(0.85..1.05);
        let w = (h * aspect).min(cw * 0.95);
        let h = w / aspect;
        let x = (cw - w) / 2.0 + rng.gen_range(-0.05..0.05) * cw;
        let y = (ch - h) / 2.0 + rng.gen_range(-0.04..0.04) * ch;
        Placement { rect: [x, y, w, h] }
    }

    /// Photo coordinates (0..1) of a camera point, or None outside the artefact.
    fn uv(&self, x: f32, y: f32) -> Option<(f32, f32)> {
        let [rx, ry, rw, rh] = self.rect;
        let (u, v) = ((x - rx) / rw, (y - ry) / rh);
        ((0.0..1.0).contains(&u) && (0.0..1.0).contains(&v)).then_some((u, v))
    }
}

fn lerp(a: f32, b: f32, t: f32) -> f32 {
    a + (b - a) * t
}

/// A dim, blurred room behind the artefact: the photo itself, enlarged and darkened.
fn room(src: &Frame, rng: &mut StdRng) -> Frame {
    let small = src.resize(32, 24);
    let big = small.resize(CAMERA.0, CAMERA.1);
    let k = rng.gen_range(0.35..0.6);
    Frame {
        data: big
            .data
            .iter()
            .map(|&v| (v as f32 * k + 20.0) as u8)
            .collect(),
        ..big
    }
}

/// Renders a camera frame: `colour(x, y)` for points on the artefact, the room elsewhere,
/// each camera pixel integrating 3x3 sub-samples; then defocus and sensor noise.
fn capture(
    background: &Frame,
    place: &Placement,
    rng: &mut StdRng,
    blur: f32,
    colour: &dyn Fn(f32, f32, f32, f32) -> [f32; 3],
) -> Frame {
    let (w, h) = CAMERA;
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let mut acc = [0f32; 3];
            for sy in 0..3 {
                for sx in 0..3 {
                    let (fx, fy) = (
                        x as f32 + (sx as f32 + 0.5) / 3.0,
                        y as f32 + (sy as f32 + 0.5) / 3.0,
                    );
                    let p = match place.uv(fx, fy) {
                        Some((u, v)) => colour(u, v, fx, fy),
                        None => {
                            let b = background.px(x as i64, y as i64);
                            [b[0] as f32, b[1] as f32, b[2] as f32]
                        }
                    };
                    for k in 0..3 {
                        acc[k] += p[k] / 9.0;
                    }
                }
            }
            data.extend(acc.iter().map(|v| v.clamp(0.0, 255.0) as u8));
        }
    }
    let frame = Frame {
        width: w,
        height: h,
        data,
    };
    let frame = gaussian(&frame, blur);
    let sigma = rng.gen_range(1.5..3.5);
    noise(&frame, sigma, rng)
}

/// Separable Gaussian blur (sigma in pixels; below 0.3 nothing).
pub fn gaussian(f: &Frame, sigma: f32) -> Frame {
    if sigma < 0.3 {
        return f.clone();
    }
    let r = (sigma * 2.5).ceil() as i64;
    let k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let norm: f32 = k.iter().sum();
    let (w, h) = (f.width as i64, f.height as i64);
    let pass = |src: &[f32], horizontal: bool| {
        let mut out = vec![0f32; src.len()];
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    let mut s = 0.0;
                    for (j, kv) in k.iter().enumerate() {
                        let d = j as i64 - r;
                        let (xx, yy) = if horizontal {
                            ((x + d).clamp(0, w - 1), y)
                        } else {
                            (x, (y + d).clamp(0, h - 1))
                        };
                        s += kv * src[((yy * w + xx) * 3 + c) as usize];
                    }
                    out[((y * w + x) * 3 + c) as usize] = s / norm;
                }
            }
        }
        out
    };
    let src: Vec<f32> = f.data.iter().map(|&v| v as f32).collect();
    let out = pass(&pass(&src, true), false);
    Frame {
        width: f.width,
        height: f.height,
        data: out
            .iter()
            .map(|v| (v + 0.5).clamp(0.0, 255.0) as u8)
            .collect(),
    }
}

/// Adds Gaussian sensor noise (Box–Muller).
fn noise(f: &Frame, sigma: f32, rng: &mut StdRng) -> Frame {
    let data = f
        .data
        .iter()
        .map(|&v| {
            let (a, b): (f32, f32) = (rng.gen_range(1e-6..1.0), rng.gen_range(0.0..1.0));
            let n = (-2.0 * a.ln()).sqrt() * (2.0 * std::f32::consts::PI * b).cos();
            (v as f32 + sigma * n).clamp(0.0, 255.0) as u8
        })
        .collect();
    Frame { data, ..f.clone() }
}

fn photo(src: &Frame, u: f32, v: f32) -> [f32; 3] {
    src.sample(u * src.width as f32 - 0.5, v * src.height as f32 - 0.5)
}

/// The photo printed and held up: gamut, halftone, bend, glare.
fn print(src: &Frame, rng: &mut StdRng) -> Frame {
    let bg = room(src, rng);
    let place = Placement::random(src, rng);
    let (black, white) = (rng.gen_range(22.0..40.0), rng.gen_range(205.0..232.0));
    let sat = rng.gen_range(0.65..0.85);
    let period = rng.gen_range(2.2..4.2); // halftone cell, camera pixels
    let angles = [15f32, 75.0, 0.0].map(|a| (a + rng.gen_range(-4.0..4.0)).to_radians());
    let bend = rng.gen_range(0.02..0.06) * place.rect[3];
    let (gx, gy) = (rng.gen_range(0.2..0.8), rng.gen_range(0.15..0.6));
    let (gs, ga) = (rng.gen_range(0.12..0.25), rng.gen_range(30.0..80.0));
    let blur = rng.gen_range(0.5..1.0);
    capture(&bg, &place, rng, blur, &|u, v, x, y| {
        // The sheet bent about a vertical axis: a bulge and its shading.
        let curve = (std::f32::consts::PI * u).sin();
        let v = (v - bend / place.rect[3] * curve).clamp(0.0, 0.999);
        let shade = 0.88 + 0.12 * curve;
        let p = photo(src, u, v);
        let grey = (p[0] + p[1] + p[2]) / 3.0;
        let mut out = [0f32; 3];
        for c in 0..3 {
            // Ink coverage of cyan, magenta, yellow for this channel, through a dot screen.
            let tone = lerp(grey, p[c], sat) / 255.0;
            let ink = 1.0 - tone;
            let (s, co) = angles[c].sin_cos();
            let (a, b) = ((x * co + y * s) / period, (-x * s + y * co) / period);
            let spot = 0.5
                - 0.25
                    * ((2.0 * std::f32::consts::PI * a).cos()
                        + (2.0 * std::f32::consts::PI * b).cos());
            let inked = if spot < ink { 1.0 } else { 0.0 };
            let refl = lerp(white, black, inked);
            out[c] = refl * shade * [1.02, 1.0, 0.93][c];
        }
        let d2 = ((u - gx) / gs).powi(2) + ((v - gy) / gs).powi(2);
        let glare = ga * (-d2).exp();
        out.map(|o| o + glare)
    })
}

/// The photo on a phone or tablet: gamma, bleed, sub-pixels, bezel.
fn screen(src: &Frame, rng: &mut StdRng, lowres: bool) -> Frame {
    let bg = room(src, rng);
    let place = Placement::random(src, rng);
    let gamma = rng.gen_range(0.8..1.25);
    let bleed = rng.gen_range(8.0..24.0);
    // Screen pixel pitch in camera pixels: non-integer, so the grid beats against the sensor.
    let pitch = if lowres {
        rng.gen_range(0.7..1.1)
    } else {
        rng.gen_range(1.3..3.4)
    };
    let tilt = rng.gen_range(-3.0f32..3.0).to_radians();
    let bezel = rng.gen_range(0.03..0.07);
    let content = if lowres {
        let k = rng.gen_range(4..7);
        let small = src.resize((src.width / k).max(16), (src.height / k).max(16));
        small
            .jpeg_roundtrip(rng.gen_range(30..50))
            .resize(src.width, src.height)
    } else {
        src.clone()
    };
    let (ts, tc) = tilt.sin_cos();
    capture(&bg, &place, rng, 0.6, &|u, v, x, y| {
        if u < bezel || u > 1.0 - bezel || v < bezel * 0.7 || v > 1.0 - bezel * 0.7 {
            return [14.0, 14.0, 16.0];
        }
        let (su, sv) = (
            (u - bezel) / (1.0 - 2.0 * bezel),
            (v - bezel * 0.7) / (1.0 - 1.4 * bezel),
        );
        let p = photo(&content, su, sv);
        // Backlight bleeds in from the edges.
        let edge = su.min(1.0 - su).min(sv).min(1.0 - sv);
        let glow = bleed * (1.0 + 2.0 * (-edge * 12.0).exp());
        let (a, b) = ((x * tc + y * ts) / pitch, (-x * ts + y * tc) / pitch);
        let sub = ((a.rem_euclid(1.0)) * 3.0) as usize;
        let row_gap = b.rem_euclid(1.0) > 0.82;
        let mut out = [0f32; 3];
        for c in 0..3 {
            let lin = 255.0 * (p[c] / 255.0).powf(gamma);
            let lit = if c == sub && !row_gap { 2.6 } else { 0.2 };
            out[c] = lin * lit + glow;
        }
        out
    })
}

/// A photograph of the photo: perspective, defocus, cast, JPEG.
fn rephoto(src: &Frame, rng: &mut StdRng) -> Frame {
    let bg = room(src, rng);
    let place = Placement::random(src, rng);
    // Keystone: the top edge narrower or wider than the bottom.
    let key = rng.gen_range(-0.08..0.08);
    let cast = [rng.gen_range(0.9..1.1), 1.0, rng.gen_range(0.85..1.05)];
    let blur = rng.gen_range(1.0..1.8);
    let quality = rng.gen_range(55..80);
    let f = capture(&bg, &place, rng, blur, &|u, v, _, _| {
        let s = 1.0 + key * (0.5 - v) * 2.0;
        let u = 0.5 + (u - 0.5) * s;
        if !(0.0..1.0).contains(&u) {
            return [30.0, 30.0, 30.0];
        }
        let p = photo(src, u, v);
        [
            p[0] * cast[0] * 0.92 + 10.0,
            p[1] * 0.92 + 10.0,
            p[2] * cast[2] * 0.92 + 10.0,
        ]
    });
    f.jpeg_roundtrip(quality)
}

/// Renders one synthetic attack of `kind` from a real photo, reproducibly from `seed`.
pub fn generate(src: &Frame, kind: AttackKind, seed: u64) -> Frame {
    let mut rng = StdRng::seed_from_u64(seed ^ (kind as u64) << 32);
    match kind {
        AttackKind::Print => print(src, &mut rng),
        AttackKind::Screen => screen(src, &mut rng, false),
        AttackKind::Rephoto => rephoto(src, &mut rng),
        AttackKind::Lowres => screen(src, &mut rng, true),
    }
}

/// A bona fide frame from a real photo: fitted into the camera frame, with small changes of
/// framing, exposure and sensor noise — what a camera adds, nothing an attack would.
pub fn bona_fide(src: &Frame, seed: u64) -> Frame {
    let mut rng = StdRng::seed_from_u64(seed);
    let (cw, ch) = (CAMERA.0 as f32, CAMERA.1 as f32);
    let scale = (cw / src.width as f32).min(ch / src.height as f32) * rng.gen_range(0.95..1.1);
    let (dx, dy) = (rng.gen_range(-12.0..12.0), rng.gen_range(-10.0..10.0));
    let gain = rng.gen_range(0.9..1.1);
    let (ox, oy) = (
        (cw - src.width as f32 * scale) / 2.0 + dx,
        (ch - src.height as f32 * scale) / 2.0 + dy,
    );
    let mut data = Vec::with_capacity((CAMERA.0 * CAMERA.1 * 3) as usize);
    for y in 0..CAMERA.1 {
        for x in 0..CAMERA.0 {
            let (sx, sy) = ((x as f32 - ox) / scale, (y as f32 - oy) / scale);
            let p = src.sample(sx - 0.5, sy - 0.5);
            data.extend(p.iter().map(|v| (v * gain).clamp(0.0, 255.0) as u8));
        }
    }
    let f = Frame {
        width: CAMERA.0,
        height: CAMERA.1,
        data,
    };
    let sigma = rng.gen_range(1.0..2.5);
    noise(&f, sigma, &mut rng)
}

/// The frames of someone standing still: the same frame shifted by a few pixels, with fresh
/// sensor noise (2-D motion only; a still photo cannot show how a head turns).
pub fn shifted(f: &Frame, views: usize, seed: u64) -> Vec<Frame> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..views)
        .map(|_| {
            let (dx, dy) = (rng.gen_range(-6.0f32..6.0), rng.gen_range(-4.0f32..4.0));
            let mut data = Vec::with_capacity(f.data.len());
            for y in 0..f.height {
                for x in 0..f.width {
                    let p = f.sample(x as f32 + dx, y as f32 + dy);
                    data.extend(p.iter().map(|v| (v + 0.5) as u8));
                }
            }
            let sigma = rng.gen_range(1.0..2.0);
            noise(&Frame { data, ..f.clone() }, sigma, &mut rng)
        })
        .collect()
}

/// The frames of a flat artefact moved by hand: the same capture seen through homographies
/// that tilt it about a vertical and a horizontal axis (a plane stays a plane).
pub fn tilted(f: &Frame, views: usize, seed: u64) -> Vec<Frame> {
    let mut rng = StdRng::seed_from_u64(seed);
    let (w, h) = (f.width as f32, f.height as f32);
    (0..views)
        .map(|i| {
            if i == 0 {
                return f.clone();
            }
            let (yaw, pitch) = (rng.gen_range(-0.35f32..0.35), rng.gen_range(-0.2f32..0.2));
            // Perspective of a plane turned by yaw/pitch, seen from 2.5 frame widths.
            let d = 2.5 * w;
            let mut data = Vec::with_capacity(f.data.len());
            for y in 0..f.height {
                for x in 0..f.width {
                    let (px, py) = (x as f32 - w / 2.0, y as f32 - h / 2.0);
                    // Inverse map: the camera ray through (px, py) meets the turned plane.
                    let (sy, cy) = yaw.sin_cos();
                    let (sp, cp) = pitch.sin_cos();
                    let denom = d * cy * cp - px * sy * cp + py * sp;
                    let t = d / denom.max(1e-3);
                    let (rx, ry, rz) = (px * t, py * t, d * t - d);
                    let u = rx * cy - rz * sy;
                    let v = ry * cp + (rx * sy + rz * cy) * sp;
                    let p = f.sample(u + w / 2.0 - 0.5, v + h / 2.0 - 0.5);
                    data.extend(p.iter().map(|v| (v + 0.5) as u8));
                }
            }
            Frame { data, ..f.clone() }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn portrait() -> Frame {
        let (w, h) = (200u32, 240u32);
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let v = (120.0 + 60.0 * ((x as f32 / 17.0).sin() * (y as f32 / 23.0).cos())) as u8;
                data.extend([v, v.saturating_sub(20), v.saturating_sub(40)]);
            }
        }
        Frame::from_rgb(w, h, data).unwrap()
    }

    #[test]
    fn attacks_are_reproducible_camera_frames_that_differ_by_kind() {
        let src = portrait();
        let a = generate(&src, AttackKind::Print, 1);
        assert_eq!((a.width, a.height), CAMERA);
        assert_eq!(a.data, generate(&src, AttackKind::Print, 1).data);
        assert_ne!(a.data, generate(&src, AttackKind::Print, 2).data);
        let s = generate(&src, AttackKind::Screen, 1);
        assert_ne!(a.data, s.data);
        // The screen's sub-pixel grid shows in the spectrum; a camera's view of the real
        // thing does not carry it.
        let centre = [220.0, 140.0, 200.0, 200.0];
        let live = crate::vision::spectrum::moire_db(&bona_fide(&src, 1), centre);
        let grid = crate::vision::spectrum::moire_db(&s, centre);
        assert!(
            grid > live + 3.0,
            "screen {grid:.1} dB, bona fide {live:.1} dB"
        );
    }
}
