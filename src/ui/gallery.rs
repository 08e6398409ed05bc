//! Every screen in a representative state, for the tests and `clockface ui gallery`.

use std::path::Path;

use super::state::{PageId, RowData, UiState};
use crate::base::config::Language;

/// Panel sizes the kiosk supports (landscape).
pub const SIZES: [(u32, u32); 2] = [(800, 480), (1280, 800)];

/// The screens the README shows (the tests render all of [`scenarios`]).
pub const README_SCREENS: [&str; 15] = [
    "idle",
    "idle-punch",
    "paused",
    "updating",
    "capture",
    "pin",
    "accepted",
    "rejected",
    "offline",
    "admin",
    "consent",
    "notice",
    "enrol-guardian-required",
    "admin-settings",
    "edit-text",
];

fn base() -> UiState {
    UiState {
        site: "Plant 7 — North gate".into(),
        time: "08:57".into(),
        date: "2026-11-30".into(),
        face_available: true,
        camera_live: true,
        online: true,
        needed: 3,
        ..UiState::default()
    }
}

fn rows(list: &[(&str, &str, &str)]) -> Vec<RowData> {
    list.iter()
        .map(|(id, t, d)| RowData {
            id: (*id).into(),
            title: (*t).into(),
            detail: (*d).into(),
        })
        .collect()
}

/// An admin list page with these rows.
fn admin_list(
    name: &'static str,
    page: PageId,
    list: &[(&str, &str, &str)],
) -> (&'static str, UiState) {
    let mut st = base();
    st.page = page;
    st.admin_name = "Site Admin".into();
    st.rows = rows(list);
    (name, st)
}

/// The settings editor for `key` with `value` entered so far.
fn editing(
    name: &'static str,
    key: &str,
    value: &str,
    kind: &str,
    options: &[&str],
) -> (&'static str, UiState) {
    let mut st = base();
    st.page = PageId::AdminEdit;
    st.admin_name = "Site Admin".into();
    st.editing = super::state::Editing {
        key: key.into(),
        value: value.into(),
        kind: kind.into(),
        options: options.iter().map(|o| o.to_string()).collect(),
        shift: false,
    };
    (name, st)
}

