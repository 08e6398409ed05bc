//! Signed check-in records: the canonical, versioned byte format and its fields.
//!
//! A record is what the backend pays people from, so it carries everything needed to trust it
//! later without trusting the kiosk's database: who, when (wall time, whether the clock was
//! synchronised, boot id and monotonic time), how (method, scores, policy version), its place in
//! the per-device chain (sequence number and the previous record's SHA-256) and an Ed25519
//! signature by the device key over all of that. Failed attempts are records too, with a reason
//! and never any biometric data.
//!
//! Format v1, in this order (integers big-endian; str = u16 length + UTF-8;
//! opt-f32 = presence byte + f32 bits):
//! `"CFR1"`, uuid\[16\] (v7), device_id\[16\], seq u64, outcome u8, employee_id str,
//! direction u8, method u8, reason str, wall_ms i64, clock_synced u8, boot_id\[16\],
//! monotonic_ns u64, liveness opt-f32, match_score opt-f32, policy_version u32,
//! prev_hash\[32\], signature\[64\]. The signature covers every byte before it; the record's
//! hash is the SHA-256 of all its bytes, signature included.
//!
//! Format v2 (`"CFR2"`, written since punch types) has the same layout; its direction byte is
//! a [`Punch`] code, so it may also say break out/in or overtime in/out. A v1 record stays v1:
//! it decodes, verifies and re-encodes to the bytes it was signed as.

use rusqlite::{Transaction, params};
use serde::Serialize;
use uuid::Uuid;

use super::codec::Writer;
use super::entry::{ChainEntry, Link, SIGNATURE_LEN, chain_fields, decode_framed, framed};
use crate::base::clock::Clock;
use crate::base::error::{Error, Result};

/// Magic and format version of the first record format (in, out or auto only).
pub const RECORD_MAGIC_V1: &[u8; 4] = b"CFR1";
/// Magic of the current format, which every new record is written in: the same layout, with
/// the direction byte widened to every [`Punch`] type.
pub const RECORD_MAGIC: &[u8; 4] = b"CFR2";

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $code:literal, $text:literal;)+ }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $variant = $code,)+ }

        impl $name {
            /// Byte used in the canonical encoding.
            pub fn code(self) -> u8 { self as u8 }
            /// Decodes the canonical byte.
            pub fn from_code(code: u8) -> Result<Self> {
                match code {
                    $($code => Ok($name::$variant),)+
                    _ => Err(Error::invalid(stringify!($name), format!("unknown code {code}"))),
                }
            }
            /// Stable lower-case name used in exports and the sync protocol.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(Error::invalid(stringify!($name), format!("{s:?} is not one of: {}", [$($text),+].join(", ")))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

wire_enum! {
    /// Whether the attempt produced an attendance record or was refused.
    Outcome {
        /// The person was verified; this is attendance.
        Accepted = 1, "accepted";
        /// A failed attempt; `reason` says why.
        Rejected = 2, "rejected";
    }
}

wire_enum! {
    /// The punch type of a check-in, as the person chose it on the touchscreen or the kiosk's
    /// schedule decided. Codes 1–3 are the only ones a v1 (`CFR1`) record can hold.
    Punch {
        /// Arriving.
        In = 1, "in";
        /// Leaving.
        Out = 2, "out";
        /// The kiosk did not decide; the backend pairs the events.
        Auto = 3, "auto";
        /// Leaving for a break.
        BreakOut = 4, "break_out";
        /// Back from a break.
        BreakIn = 5, "break_in";
        /// Starting overtime.
        OvertimeIn = 6, "overtime_in";
        /// Ending overtime.
        OvertimeOut = 7, "overtime_out";
    }
}

impl Punch {
    /// Whether the person arrives or leaves with this punch (break end and overtime start
    /// arrive): what a timesheet pairs and the `direction` column of an export.
    pub fn direction(self) -> &'static str {
        match self {
            Punch::In | Punch::BreakIn | Punch::OvertimeIn => "in",
            Punch::Out | Punch::BreakOut | Punch::OvertimeOut => "out",
            Punch::Auto => "auto",
        }
    }

    /// The punch state ZKTeco terminals use on the wire (ZK attendance logs, ADMS ATTLOG):
    /// 0 in, 1 out, 2 break out, 3 break in, 4 overtime in, 5 overtime out. `auto` has no state
    /// of its own and is sent as 255, the value such terminals use for "undefined".
    pub fn zk_state(self) -> u8 {
        match self {
            Punch::In => 0,
            Punch::Out => 1,
            Punch::BreakOut => 2,
            Punch::BreakIn => 3,
            Punch::OvertimeIn => 4,
            Punch::OvertimeOut => 5,
            Punch::Auto => 255,
        }
    }
}

