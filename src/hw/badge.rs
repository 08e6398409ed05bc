//! Badge readers. Each delivers normalised badge ids ([`BadgeId`]): a read is normalised here,
//! where it enters, and nowhere else.
//!
//! - [`EvdevWedge`]: the common USB reader that "types" the card number followed by Enter. The
//!   device is grabbed (`EVIOCGRAB`) so the digits never reach a console, and key events are
//!   decoded here ([`WedgeDecoder`]).
//! - [`Mfrc522`]: an RC522 13.56 MHz module on SPI (through rppal), polled for ISO 14443-A cards;
//!   the card UID (cascade level 1, checked against its BCC byte) is the badge id.
//! - [`SimBadge`]: fed through a channel by the demo script or a test.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::base::badge::BadgeId;
use crate::base::config::{BadgeConfig, BadgeKind};
use crate::base::error::{Error, Result};

/// A source of badge taps.
pub trait BadgeReader: Send {
    /// Blocks until the next badge is read; `Ok(None)` when the reader has closed for good.
    fn read(&mut self) -> Result<Option<BadgeId>>;
}

/// A reader fed by a channel.
pub struct SimBadge {
    rx: mpsc::Receiver<String>,
}

impl SimBadge {
    /// A simulated reader and the sender that "taps" badges on it.
    pub fn new() -> (SimBadge, mpsc::Sender<String>) {
        let (tx, rx) = mpsc::channel();
        (SimBadge { rx }, tx)
    }
}

impl BadgeReader for SimBadge {
    fn read(&mut self) -> Result<Option<BadgeId>> {
        loop {
            match self.rx.recv() {
                Ok(raw) => match BadgeId::parse(&raw) {
                    Ok(b) => return Ok(Some(b)),
                    Err(e) => tracing::warn!(error = %e, "ignoring malformed badge read"),
                },
                Err(_) => return Ok(None),
            }
        }
    }
}

/// Turns evdev key events from a keyboard-wedge reader into badge strings.
#[derive(Debug, Default)]
pub struct WedgeDecoder {
    buf: String,
}

/// `EV_KEY` event type.
const EV_KEY: u16 = 1;

fn key_char(code: u16) -> Option<char> {
    // Linux input key codes (input-event-codes.h) for digits and letters.
    const DIGITS: [(u16, char); 10] = [
        (2, '1'),
        (3, '2'),
        (4, '3'),
        (5, '4'),
        (6, '5'),
        (7, '6'),
        (8, '7'),
        (9, '8'),
        (10, '9'),
        (11, '0'),
    ];
    const KEYPAD: [(u16, char); 10] = [
        (79, '1'),
        (80, '2'),
        (81, '3'),
        (75, '4'),
        (76, '5'),
        (77, '6'),
        (71, '7'),
        (72, '8'),
        (73, '9'),
        (82, '0'),
    ];
    const LETTERS: &str = "QWERTYUIOP"; // 16..=25
    const LETTERS2: &str = "ASDFGHJKL"; // 30..=38
    const LETTERS3: &str = "ZXCVBNM"; // 44..=50
    if let Some(&(_, c)) = DIGITS.iter().chain(KEYPAD.iter()).find(|(k, _)| *k == code) {
        return Some(c);
    }
    match code {
        16..=25 => LETTERS.chars().nth((code - 16) as usize),
        30..=38 => LETTERS2.chars().nth((code - 30) as usize),
        44..=50 => LETTERS3.chars().nth((code - 44) as usize),
        _ => None,
    }
}

impl WedgeDecoder {
    /// Feeds one input event; returns a badge when Enter completes one.
    pub fn feed(&mut self, kind: u16, code: u16, value: i32) -> Option<BadgeId> {
        if kind != EV_KEY || value != 1 {
            return None; // only key presses; releases and repeats are ignored
        }
        match code {
            28 | 96 => {
                // Enter or keypad Enter.
                let raw = std::mem::take(&mut self.buf);
                BadgeId::parse(&raw).ok()
            }
            _ => {
                if let Some(c) = key_char(code)
                    && self.buf.len() < 64
                {
                    self.buf.push(c);
                }
                None
            }
        }
    }
}

/// A USB keyboard-wedge reader through its evdev node.
pub struct EvdevWedge {
    file: std::fs::File,
    path: PathBuf,
    decoder: WedgeDecoder,
}

