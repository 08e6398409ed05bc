//! The UI controller: the state the screens show, and what a touch means for the core.
//!
//! Pure Rust with no Slint types, so it is unit-tested without a window. `super::adapter`
//! copies [`UiState`] into the Slint globals and routes the globals' callbacks here; the
//! answers ([`Command`]) go to the kiosk core as [`UiInput`]s or are handled by the UI itself
//! (language, admin pages). Sentences are never built here: the core's reasons, guidance and
//! prompts become stable codes that the `.slint` side translates with `@tr`.

use super::state::{Editing, PageId, RowData, UiState};
use crate::base::config::Language;
use crate::base::protocol::ConsentScope;
use crate::camera::CameraStatus;
use crate::kiosk::events::Screen;
use crate::kiosk::runner::{Report, UiInput};
use crate::vision::FaceAvailability;
use crate::vision::quality::Guidance;

/// What a touch asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Something for the kiosk core.
    Kiosk(UiInput),
    /// Switch the language.
    Language(Language),
    /// Fill an admin list page.
    Load(PageId),
    /// Run the retention purge now.
    Purge,
    /// Open the editor for a setting (the admin source supplies its value).
    Edit(String),
    /// Store a setting an admin entered.
    Save {
        /// Dotted config key.
        key: String,
        /// The value as entered.
        value: String,
    },
}

/// Longest PIN the pad takes (the store allows 4 to 12 digits).
pub const MAX_PIN: usize = 12;

/// The controller: owns [`UiState`] and turns reports and touches into state and commands.
#[derive(Debug, Default)]
pub struct Controller {
    /// What the screens show.
    pub state: UiState,
    /// The site's time zone: the clock on the screens shows its local time.
    pub zone: crate::base::zone::SiteZone,
}

fn guidance_code(g: Guidance) -> &'static str {
    match g {
        Guidance::Ok => "ok",
        Guidance::NoFace => "no_face",
        Guidance::MultipleFaces => "multiple_faces",
        Guidance::TooFar => "too_far",
        Guidance::TooDark => "too_dark",
        Guidance::TooBright => "too_bright",
        Guidance::HoldStill => "hold_still",
        Guidance::LookAtCamera => "look_at_camera",
    }
}

impl Controller {
    /// A controller for a kiosk at `site`, speaking `language`.
    pub fn new(site: &str, language: Language) -> Controller {
        Controller {
            state: UiState {
                site: site.into(),
                language,
                face_available: true,
                camera_live: true,
                online: true,
                needed: 3,
                ..UiState::default()
            },
            zone: crate::base::zone::SiteZone::system(),
        }
    }

    /// The same controller showing `zone`'s local time.
    pub fn with_zone(mut self, zone: crate::base::zone::SiteZone) -> Controller {
        self.zone = zone;
        self
    }

    /// Applies a report from the kiosk core.
    pub fn on_report(&mut self, r: &Report) {
        match r {
            Report::Started(a) => {
                self.state.face_available = matches!(a, FaceAvailability::Ready);
            }
            Report::Camera(s) => self.state.camera_live = *s == CameraStatus::Live,
            Report::Screen(s) => self.on_screen(s),
            _ => {}
        }
    }

    fn on_screen(&mut self, s: &Screen) {
        let st = &mut self.state;
        st.pin.clear();
        st.admin_pin = false;
        st.face_box = None;
        match s {
            Screen::Idle {
                face_available,
                punches,
                chosen,
            } => {
                st.page = PageId::Idle;
                st.face_available = *face_available;
                st.punches = punches.iter().map(|p| p.as_str().to_string()).collect();
                st.chosen_punch = chosen.map(|p| p.as_str().to_string()).unwrap_or_default();
                st.paused = false;
                st.updating = false;
                st.name.clear();
                st.admin_name.clear();
                st.admin_id.clear();
            }
            Screen::Capture { name, guidance } => {
                st.page = PageId::Capture;
                st.name = name.clone();
                st.code = guidance_code(*guidance).into();
            }
            Screen::Challenge { name, prompt } => {
                st.page = PageId::Challenge;
                st.name = name.clone();
                st.code = if prompt.contains("right") {
                    "turn_right"
                } else {
                    "turn_left"
                }
                .into();
            }
            Screen::PinPad { name, code, .. } => {
                st.page = PageId::Pin;
                st.name = name.clone();
                st.code = code.clone();
            }
            Screen::Accepted { name, punch } => {
                st.page = PageId::Accepted;
                st.name = name.clone();
                st.direction = punch.as_str().into();
            }
            Screen::Paused { seconds } => {
                st.page = PageId::Idle;
                st.paused = true;
                st.updating = false;
                st.paused_seconds = *seconds;
                st.name.clear();
            }
            Screen::Updating => {
                st.page = PageId::Idle;
                st.paused = true;
                st.updating = true;
                st.name.clear();
            }
            Screen::Rejected { name, code, .. } => {
                st.page = PageId::Rejected;
                st.name = name.clone().unwrap_or_default();
                st.code = code.clone();
            }
            Screen::AlreadyCheckedIn { name, minutes_ago } => {
                st.page = PageId::Already;
                st.name = name.clone();
                st.minutes_ago = *minutes_ago;
            }
            Screen::Admin { name, id } => {
                // Coming back to admin home from an admin page keeps the admin's name.
                st.page = PageId::Admin;
                st.admin_name = name.clone();
                st.admin_id = id.clone();
                st.notice.clear();
            }
            Screen::Consent {
                name,
                text_version,
                site_scope,
            } => {
                st.page = PageId::Consent;
                st.name = name.clone();
                st.consent_version = text_version.clone();
                st.site_scope = *site_scope;
            }
            Screen::Notice {
                name,
                text_version,
                summary,
                within_grace,
            } => {
                st.page = PageId::Notice;
                st.name = name.clone();
                st.consent_version = text_version.clone();
                st.notice_summary = summary.clone();
                st.within_grace = *within_grace;
            }
            Screen::Enrolling {
                name,
                captured,
                needed,
                guidance,
            } => {
                st.page = PageId::Enrolling;
                st.name = name.clone();
                st.captured = *captured;
                st.needed = *needed;
                st.code = guidance_code(*guidance).into();
            }
            Screen::EnrolDone {
                name,
                enrolled,
                code,
                ..
            } => {
                st.page = PageId::EnrolDone;
                st.name = name.clone();
                st.enrolled = *enrolled;
                st.code = code.clone();
            }
        }
    }

