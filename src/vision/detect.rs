//! Face detection with YuNet (2023mar), decoded here in full.
//!
//! The frame is scaled to fit `size` x `size` keeping its aspect ratio, placed top-left and
//! zero-padded to multiples of 32 (the model variant with symbolic H and W runs at any multiple
//! of 32, so a 4:3 frame at size 320 runs at 320x256 rather than 320x320). Outputs at strides
//! 8, 16 and 32 give, per anchor cell, class and objectness scores (score = sqrt(cls * obj)),
//! a box as centre offset plus log size in stride units, and five landmarks as offsets. After
//! non-maximum suppression the boxes and landmarks are mapped back to frame coordinates.

use ort::session::Session;
use ort::value::Tensor;
use serde::Serialize;

use super::runtime::ModelError;
use crate::base::frame::Frame;

/// A detected face in frame coordinates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Face {
    /// Box as `[x, y, width, height]`.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    /// Detection confidence, 0–1.
    pub score: f32,
    /// Right eye, left eye, nose tip, right and left mouth corner (the subject's right and
    /// left, i.e. image left first), as `[x, y]`.
    pub landmarks: [[f32; 2]; 5],
}

impl Face {
    /// Box centre.
    pub fn centre(&self) -> [f32; 2] {
        [
            self.bbox[0] + self.bbox[2] / 2.0,
            self.bbox[1] + self.bbox[3] / 2.0,
        ]
    }

    /// Intersection over union with another box.
    pub fn iou(&self, o: &Face) -> f32 {
        let [ax, ay, aw, ah] = self.bbox;
        let [bx, by, bw, bh] = o.bbox;
        let ix = (ax + aw).min(bx + bw) - ax.max(bx);
        let iy = (ay + ah).min(by + bh) - ay.max(by);
        if ix <= 0.0 || iy <= 0.0 {
            return 0.0;
        }
        let inter = ix * iy;
        inter / (aw * ah + bw * bh - inter)
    }
}

/// How a frame is mapped onto the detector input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    /// Scale from frame to input pixels.
    pub scale: f32,
    /// Size of the scaled frame content.
    pub content: (u32, u32),
    /// Input size (content padded to multiples of 32).
    pub input: (u32, u32),
}

impl Letterbox {
    /// Plans the mapping of a `w` x `h` frame into a detector input of at most `size`.
    pub fn plan(w: u32, h: u32, size: u32) -> Letterbox {
        let scale = (size as f32 / w as f32).min(size as f32 / h as f32);
        let cw = ((w as f32 * scale).round() as u32).clamp(1, size);
        let ch = ((h as f32 * scale).round() as u32).clamp(1, size);
        let up = |v: u32| v.div_ceil(32) * 32;
        Letterbox {
            scale,
            content: (cw, ch),
            input: (up(cw), up(ch)),
        }
    }
}

/// YuNet decoder and its session.
pub struct Detector {
    session: Session,
    /// Longest side of the detector input.
    pub size: u32,
    /// Minimum score kept.
    pub threshold: f32,
    /// IoU above which the weaker of two boxes is dropped.
    pub nms_iou: f32,
}

const STRIDES: [u32; 3] = [8, 16, 32];

impl Detector {
    /// Wraps a loaded YuNet session.
    pub fn new(session: Session, size: u32, threshold: f32) -> Self {
        Detector {
            session,
            size,
            threshold,
            nms_iou: 0.3,
        }
    }

    /// Builds the NCHW BGR 0–255 input tensor for a frame.
    pub fn preprocess(&self, frame: &Frame) -> (Letterbox, Vec<f32>) {
        let lb = Letterbox::plan(frame.width, frame.height, self.size);
        let (iw, ih) = (lb.input.0 as usize, lb.input.1 as usize);
        let (cw, ch) = lb.content;
        let plane = iw * ih;
        let mut data = vec![0f32; 3 * plane];
        let sx = frame.width as f32 / cw as f32;
        let sy = frame.height as f32 / ch as f32;
        for y in 0..ch as usize {
            let fy = (y as f32 + 0.5) * sy - 0.5;
            for x in 0..cw as usize {
                let fx = (x as f32 + 0.5) * sx - 0.5;
                let p = frame.sample(fx, fy);
                let i = y * iw + x;
                // BGR order, rounded as an 8-bit resize would be.
                data[i] = (p[2] + 0.5).floor();
                data[plane + i] = (p[1] + 0.5).floor();
                data[2 * plane + i] = (p[0] + 0.5).floor();
            }
        }
        (lb, data)
    }

