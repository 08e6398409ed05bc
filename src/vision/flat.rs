//! A cue flat objects cannot fake: how well one plane explains the landmarks' motion.
//!
//! The five landmarks of a print or a screen lie on a plane, so between any two views of it a
//! homography maps one set onto the other up to detector noise, however the object is tilted
//! or bent toward the camera. A real head is not a plane: when it turns, the nose moves against
//! the eyes and mouth and no homography fits. With five points and eight unknowns two degrees
//! of freedom are left over, and the least-squares residual measures them.
//!
//! The residual only means something when the view changed: [`parallax`] also reports how far
//! the landmarks moved beyond a similarity transform (translation, rotation, scale), which both
//! a plane and a head produce by moving in front of the camera.

use serde::Serialize;

/// Landmarks of one face: right eye, left eye, nose, right and left mouth corners.
pub type Landmarks = [[f32; 2]; 5];

/// What two views of the landmarks say.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Parallax {
    /// RMS distance, in inter-eye distances, left after the best similarity transform.
    pub motion: f32,
    /// RMS distance, in inter-eye distances, left after the best homography.
    pub residual: f32,
}

/// Non-similarity motion (in inter-eye distances) needed before the residual is read. YuNet's
/// landmark noise alone moves a still face by 0.02–0.055 (measured by `pad-report` on shifted
/// frames of the real portraits), so less than this says nothing.
pub const MIN_MOTION: f32 = 0.08;
/// A residual below this with enough motion: the landmarks moved as a plane does (noise alone
/// leaves 0.004–0.022).
pub const PLANE_RESIDUAL: f32 = 0.015;
/// A residual above this: the landmarks moved as a 3-D head does (above what noise leaves on
/// a blurred print).
pub const DEPTH_RESIDUAL: f32 = 0.06;

/// The verdict of the flat-object test over an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flatness {
    /// The view hardly changed: no evidence either way.
    Unknown,
    /// The landmarks moved as a plane does (print, screen).
    Planar,
    /// The landmarks moved as a head does.
    Depth,
}

fn iod(p: &Landmarks) -> f32 {
    ((p[0][0] - p[1][0]).powi(2) + (p[0][1] - p[1][1]).powi(2))
        .sqrt()
        .max(1.0)
}

