//! Matching: 1:1 against the badge-claimed person's templates, and 1:N over the whole roster.
//!
//! Embeddings are unit vectors, so similarity is a dot product (cosine). For 1:N the gallery is
//! also kept as int8 (each vector scaled by its own largest component): a scan reads a quarter of
//! the memory that f32 would, which is what bounds it at 100,000 templates. The best candidates
//! of the int8 scan are re-scored exactly in f32, so the top-1 is the exact one unless more than
//! [`RERANK`] templates sit within the quantisation error of the true best.

use super::embed::cosine;

/// Candidates from the int8 pre-scan re-scored in f32.
pub const RERANK: usize = 32;

/// A 1:N match.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Index of the matching template in the gallery.
    pub index: usize,
    /// Its cosine similarity to the probe.
    pub score: f32,
}

/// All enrolled templates of one embedder, with who they belong to.
#[derive(Debug, Clone, Default)]
pub struct Gallery {
    dims: usize,
    owners: Vec<u32>,
    exact: Vec<f32>,
    quant: Vec<i8>,
    scales: Vec<f32>,
}

fn quantise(v: &[f32]) -> (Vec<i8>, f32) {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 {
        return (vec![0; v.len()], 0.0);
    }
    let k = 127.0 / max;
    (
        v.iter().map(|x| (x * k).round() as i8).collect(),
        max / 127.0,
    )
}

#[inline]
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    // Products of two i8 fit an i16; adding neighbouring pairs before widening to i32 is the
    // shape LLVM lowers to SSE2 `pmaddwd` on x86-64 (and widening multiply-adds on aarch64):
    // about twice as fast as widening every product.
    let mut total = 0i32;
    let (ca, cb) = (a.chunks_exact(32), b.chunks_exact(32));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        let mut pairs = [0i32; 16];
        for k in 0..16 {
            pairs[k] = (x[2 * k] as i16 * y[2 * k] as i16) as i32
                + (x[2 * k + 1] as i16 * y[2 * k + 1] as i16) as i32;
        }
        total += pairs.iter().sum::<i32>();
    }
    total
        + ra.iter()
            .zip(rb)
            .map(|(&x, &y)| x as i32 * y as i32)
            .sum::<i32>()
}

impl Gallery {
    /// An empty gallery of `dims`-dimensional templates.
    pub fn new(dims: usize) -> Self {
        Gallery {
            dims,
            ..Default::default()
        }
    }