wire_enum! {
    /// How the person was identified and verified.
    Method {
        /// Badge names the person, face verifies them (1:1).
        BadgeFace = 1, "badge_face";
        /// Badge names the person, PIN verifies them (no biometrics, e.g. no consent).
        BadgePin = 2, "badge_pin";
        /// Face alone, identified 1:N over the roster (only where policy allows).
        FaceOnly = 3, "face_only";
        /// Employee number typed on the PIN pad plus PIN (lost badge).
        PinOnly = 4, "pin_only";
    }
}

impl Method {
    /// The verify mode ZKTeco terminals report for it (ZK attendance logs, ADMS ATTLOG): 15
    /// face, 4 card (the badge named the person and a PIN confirmed it), 3 password (employee
    /// number and PIN).
    pub fn zk_verify(self) -> u8 {
        match self {
            Method::BadgeFace | Method::FaceOnly => 15,
            Method::BadgePin => 4,
            Method::PinOnly => 3,
        }
    }
}

/// The fields a caller supplies for a new record; the store fills in identity, time, chain
/// position and signature.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRecord {
    /// Accepted attendance or a failed attempt.
    pub outcome: Outcome,
    /// The employee, or "" when nobody was identified (unknown badge, no match).
    pub employee_id: String,
    /// In, out, break or overtime, or auto.
    pub punch: Punch,
    /// How the attempt was made.
    pub method: Method,
    /// Why a rejected attempt failed, as a snake_case code (`face_mismatch`); "" when accepted.
    pub reason: String,
    /// Fused liveness score when a face was checked.
    pub liveness: Option<f32>,
    /// Match similarity when a face was compared.
    pub match_score: Option<f32>,
}

impl NewRecord {
    /// Rejects values the canonical format or the privacy rules do not allow.
    pub fn validate(&self) -> Result<()> {
        validate_employee_id(&self.employee_id, self.outcome == Outcome::Rejected)?;
        let reason_ok = self.reason.len() <= 48
            && self
                .reason
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !reason_ok {
            return Err(Error::invalid(
                "reason",
                format!(
                    "{:?} must be a snake_case code of at most 48 characters",
                    self.reason
                ),
            ));
        }
        match (self.outcome, self.reason.is_empty()) {
            (Outcome::Accepted, false) => Err(Error::invalid(
                "reason",
                "an accepted check-in carries no failure reason",
            )),
            (Outcome::Rejected, true) => Err(Error::invalid(
                "reason",
                "a rejected attempt must say why (e.g. face_mismatch)",
            )),
            _ => Ok(()),
        }?;
        for (name, v) in [
            ("liveness", self.liveness),
            ("match_score", self.match_score),
        ] {
            if let Some(x) = v
                && !x.is_finite()
            {
                return Err(Error::invalid(name, format!("{x} is not a finite number")));
            }
        }
        Ok(())
    }
}