impl EvdevWedge {
    /// Opens and grabs the device so its keystrokes go only to the kiosk.
    pub fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| {
            Error::invalid(
                format!("badge reader {}", path.display()),
                format!("cannot open: {e}"),
            )
        })?;
        // EVIOCGRAB = _IOW('E', 0x90, int)
        const EVIOCGRAB: libc::c_ulong = 0x4004_4590;
        use std::os::fd::AsRawFd;
        // SAFETY: an ioctl on our own open fd with an int argument.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), EVIOCGRAB as _, 1 as libc::c_int) };
        if rc != 0 {
            tracing::warn!(device = %path.display(), "could not grab the badge reader exclusively");
        }
        Ok(EvdevWedge {
            file,
            path: path.to_owned(),
            decoder: WedgeDecoder::default(),
        })
    }
}

impl BadgeReader for EvdevWedge {
    fn read(&mut self) -> Result<Option<BadgeId>> {
        // struct input_event on 64-bit Linux: timeval (16 bytes), type u16, code u16, value i32.
        let mut ev = [0u8; 24];
        loop {
            match self.file.read_exact(&mut ev) {
                Ok(()) => {
                    let kind = u16::from_ne_bytes([ev[16], ev[17]]);
                    let code = u16::from_ne_bytes([ev[18], ev[19]]);
                    let value = i32::from_ne_bytes([ev[20], ev[21], ev[22], ev[23]]);
                    if let Some(b) = self.decoder.feed(kind, code, value) {
                        return Ok(Some(b));
                    }
                }
                Err(e) => {
                    return Err(Error::invalid(
                        format!("badge reader {}", self.path.display()),
                        format!("read failed: {e}"),
                    ));
                }
            }
        }
    }
}

/// A keyboard-wedge reader that may be absent or unplugged: opens the device when it appears
/// and reopens it after it goes away, so a reader plugged in after boot (or re-plugged) works
/// without restarting the kiosk, and badge + PIN never stops because of it. Logs only changes.
pub struct ReconnectingWedge {
    path: PathBuf,
    inner: Option<EvdevWedge>,
    /// Whether the absence was already logged.
    told: bool,
    /// Pause between attempts to open a missing reader.
    retry: Duration,
}

impl ReconnectingWedge {
    /// A reader for `path`; nothing is opened until the first read.
    pub fn new(path: &Path) -> Self {
        ReconnectingWedge {
            path: path.to_owned(),
            inner: None,
            told: false,
            retry: Duration::from_secs(2),
        }
    }

    /// Shortens the pause between attempts (tests).
    #[cfg(test)]
    pub fn with_retry(mut self, retry: Duration) -> Self {
        self.retry = retry;
        self
    }
}

impl BadgeReader for ReconnectingWedge {
    fn read(&mut self) -> Result<Option<BadgeId>> {
        loop {
            let Some(reader) = self.inner.as_mut() else {
                match EvdevWedge::open(&self.path) {
                    Ok(r) => {
                        tracing::info!(device = %self.path.display(), "badge reader connected");
                        self.inner = Some(r);
                        self.told = false;
                    }
                    Err(e) => {
                        if !self.told {
                            tracing::warn!(error = %e, "badge reader not present; badge + PIN waits for it, PIN and face keep working");
                            self.told = true;
                        }
                        std::thread::sleep(self.retry);
                    }
                }
                continue;
            };
            match reader.read() {
                Ok(b) => return Ok(b),
                Err(e) => {
                    tracing::warn!(error = %e, "badge reader lost; reopening it");
                    self.inner = None;
                    self.told = true;
                    std::thread::sleep(self.retry);
                }
            }
        }
    }
}

/// MFRC522 registers and commands used here (datasheet section 9).
mod reg {
    pub const COMMAND: u8 = 0x01;
    pub const COM_IRQ: u8 = 0x04;
    pub const ERROR: u8 = 0x06;
    pub const FIFO_DATA: u8 = 0x09;
    pub const FIFO_LEVEL: u8 = 0x0A;
    pub const BIT_FRAMING: u8 = 0x0D;
    pub const COLL: u8 = 0x0E;
    pub const MODE: u8 = 0x11;
    pub const TX_CONTROL: u8 = 0x14;
    pub const TX_ASK: u8 = 0x15;
    pub const T_MODE: u8 = 0x2A;
    pub const T_PRESCALER: u8 = 0x2B;
    pub const T_RELOAD_H: u8 = 0x2C;
    pub const T_RELOAD_L: u8 = 0x2D;
    pub const VERSION: u8 = 0x37;
    pub const CMD_IDLE: u8 = 0x00;
    pub const CMD_TRANSCEIVE: u8 = 0x0C;
    pub const CMD_SOFT_RESET: u8 = 0x0F;
}

/// Checks a cascade-level-1 anticollision answer (4 UID bytes + BCC) and formats the UID.
pub fn uid_from_anticollision(answer: &[u8]) -> Option<String> {
    if answer.len() != 5 || answer[..4].iter().fold(0u8, |a, b| a ^ b) != answer[4] {
        return None;
    }
    Some(hex::encode_upper(&answer[..4]))
}

