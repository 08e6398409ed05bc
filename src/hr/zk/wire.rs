//! The ZKTeco terminal protocol on TCP, as HR tools speak it: framing, checksum, the comm-key
//! scramble, the packed date-time and the fixed-size user and attendance records. Pure
//! functions over bytes, written from the protocol's observable behaviour.
//!
//! A TCP frame is `50 50 82 7d`, a u32 length, then the packet: command u16, checksum u16,
//! session id u16, reply id u16 and the command's data (all little-endian). The checksum is the
//! complement of the end-around-carry sum of the packet's 16-bit words with the checksum field zeroed. Clients
//! compute it before they advance the reply id in the header, so a packet is accepted when
//! the checksum matches either its own reply id or the one before.

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

use crate::store::hr::ZkUser;

/// The four bytes every TCP frame starts with.
pub const MAGIC: [u8; 4] = [0x50, 0x50, 0x82, 0x7d];
/// The largest packet a client may send: commands carry a few bytes; anything near this is
/// garbage or an attack.
pub const MAX_PACKET: usize = 64 * 1024;
/// The largest chunk a client may ask for with one read-buffer command (what clients use).
pub const MAX_CHUNK: usize = 0xFFC0;
/// Size of a user record (the 72-byte format of current firmware).
pub const USER_SIZE: usize = 72;
/// Size of an attendance record (the 40-byte format of current firmware).
pub const ATT_SIZE: usize = 40;

/// Command and reply codes used here.
#[allow(missing_docs)]
pub mod cmd {
    pub const DB_RRQ: u16 = 7;
    pub const USER_WRQ: u16 = 8;
    pub const USERTEMP_RRQ: u16 = 9;
    pub const USERTEMP_WRQ: u16 = 10;
    pub const OPTIONS_RRQ: u16 = 11;
    pub const OPTIONS_WRQ: u16 = 12;
    pub const ATTLOG_RRQ: u16 = 13;
    pub const CLEAR_DATA: u16 = 14;
    pub const CLEAR_ATTLOG: u16 = 15;
    pub const DELETE_USER: u16 = 18;
    pub const DELETE_USERTEMP: u16 = 19;
    pub const CLEAR_ADMIN: u16 = 20;
    pub const UNLOCK: u16 = 31;
    pub const GET_FREE_SIZES: u16 = 50;
    pub const GET_PINWIDTH: u16 = 69;
    pub const GET_TIME: u16 = 201;
    pub const SET_TIME: u16 = 202;
    pub const REG_EVENT: u16 = 500;
    pub const CONNECT: u16 = 1000;
    pub const EXIT: u16 = 1001;
    pub const ENABLE_DEVICE: u16 = 1002;
    pub const DISABLE_DEVICE: u16 = 1003;
    pub const RESTART: u16 = 1004;
    pub const POWEROFF: u16 = 1005;
    pub const REFRESH_DATA: u16 = 1013;
    pub const REFRESH_OPTION: u16 = 1014;
    pub const GET_VERSION: u16 = 1100;
    pub const AUTH: u16 = 1102;
    pub const PREPARE_DATA: u16 = 1500;
    pub const DATA: u16 = 1501;
    pub const FREE_DATA: u16 = 1502;
    pub const PREPARE_BUFFER: u16 = 1503;
    pub const READ_BUFFER: u16 = 1504;
    pub const ACK_OK: u16 = 2000;
    pub const ACK_ERROR: u16 = 2001;
    pub const ACK_UNAUTH: u16 = 2005;
    pub const ACK_UNKNOWN: u16 = 0xffff;
}

/// One packet, its frame removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Command (request) or reply code.
    pub cmd: u16,
    /// Session id the server handed out at connect.
    pub session: u16,
    /// The client's running reply id, echoed in the answer.
    pub reply: u16,
    /// The command's data.
    pub data: Vec<u8>,
}

/// Why a frame was refused; the session that sent it ends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The frame did not start with `50 50 82 7d`.
    #[error("bad frame magic {0:02x?}")]
    Magic([u8; 4]),
    /// The length field is below a header's 8 bytes or above [`MAX_PACKET`].
    #[error("length field {0} is outside 8..={MAX_PACKET}")]
    Length(u32),
    /// The checksum matches neither reading of the header.
    #[error("checksum {got:#06x} does not match the packet ({want:#06x})")]
    Checksum {
        /// As sent.
        got: u16,
        /// As computed.
        want: u16,
    },
}

