//! What goes into the running kiosk from the touchscreen, and what comes out of it for the
//! UI, the demo's narration and tests.

use crate::camera::CameraStatus;
use crate::hw::gpio::Pin;
use crate::kiosk::events::Screen;
use crate::store::record::Outcome;
use crate::vision::FaceAvailability;

/// Input from the touchscreen (or the demo script, or a test).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UiInput {
    /// Digits typed on the PIN pad.
    Pin(String),
    /// Admin: start enrolment of an employee.
    Enrol(String),
    /// Admin: leave admin mode.
    ExitAdmin,
    /// The answer on the consent or new-notice screen, with the scope chosen.
    Consent(bool, crate::base::protocol::ConsentScope),
    /// A PIN typed for admin mode at the idle screen.
    AdminPin(String),
    /// An admin changed settings (already checked and stored): reload them.
    SettingsChanged,
    /// A punch-type button tapped at the idle screen.
    Punch(crate::store::record::Punch),
}

/// What the kiosk did, for the demo's narration, tests and (later) the UI.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// Face check-in availability at start.
    Started(FaceAvailability),
    /// The screen changed.
    Screen(Screen),
    /// A record was appended (durably).
    Recorded {
        /// Its sequence number.
        seq: u64,
        /// Accepted or rejected.
        outcome: Outcome,
        /// Failure reason code.
        reason: String,
        /// Employee id.
        employee: String,
    },
    /// An output pin changed.
    Pin(Pin, bool),
    /// The camera's status changed.
    Camera(CameraStatus),
    /// Tap-to-verdict latency of a check-in, in milliseconds.
    Latency(f64),
    /// The PIR sensor saw someone approach while the kiosk was idle: wake the screen.
    Motion,
    /// Something failed; the kiosk carries on.
    Error(String),
}