    /// Runs the model on a prepared input; returns the raw outputs by name.
    pub fn infer(
        &mut self,
        lb: &Letterbox,
        input: Vec<f32>,
    ) -> Result<Vec<(String, Vec<f32>)>, ModelError> {
        let err = |e: ort::Error| ModelError::Inference {
            model: "detector",
            reason: e.to_string(),
        };
        let shape = [1usize, 3, lb.input.1 as usize, lb.input.0 as usize];
        let tensor = Tensor::from_array((shape, input)).map_err(err)?;
        let outputs = self
            .session
            .run(ort::inputs!["input" => tensor])
            .map_err(err)?;
        let mut out = Vec::with_capacity(12);
        for (name, value) in outputs.iter() {
            let (_, data) = value.try_extract_tensor::<f32>().map_err(err)?;
            out.push((name.to_string(), data.to_vec()));
        }
        Ok(out)
    }

    /// Decodes raw outputs into faces in frame coordinates, after NMS.
    pub fn decode(
        &self,
        lb: &Letterbox,
        raw: &[(String, Vec<f32>)],
    ) -> Result<Vec<Face>, ModelError> {
        let get = |name: String| -> Result<&[f32], ModelError> {
            raw.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_slice())
                .ok_or(ModelError::Inference {
                    model: "detector",
                    reason: format!("output {name} missing"),
                })
        };
        let mut faces = Vec::new();
        for stride in STRIDES {
            let cols = (lb.input.0 / stride) as usize;
            let rows = (lb.input.1 / stride) as usize;
            let cls = get(format!("cls_{stride}"))?;
            let obj = get(format!("obj_{stride}"))?;
            let bbox = get(format!("bbox_{stride}"))?;
            let kps = get(format!("kps_{stride}"))?;
            if cls.len() != rows * cols
                || bbox.len() != rows * cols * 4
                || kps.len() != rows * cols * 10
            {
                return Err(ModelError::Inference {
                    model: "detector",
                    reason: format!(
                        "stride {stride}: output sizes do not match a {}x{} input",
                        lb.input.0, lb.input.1
                    ),
                });
            }
            let s = stride as f32;
            for i in 0..rows * cols {
                let score = (cls[i].clamp(0.0, 1.0) * obj[i].clamp(0.0, 1.0)).sqrt();
                if score < self.threshold {
                    continue;
                }
                let (r, c) = ((i / cols) as f32, (i % cols) as f32);
                let b = &bbox[i * 4..i * 4 + 4];
                let cx = (c + b[0]) * s;
                let cy = (r + b[1]) * s;
                let w = b[2].exp() * s;
                let h = b[3].exp() * s;
                let k = &kps[i * 10..i * 10 + 10];
                let mut landmarks = [[0f32; 2]; 5];
                for (n, lm) in landmarks.iter_mut().enumerate() {
                    *lm = [
                        (k[2 * n] + c) * s / lb.scale,
                        (k[2 * n + 1] + r) * s / lb.scale,
                    ];
                }
                faces.push(Face {
                    bbox: [
                        (cx - w / 2.0) / lb.scale,
                        (cy - h / 2.0) / lb.scale,
                        w / lb.scale,
                        h / lb.scale,
                    ],
                    score,
                    landmarks,
                });
            }
        }
        Ok(nms(faces, self.nms_iou))
    }

    /// Detects faces in a frame, best first.
    pub fn detect(&mut self, frame: &Frame) -> Result<Vec<Face>, ModelError> {
        let (lb, input) = self.preprocess(frame);
        let raw = self.infer(&lb, input)?;
        self.decode(&lb, &raw)
    }
}

/// Greedy non-maximum suppression, highest score first.
pub fn nms(mut faces: Vec<Face>, iou: f32) -> Vec<Face> {
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Face> = Vec::new();
    for f in faces {
        if kept.iter().all(|k| k.iou(&f) <= iou) {
            kept.push(f);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, score: f32) -> Face {
        Face {
            bbox: [x, 0.0, 10.0, 10.0],
            score,
            landmarks: [[0.0; 2]; 5],
        }
    }

    #[test]
    fn letterbox_keeps_aspect_and_pads_to_32() {
        let lb = Letterbox::plan(640, 480, 320);
        assert_eq!(lb.content, (320, 240));
        assert_eq!(lb.input, (320, 256));
        assert!((lb.scale - 0.5).abs() < 1e-6);
        let lb = Letterbox::plan(300, 900, 640);
        assert_eq!(lb.content, (213, 640));
        assert_eq!(lb.input, (224, 640));
    }

    #[test]
    fn nms_drops_overlaps_and_keeps_separate_faces() {
        let kept = nms(vec![face(0.0, 0.8), face(1.0, 0.9), face(50.0, 0.7)], 0.3);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].score, 0.9);
        assert_eq!(kept[1].bbox[0], 50.0);
    }
}