/// An RC522 module on SPI.
pub struct Mfrc522 {
    spi: rppal::spi::Spi,
    last: Option<(BadgeId, Instant)>,
}

impl Mfrc522 {
    /// Opens the SPI device, resets the chip and switches the antenna on.
    pub fn open(bus: u8, cs: u8) -> Result<Self> {
        use rppal::spi::{Bus, Mode, SlaveSelect, Spi};
        let err = |e: String| Error::invalid(format!("MFRC522 on SPI{bus}.{cs}"), e);
        let bus_id = match bus {
            0 => Bus::Spi0,
            1 => Bus::Spi1,
            _ => return Err(err("bus must be 0 or 1".into())),
        };
        let ss = match cs {
            0 => SlaveSelect::Ss0,
            1 => SlaveSelect::Ss1,
            _ => return Err(err("chip select must be 0 or 1".into())),
        };
        let spi = Spi::new(bus_id, ss, 1_000_000, Mode::Mode0)
            .map_err(|e| err(format!("{e} (is SPI enabled?)")))?;
        let mut m = Mfrc522 { spi, last: None };
        m.write(reg::COMMAND, reg::CMD_SOFT_RESET)?;
        std::thread::sleep(Duration::from_millis(50));
        let version = m.read(reg::VERSION)?;
        if !matches!(version, 0x88 | 0x90 | 0x91 | 0x92 | 0x12) {
            return Err(err(format!(
                "unexpected chip version 0x{version:02x}: is an MFRC522 connected?"
            )));
        }
        // Timer: ~25 ms time-out for card answers; 100% ASK; CRC preset 0x6363; antenna on.
        m.write(reg::T_MODE, 0x8D)?;
        m.write(reg::T_PRESCALER, 0x3E)?;
        m.write(reg::T_RELOAD_H, 0)?;
        m.write(reg::T_RELOAD_L, 30)?;
        m.write(reg::TX_ASK, 0x40)?;
        m.write(reg::MODE, 0x3D)?;
        let tx = m.read(reg::TX_CONTROL)?;
        m.write(reg::TX_CONTROL, tx | 0x03)?;
        Ok(m)
    }

    fn write(&mut self, r: u8, v: u8) -> Result<()> {
        self.spi
            .write(&[(r << 1) & 0x7E, v])
            .map(drop)
            .map_err(|e| Error::invalid("MFRC522", e.to_string()))
    }

    fn read(&mut self, r: u8) -> Result<u8> {
        let mut rx = [0u8; 2];
        self.spi
            .transfer(&mut rx, &[((r << 1) & 0x7E) | 0x80, 0])
            .map_err(|e| Error::invalid("MFRC522", e.to_string()))?;
        Ok(rx[1])
    }

    /// Sends `data` to the card (`bits` in the last byte, 0 = all 8) and returns its answer.
    fn transceive(&mut self, data: &[u8], bits: u8) -> Result<Option<Vec<u8>>> {
        self.write(reg::COMMAND, reg::CMD_IDLE)?;
        self.write(reg::COM_IRQ, 0x7F)?;
        self.write(reg::FIFO_LEVEL, 0x80)?;
        for &b in data {
            self.write(reg::FIFO_DATA, b)?;
        }
        self.write(reg::BIT_FRAMING, bits & 0x07)?;
        self.write(reg::COMMAND, reg::CMD_TRANSCEIVE)?;
        self.write(reg::BIT_FRAMING, 0x80 | (bits & 0x07))?; // StartSend
        let start = Instant::now();
        loop {
            let irq = self.read(reg::COM_IRQ)?;
            if irq & 0x30 != 0 {
                break; // RxIRq or IdleIRq
            }
            if irq & 0x01 != 0 || start.elapsed() > Duration::from_millis(40) {
                return Ok(None); // timer: no card answered
            }
        }
        if self.read(reg::ERROR)? & 0x13 != 0 {
            return Ok(None); // buffer overflow, parity or protocol error
        }
        let n = self.read(reg::FIFO_LEVEL)? as usize;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.read(reg::FIFO_DATA)?);
        }
        Ok(Some(out))
    }

    /// One poll: REQA, then cascade-level-1 anticollision. The UID when a card is present.
    pub fn poll(&mut self) -> Result<Option<BadgeId>> {
        if self.transceive(&[0x26], 7)?.is_none_or(|a| a.len() != 2) {
            return Ok(None);
        }
        self.write(reg::COLL, 0x80)?;
        Ok(self
            .transceive(&[0x93, 0x20], 0)?
            .and_then(|a| uid_from_anticollision(&a))
            .and_then(|uid| BadgeId::parse(&uid).ok()))
    }
}