    /// Number of templates.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.owners.len()
    }

    /// True when no template is enrolled.
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// Adds a unit-length template belonging to `owner` (an index the caller maps to a person).
    pub fn add(&mut self, owner: u32, template: &[f32]) {
        assert_eq!(template.len(), self.dims, "template length");
        let (q, s) = quantise(template);
        self.owners.push(owner);
        self.exact.extend_from_slice(template);
        self.quant.extend(q);
        self.scales.push(s);
    }

    /// Owner of template `index`.
    pub fn owner(&self, index: usize) -> u32 {
        self.owners[index]
    }

    /// Exact best match by scanning every template in f32 (the reference for tests/benchmarks).
    pub fn best_exact(&self, probe: &[f32]) -> Option<Hit> {
        self.exact
            .chunks_exact(self.dims)
            .enumerate()
            .map(|(index, t)| Hit {
                index,
                score: cosine(probe, t),
            })
            .max_by(|a, b| a.score.total_cmp(&b.score))
    }

    /// The int8 scan's best candidates (split over the rayon pool's threads), re-scored
    /// exactly, best first.
    fn candidates(&self, probe: &[f32]) -> Vec<Hit> {
        use rayon::prelude::*;
        if self.is_empty() {
            return Vec::new();
        }
        let (pq, ps) = quantise(probe);
        // Slices of 8,192 templates (1.5 MiB of int8 at 192-d): big enough to amortise the
        // hand-off, small enough to balance two cores.
        let span = 8192 * self.dims;
        let candidates: Vec<(f32, usize)> = self
            .quant
            .par_chunks(span)
            .enumerate()
            .flat_map_iter(|(c, chunk)| {
                let base = c * 8192;
                let mut top: Vec<(f32, usize)> = Vec::with_capacity(RERANK + 1);
                let mut floor = f32::NEG_INFINITY;
                let scales = &self.scales[base..base + chunk.len() / self.dims];
                for (k, (t, &scale)) in chunk.chunks_exact(self.dims).zip(scales).enumerate() {
                    let index = base + k;
                    let approx = dot_i8(&pq, t) as f32 * ps * scale;
                    if top.len() < RERANK || approx > floor {
                        let at = top.partition_point(|&(s, _)| s > approx);
                        top.insert(at, (approx, index));
                        top.truncate(RERANK);
                        if top.len() == RERANK {
                            floor = top[RERANK - 1].0;
                        }
                    }
                }
                top
            })
            .collect();
        let mut hits: Vec<Hit> = candidates
            .iter()
            .map(|&(_, index)| Hit {
                index,
                score: cosine(
                    probe,
                    &self.exact[index * self.dims..(index + 1) * self.dims],
                ),
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        hits
    }

    /// Best match: int8 scan, then exact re-scoring of the top candidates.
    pub fn best(&self, probe: &[f32]) -> Option<Hit> {
        self.candidates(probe).into_iter().next()
    }

    /// Best match and the best score of anyone else (None when nobody else is near), for the
    /// face-only margin rule: a stranger tends to sit about as close to two people.
    pub fn best_and_runner_up(&self, probe: &[f32]) -> Option<(Hit, Option<f32>)> {
        let hits = self.candidates(probe);
        let best = *hits.first()?;
        let owner = self.owners[best.index];
        let second = hits
            .iter()
            .find(|h| self.owners[h.index] != owner)
            .map(|h| h.score);
        Some((best, second))
    }
}

/// 1:1 verification: the best similarity between a probe and the claimed person's templates.
pub fn verify(probe: &[f32], templates: &[Vec<f32>]) -> Option<f32> {
    templates
        .iter()
        .filter(|t| t.len() == probe.len())
        .map(|t| cosine(probe, t))
        .max_by(f32::total_cmp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::embed::l2_normalise;
    use rand::{Rng, SeedableRng};

    fn random_unit(rng: &mut impl Rng, d: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..d).map(|_| rng.gen_range(-1.0..1.0)).collect();
        l2_normalise(&mut v);
        v
    }

    #[test]
    fn int8_scan_finds_the_same_top1_as_exact() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut g = Gallery::new(192);
        for i in 0..5000 {
            g.add(i, &random_unit(&mut rng, 192));
        }
        for _ in 0..50 {
            // A noisy copy of a random enrolled template, as a real probe would be.
            let target = rng.gen_range(0..g.len());
            let mut p: Vec<f32> = g.exact[target * 192..(target + 1) * 192]
                .iter()
                .map(|x| x + rng.gen_range(-0.05..0.05))
                .collect();
            l2_normalise(&mut p);
            let fast = g.best(&p).unwrap();
            let exact = g.best_exact(&p).unwrap();
            assert_eq!(fast.index, exact.index);
            assert_eq!(fast.index, target);
            assert!((fast.score - exact.score).abs() < 1e-6);
        }
        // Pure noise probes: still the exact top-1.
        for _ in 0..50 {
            let p = random_unit(&mut rng, 192);
            assert_eq!(g.best(&p).unwrap().index, g.best_exact(&p).unwrap().index);
        }
    }

    #[test]
    fn verify_takes_the_best_template() {
        let a = vec![1.0, 0.0];
        let b = vec![0.0, 1.0];
        assert_eq!(verify(&[0.6, 0.8], &[a, b]), Some(0.8));
        assert_eq!(verify(&[0.6, 0.8], &[]), None);
    }
}