/// (name, state) of every screen worth looking at. Names are fictional.
pub fn scenarios() -> Vec<(&'static str, UiState)> {
    let s = base;
    let with = |f: &dyn Fn(&mut UiState)| {
        let mut st = s();
        f(&mut st);
        st
    };
    vec![
        ("idle", s()),
        (
            "offline",
            with(&|st| {
                st.online = false;
                st.queued = 37;
            }),
        ),
        (
            "idle-punch",
            with(&|st| {
                st.punches = [
                    "in",
                    "out",
                    "break_out",
                    "break_in",
                    "overtime_in",
                    "overtime_out",
                ]
                .map(String::from)
                .to_vec();
                st.chosen_punch = "break_out".into();
            }),
        ),
        (
            "paused",
            with(&|st| {
                st.paused = true;
                st.paused_seconds = 287;
            }),
        ),
        (
            "updating",
            with(&|st| {
                st.paused = true;
                st.updating = true;
            }),
        ),
        (
            "accepted-break",
            with(&|st| {
                st.page = PageId::Accepted;
                st.name = "Alex Morgan".into();
                st.direction = "break_out".into();
            }),
        ),
        ("camera-lost", with(&|st| st.camera_live = false)),
        ("face-unavailable", with(&|st| st.face_available = false)),
        (
            "capture",
            with(&|st| {
                st.page = PageId::Capture;
                st.name = "Alex Morgan".into();
                st.code = "hold_still".into();
                st.face_box = Some([0.36, 0.22, 0.28, 0.42]);
            }),
        ),
        (
            "challenge",
            with(&|st| {
                st.page = PageId::Challenge;
                st.name = "Alex Morgan".into();
                st.code = "turn_left".into();
                st.face_box = Some([0.36, 0.22, 0.28, 0.42]);
            }),
        ),
        (
            "pin",
            with(&|st| {
                st.page = PageId::Pin;
                st.name = "Jo Kim".into();
                st.code = "no_face_enrolment".into();
                st.pin = "482".into();
            }),
        ),
        (
            "pin-wrong",
            with(&|st| {
                st.page = PageId::Pin;
                st.name = "Jo Kim".into();
                st.code = "pin_wrong".into();
            }),
        ),
        (
            "accepted",
            with(&|st| {
                st.page = PageId::Accepted;
                st.name = "Alex Morgan".into();
                st.direction = "in".into();
            }),
        ),
        (
            "rejected",
            with(&|st| {
                st.page = PageId::Rejected;
                st.name = "Sam Rivera".into();
                st.code = "face_mismatch".into();
            }),
        ),
        (
            "already",
            with(&|st| {
                st.page = PageId::Already;
                st.name = "Alex Morgan".into();
                st.minutes_ago = 1;
            }),
        ),
        (
            "admin",
            with(&|st| {
                st.page = PageId::Admin;
                st.admin_name = "Site Admin".into();
            }),
        ),
        (
            "consent",
            with(&|st| {
                st.page = PageId::Consent;
                st.name = "Sam Rivera".into();
                st.consent_version = "2026-01".into();
                st.site_scope = true;
            }),
        ),
        (
            "consent-device-only",
            with(&|st| {
                st.page = PageId::Consent;
                st.name = "Sam Rivera".into();
                st.consent_version = "2026-01".into();
                st.site_scope = false;
            }),
        ),
        (
            "notice",
            with(&|st| {
                st.page = PageId::Notice;
                st.name = "Alex Morgan".into();
                st.consent_version = "2026-06".into();
                st.notice_summary = "Templates may now be used at every door of the site you chose; retention after leaving is 30 days instead of 90.".into();
                st.within_grace = true;
            }),
        ),
        (
            "notice-expired",
            with(&|st| {
                st.page = PageId::Notice;
                st.name = "Alex Morgan".into();
                st.consent_version = "2026-06".into();
                st.within_grace = false;
            }),
        ),
        (
            "pin-consent-declined",
            with(&|st| {
                st.page = PageId::Pin;
                st.name = "Alex Morgan".into();
                st.code = "consent_declined".into();
            }),
        ),
        (
            "enrol-guardian-required",
            with(&|st| {
                st.page = PageId::EnrolDone;
                st.name = "Jo Kim".into();
                st.enrolled = false;
                st.code = "guardian_required".into();
            }),
        ),
        (
            "enrolling",
            with(&|st| {
                st.page = PageId::Enrolling;
                st.name = "Sam Rivera".into();
                st.captured = 2;
                st.code = "hold_still".into();
            }),
        ),
        (
            "enrol-done",
            with(&|st| {
                st.page = PageId::EnrolDone;
                st.name = "Sam Rivera".into();
                st.enrolled = true;
                st.code = "enrolled".into();
            }),
        ),
        admin_list(
            "admin-roster",
            PageId::AdminRoster,
            &[
                ("E1001", "Alex Morgan", "E1001 · face ✔ (3)"),
                ("E1003", "Jo Kim", "E1003"),
                ("E1002", "Sam Rivera", "E1002 · face ✔ (3)"),
                ("E1004", "王小明", "E1004 · consent ✔"),
            ],
        ),
        admin_list(
            "admin-sync",
            PageId::AdminSync,
            &[
                ("", "backend", "https://hub.example.com:8443"),
                ("", "queued_checkins", "37"),
                ("", "queued_audit", "4"),
                ("", "refused", "0"),
                ("", "last_success", "2026-11-30T08:41:07.112Z"),
                ("", "last_error", "backend unreachable: connection refused"),
            ],
        ),
        admin_list(
            "admin-settings",
            PageId::AdminSettings,
            &[
                ("device.name", "device_name", "North gate kiosk"),
                ("device.site", "site", "Plant 7 — North gate"),
                ("sync.url", "backend_url", "https://hub.example.com:8443"),
                ("gpio.relay_ms", "relay", "1500 ms"),
                ("vision.match_threshold", "match_threshold", "0.50"),
                ("policy.direction", "direction", "schedule"),
            ],
        ),
        editing(
            "edit-text",
            "sync.url",
            "https://hub.example.com:84",
            "text",
            &[],
        ),
        editing("edit-number", "gpio.relay_ms", "2100", "number", &[]),
        editing(
            "edit-choice",
            "policy.direction",
            "schedule",
            "choice",
            &["in", "out", "auto", "schedule"],
        ),
        {
            // A refused value: the validator's own message, the value kept for correcting.
            let (n, mut st) = editing(
                "edit-problem",
                "sync.url",
                "http://hub.example.com",
                "text",
                &[],
            );
            st.notice = "sync.url: \"http://hub.example.com\" uses plain http to a non-loopback host; allowed: https (http only for 127.0.0.1, ::1 or localhost)".into();
            (n, st)
        },
        admin_list(
            "admin-about",
            PageId::AdminAbout,
            &[
                ("", "version", env!("CARGO_PKG_VERSION")),
                ("", "device_id", "01a226b4-07d6-777a-8c93-0cb788021bc1"),
                (
                    "",
                    "public_key",
                    "d814d05b1bd7052ea108ee3febd4c219d90c9ba1240454cbfb753d6c6268bb33",
                ),
                ("", "licence", "GPL-3.0-or-later"),
            ],
        ),
    ]
}

/// The file name of one rendering.
pub fn file_name(screen: &str, lang: Language, (w, h): (u32, u32)) -> String {
    let l = match lang {
        Language::English => "en",
        Language::SimplifiedChinese => "zh",
    };
    format!("{screen}-{l}-{w}x{h}.png")
}

/// Renders `screens` (all when empty) in both languages at `sizes` into `dir`; returns the files.
/// `camera` is a camera view with its face box (as fractions of the view) for the capture
/// pages; without one they show an empty preview.
pub fn render(
    dir: &Path,
    screens: &[&str],
    sizes: &[(u32, u32)],
    camera: Option<(crate::base::frame::Frame, [f32; 4])>,
) -> crate::base::error::Result<Vec<String>> {
    std::fs::create_dir_all(dir).map_err(|e| crate::base::error::Error::io(dir, e))?;
    let mut out = Vec::new();
    for (name, state) in scenarios() {
        if !screens.is_empty() && !screens.contains(&name) {
            continue;
        }
        for &size in sizes {
            for lang in [Language::English, Language::SimplifiedChinese] {
                let mut st = state.clone();
                st.language = lang;
                if let (Some((_, b)), Some(_)) = (&camera, st.face_box) {
                    st.face_box = Some(*b);
                }
                let h = super::headless::Headless::new(size.0, size.1, st, None)?;
                if let Some((frame, _)) = &camera {
                    h.set_preview(frame);
                }
                let f = file_name(name, lang, size);
                h.save_png(&dir.join(&f))?;
                out.push(f);
            }
        }
    }
    Ok(out)
}
