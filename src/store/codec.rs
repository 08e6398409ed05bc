//! Canonical byte encoding shared by signed records and audit entries.
//!
//! Fixed field order, big-endian integers, `u16`-length-prefixed UTF-8 strings, optional
//! scores as a presence byte plus `f32` bits. There is exactly one encoding of each value, so
//! the bytes can be hashed and signed and re-derived by any implementation of the format.

use crate::base::error::{Error, Result};

/// Appends canonical fields to a buffer.
#[derive(Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// Starts a buffer with room for a typical record.
    pub fn new() -> Self {
        Writer {
            buf: Vec::with_capacity(256),
        }
    }
    /// Raw bytes of a fixed-size field.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }
    /// One byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    /// Big-endian u32.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }
    /// Big-endian u64.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }
    /// Big-endian i64.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }
    /// Length-prefixed UTF-8; callers validate length (≤ 65,535 bytes) before encoding.
    pub fn str(&mut self, s: &str) -> &mut Self {
        let len = u16::try_from(s.len()).expect("string length validated by caller");
        self.bytes(&len.to_be_bytes()).bytes(s.as_bytes())
    }
    /// Presence byte, then the f32 bits when present.
    pub fn opt_f32(&mut self, v: Option<f32>) -> &mut Self {
        match v {
            None => self.u8(0),
            Some(x) => self.u8(1).bytes(&x.to_bits().to_be_bytes()),
        }
    }
    /// The encoded bytes.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads canonical fields, failing on truncation or non-canonical values.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Reads from the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.buf.len() - self.pos < n {
            return Err(Error::invalid(
                what,
                format!("truncated at byte {} of {}", self.pos, self.buf.len()),
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    /// A fixed-size field.
    pub fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        Ok(self.take(N, what)?.try_into().expect("length checked"))
    }
    /// One byte.
    pub fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }
    /// A boolean byte; anything but 0 or 1 is rejected (one canonical encoding).
    pub fn flag(&mut self, what: &str) -> Result<bool> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(Error::invalid(what, format!("byte {b} is not 0 or 1"))),
        }
    }

    /// Big-endian u32.
    pub fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }
    /// Big-endian u64.
    pub fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }
    /// Big-endian i64.
    pub fn i64(&mut self, what: &str) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }
    /// Length-prefixed UTF-8.
    pub fn str(&mut self, what: &str) -> Result<String> {
        let len = u16::from_be_bytes(self.array(what)?) as usize;
        let raw = self.take(len, what)?;
        String::from_utf8(raw.to_vec()).map_err(|_| Error::invalid(what, "not valid UTF-8"))
    }
    /// Presence byte then f32; any presence byte but 0 or 1 is rejected.
    pub fn opt_f32(&mut self, what: &str) -> Result<Option<f32>> {
        match self.u8(what)? {
            0 => Ok(None),
            1 => Ok(Some(f32::from_bits(u32::from_be_bytes(self.array(what)?)))),
            b => Err(Error::invalid(
                what,
                format!("presence byte {b} is not 0 or 1"),
            )),
        }
    }
    /// Byte offset of the next field.
    pub fn position(&self) -> usize {
        self.pos
    }
    /// Fails unless every byte was consumed.
    pub fn end(&self) -> Result<()> {
        if self.pos != self.buf.len() {
            return Err(Error::invalid(
                "record",
                format!("{} trailing bytes", self.buf.len() - self.pos),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let mut w = Writer::new();
        w.u8(3)
            .u32(7)
            .u64(9)
            .i64(-5)
            .str("héllo")
            .opt_f32(Some(0.5))
            .opt_f32(None);
        let bytes = w.finish();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8("a").unwrap(), 3);
        assert_eq!(r.u32("b").unwrap(), 7);
        assert_eq!(r.u64("c").unwrap(), 9);
        assert_eq!(r.i64("d").unwrap(), -5);
        assert_eq!(r.str("e").unwrap(), "héllo");
        assert_eq!(r.opt_f32("f").unwrap(), Some(0.5));
        assert_eq!(r.opt_f32("g").unwrap(), None);
        r.end().unwrap();

        let mut short = Reader::new(&bytes[..bytes.len() - 1]);
        short.u8("a").unwrap();
        short.u32("b").unwrap();
        short.u64("c").unwrap();
        short.i64("d").unwrap();
        short.str("e").unwrap();
        short.opt_f32("f").unwrap();
        let err = short.opt_f32("match score").unwrap_err().to_string();
        assert!(
            err.contains("match score") && err.contains("truncated"),
            "{err}"
        );
    }
}
