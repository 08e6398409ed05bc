//! Wire types of sync protocol v1, shared by the kiosk's client and the reference hub.
//!
//! `docs/openapi.yaml` is the normative description; these types must serialise to exactly
//! what it documents (the schemathesis test in `tests/api_fuzz.rs` checks the hub against it).
//! Binary fields (signed entries, templates) travel as standard base64; hashes and keys as hex.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Path prefix of every endpoint of this protocol version.
pub const API_PREFIX: &str = "/v1";

/// Most entries one upload may carry; the hub answers 400 (`batch_too_large`) above it.
pub const MAX_BATCH: usize = 1000;

/// Largest request body the hub reads (bytes).
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// Largest response body the client reads (bytes); a roster of ~10,000 people with templates
/// fits well inside.
pub const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

/// `POST /v1/pair`: a kiosk registers its key with a one-time code from the hub admin.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairRequest {
    /// The one-time pairing code.
    pub code: String,
    /// The kiosk's id (it is inside every record it signs).
    pub device_id: Uuid,
    /// Hex of the kiosk's Ed25519 public key.
    pub public_key: String,
    /// The kiosk's configured name.
    pub name: String,
    /// Hex of an Ed25519 signature by the device key over [`pairing_proof_message`]: proof
    /// that whoever pairs holds the private key, not only its public half. Since protocol 1.1;
    /// without it the hub pairs only an id it has never paired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
    /// The data region the kiosk was provisioned for (since protocol 1.2): a hub labelled
    /// with another region refuses it unless it allows cross-region storage.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub data_region: String,
}

/// A pairing code as the hub stores it: dashes and white space dropped, upper case.
pub fn normalise_pairing_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

/// The bytes a kiosk signs to pair: a label no record or audit entry can start with, then the
/// code, the device id and the public key. The code is the hub's own single-use nonce, so a
/// proof is good for one pairing of one device only; no clock is involved, which matters on a
/// board without a real-time clock pairing at its first boot.
pub fn pairing_proof_message(code: &str, device_id: Uuid, public_key_hex: &str) -> Vec<u8> {
    format!(
        "clockface pairing proof v1\n{}\n{}\n{}",
        normalise_pairing_code(code),
        device_id,
        public_key_hex.to_ascii_lowercase(),
    )
    .into_bytes()
}

/// Answer to a successful pairing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairResponse {
    /// The id the hub registered the kiosk under (its own id).
    pub device_id: Uuid,
    /// Bearer token for every later request; shown once.
    pub token: String,
    /// Site the pairing code was issued for.
    pub site: String,
    /// Hub wall time (Unix ms), so the kiosk can see a clock skew at once.
    pub hub_time_ms: i64,
}

/// One signed entry of a chain, as uploaded.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadEntry {
    /// Sequence number in the device's chain (must equal the one inside `entry`).
    pub seq: u64,
    /// Base64 of the canonical signed bytes (CFR2 or CFR1 record, or CFA1 audit entry).
    pub entry: String,
}

/// `POST /v1/checkins` and `POST /v1/audit`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// 1 to [`MAX_BATCH`] entries, in any order.
    pub entries: Vec<UploadEntry>,
}

/// What the hub did with one uploaded entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckStatus {
    /// Verified and stored now.
    Stored,
    /// The identical entry was already stored: re-sending is harmless.
    Duplicate,
    /// Not stored, for the reason given; re-sending the same bytes will not help.
    Rejected,
}

/// The hub's acknowledgement of one entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ack {
    /// Sequence number of the entry.
    pub seq: u64,
    /// Outcome.
    pub status: AckStatus,
    /// Hex SHA-256 of the entry bytes the hub holds for this seq (for a rejected entry, of the
    /// bytes received); the kiosk checks it against its own before marking anything synced.
    pub hash: String,
    /// Why an entry was rejected ("" otherwise).
    #[serde(default)]
    pub reason: String,
}

/// The hub's view of a device chain: the end of its gap-free verified prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// Highest seq such that every entry from the first stored one to it is present and linked.
    pub seq: u64,
    /// Hex SHA-256 of that entry ("" when nothing is stored).
    pub hash: String,
}

/// Answer to an upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadResponse {
    /// One acknowledgement per distinct uploaded seq.
    pub acks: Vec<Ack>,
    /// The hub's contiguous head for this chain after the upload.
    pub head: ChainHead,
}

/// A template enrolled elsewhere, delivered with the roster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterTemplate {
    /// Embedder that produced it (must match the kiosk's to be used).
    pub model: String,
    /// Base64 of the L2-normalised embedding as little-endian f32.
    pub embedding: String,
}

/// How far a face consent reaches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsentScope {
    /// The template stays on the kiosk where it was enrolled.
    #[default]
    Device,
    /// The template goes to the backend and every kiosk of the person's site.
    Site,
}

impl ConsentScope {
    /// The word stored and shown: "device" or "site".
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentScope::Device => "device",
            ConsentScope::Site => "site",
        }
    }

    /// Parses "device" or "site".
    pub fn parse(s: &str) -> Option<ConsentScope> {
        match s {
            "device" => Some(ConsentScope::Device),
            "site" => Some(ConsentScope::Site),
            _ => None,
        }
    }
}

/// The consent in force for one employee.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterConsent {
    /// Whether biometric consent is given.
    pub given: bool,
    /// Version of the consent text it refers to.
    pub text_version: String,
    /// Where the consent lets the template go (since protocol 1.2; absent means "device").
    #[serde(default)]
    pub scope: ConsentScope,
}