/// A chain position: seq 0 does not exist, and seq 1 starts the chain (previous hash all
/// zeros); shared by records and audit entries.
pub fn check_link(seq: u64, prev_hash: &[u8; 32]) -> Result<()> {
    if seq == 0 {
        return Err(Error::invalid("seq", "is 0; a chain starts at 1"));
    }
    if seq == 1 && *prev_hash != [0; 32] {
        return Err(Error::invalid(
            "prev_hash",
            "the first entry of a chain links to nothing (all zeros)",
        ));
    }
    Ok(())
}

/// Checks an employee id: 1–64 printable characters (empty allowed only where `may_be_empty`).
pub fn validate_employee_id(id: &str, may_be_empty: bool) -> Result<()> {
    if id.is_empty() && may_be_empty {
        return Ok(());
    }
    if id.is_empty() || id.chars().count() > 64 || id.chars().any(|c| c.is_control()) {
        return Err(Error::invalid(
            "employee id",
            format!("{id:?} must be 1 to 64 printable characters"),
        ));
    }
    Ok(())
}

/// A complete, signed check-in record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    /// Globally unique, time-ordered id (UUIDv7); the backend's idempotency key.
    pub uuid: Uuid,
    /// The kiosk that made the record.
    pub device_id: Uuid,
    /// Position in this device's chain, from 1, without gaps.
    pub seq: u64,
    /// Accepted or rejected.
    pub outcome: Outcome,
    /// Who ("" if nobody was identified).
    pub employee_id: String,
    /// Record format version: 1 (`CFR1`) or 2 (`CFR2`), kept so a record re-encodes to the
    /// bytes it was signed as.
    pub format: u8,
    /// In, out, break or overtime, or auto.
    pub punch: Punch,
    /// Badge+face, badge+PIN, ...
    pub method: Method,
    /// Failure reason code, "" for accepted records.
    pub reason: String,
    /// Wall time in Unix milliseconds.
    pub wall_ms: i64,
    /// Whether the kernel reported the wall clock synchronised when the record was made.
    pub clock_synced: bool,
    /// Kernel boot id at the time of the record.
    #[serde(serialize_with = "ser_hex")]
    pub boot_id: [u8; 16],
    /// `CLOCK_BOOTTIME` nanoseconds; orders records within one boot even if wall time jumps.
    pub monotonic_ns: u64,
    /// Fused liveness score, if a face was checked.
    pub liveness: Option<f32>,
    /// Face match similarity, if a face was compared.
    pub match_score: Option<f32>,
    /// Version of the policy that produced the verdict.
    pub policy_version: u32,
    /// SHA-256 of the previous record's bytes (zeros for the first record).
    #[serde(serialize_with = "ser_hex")]
    pub prev_hash: [u8; 32],
    /// Ed25519 signature over all preceding bytes.
    #[serde(serialize_with = "ser_hex")]
    pub signature: [u8; 64],
}

fn ser_hex<S: serde::Serializer, const N: usize>(
    v: &[u8; N],
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(v))
}

impl Record {
    /// The rules a signed record keeps beyond its byte format, as the kiosk applies them when
    /// it writes one: a sequence number from 1, the first one linked to nothing, and the
    /// fields [`NewRecord::validate`] checks. The hub refuses anything else with the field
    /// named, whoever signed it.
    pub fn validate_content(&self) -> Result<()> {
        check_link(self.seq, &self.prev_hash)?;
        NewRecord {
            outcome: self.outcome,
            employee_id: self.employee_id.clone(),
            punch: self.punch,
            method: self.method,
            reason: self.reason.clone(),
            liveness: self.liveness,
            match_score: self.match_score,
        }
        .validate()
    }

    /// A new record at `link` in this device's chain, stamped by `clock`; the signature is
    /// filled in when it is appended.
    pub(super) fn unsigned(
        link: Link,
        device_id: Uuid,
        clock: &dyn Clock,
        policy_version: u32,
        new: &NewRecord,
    ) -> Record {
        Record {
            uuid: link.uuid,
            device_id,
            seq: link.seq,
            outcome: new.outcome,
            employee_id: new.employee_id.clone(),
            format: 2,
            punch: new.punch,
            method: new.method,
            reason: new.reason.clone(),
            wall_ms: link.wall_ms,
            clock_synced: clock.synchronised(),
            boot_id: clock.boot_id(),
            monotonic_ns: clock.monotonic_ns(),
            liveness: new.liveness,
            match_score: new.match_score,
            policy_version,
            prev_hash: link.prev_hash,
            signature: [0; SIGNATURE_LEN],
        }
    }