/// Solves the square system `a x = b` by Gaussian elimination with partial pivoting.
fn solve<const N: usize>(mut a: [[f64; N]; N], mut b: [f64; N]) -> Option<[f64; N]> {
    for col in 0..N {
        let piv = (col..N).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[piv][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, piv);
        b.swap(col, piv);
        for row in col + 1..N {
            let f = a[row][col] / a[col][col];
            let (top, bottom) = a.split_at_mut(row);
            for (x, p) in bottom[0][col..].iter_mut().zip(&top[col][col..]) {
                *x -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0f64; N];
    for row in (0..N).rev() {
        let s: f64 = (row + 1..N).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}

/// Least squares over rows `(coefficients, target)`: the normal equations, solved.
fn least_squares<const N: usize>(rows: &[([f64; N], f64)]) -> Option<[f64; N]> {
    let mut ata = [[0f64; N]; N];
    let mut atb = [0f64; N];
    for (r, t) in rows {
        for i in 0..N {
            atb[i] += r[i] * t;
            for j in 0..N {
                ata[i][j] += r[i] * r[j];
            }
        }
    }
    solve(ata, atb)
}

/// Centres the points and scales them to unit mean distance (Hartley's normalisation), so the
/// homography's normal equations are well conditioned.
fn normalise(p: &Landmarks) -> ([[f64; 2]; 5], f64) {
    let (mx, my) = (
        p.iter().map(|q| q[0] as f64).sum::<f64>() / 5.0,
        p.iter().map(|q| q[1] as f64).sum::<f64>() / 5.0,
    );
    let d = p
        .iter()
        .map(|q| ((q[0] as f64 - mx).powi(2) + (q[1] as f64 - my).powi(2)).sqrt())
        .sum::<f64>()
        / 5.0;
    let s = if d > 1e-9 { 1.0 / d } else { 1.0 };
    let mut out = [[0f64; 2]; 5];
    for (o, q) in out.iter_mut().zip(p) {
        *o = [(q[0] as f64 - mx) * s, (q[1] as f64 - my) * s];
    }
    (out, s)
}

fn rms(a: &[[f64; 2]; 5], b: &[[f64; 2]; 5]) -> f64 {
    (a.iter()
        .zip(b)
        .map(|(p, q)| (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2))
        .sum::<f64>()
        / 5.0)
        .sqrt()
}

/// How the landmarks moved from view `a` to view `b`.
pub fn parallax(a: &Landmarks, b: &Landmarks) -> Option<Parallax> {
    let (pa, _) = normalise(a);
    let (pb, sb) = normalise(b);
    // Back to inter-eye distances of view b.
    let unit = (1.0 / sb) / iod(b) as f64;
    // Similarity: u = a x - b y + tx, v = b x + a y + ty.
    let mut rows = Vec::with_capacity(10);
    for (p, q) in pa.iter().zip(&pb) {
        rows.push(([p[0], -p[1], 1.0, 0.0], q[0]));
        rows.push(([p[1], p[0], 0.0, 1.0], q[1]));
    }
    let [sa, sbb, tx, ty] = least_squares::<4>(&rows)?;
    let sim: Vec<[f64; 2]> = pa
        .iter()
        .map(|p| [sa * p[0] - sbb * p[1] + tx, sbb * p[0] + sa * p[1] + ty])
        .collect();
    let sim: [[f64; 2]; 5] = sim.try_into().ok()?;
    // Homography with h33 = 1, linearised (DLT rows).
    let mut rows = Vec::with_capacity(10);
    for (p, q) in pa.iter().zip(&pb) {
        let (x, y, u, v) = (p[0], p[1], q[0], q[1]);
        rows.push(([x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y], u));
        rows.push(([0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y], v));
    }
    let h = least_squares::<8>(&rows)?;
    let mut proj = [[0f64; 2]; 5];
    for (o, p) in proj.iter_mut().zip(&pa) {
        let w = h[6] * p[0] + h[7] * p[1] + 1.0;
        if w.abs() < 1e-9 {
            return None;
        }
        *o = [
            (h[0] * p[0] + h[1] * p[1] + h[2]) / w,
            (h[3] * p[0] + h[4] * p[1] + h[5]) / w,
        ];
    }
    Some(Parallax {
        motion: (rms(&sim, &pb) * unit) as f32,
        residual: (rms(&proj, &pb) * unit) as f32,
    })
}

/// The flat-object verdict over the landmarks of one attempt: the pair of views with the most
/// non-similarity motion decides.
pub fn flatness(views: &[Landmarks]) -> (Flatness, Option<Parallax>) {
    let mut best: Option<Parallax> = None;
    for (i, a) in views.iter().enumerate() {
        for b in &views[i + 1..] {
            if let Some(p) = parallax(a, b)
                && best.is_none_or(|q| p.motion > q.motion)
            {
                best = Some(p);
            }
        }
    }
    let verdict = match best {
        Some(p) if p.residual >= DEPTH_RESIDUAL => Flatness::Depth,
        Some(p) if p.motion >= MIN_MOTION && p.residual < PLANE_RESIDUAL => Flatness::Planar,
        _ => Flatness::Unknown,
    };
    (verdict, best)
}

/// A rough 3-D face in inter-eye units (x right, y down, z toward the camera): the nose tip
/// stands about 0.6 inter-eye distances in front of the eyes, the mouth 0.15.
pub const FACE_3D: [[f32; 3]; 5] = [
    [-0.5, 0.0, 0.0],
    [0.5, 0.0, 0.0],
    [0.0, 0.55, 0.6],
    [-0.4, 1.05, 0.15],
    [0.4, 1.05, 0.15],
];

/// Pinhole projection of 3-D points turned by `yaw` and `pitch` (radians), at `distance`
/// inter-eye units from a camera of focal length `f` pixels, centred at `c`. Used to test the
/// cue, and by the attack generator to move a flat print the way a hand does.
pub fn project(
    points: &[[f32; 3]; 5],
    yaw: f32,
    pitch: f32,
    distance: f32,
    f: f32,
    c: [f32; 2],
) -> Landmarks {
    let (sy, cy) = yaw.sin_cos();
    let (sp, cp) = pitch.sin_cos();
    let mut out = [[0f32; 2]; 5];
    for (o, p) in out.iter_mut().zip(points) {
        let (x, y, z) = (p[0], p[1] - 0.5, -p[2]);
        let (x, z) = (cy * x + sy * z, -sy * x + cy * z);
        let (y, z) = (cp * y - sp * z, sp * y + cp * z);
        let depth = distance + z;
        *o = [c[0] + f * x / depth, c[1] + f * y / depth];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat() -> [[f32; 3]; 5] {
        let mut p = FACE_3D;
        for q in &mut p {
            q[2] = 0.0;
        }
        p
    }

    #[test]
    fn a_turned_plane_fits_a_homography_and_a_turned_head_does_not() {
        let (f, c) = (600.0, [320.0, 240.0]);
        // A person 6 inter-eye distances from the lens turning by ~30 degrees.
        let straight = project(&FACE_3D, 0.0, 0.0, 6.0, f, c);
        let turned = project(&FACE_3D, 0.55, 0.1, 6.0, f, c);
        let head = parallax(&straight, &turned).unwrap();
        // A print foreshortens far less than a head parallaxes: it has to turn by ~50 degrees
        // before its motion stands out of the landmark noise.
        let a = project(&flat(), 0.0, 0.0, 6.0, f, c);
        let b = project(&flat(), 0.9, 0.1, 6.0, f, c);
        let plane = parallax(&a, &b).unwrap();
        assert!(plane.residual < 1e-3, "{plane:?}");
        assert!(head.residual > DEPTH_RESIDUAL, "{head:?}");
        assert_eq!(flatness(&[a, b]).0, Flatness::Planar);
        assert_eq!(flatness(&[straight, turned]).0, Flatness::Depth);
    }

    #[test]
    fn a_still_or_merely_shifted_face_says_nothing() {
        let (f, c) = (600.0, [320.0, 240.0]);
        let a = project(&FACE_3D, 0.0, 0.0, 8.0, f, c);
        let mut b = a;
        for p in &mut b {
            p[0] += 12.0;
            p[1] -= 3.0;
        }
        let p = parallax(&a, &b).unwrap();
        assert!(p.motion < 1e-3 && p.residual < 1e-3);
        assert_eq!(flatness(&[a, b]).0, Flatness::Unknown);
    }
}
