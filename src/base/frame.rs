//! Frames and the few pixel operations the pipeline needs, written for this pipeline.
//!
//! A [`Frame`] is packed 8-bit RGB. Resizing and warping sample bilinearly with pixel centres at
//! +0.5 (the convention OpenCV's `INTER_LINEAR` uses), so detections can be compared with the
//! OpenCV reference to the pixel. Decoding files is left to the `image` crate.

use std::io::Seek;
use std::path::Path;

use crate::base::error::{Error, Result};

/// Largest image accepted from a file or a camera, in pixels (a 40-megapixel phone photo fits).
pub const MAX_PIXELS: u64 = 50_000_000;
/// Longest side accepted, in pixels.
pub const MAX_SIDE: u32 = 16_384;

/// An 8-bit RGB image, row-major, 3 bytes per pixel.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes, RGB.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Frame({}x{})", self.width, self.height)
    }
}

impl Frame {
    /// Wraps RGB bytes; fails if the length does not match the size.
    pub fn from_rgb(width: u32, height: u32, data: Vec<u8>) -> Result<Frame> {
        if data.len() != width as usize * height as usize * 3 || width == 0 || height == 0 {
            return Err(Error::invalid(
                "frame",
                format!(
                    "{} bytes do not make a {width}x{height} RGB image",
                    data.len()
                ),
            ));
        }
        Ok(Frame {
            width,
            height,
            data,
        })
    }

    /// Decodes a JPEG or PNG file (alpha and grey are converted to RGB), turned upright by its
    /// EXIF orientation. An image larger than [`MAX_PIXELS`] is refused from its header,
    /// before anything is decoded or converted.
    pub fn open(path: &Path) -> Result<Frame> {
        let name = path.display().to_string();
        let reader = image::ImageReader::open(path)
            .and_then(|r| r.with_guessed_format())
            .map_err(|e| Error::invalid(&name, format!("cannot read image: {e}")))?;
        Self::decode_reader(reader, &name)
    }

    /// Decodes an in-memory JPEG or PNG, with the same size limit as [`Frame::open`].
    pub fn decode(bytes: &[u8]) -> Result<Frame> {
        let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| Error::invalid("image", format!("cannot decode: {e}")))?;
        Self::decode_reader(reader, "image")
    }

    /// Reads the size the header declares first and refuses an image over the limits, then
    /// decodes under an allocation limit, so a small file that inflates (a 20000x20000 grey
    /// PNG is 389 KB, and 1.2 GB once converted to RGB) is refused with its size named.
    fn decode_reader<R: std::io::BufRead + Seek>(
        reader: image::ImageReader<R>,
        name: &str,
    ) -> Result<Frame> {
        let err =
            |e: &dyn std::fmt::Display| Error::invalid(name, format!("cannot read image: {e}"));
        let format = reader.format();
        let mut inner = reader.into_inner();
        let start = inner.stream_position().map_err(|e| err(&e))?;
        let mut head = image::ImageReader::new(&mut inner);
        if let Some(f) = format {
            head.set_format(f);
        }
        let (w, h) = head.into_dimensions().map_err(|e| err(&e))?;
        if w > MAX_SIDE || h > MAX_SIDE || w as u64 * h as u64 > MAX_PIXELS {
            return Err(Error::invalid(
                name,
                format!(
                    "image is {w}x{h} ({:.1} megapixels); allowed: at most {} megapixels and {MAX_SIDE} pixels a side",
                    w as f64 * h as f64 / 1e6,
                    MAX_PIXELS / 1_000_000
                ),
            ));
        }
        inner
            .seek(std::io::SeekFrom::Start(start))
            .map_err(|e| err(&e))?;
        let mut r = image::ImageReader::new(inner);
        if let Some(f) = format {
            r.set_format(f);
        }
        let mut limits = image::Limits::default();
        limits.max_alloc = Some(MAX_PIXELS * 4);
        r.limits(limits);
        // Phones store a portrait photo sideways with an EXIF orientation tag; the pixels are
        // turned upright here, so detection and enrolment see the face the way a person does.
        let mut decoder = r.into_decoder().map_err(|e| err(&e))?;
        let orientation = image::ImageDecoder::orientation(&mut decoder)
            .unwrap_or(image::metadata::Orientation::NoTransforms);
        let mut img = image::DynamicImage::from_decoder(decoder).map_err(|e| err(&e))?;
        img.apply_orientation(orientation);
        Ok(Self::from_image(img))
    }

    /// Converts a decoded `image` buffer.
    pub fn from_image(img: image::DynamicImage) -> Frame {
        let rgb = img.into_rgb8();
        let (width, height) = rgb.dimensions();
        Frame {
            width,
            height,
            data: rgb.into_raw(),
        }
    }

    /// Converts to an `image` buffer (for encoding PNG/JPEG).
    pub fn to_image(&self) -> image::RgbImage {
        image::RgbImage::from_raw(self.width, self.height, self.data.clone()).expect("size checked")
    }

    /// One pixel, clamped to the border.
    #[inline]
    pub fn px(&self, x: i64, y: i64) -> [u8; 3] {
        let x = x.clamp(0, self.width as i64 - 1) as usize;
        let y = y.clamp(0, self.height as i64 - 1) as usize;
        let i = (y * self.width as usize + x) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// Bilinear sample at continuous coordinates (pixel centres at integer + 0.5 convention
    /// handled by the caller), replicating the border.
    #[inline]
    pub fn sample(&self, x: f32, y: f32) -> [f32; 3] {
        let x0 = x.floor();
        let y0 = y.floor();
        let fx = x - x0;
        let fy = y - y0;
        let (x0, y0) = (x0 as i64, y0 as i64);
        let a = self.px(x0, y0);
        let b = self.px(x0 + 1, y0);
        let c = self.px(x0, y0 + 1);
        let d = self.px(x0 + 1, y0 + 1);
        let mut out = [0f32; 3];
        for k in 0..3 {
            let top = a[k] as f32 + (b[k] as f32 - a[k] as f32) * fx;
            let bottom = c[k] as f32 + (d[k] as f32 - c[k] as f32) * fx;
            out[k] = top + (bottom - top) * fy;
        }
        out
    }

    /// Bilinear resize to `w` x `h`.
    pub fn resize(&self, w: u32, h: u32) -> Frame {
        let sx = self.width as f32 / w as f32;
        let sy = self.height as f32 / h as f32;
        let mut data = Vec::with_capacity(w as usize * h as usize * 3);
        for y in 0..h {
            let fy = (y as f32 + 0.5) * sy - 0.5;
            for x in 0..w {
                let fx = (x as f32 + 0.5) * sx - 0.5;
                let p = self.sample(fx, fy);
                data.extend(p.iter().map(|v| (v + 0.5) as u8));
            }
        }
        Frame {
            width: w,
            height: h,
            data,
        }
    }

    /// Crops a rectangle (clamped to the frame).
    pub fn crop(&self, x: i64, y: i64, w: u32, h: u32) -> Frame {
        let mut data = Vec::with_capacity(w as usize * h as usize * 3);
        for yy in 0..h as i64 {
            for xx in 0..w as i64 {
                data.extend(self.px(x + xx, y + yy));
            }
        }
        Frame {
            width: w,
            height: h,
            data,
        }
    }

    /// Grey levels (ITU-R BT.601 luma) as f32.
    pub fn grey(&self) -> Vec<f32> {
        self.data
            .chunks_exact(3)
            .map(|p| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32)
            .collect()
    }

    /// Mean grey level over a rectangle (clamped), 0–255.
    pub fn mean_grey(&self, x: i64, y: i64, w: u32, h: u32) -> f32 {
        let (x0, y0) = (x.max(0), y.max(0));
        let x1 = (x + w as i64).min(self.width as i64);
        let y1 = (y + h as i64).min(self.height as i64);
        if x1 <= x0 || y1 <= y0 {
            return 0.0;
        }
        let mut sum = 0f64;
        for yy in y0..y1 {
            for xx in x0..x1 {
                let p = self.px(xx, yy);
                sum += 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64;
            }
        }
        (sum / ((x1 - x0) * (y1 - y0)) as f64) as f32
    }

    /// Re-encodes as JPEG at `quality` and decodes again (a degradation used in tests and
    /// for modelling a re-photographed face).
    pub fn jpeg_roundtrip(&self, quality: u8) -> Frame {
        let mut buf = Vec::new();
        let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality);
        self.to_image()
            .write_with_encoder(enc)
            .expect("in-memory JPEG encoding");
        Frame::decode(&buf).expect("own JPEG decodes")
    }
}

