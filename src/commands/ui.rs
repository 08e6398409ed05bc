//! `clockface ui gallery`: the touchscreen's screens rendered to PNG without a display, with a
//! real camera view (a test photo and the face box the real detector finds) on the capture
//! pages. The models are loaded here, not in the UI: the UI only renders what it is given.

use std::io::Write;
use std::path::PathBuf;

use super::context::ConfigSource;
use crate::base::config::{VisionConfig, dev_cache};
use crate::base::error::{Error, Result};
use crate::base::frame::Frame;
use crate::camera::replay::{fit, head_and_shoulders};
use crate::ui::gallery;
use crate::vision::Vision;

/// `clockface ui …`.
#[derive(Debug, clap::Subcommand)]
pub enum UiCmd {
    /// Render the screens to PNG in English and Simplified Chinese (software renderer, no display).
    Gallery {
        /// Where to write the PNGs.
        #[arg(long, default_value = "docs/screens")]
        out: PathBuf,
        /// Every screen at both panel sizes, not only the README's set at 800x480.
        #[arg(long)]
        all: bool,
    },
}

impl UiCmd {
    /// Renders the gallery.
    pub fn run(self, _src: &ConfigSource, out: &mut dyn Write) -> Result<()> {
        let UiCmd::Gallery { out: dir, all } = self;
        let (screens, sizes): (&[&str], &[(u32, u32)]) = if all {
            (&[], &gallery::SIZES)
        } else {
            (&gallery::README_SCREENS, &[(800, 480)])
        };
        let files = gallery::render(&dir, screens, sizes, camera_view())?;
        writeln!(out, "{} screens written to {}", files.len(), dir.display())
            .map_err(|e| Error::io("stdout", e))
    }
}

/// A camera view for the capture pages: a real test photo framed as the kiosk camera sees a
/// person, with the face box the real detector finds. None without the models or photos.
pub fn camera_view() -> Option<(Frame, [f32; 4])> {
    let photo = dev_cache().join("photos/obama.jpg");
    let photo = Frame::open(&photo).ok()?;
    let mut v = Vision::load(&VisionConfig::default()).ok()?;
    let face = v.detect(&photo).ok()?.into_iter().next()?;
    let view = fit(&head_and_shoulders(&photo, face.bbox), 640, 480);
    let f = v.detect(&view).ok()?.into_iter().next()?;
    let [x, y, w, h] = f.bbox;
    Some((view, [x / 640.0, y / 480.0, w / 640.0, h / 480.0]))
}