/// The packet length a frame header announces.
pub fn frame_len(top: &[u8; 8]) -> Result<usize, WireError> {
    let magic: [u8; 4] = top[..4].try_into().unwrap_or_default();
    if magic != MAGIC {
        return Err(WireError::Magic(magic));
    }
    let len = u32::from_le_bytes(top[4..8].try_into().unwrap_or_default());
    if !(8..=MAX_PACKET as u32).contains(&len) {
        return Err(WireError::Length(len));
    }
    Ok(len as usize)
}

/// The ones'-complement checksum over a packet whose checksum field is zero.
pub fn checksum(packet: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut words = packet.chunks_exact(2);
    for w in &mut words {
        sum += u16::from_le_bytes([w[0], w[1]]) as u32;
        if sum > 0xffff {
            sum -= 0xffff;
        }
    }
    if let [last] = words.remainder() {
        sum += *last as u32;
    }
    while sum > 0xffff {
        sum -= 0xffff;
    }
    // The complement as clients compute it: a full sum of 0xffff counts as 0.
    (0xfffe - (sum % 0xffff)) as u16
}

fn header(cmd: u16, sum: u16, session: u16, reply: u16, data: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + data.len());
    for v in [cmd, sum, session, reply] {
        p.extend_from_slice(&v.to_le_bytes());
    }
    p.extend_from_slice(data);
    p
}

/// Parses a packet (the bytes after the frame header) and checks its checksum.
pub fn parse(body: &[u8]) -> Result<Packet, WireError> {
    let word = |i: usize| u16::from_le_bytes([body[i], body[i + 1]]);
    if body.len() < 8 {
        return Err(WireError::Length(body.len() as u32));
    }
    let (cmd, got, session, reply) = (word(0), word(2), word(4), word(6));
    let data = &body[8..];
    let want = checksum(&header(cmd, 0, session, reply, data));
    let before = checksum(&header(cmd, 0, session, reply.wrapping_sub(1), data));
    // A reply id that wrapped at 65535 counts from 0 on the client side.
    let wrapped = checksum(&header(cmd, 0, session, 65534, data));
    if got != want && got != before && !(reply == 0 && got == wrapped) {
        return Err(WireError::Checksum { got, want });
    }
    Ok(Packet {
        cmd,
        session,
        reply,
        data: data.to_vec(),
    })
}

/// A whole frame: header, checksum and data.
pub fn frame(cmd: u16, session: u16, reply: u16, data: &[u8]) -> Vec<u8> {
    let sum = checksum(&header(cmd, 0, session, reply, data));
    let p = header(cmd, sum, session, reply, data);
    let mut out = Vec::with_capacity(8 + p.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(p.len() as u32).to_le_bytes());
    out.extend_from_slice(&p);
    out
}

/// The comm-key scramble a client sends with `AUTH`: the key's bits reversed into a number,
/// plus the session id, XORed with "ZKSO", its halves swapped, then XORed with the client's
/// tick byte (which also travels in the third byte).
pub fn commkey(key: u32, session: u16, ticks: u8) -> [u8; 4] {
    let mut k: u32 = 0;
    for i in 0..32 {
        k = (k << 1) | ((key >> i) & 1);
    }
    let k = k.wrapping_add(session as u32).to_le_bytes();
    let x = [k[0] ^ b'Z', k[1] ^ b'K', k[2] ^ b'S', k[3] ^ b'O'];
    let swapped = [x[2], x[3], x[0], x[1]];
    [
        swapped[0] ^ ticks,
        swapped[1] ^ ticks,
        ticks,
        swapped[3] ^ ticks,
    ]
}

/// Whether an `AUTH` payload carries `key` for this session (whatever tick byte it used).
pub fn auth_ok(key: u32, session: u16, payload: &[u8]) -> bool {
    payload.len() >= 4 && payload[..4] == commkey(key, session, payload[2])
}

/// The protocol's packed local date-time: seconds in a calendar of 31-day months and 12-month
/// years from 2000. It has no zone: the site's local time is meant.
pub fn encode_time(t: NaiveDateTime) -> u32 {
    let days = ((t.year() as u32 % 100) * 12 * 31) + (t.month0() * 31) + t.day0();
    days * 86_400 + t.hour() * 3600 + t.minute() * 60 + t.second()
}

/// Reverses [`encode_time`]; `None` for a day that does not exist (31 February).
pub fn decode_time(v: u32) -> Option<NaiveDateTime> {
    let (sec, v) = (v % 60, v / 60);
    let (min, v) = (v % 60, v / 60);
    let (hour, v) = (v % 24, v / 24);
    let (day, v) = (v % 31 + 1, v / 31);
    let (month, v) = (v % 12 + 1, v / 12);
    NaiveDate::from_ymd_opt(2000 + v as i32, month, day)?.and_hms_opt(hour, min, sec)
}

