//! Video4Linux2 capture (USB UVC cameras, the Pi camera through its V4L2 driver).
//!
//! MJPEG frames are decoded with the `image` crate; YUYV (4:2:2) is converted to RGB here with
//! the BT.601 integer formula. A read that times out (`camera.stall_seconds`) reports a stall and
//! a vanished device reports it gone, so the capture thread reopens it.

use std::time::Duration;

use v4l::buffer::Type;
use v4l::io::mmap::Stream;
use v4l::io::traits::CaptureStream;
use v4l::video::Capture;
use v4l::{Device, FourCC};

use super::{CameraError, FrameSource};
use crate::base::config::{CameraConfig, PixelFormat};
use crate::base::frame::Frame;

/// An open V4L2 capture stream.
pub struct V4lSource {
    // Field order matters: the stream must be dropped before the device.
    stream: Stream<'static>,
    _dev: Device,
    format: PixelFormat,
    width: u32,
    height: u32,
    stall_seconds: u32,
}

impl V4lSource {
    /// Opens the device and negotiates format, size and frame rate.
    pub fn open(cfg: &CameraConfig) -> Result<Self, CameraError> {
        let gone = |what: &str, e: std::io::Error| {
            CameraError::Gone(format!("{} {what}: {e}", cfg.device.display()))
        };
        let dev = Device::with_path(&cfg.device).map_err(|e| gone("open", e))?;
        let mut fmt = dev.format().map_err(|e| gone("get format", e))?;
        fmt.width = cfg.width;
        fmt.height = cfg.height;
        fmt.fourcc = match cfg.format {
            PixelFormat::Mjpeg => FourCC::new(b"MJPG"),
            PixelFormat::Yuyv => FourCC::new(b"YUYV"),
        };
        let got = dev.set_format(&fmt).map_err(|e| gone("set format", e))?;
        if got.fourcc != fmt.fourcc {
            return Err(CameraError::Gone(format!(
                "{} does not offer {:?} (offers {})",
                cfg.device.display(),
                cfg.format,
                got.fourcc
            )));
        }
        let params = v4l::video::capture::Parameters::with_fps(cfg.fps);
        if let Err(e) = dev.set_params(&params) {
            tracing::warn!(error = %e, "camera refused the frame rate; using its default");
        }
        let mut stream = Stream::with_buffers(&dev, Type::VideoCapture, 4)
            .map_err(|e| gone("start stream", e))?;
        stream.set_timeout(Duration::from_secs(cfg.stall_seconds as u64));
        tracing::info!(width = got.width, height = got.height, "camera opened");
        Ok(V4lSource {
            stream,
            _dev: dev,
            format: cfg.format,
            width: got.width,
            height: got.height,
            stall_seconds: cfg.stall_seconds,
        })
    }
}

impl FrameSource for V4lSource {
    fn capture(&mut self) -> Result<Frame, CameraError> {
        let (buf, meta) = self.stream.next().map_err(|e| match e.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                CameraError::Stalled(self.stall_seconds)
            }
            _ => CameraError::Gone(e.to_string()),
        })?;
        let data = &buf[..(meta.bytesused as usize).min(buf.len())];
        match self.format {
            PixelFormat::Mjpeg => Frame::decode(data).map_err(|e| CameraError::Bad(e.to_string())),
            PixelFormat::Yuyv => yuyv_to_rgb(data, self.width, self.height),
        }
    }
}

/// Converts packed YUYV 4:2:2 to RGB (BT.601, limited range).
pub fn yuyv_to_rgb(data: &[u8], width: u32, height: u32) -> Result<Frame, CameraError> {
    let need = width as usize * height as usize * 2;
    if data.len() < need || !width.is_multiple_of(2) {
        return Err(CameraError::Bad(format!(
            "YUYV frame has {} bytes, {width}x{height} needs {need}",
            data.len()
        )));
    }
    let mut out = Vec::with_capacity(width as usize * height as usize * 3);
    let px = |y: i32, u: i32, v: i32| -> [u8; 3] {
        let c = 298 * (y - 16);
        let (d, e) = (u - 128, v - 128);
        let clamp = |x: i32| ((x + 128) >> 8).clamp(0, 255) as u8;
        [
            clamp(c + 409 * e),
            clamp(c - 100 * d - 208 * e),
            clamp(c + 516 * d),
        ]
    };
    for q in data[..need].chunks_exact(4) {
        let (y0, u, y1, v) = (q[0] as i32, q[1] as i32, q[2] as i32, q[3] as i32);
        out.extend(px(y0, u, v));
        out.extend(px(y1, u, v));
    }
    Ok(Frame {
        width,
        height,
        data: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuyv_converts_known_colours() {
        // White, black, and mid grey; chroma neutral.
        let f = yuyv_to_rgb(&[235, 128, 16, 128, 126, 128, 126, 128], 4, 1).unwrap();
        assert_eq!(&f.data[0..3], &[255, 255, 255]);
        assert_eq!(&f.data[3..6], &[0, 0, 0]);
        assert_eq!(&f.data[6..9], &[128, 128, 128]);
        assert!(yuyv_to_rgb(&[0; 6], 4, 1).is_err());
    }

    #[test]
    fn missing_device_is_named() {
        let cfg = CameraConfig {
            device: "/dev/video-does-not-exist".into(),
            ..CameraConfig::default()
        };
        let e = V4lSource::open(&cfg).err().unwrap().to_string();
        assert!(e.contains("/dev/video-does-not-exist"), "{e}");
    }
}