    /// Sets the face box shown over the preview, in fractions of the frame.
    pub fn set_face_box(&mut self, b: Option<[f32; 4]>) {
        self.state.face_box = b;
    }

    /// Sets the clock line.
    pub fn set_clock(&mut self, time: &str, date: &str) {
        self.state.time = time.into();
        self.state.date = date.into();
    }

    /// Sets the offline indicator from the sync status.
    pub fn set_sync(&mut self, online: bool, queued: u64) {
        self.state.online = online;
        self.state.queued = queued;
    }

    /// A digit key on the PIN pad.
    pub fn pin_key(&mut self, digit: &str) {
        if self.state.page == PageId::Pin
            && digit.len() == 1
            && digit.bytes().all(|b| b.is_ascii_digit())
            && self.state.pin.len() < MAX_PIN
        {
            self.state.pin.push_str(digit);
        }
    }

    /// The backspace key; on an empty admin PIN it cancels back to the idle screen.
    pub fn pin_back(&mut self) {
        if self.state.admin_pin && self.state.pin.is_empty() {
            self.state.admin_pin = false;
            self.state.page = PageId::Idle;
            return;
        }
        self.state.pin.pop();
    }

    /// The OK key: the digits go to the core (and are forgotten here).
    pub fn pin_ok(&mut self) -> Option<Command> {
        if self.state.page != PageId::Pin || self.state.pin.is_empty() {
            return None;
        }
        let digits = std::mem::take(&mut self.state.pin);
        Some(Command::Kiosk(if self.state.admin_pin {
            UiInput::AdminPin(digits)
        } else {
            UiInput::Pin(digits)
        }))
    }

    /// A punch-type button on the idle screen: the kiosk holds the pick for the next tap.
    pub fn punch(&mut self, code: &str) -> Option<Command> {
        let p = code.parse::<crate::store::record::Punch>().ok()?;
        (self.state.page == PageId::Idle && !self.state.paused)
            .then_some(Command::Kiosk(UiInput::Punch(p)))
    }

    /// The Admin button on the idle screen: the PIN pad asks for an admin PIN.
    pub fn admin_pin_start(&mut self) {
        if self.state.page == PageId::Idle {
            self.state.page = PageId::Pin;
            self.state.admin_pin = true;
            self.state.name.clear();
            self.state.code = "admin_pin".into();
            self.state.pin.clear();
        }
    }

    /// An answer on the consent page (with the scope chosen) or the new-notice page.
    pub fn consent(&mut self, given: bool, scope: ConsentScope) -> Option<Command> {
        let scope = if self.state.site_scope {
            scope
        } else {
            ConsentScope::Device
        };
        matches!(self.state.page, PageId::Consent | PageId::Notice)
            .then_some(Command::Kiosk(UiInput::Consent(given, scope)))
    }

    /// An admin menu button or a Back button.
    pub fn admin_open(&mut self, page: PageId) -> Option<Command> {
        let in_admin = self.state.page == PageId::Admin || self.state.page.is_admin_page();
        if !in_admin {
            return None;
        }
        self.state.page = page;
        self.state.notice.clear();
        if page == PageId::Admin {
            self.state.rows.clear();
            return None;
        }
        Some(Command::Load(page))
    }