fn put_str(out: &mut [u8], s: &str) {
    let n = s.len().min(out.len());
    out[..n].copy_from_slice(&s.as_bytes()[..n]);
}

/// `s` cut to at most `max` bytes without splitting a UTF-8 character.
pub fn cut_utf8(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The 72-byte user record: uid u16, privilege u8, password\[8\] (never sent), name\[24\],
/// card u32, a pad byte, group\[7\] ("1"), a pad byte, user id\[24\].
pub fn user_record(u: &ZkUser) -> [u8; USER_SIZE] {
    let mut r = [0u8; USER_SIZE];
    r[0..2].copy_from_slice(&u.uid.to_le_bytes());
    r[2] = if u.is_admin { 14 } else { 0 };
    put_str(&mut r[11..35], cut_utf8(&u.name, 24));
    r[35..39].copy_from_slice(&u.card.to_le_bytes());
    put_str(&mut r[40..47], "1");
    put_str(&mut r[48..72], cut_utf8(&u.employee_id, 24));
    r
}

/// The 40-byte attendance record: uid u16, user id\[24\], verify mode u8, packed time u32,
/// punch state u8, 8 reserved bytes.
pub fn attendance_record(
    uid: u16,
    employee_id: &str,
    verify: u8,
    time: u32,
    state: u8,
) -> [u8; ATT_SIZE] {
    let mut r = [0u8; ATT_SIZE];
    r[0..2].copy_from_slice(&uid.to_le_bytes());
    put_str(&mut r[2..26], cut_utf8(employee_id, 24));
    r[26] = verify;
    r[27..31].copy_from_slice(&time.to_le_bytes());
    r[31] = state;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_a_flipped_bit_is_caught() {
        let f = frame(cmd::CONNECT, 0, 65534, b"");
        let len = frame_len(&f[..8].try_into().unwrap()).unwrap();
        assert_eq!(len, f.len() - 8);
        let p = parse(&f[8..]).unwrap();
        assert_eq!((p.cmd, p.session, p.reply), (cmd::CONNECT, 0, 65534));
        // A flipped command bit. (A session bit that moves by one is not caught: clients'
        // off-by-one reply id is tolerated, and a sum cannot tell the two apart.)
        let mut bad = f.clone();
        bad[9] ^= 0x10;
        assert!(matches!(parse(&bad[8..]), Err(WireError::Checksum { .. })));
        let mut long = f;
        long[4..8].copy_from_slice(&(1u32 << 20).to_le_bytes());
        assert_eq!(
            frame_len(&long[..8].try_into().unwrap()),
            Err(WireError::Length(1 << 20))
        );
    }

    #[test]
    fn a_client_checksum_over_the_previous_reply_id_is_accepted() {
        // Clients sum the header with the old reply id, then write the new one.
        let data = b"~SerialNumber\0";
        let sum = checksum(&header(cmd::OPTIONS_RRQ, 0, 7, 41, data));
        let sent = header(cmd::OPTIONS_RRQ, sum, 7, 42, data);
        assert_eq!(parse(&sent).unwrap().reply, 42);
    }

    #[test]
    fn the_time_encoding_round_trips_and_the_key_scramble_depends_on_the_session() {
        let t = NaiveDate::from_ymd_opt(2026, 12, 2)
            .unwrap()
            .and_hms_opt(18, 5, 9)
            .unwrap();
        assert_eq!(decode_time(encode_time(t)), Some(t));
        // 2000-01-01 00:00:00 is zero.
        assert_eq!(
            encode_time(
                NaiveDate::from_ymd_opt(2000, 1, 1)
                    .unwrap()
                    .and_hms_opt(0, 0, 0)
                    .unwrap()
            ),
            0
        );
        let k = commkey(12345, 7, 50);
        assert!(auth_ok(12345, 7, &k));
        // The scramble drops the session's low byte (the tick byte takes its place), so a
        // different session means a different high byte.
        assert!(!auth_ok(12345, 7 + 256, &k));
        assert!(!auth_ok(12346, 7, &k));
        assert_eq!(k[2], 50);
    }

    #[test]
    fn names_are_cut_on_a_character_boundary() {
        // 9 three-byte characters are 27 bytes: 8 fit in 24.
        assert_eq!(cut_utf8("张伟张伟张伟张伟张", 24).chars().count(), 8);
        let u = ZkUser {
            uid: 3,
            employee_id: "E1001".into(),
            name: "Ada Lovelace".into(),
            is_admin: true,
            card: 4_000_000_001,
        };
        let r = user_record(&u);
        assert_eq!(&r[48..53], b"E1001");
        assert_eq!(r[2], 14);
        assert_eq!(
            u32::from_le_bytes(r[35..39].try_into().unwrap()),
            4_000_000_001
        );
    }
}