    /// The bytes the signature covers.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(if self.format == 1 {
            RECORD_MAGIC_V1
        } else {
            RECORD_MAGIC
        })
        .bytes(self.uuid.as_bytes())
        .bytes(self.device_id.as_bytes())
        .u64(self.seq)
        .u8(self.outcome.code())
        .str(&self.employee_id)
        .u8(self.punch.code())
        .u8(self.method.code())
        .str(&self.reason)
        .i64(self.wall_ms)
        .u8(self.clock_synced as u8)
        .bytes(&self.boot_id)
        .u64(self.monotonic_ns)
        .opt_f32(self.liveness)
        .opt_f32(self.match_score)
        .u32(self.policy_version)
        .bytes(&self.prev_hash);
        w.finish()
    }

    /// The full canonical bytes: signed part then signature.
    pub fn to_bytes(&self) -> Vec<u8> {
        framed(self.signed_bytes(), &self.signature)
    }

    /// Parses canonical bytes of either format; rejects anything that would not re-encode
    /// identically.
    pub fn decode(bytes: &[u8]) -> Result<Record> {
        let format = match bytes.get(..4) {
            Some(m) if m == RECORD_MAGIC_V1 => 1,
            _ => 2,
        };
        let magic = if format == 1 {
            RECORD_MAGIC_V1
        } else {
            RECORD_MAGIC
        };
        decode_framed(bytes, magic, "record", |r| {
            Ok(Record {
                uuid: Uuid::from_bytes(r.array("uuid")?),
                device_id: Uuid::from_bytes(r.array("device id")?),
                seq: r.u64("seq")?,
                outcome: Outcome::from_code(r.u8("outcome")?)?,
                employee_id: r.str("employee id")?,
                format,
                punch: match Punch::from_code(r.u8("punch")?)? {
                    p @ (Punch::In | Punch::Out | Punch::Auto) => p,
                    p if format == 2 => p,
                    p => {
                        return Err(Error::invalid(
                            "punch",
                            format!("{p} needs record format v2; this record is v1"),
                        ));
                    }
                },
                method: Method::from_code(r.u8("method")?)?,
                reason: r.str("reason")?,
                wall_ms: r.i64("wall time")?,
                clock_synced: r.flag("clock synced")?,
                boot_id: r.array("boot id")?,
                monotonic_ns: r.u64("monotonic time")?,
                liveness: r.opt_f32("liveness")?,
                match_score: r.opt_f32("match score")?,
                policy_version: r.u32("policy version")?,
                prev_hash: r.array("previous hash")?,
                signature: r.array("signature")?,
            })
        })
    }
}

