//! The score histograms of `pad-report --plot`: one panel per method (DTN, MiniFASNet, moiré,
//! fused), bona fide filled green, each attack type as a coloured outline, the operating
//! threshold as a black line, all on the common 0–1 attack scale.

use std::path::Path;

use image::{Rgb, RgbImage};

use super::pad::PadReport;
use crate::base::config::Config;
use crate::base::error::{Error, Result};

const W: u32 = 720;
const PANEL: u32 = 150;
const BINS: usize = 40;
const LEFT: u32 = 90;

/// Outline colours of the attack types, in the order they are listed.
const COLOURS: [[u8; 3]; 6] = [
    [200, 40, 40],
    [40, 80, 220],
    [230, 140, 0],
    [150, 40, 170],
    [0, 150, 160],
    [110, 110, 110],
];

/// 3x5 glyphs for the labels (rows top to bottom, 3 bits each).
fn glyph(c: char) -> [u8; 5] {
    match c {
        'A' => [2, 5, 7, 5, 5],
        'B' => [6, 5, 6, 5, 6],
        'C' => [3, 4, 4, 4, 3],
        'D' => [6, 5, 5, 5, 6],
        'E' => [7, 4, 6, 4, 7],
        'F' => [7, 4, 6, 4, 4],
        'H' => [5, 5, 7, 5, 5],
        'I' => [7, 2, 2, 2, 7],
        'L' => [4, 4, 4, 4, 7],
        'M' => [5, 7, 7, 5, 5],
        'N' => [6, 5, 5, 5, 5],
        'O' => [2, 5, 5, 5, 2],
        'P' => [6, 5, 6, 4, 4],
        'R' => [6, 5, 6, 5, 5],
        'S' => [3, 4, 2, 1, 6],
        'T' => [7, 2, 2, 2, 2],
        'U' => [5, 5, 5, 5, 7],
        'W' => [5, 5, 7, 7, 5],
        'Y' => [5, 5, 2, 2, 2],
        '_' => [0, 0, 0, 0, 7],
        _ => [0; 5],
    }
}

fn text(img: &mut RgbImage, x: u32, y: u32, s: &str, colour: [u8; 3]) {
    for (i, c) in s.to_ascii_uppercase().chars().enumerate() {
        let g = glyph(c);
        for (row, bits) in g.iter().enumerate() {
            for col in 0..3 {
                if bits & (4 >> col) != 0 {
                    for dy in 0..2 {
                        for dx in 0..2 {
                            let (px, py) =
                                (x + (i as u32 * 4 + col) * 2 + dx, y + row as u32 * 2 + dy);
                            if px < img.width() && py < img.height() {
                                img.put_pixel(px, py, Rgb(colour));
                            }
                        }
                    }
                }
            }
        }
    }
}

fn histogram(scores: &[f32]) -> [usize; BINS] {
    let mut h = [0; BINS];
    for s in scores {
        h[((s.clamp(0.0, 0.9999)) * BINS as f32) as usize] += 1;
    }
    h
}

/// Writes the histograms PNG.
pub fn histograms(r: &PadReport, cfg: &Config, path: &Path) -> Result<()> {
    let dtn_t = cfg.vision.liveness_threshold;
    let methods = super::pad::methods(cfg);
    let h = PANEL * methods.len() as u32 + 30;
    let mut img = RgbImage::from_pixel(W, h, Rgb([255, 255, 255]));
    let kinds: Vec<&String> = r.attacks.keys().collect();
    // Legend.
    text(&mut img, 8, 8, "bona fide", [20, 140, 40]);
    for (i, k) in kinds.iter().enumerate() {
        text(
            &mut img,
            120 + i as u32 * 110,
            8,
            k,
            COLOURS[i % COLOURS.len()],
        );
    }
    let plot_w = W - LEFT - 10;
    for (m, method) in methods.iter().enumerate() {
        let (name, thr, score) = (method.name, method.threshold, method.score);
        let top = 30 + m as u32 * PANEL;
        let base = top + PANEL - 12;
        text(&mut img, 8, top + 50, name, [0, 0, 0]);
        let series = |list: &str| -> Vec<f32> {
            r.scores
                .get(list)
                .map(|v| {
                    v.iter()
                        .filter_map(|s| s.cues.as_ref().map(|c| score(c, dtn_t)))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut all = vec![histogram(&series("bona_fide"))];
        for k in &kinds {
            all.push(histogram(&series(k)));
        }
        let peak = all
            .iter()
            .flat_map(|h| h.iter())
            .copied()
            .max()
            .unwrap_or(1)
            .max(1) as f32;
        let bar_w = plot_w / BINS as u32;
        let y_of = |count: usize| base - ((count as f32 / peak) * (PANEL - 24) as f32) as u32;
        for (b, &c) in all[0].iter().enumerate() {
            let x0 = LEFT + b as u32 * bar_w;
            for x in x0..x0 + bar_w - 1 {
                for y in y_of(c)..base {
                    img.put_pixel(x, y, Rgb([150, 215, 160]));
                }
            }
        }
        for (i, hist) in all[1..].iter().enumerate() {
            let col = Rgb(COLOURS[i % COLOURS.len()]);
            for (b, &c) in hist.iter().enumerate() {
                let x0 = LEFT + b as u32 * bar_w + i as u32 % 3;
                let y = y_of(c);
                for x in x0..x0 + bar_w {
                    img.put_pixel(x.min(W - 1), y.min(base), col);
                }
                if b + 1 < BINS {
                    let yn = y_of(hist[b + 1]);
                    for yy in y.min(yn)..=y.max(yn) {
                        img.put_pixel((x0 + bar_w).min(W - 1), yy.min(base), col);
                    }
                }
            }
        }
        // Axis and threshold.
        for x in LEFT..LEFT + plot_w {
            img.put_pixel(x, base, Rgb([0, 0, 0]));
        }
        let tx = LEFT + (thr * plot_w as f32) as u32;
        for y in top + 4..=base {
            img.put_pixel(tx, y, Rgb([0, 0, 0]));
        }
    }
    img.save(path)
        .map_err(|e| Error::invalid(path.display().to_string(), e.to_string()))
}
