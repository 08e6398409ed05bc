//! Replay camera: shows scripted real photos as if a camera were filming them.
//!
//! What is "in front of the camera" is a [`Scene`], changed over time by a script (the demo's,
//! a test's, or a TOML file's). Each captured frame of a person is the photo as a camera would
//! see a still subject: shifted by a pixel or two and with sensor noise, never bit-identical.
//! Attacks are modelled on the same photos: a printed photo (blurred, JPEG-compressed) and a
//! phone screen held up to the camera (colour moiré bands). An `Unplugged` scene makes capture
//! fail, as a pulled USB cable would.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use super::{CameraError, FrameSource};
use crate::base::frame::Frame;

/// What the camera sees.
#[derive(Debug, Clone)]
pub enum Scene {
    /// Nobody: an empty corridor.
    Empty,
    /// A person (a real photo).
    Person(Arc<Frame>),
    /// The camera cable is pulled.
    Unplugged,
}

/// Shared control of what a replay camera shows.
#[derive(Debug, Clone)]
pub struct ReplayFeed(Arc<Mutex<Scene>>);

impl ReplayFeed {
    /// A feed showing an empty scene.
    pub fn new() -> Self {
        ReplayFeed(Arc::new(Mutex::new(Scene::Empty)))
    }

    /// Changes the scene.
    pub fn show(&self, scene: Scene) {
        *self.0.lock().unwrap() = scene;
    }

    /// The current scene.
    pub fn scene(&self) -> Scene {
        self.0.lock().unwrap().clone()
    }
}

impl Default for ReplayFeed {
    fn default() -> Self {
        Self::new()
    }
}

/// A printed photo held up to the camera: soft focus and heavy JPEG.
pub fn printed_photo(f: &Frame) -> Frame {
    let blurred = image::imageops::blur(&f.to_image(), 4.0);
    Frame::from_image(image::DynamicImage::ImageRgb8(blurred)).jpeg_roundtrip(12)
}

/// A phone screen held up to the camera: interference bands with the colour channels out of
/// phase (the screen's sub-pixel grid beating against the sensor's).
pub fn phone_screen(f: &Frame) -> Frame {
    let mut out = f.clone();
    let (c, s) = (0.35f32.cos(), 0.35f32.sin());
    for y in 0..f.height {
        for x in 0..f.width {
            let t = (x as f32 * c + y as f32 * s) * std::f32::consts::TAU / 7.0;
            let i = ((y * f.width + x) * 3) as usize;
            for k in 0..3 {
                let g = 0.7 + 0.3 * (t + k as f32 * std::f32::consts::TAU / 3.0).sin();
                out.data[i + k] = (out.data[i + k] as f32 * g) as u8;
            }
        }
    }
    out
}

/// A camera's view of a still subject: shifted by up to 2 pixels, with ±3 levels of noise.
pub fn camera_view(f: &Frame, rng: &mut impl Rng) -> Frame {
    let (dx, dy) = (rng.gen_range(-2i64..=2), rng.gen_range(-2i64..=2));
    let mut out = f.crop(dx, dy, f.width, f.height);
    for v in out.data.iter_mut() {
        *v = (*v as i32 + rng.gen_range(-3..=3)).clamp(0, 255) as u8;
    }
    out
}

/// Fits a photo into a `width` x `height` camera frame (scaled to fit, centred on a blurred
/// version of itself), as the camera at the configured resolution would see it.
pub fn fit(f: &Frame, width: u32, height: u32) -> Frame {
    if (f.width, f.height) == (width, height) {
        return f.clone();
    }
    let s = (width as f32 / f.width as f32).min(height as f32 / f.height as f32);
    let (w, h) = (
        ((f.width as f32 * s) as u32).max(1),
        ((f.height as f32 * s) as u32).max(1),
    );
    let scaled = f.resize(w, h);
    // Beside the photo, a soft version of the same scene rather than flat bars: a camera never
    // shows bars, and an anti-spoofing model that looks beyond the face takes flat bars for the
    // edge of a screen.
    let mut data = f.resize(16, 12).resize(width, height).data;
    let (x0, y0) = ((width - w) / 2, (height - h) / 2);
    for y in 0..h {
        let src = &scaled.data[(y * w * 3) as usize..((y + 1) * w * 3) as usize];
        let at = (((y0 + y) * width + x0) * 3) as usize;
        data[at..at + src.len()].copy_from_slice(src);
    }
    Frame {
        width,
        height,
        data,
    }
}