impl ChainEntry for Record {
    const NAME: &'static str = "check-in";
    const TABLE: &'static str = "records";
    const INDEX_EXPR: &'static str = "employee_id || '|' || outcome";
    const REDACTION_EXPR: &'static str = "redacted_hash, synced_at_ms IS NOT NULL";
    chain_fields!(Record);
    fn insert(&self, tx: &Transaction<'_>, bytes: &[u8]) -> rusqlite::Result<usize> {
        tx.execute(
            "INSERT INTO records (seq, uuid, wall_ms, employee_id, outcome, bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                self.seq as i64,
                self.uuid.as_bytes().as_slice(),
                self.wall_ms,
                self.employee_id,
                self.outcome.code() as i64,
                bytes
            ],
        )
    }
    fn index_key(&self) -> String {
        format!("{}|{}", self.employee_id, self.outcome.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        Record {
            uuid: Uuid::now_v7(),
            device_id: Uuid::new_v4(),
            seq: 42,
            outcome: Outcome::Accepted,
            employee_id: "E1001".into(),
            format: 2,
            punch: Punch::In,
            method: Method::BadgeFace,
            reason: String::new(),
            wall_ms: 1_764_400_000_000,
            clock_synced: true,
            boot_id: [3; 16],
            monotonic_ns: 123_456_789,
            liveness: Some(0.07),
            match_score: Some(0.81),
            policy_version: 2,
            prev_hash: [9; 32],
            signature: [5; 64],
        }
    }

    #[test]
    fn canonical_bytes_round_trip() {
        let rec = sample();
        let bytes = rec.to_bytes();
        assert_eq!(&bytes[..4], RECORD_MAGIC);
        assert_eq!(&bytes[bytes.len() - 64..], &[5; 64]);
        assert_eq!(Record::decode(&bytes).unwrap(), rec);
        // Stable layout: a change here is a format change and needs a new version.
        assert_eq!(
            bytes.len(),
            4 + 16 + 16 + 8 + 1 + 7 + 1 + 1 + 2 + 8 + 1 + 16 + 8 + 5 + 5 + 4 + 32 + 64
        );
    }

    #[test]
    fn a_v1_record_keeps_its_bytes_and_v2_carries_every_punch_type() {
        let mut v1 = sample();
        v1.format = 1;
        let bytes = v1.to_bytes();
        assert_eq!(&bytes[..4], RECORD_MAGIC_V1);
        let back = Record::decode(&bytes).unwrap();
        assert_eq!(back.format, 1);
        assert_eq!(
            back.to_bytes(),
            bytes,
            "a v1 record re-encodes to its signed bytes"
        );
        // A break punch exists only in v2: the same byte in a v1 record is refused.
        let mut v2 = sample();
        v2.punch = Punch::BreakOut;
        let bytes = v2.to_bytes();
        assert_eq!(Record::decode(&bytes).unwrap().punch, Punch::BreakOut);
        let mut forged = bytes.clone();
        forged[..4].copy_from_slice(RECORD_MAGIC_V1);
        let err = Record::decode(&forged).unwrap_err().to_string();
        assert!(err.contains("needs record format v2"), "{err}");
        assert_eq!(Punch::OvertimeOut.direction(), "out");
        assert_eq!(Punch::BreakIn.zk_state(), 3);
    }

    #[test]
    fn decode_rejects_trailing_and_bad_codes() {
        let mut bytes = sample().to_bytes();
        bytes.push(0);
        assert!(
            Record::decode(&bytes)
                .unwrap_err()
                .to_string()
                .contains("trailing")
        );
        let mut bytes = sample().to_bytes();
        bytes[44] = 9; // outcome byte
        assert!(
            Record::decode(&bytes)
                .unwrap_err()
                .to_string()
                .contains("unknown code 9")
        );
    }

    #[test]
    fn new_record_validation_names_the_field() {
        let mut n = NewRecord {
            outcome: Outcome::Rejected,
            employee_id: String::new(),
            punch: Punch::Auto,
            method: Method::BadgeFace,
            reason: "unknown_badge".into(),
            liveness: None,
            match_score: None,
        };
        n.validate().unwrap();
        n.reason = "Unknown Badge!".into();
        assert!(n.validate().unwrap_err().to_string().starts_with("reason:"));
        n.reason = String::new();
        assert!(
            n.validate()
                .unwrap_err()
                .to_string()
                .contains("must say why")
        );
        n.outcome = Outcome::Accepted;
        assert!(
            n.validate()
                .unwrap_err()
                .to_string()
                .contains("employee id")
        );
        n.employee_id = "E1".into();
        n.match_score = Some(f32::NAN);
        assert!(
            n.validate()
                .unwrap_err()
                .to_string()
                .contains("match_score")
        );
    }
}