    /// Tapping a roster row: enrol that employee.
    pub fn enrol(&mut self, employee_id: &str) -> Option<Command> {
        (self.state.page == PageId::AdminRoster && !employee_id.is_empty())
            .then(|| Command::Kiosk(UiInput::Enrol(employee_id.into())))
    }

    /// Typing in the roster search field.
    pub fn search(&mut self, text: &str) -> Option<Command> {
        self.state.search = text.into();
        (self.state.page == PageId::AdminRoster).then_some(Command::Load(PageId::AdminRoster))
    }

    /// Leaving admin mode.
    pub fn admin_exit(&mut self) -> Option<Command> {
        let in_admin = self.state.page == PageId::Admin || self.state.page.is_admin_page();
        in_admin.then_some(Command::Kiosk(UiInput::ExitAdmin))
    }

    /// The language button ("toggle") or a language name.
    pub fn set_language(&mut self, which: &str) -> Option<Command> {
        let lang = if which == "toggle" {
            match self.state.language {
                Language::English => Language::SimplifiedChinese,
                Language::SimplifiedChinese => Language::English,
            }
        } else {
            Language::parse(which)?
        };
        self.state.language = lang;
        Some(Command::Language(lang))
    }

    /// The Purge button on the retention page.
    pub fn purge(&mut self) -> Option<Command> {
        (self.state.page == PageId::AdminRetention).then_some(Command::Purge)
    }

    /// Fills the current admin list.
    pub fn set_rows(&mut self, rows: Vec<RowData>, notice: &str) {
        self.state.rows = rows;
        self.state.notice = notice.into();
    }

    /// Tapping a row of the settings page: edit that setting.
    pub fn edit(&mut self, key: &str) -> Option<Command> {
        (self.state.page == PageId::AdminSettings && crate::store::settings::find(key).is_some())
            .then(|| Command::Edit(key.into()))
    }

    /// Shows the editor for `key`, starting from its value in force.
    pub fn start_edit(&mut self, key: &str, value: &str) {
        use crate::store::settings::Kind;
        let Some(s) = crate::store::settings::find(key) else {
            return;
        };
        let (kind, options) = match s.kind {
            Kind::Text { .. } => ("text", Vec::new()),
            Kind::Number { .. } => ("number", Vec::new()),
            Kind::Time => ("time", Vec::new()),
            Kind::Choice(o) => ("choice", o.iter().map(|s| s.to_string()).collect()),
        };
        self.state.page = PageId::AdminEdit;
        self.state.notice.clear();
        self.state.editing = Editing {
            key: key.into(),
            value: value.into(),
            kind: kind.into(),
            options,
            shift: false,
        };
    }

    fn editing(&self) -> Option<&'static crate::store::settings::Setting> {
        (self.state.page == PageId::AdminEdit)
            .then(|| crate::store::settings::find(&self.state.editing.key))
            .flatten()
    }

    /// − (`dir` < 0) or + on a number or time.
    pub fn edit_step(&mut self, dir: i32) {
        if let Some(s) = self.editing() {
            let e = &mut self.state.editing;
            e.value = crate::store::settings::step(s, &e.value, dir);
        }
    }

    /// Picking one of a choice's values.
    pub fn edit_choose(&mut self, value: &str) {
        if self.editing().is_some() && self.state.editing.options.iter().any(|o| o == value) {
            self.state.editing.value = value.into();
        }
    }

    /// A key of the on-screen keyboard: a character, "space", "back" or "shift".
    pub fn edit_key(&mut self, key: &str) {
        let Some(s) = self.editing() else { return };
        let crate::store::settings::Kind::Text { max } = s.kind else {
            return;
        };
        let e = &mut self.state.editing;
        match key {
            "shift" => e.shift = !e.shift,
            "back" => {
                e.value.pop();
            }
            _ => {
                let c = if key == "space" { " " } else { key };
                if c.chars().count() == 1 && e.value.chars().count() < max {
                    if e.shift {
                        e.value.push_str(&c.to_uppercase());
                        e.shift = false;
                    } else {
                        e.value.push_str(c);
                    }
                }
            }
        }
    }

    /// Save on the editor: the value goes to the admin source to be checked and stored.
    pub fn edit_save(&mut self) -> Option<Command> {
        self.editing().map(|_| Command::Save {
            key: self.state.editing.key.clone(),
            value: self.state.editing.value.clone(),
        })
    }

    /// Back on the editor: nothing is stored.
    pub fn edit_cancel(&mut self) -> Option<Command> {
        self.editing()?;
        self.state.page = PageId::AdminSettings;
        self.state.notice.clear();
        Some(Command::Load(PageId::AdminSettings))
    }

    /// The admin source's answer to a save: back to the settings, or the problem shown on the
    /// editor (the value stays, to be corrected).
    pub fn saved(&mut self, result: Result<(), String>) {
        match result {
            Ok(()) => {
                self.state.page = PageId::AdminSettings;
                self.state.notice = "saved".into();
            }
            Err(why) => self.state.notice = why,
        }
    }
}

#[cfg(test)]
mod tests;