/// A 4:3 head-and-shoulders crop around a face box `[x, y, width, height]` (the face about 45%
/// of the crop's height): how a person standing at the kiosk fills its camera's view.
pub fn head_and_shoulders(photo: &Frame, face_box: [f32; 4]) -> Frame {
    let [x, y, w, h] = face_box;
    let ch = (h / 0.45).min(photo.height as f32);
    let cw = (ch * 4.0 / 3.0).min(photo.width as f32);
    let cx = (x + w / 2.0 - cw / 2.0).clamp(0.0, photo.width as f32 - cw);
    let cy = (y + h / 2.0 - ch * 0.45).clamp(0.0, photo.height as f32 - ch);
    photo.crop(cx as i64, cy as i64, cw as u32, ch as u32)
}

/// A frame source replaying the feed's scene at a fixed rate and resolution.
pub struct ReplaySource {
    feed: ReplayFeed,
    interval: Duration,
    next: Instant,
    empty: Frame,
    rng: rand::rngs::StdRng,
    fitted: Option<(Arc<Frame>, Frame)>,
}

impl ReplaySource {
    /// Replays `feed` at `fps`, with empty scenes of `width` x `height`.
    pub fn new(feed: ReplayFeed, fps: u32, width: u32, height: u32) -> Self {
        let empty = Frame::from_rgb(width, height, vec![96; (width * height * 3) as usize])
            .expect("valid size");
        ReplaySource {
            feed,
            interval: Duration::from_secs_f64(1.0 / fps.max(1) as f64),
            next: Instant::now(),
            empty,
            rng: rand::rngs::StdRng::seed_from_u64(0x5eed),
            fitted: None,
        }
    }
}

impl FrameSource for ReplaySource {
    fn capture(&mut self) -> Result<Frame, CameraError> {
        let now = Instant::now();
        if self.next > now {
            std::thread::sleep(self.next - now);
        }
        self.next = Instant::now() + self.interval;
        match self.feed.scene() {
            Scene::Unplugged => Err(CameraError::Gone("replay camera unplugged".into())),
            Scene::Empty => Ok(camera_view(&self.empty, &mut self.rng)),
            Scene::Person(f) => {
                if !self
                    .fitted
                    .as_ref()
                    .is_some_and(|(src, _)| Arc::ptr_eq(src, &f))
                {
                    let fitted = fit(&f, self.empty.width, self.empty.height);
                    self.fitted = Some((f, fitted));
                }
                let (_, fitted) = self.fitted.as_ref().expect("just set");
                Ok(camera_view(fitted, &mut self.rng))
            }
        }
    }
}

/// An opener for the capture thread that fails while the feed shows `Unplugged`.
pub fn opener(feed: ReplayFeed, fps: u32, width: u32, height: u32) -> super::Opener {
    Box::new(move || match feed.scene() {
        Scene::Unplugged => Err(CameraError::Gone("replay camera unplugged".into())),
        _ => Ok(
            Box::new(ReplaySource::new(feed.clone(), fps, width, height)) as Box<dyn FrameSource>,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::{Camera, CameraStatus};

    #[test]
    fn capture_thread_keeps_newest_frame_and_recovers_after_unplug() {
        let feed = ReplayFeed::new();
        let person = Arc::new(Frame::from_rgb(64, 48, vec![200; 64 * 48 * 3]).unwrap());
        feed.show(Scene::Person(person));
        let cam = Camera::spawn(opener(feed.clone(), 50, 64, 48));
        let wait_for = |want: &dyn Fn(&CameraStatus) -> bool| {
            let t = Instant::now();
            while !want(&cam.status.borrow()) {
                assert!(
                    t.elapsed() < Duration::from_secs(5),
                    "status stuck at {:?}",
                    *cam.status.borrow()
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        wait_for(&|s| *s == CameraStatus::Live);
        let a = cam.latest().unwrap();
        assert_eq!((a.width, a.height), (64, 48));
        std::thread::sleep(Duration::from_millis(60));
        let b = cam.latest().unwrap();
        assert!(!Arc::ptr_eq(&a, &b), "a newer frame replaced the old one");
        assert_ne!(a.data, b.data, "camera frames are never bit-identical");

        feed.show(Scene::Unplugged);
        wait_for(&|s| matches!(s, CameraStatus::Lost { .. }));
        assert!(cam.latest().is_none());
        feed.show(Scene::Empty);
        wait_for(&|s| *s == CameraStatus::Live);
        assert!(cam.latest().is_some());
    }
}