/// `POST /v1/biometrics`: what a kiosk tells the backend after a consent decision or an
/// enrolment there, so that the person's other doors follow (since protocol 1.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BiometricUpdate {
    /// Employee id.
    pub employee_id: String,
    /// The consent now in force at the kiosk; `None` when the person was deleted there
    /// (which the backend treats as a withdrawal: templates go everywhere).
    pub consent: Option<RosterConsent>,
    /// The kiosk's own templates, sent only when the consent is given with scope "site".
    #[serde(default)]
    pub templates: Vec<RosterTemplate>,
}

/// Answer to a biometric update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BiometricAck {
    /// The roster version after the update (other kiosks pick it up with their next round).
    pub roster_version: i64,
    /// Templates the backend now holds for the person from this kiosk.
    pub templates_stored: u64,
    /// Why the update was refused, with nothing changed ("" when it was applied). Like a
    /// rejected upload entry, re-sending the same update will not help.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub refused: String,
}

/// One employee as the backend knows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterEmployee {
    /// Employee id.
    pub id: String,
    /// Name shown on the verdict screen.
    pub display_name: String,
    /// Whether they may check in.
    pub active: bool,
    /// Whether they may open admin mode.
    #[serde(default)]
    pub is_admin: bool,
    /// Badge ids.
    #[serde(default)]
    pub badges: Vec<String>,
    /// Consent recorded elsewhere; absent means "unknown here" (the kiosk keeps its own).
    #[serde(default)]
    pub consent: Option<RosterConsent>,
    /// Templates enrolled elsewhere (only sent for employees whose consent is given).
    #[serde(default)]
    pub templates: Vec<RosterTemplate>,
    /// Birth year, the most precise age the roster may hold (since protocol 1.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_year: Option<u16>,
    /// Whether the backend knows them to be a minor (since protocol 1.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_minor: Option<bool>,
    /// The sites whose kiosks receive this person; empty (or `"*"`) means every site. Only
    /// the backend reads it: a kiosk is served its own site's people and never sees the list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<String>,
}

/// `GET /v1/roster`: the whole roster of the device's site, with tombstones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Roster {
    /// Monotonic version; the ETag is derived from it.
    pub version: i64,
    /// Everyone who may check in at this site.
    pub employees: Vec<RosterEmployee>,
    /// Ids removed from the roster: the kiosk deletes them and wipes their templates.
    pub deletions: Vec<String>,
}

/// `GET /v1/policy`: the check-in policy the backend wants in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyDocument {
    /// Monotonic version; the ETag is derived from it.
    pub version: i64,
    /// The `[policy]` section, in the same fields and units as the config file.
    pub policy: crate::base::config::PolicyConfig,
}

/// `POST /v1/heartbeat`: how the kiosk is doing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// Kiosk wall time when sent (Unix ms).
    pub device_time_ms: i64,
    /// Whether the kiosk's kernel reports its clock synchronised.
    pub clock_synchronised: bool,
    /// Check-ins not yet acknowledged.
    pub queue_depth: u64,
    /// Audit entries not yet acknowledged.
    pub audit_queue_depth: u64,
    /// Free bytes in the data dir's file system.
    pub free_disk_bytes: u64,
    /// Highest check-in seq written.
    pub head_seq: u64,
    /// Software version.
    pub version: String,
    /// Model file name → sha256, as loaded.
    #[serde(default)]
    pub models: std::collections::BTreeMap<String, String>,
    /// Seconds between this kiosk's sync rounds (since 1.2): the hub calls it offline after
    /// three missed heartbeats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_s: Option<u32>,
    /// The kiosk's own view of its hardware and models (since 1.2), for the fleet view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<KioskStatus>,
}

/// What a kiosk says of its camera and face models in a heartbeat. Plain words, never a
/// name, badge or image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KioskStatus {
    /// "live", "starting" or "lost".
    pub camera: String,
    /// Face check-in works (models loaded and checked, camera live).
    pub face_ok: bool,
    /// What is wrong (a model that failed its checksum, a lost camera), empty when all is well.
    #[serde(default)]
    pub problems: Vec<String>,
}

/// Answer to a heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    /// Hub wall time when answered (Unix ms).
    pub hub_time_ms: i64,
    /// hub time − device time as the hub measured it (ms).
    pub clock_skew_ms: i64,
    /// What the backend holds of this device's two chains (since protocol 1.1): a kiosk
    /// whose backend is behind what it acknowledged (reset, restored from a backup) sends the
    /// rest again; a head beyond the kiosk's own is a backend to distrust.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heads: Option<BackendHeads>,
}

/// The backend's gap-free head of each of one device's chains.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendHeads {
    /// Check-in records.
    pub checkins: ChainHead,
    /// Audit entries.
    pub audit: ChainHead,
}

/// `GET /v1/health`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    /// Always "ok" when the hub answers.
    pub status: String,
    /// Hub software version.
    pub version: String,
}

/// Body of every 4xx/5xx answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiError {
    /// Machine-readable code, e.g. `bad_request`, `unauthorized`, `batch_too_large`.
    pub error: String,
    /// What was wrong, in words.
    pub message: String,
}

/// The ETag for a versioned document.
pub fn etag(kind: &str, version: i64) -> String {
    format!("\"{kind}-{version}\"")
}
