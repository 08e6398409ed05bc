//! What the screens show: the page, its rows and notices, the PIN pad, the editor, the camera
//! preview's face box. Plain data the controller fills in and the adapter copies into Slint.

use crate::base::config::Language;

/// Which page is on screen (mirrors `Page` in `ui/api.slint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PageId {
    /// Waiting for someone.
    #[default]
    Idle,
    /// Camera view with guidance.
    Capture,
    /// Active liveness challenge.
    Challenge,
    /// PIN pad.
    Pin,
    /// Green verdict.
    Accepted,
    /// Red verdict.
    Rejected,
    /// Repeat tap within the anti-passback window.
    Already,
    /// Admin home.
    Admin,
    /// Consent before enrolment.
    Consent,
    /// A new consent notice at check-in.
    Notice,
    /// Enrolment in progress.
    Enrolling,
    /// Enrolment result.
    EnrolDone,
    /// Roster with search; tap to enrol.
    AdminRoster,
    /// Sync and queue status.
    AdminSync,
    /// Audit log.
    AdminAudit,
    /// Retention settings and purge.
    AdminRetention,
    /// Settings.
    AdminSettings,
    /// Versions, device key, models.
    AdminAbout,
    /// Changing one setting.
    AdminEdit,
}

impl PageId {
    /// Whether this is one of admin mode's own pages (shown on top of the core's admin screen).
    pub fn is_admin_page(self) -> bool {
        matches!(
            self,
            PageId::AdminRoster
                | PageId::AdminSync
                | PageId::AdminAudit
                | PageId::AdminRetention
                | PageId::AdminSettings
                | PageId::AdminAbout
                | PageId::AdminEdit
        )
    }
}

/// One line of an admin list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RowData {
    /// What a tap refers to (an employee id on the roster page).
    pub id: String,
    /// Main text.
    pub title: String,
    /// Right-hand detail.
    pub detail: String,
}

/// Everything the screens show.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UiState {
    /// The page.
    pub page: PageId,
    /// Language.
    pub language: Language,
    /// Site name in the status bar.
    pub site: String,
    /// "HH:MM".
    pub time: String,
    /// "YYYY-MM-DD".
    pub date: String,
    /// Face check-in can be offered.
    pub face_available: bool,
    /// The camera delivers frames.
    pub camera_live: bool,
    /// The backend was reachable at the last sync round.
    pub online: bool,
    /// Check-ins waiting for the backend.
    pub queued: u64,
    /// The person on screen.
    pub name: String,
    /// Code of the reason, guidance or prompt the page translates.
    pub code: String,
    /// The punch type of the verdict: "in", "out", "break_out", ... or "auto".
    pub direction: String,
    /// The punch types the idle screen offers (policy "ask").
    pub punches: Vec<String>,
    /// The punch type picked at the idle screen, or "".
    pub chosen_punch: String,
    /// Check-ins paused by an HR system over ZK.
    pub paused: bool,
    /// At most this many seconds of the pause are left.
    pub paused_seconds: u32,
    /// The pause is an update being put in place (the kiosk reboots), not an HR system.
    pub updating: bool,
    /// For the anti-passback page.
    pub minutes_ago: u64,
    /// Digits typed on the PIN pad (only their number is shown).
    pub pin: String,
    /// Face box in the preview as fractions (x, y, w, h).
    pub face_box: Option<[f32; 4]>,
    /// Enrolment pictures taken.
    pub captured: u32,
    /// Enrolment pictures needed.
    pub needed: u32,
    /// Whether the last enrolment stored templates.
    pub enrolled: bool,
    /// Consent text version on the consent and notice pages.
    pub consent_version: String,
    /// The consent page offers scope "site" (every door of the site).
    pub site_scope: bool,
    /// What changed, on the notice page.
    pub notice_summary: String,
    /// On the notice page: the face may still be used without an answer, for now.
    pub within_grace: bool,
    /// The admin in admin mode.
    pub admin_name: String,
    /// Their employee id, the actor of settings changes.
    pub admin_id: String,
    /// The PIN pad is asking for an admin PIN (opened from the idle screen).
    pub admin_pin: bool,
    /// Rows of the admin list page.
    pub rows: Vec<RowData>,
    /// The roster search text.
    pub search: String,
    /// A note above an admin list (a result, or why something is not possible).
    pub notice: String,
    /// The setting being changed on the editor page.
    pub editing: Editing,
}

/// The setting on the editor page and the value being entered.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Editing {
    /// Dotted config key (see [`crate::store::settings::EDITABLE`]).
    pub key: String,
    /// The value as shown and entered so far.
    pub value: String,
    /// Which editor: "text", "number", "choice" or "time".
    pub kind: String,
    /// The values a choice takes.
    pub options: Vec<String>,
    /// The on-screen keyboard's shift key is down.
    pub shift: bool,
}