impl BadgeReader for Mfrc522 {
    fn read(&mut self) -> Result<Option<BadgeId>> {
        loop {
            if let Some(uid) = self.poll()? {
                // A card left on the reader is one tap, not one per poll.
                let repeat = self
                    .last
                    .as_ref()
                    .is_some_and(|(u, at)| *u == uid && at.elapsed() < Duration::from_secs(3));
                self.last = Some((uid.clone(), Instant::now()));
                if !repeat {
                    return Ok(Some(uid));
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// An opened reader, and for the simulated one the sender that taps badges on it.
pub type Opened = (Box<dyn BadgeReader>, Option<mpsc::Sender<String>>);

/// Opens the configured reader.
pub fn open(cfg: &BadgeConfig) -> Result<Opened> {
    Ok(match cfg.kind {
        BadgeKind::Evdev => (Box::new(ReconnectingWedge::new(&cfg.device)), None),
        BadgeKind::Mfrc522 => (Box::new(Mfrc522::open(cfg.spi_bus, cfg.spi_cs)?), None),
        BadgeKind::Sim => {
            let (r, tx) = SimBadge::new();
            (Box::new(r), Some(tx))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The badge a reader should deliver for `s`.
    fn id(s: &str) -> Option<BadgeId> {
        Some(BadgeId::parse(s).unwrap())
    }

    fn press(d: &mut WedgeDecoder, code: u16) -> Option<BadgeId> {
        d.feed(EV_KEY, code, 1);
        d.feed(EV_KEY, code, 0)
    }

    fn key_events(codes: &[u16]) -> Vec<u8> {
        let mut out = Vec::new();
        for &c in codes {
            for value in [1i32, 0] {
                out.extend_from_slice(&[0u8; 16]);
                out.extend_from_slice(&EV_KEY.to_ne_bytes());
                out.extend_from_slice(&c.to_ne_bytes());
                out.extend_from_slice(&value.to_ne_bytes());
            }
        }
        out
    }

    #[test]
    fn a_reader_that_appears_after_start_is_opened_and_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("event-kbd");
        let mut r = ReconnectingWedge::new(&path).with_retry(Duration::from_millis(20));
        let p = path.clone();
        let plug = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            // "42" then Enter, as a keyboard-wedge reader types it.
            std::fs::write(&p, key_events(&[5, 3, 28])).unwrap();
        });
        assert_eq!(r.read().unwrap(), id("42"));
        plug.join().unwrap();
        // The "device" ends (a regular file hits EOF, as an unplugged reader errors): the reader
        // reopens it instead of failing for good, and reads what the new device sends.
        std::fs::write(&path, key_events(&[8, 28])).unwrap();
        assert_eq!(r.read().unwrap(), id("7"));
    }

    #[test]
    fn wedge_decoder_reads_digits_until_enter() {
        let mut d = WedgeDecoder::default();
        for code in [11, 11, 2, 3, 30, 48] {
            assert_eq!(press(&mut d, code), None); // "0012AB"
        }
        d.feed(0, 0, 0); // a sync event is ignored
        assert_eq!(d.feed(EV_KEY, 28, 1), id("0012AB"));
        // Enter on an empty buffer yields nothing; keypad digits work too.
        assert_eq!(d.feed(EV_KEY, 28, 1), None);
        press(&mut d, 79);
        press(&mut d, 82);
        assert_eq!(d.feed(EV_KEY, 96, 1), id("10"));
    }

    #[test]
    fn anticollision_answer_is_checked() {
        assert_eq!(
            uid_from_anticollision(&[0x04, 0xA1, 0xB2, 0xC3, 0x04 ^ 0xA1 ^ 0xB2 ^ 0xC3]),
            Some("04A1B2C3".into())
        );
        assert_eq!(
            uid_from_anticollision(&[0x04, 0xA1, 0xB2, 0xC3, 0x00]),
            None
        );
        assert_eq!(uid_from_anticollision(&[1, 2, 3]), None);
    }

    #[test]
    fn sim_reader_normalises_and_closes() {
        let (mut r, tx) = SimBadge::new();
        tx.send("04:a1:b2".into()).unwrap();
        tx.send("??".into()).unwrap();
        tx.send("77".into()).unwrap();
        drop(tx);
        assert_eq!(r.read().unwrap(), id("04A1B2"));
        assert_eq!(r.read().unwrap(), id("77"));
        assert_eq!(r.read().unwrap(), None);
    }

    #[test]
    fn evdev_reader_names_a_missing_device() {
        let e = EvdevWedge::open(Path::new("/nonexistent/event-kbd"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("/nonexistent/event-kbd") && e.contains("cannot open"),
            "{e}"
        );
    }
}