/// Absolute response of the 4-neighbour Laplacian at each interior pixel of a grey image.
pub fn laplacian_abs(grey: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut out = vec![0f32; w * h];
    for y in 1..h.saturating_sub(1) {
        for x in 1..w - 1 {
            let i = y * w + x;
            let v = grey[i - 1] + grey[i + 1] + grey[i - w] + grey[i + w] - 4.0 * grey[i];
            out[i] = v.abs();
        }
    }
    out
}

/// Variance of the Laplacian: a standard focus measure (higher is sharper).
pub fn laplacian_variance(grey: &[f32], w: usize, h: usize) -> f32 {
    let mut sum = 0f64;
    let mut sq = 0f64;
    let mut n = 0f64;
    for y in 1..h.saturating_sub(1) {
        for x in 1..w - 1 {
            let i = y * w + x;
            let v = (grey[i - 1] + grey[i + 1] + grey[i - w] + grey[i + w] - 4.0 * grey[i]) as f64;
            sum += v;
            sq += v * v;
            n += 1.0;
        }
    }
    if n == 0.0 {
        return 0.0;
    }
    let mean = sum / n;
    (sq / n - mean * mean) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_of_constant_image_is_constant_and_sizes_check() {
        let f = Frame::from_rgb(4, 2, vec![10; 24]).unwrap();
        let r = f.resize(7, 3);
        assert_eq!((r.width, r.height), (7, 3));
        assert!(r.data.iter().all(|&v| v == 10));
        assert!(Frame::from_rgb(4, 2, vec![0; 5]).is_err());
    }

    #[test]
    fn laplacian_sees_edges_not_flat_areas() {
        let mut grey = vec![0f32; 100];
        assert_eq!(laplacian_variance(&grey, 10, 10), 0.0);
        for y in 0..10 {
            for x in 5..10 {
                grey[y * 10 + x] = 200.0;
            }
        }
        assert!(laplacian_variance(&grey, 10, 10) > 100.0);
        assert!(
            laplacian_abs(&grey, 10, 10)
                .iter()
                .filter(|&&v| v > 50.0)
                .count()
                >= 16
        );
    }
}
