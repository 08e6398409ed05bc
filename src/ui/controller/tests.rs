//! The controller driven by reports and touches, without Slint.
use super::*;
use crate::store::record::Punch;

fn pin_screen(c: &mut Controller) {
    c.on_report(&Report::Screen(Screen::PinPad {
        name: "Alex".into(),
        reason: "no face enrolment".into(),
        code: "no_face_enrolment".into(),
    }));
}

#[test]
fn pin_pad_collects_digits_and_sends_them_once() {
    let mut c = Controller::new("HQ", Language::English);
    c.pin_key("4"); // not on the PIN page: ignored
    assert!(c.state.pin.is_empty());
    pin_screen(&mut c);
    assert_eq!(
        (c.state.page, c.state.code.as_str()),
        (PageId::Pin, "no_face_enrolment")
    );
    for d in ["4", "8", "x", "2", "99", "9"] {
        c.pin_key(d);
    }
    assert_eq!(c.state.pin, "4829");
    c.pin_back();
    c.pin_key("1");
    assert_eq!(
        c.pin_ok(),
        Some(Command::Kiosk(UiInput::Pin("4821".into())))
    );
    assert!(c.state.pin.is_empty(), "digits are not kept after OK");
    assert_eq!(c.pin_ok(), None, "nothing to send twice");
    for _ in 0..20 {
        c.pin_key("7");
    }
    assert_eq!(c.state.pin.len(), MAX_PIN);
    // A new screen clears what was typed.
    c.on_report(&Report::Screen(Screen::Idle {
        face_available: true,
        punches: Vec::new(),
        chosen: None,
    }));
    assert!(c.state.pin.is_empty());
}

#[test]
fn screens_become_pages_with_codes_not_sentences() {
    let mut c = Controller::new("HQ", Language::English);
    c.on_report(&Report::Screen(Screen::Rejected {
        name: Some("Sam".into()),
        reason: "face does not match the badge".into(),
        code: "face_mismatch".into(),
    }));
    assert_eq!(
        (c.state.page, c.state.code.as_str(), c.state.name.as_str()),
        (PageId::Rejected, "face_mismatch", "Sam")
    );
    c.on_report(&Report::Screen(Screen::Challenge {
        name: "Sam".into(),
        prompt: "turn your head slightly right".into(),
    }));
    assert_eq!(c.state.code, "turn_right");
    c.on_report(&Report::Screen(Screen::Capture {
        name: "Sam".into(),
        guidance: Guidance::TooFar,
    }));
    assert_eq!(
        (c.state.page, c.state.code.as_str()),
        (PageId::Capture, "too_far")
    );
    c.on_report(&Report::Screen(Screen::Accepted {
        name: "Sam".into(),
        punch: Punch::Out,
    }));
    assert_eq!(
        (c.state.page, c.state.direction.as_str()),
        (PageId::Accepted, "out")
    );
    c.on_report(&Report::Screen(Screen::EnrolDone {
        name: "Jo".into(),
        enrolled: false,
        message: "consent declined: badge + PIN stays available".into(),
        code: "declined".into(),
    }));
    assert_eq!(
        (c.state.page, c.state.code.as_str()),
        (PageId::EnrolDone, "declined")
    );
    c.on_report(&Report::Camera(CameraStatus::Lost {
        reason: "unplugged".into(),
    }));
    assert!(!c.state.camera_live);
}

#[test]
fn admin_buttons_only_work_in_admin_mode() {
    let mut c = Controller::new("HQ", Language::English);
    assert_eq!(c.admin_open(PageId::AdminSync), None);
    assert_eq!(c.admin_exit(), None);
    c.on_report(&Report::Screen(Screen::Admin {
        name: "Site Admin".into(),
        id: "A0001".into(),
    }));
    assert_eq!(
        c.admin_open(PageId::AdminSync),
        Some(Command::Load(PageId::AdminSync))
    );
    assert_eq!(c.state.page, PageId::AdminSync);
    assert_eq!(c.enrol("E1"), None, "enrol only from the roster page");
    assert_eq!(
        c.admin_open(PageId::AdminRoster),
        Some(Command::Load(PageId::AdminRoster))
    );
    assert_eq!(c.search("ale"), Some(Command::Load(PageId::AdminRoster)));
    assert_eq!(c.state.search, "ale");
    assert_eq!(
        c.enrol("E1"),
        Some(Command::Kiosk(UiInput::Enrol("E1".into())))
    );
    assert_eq!(c.purge(), None);
    assert_eq!(
        c.admin_open(PageId::AdminRetention),
        Some(Command::Load(PageId::AdminRetention))
    );
    assert_eq!(c.purge(), Some(Command::Purge));
    assert_eq!(c.admin_open(PageId::Admin), None);
    assert_eq!(c.state.page, PageId::Admin);
    assert_eq!(c.admin_exit(), Some(Command::Kiosk(UiInput::ExitAdmin)));
}

#[test]
fn the_admin_pin_goes_to_the_core_as_an_admin_pin() {
    let mut c = Controller::new("HQ", Language::English);
    c.admin_pin_start();
    assert_eq!(
        (c.state.page, c.state.code.as_str()),
        (PageId::Pin, "admin_pin")
    );
    c.pin_back();
    assert_eq!(c.state.page, PageId::Idle, "backspace on nothing cancels");
    c.admin_pin_start();
    for d in ["7", "3", "9", "2"] {
        c.pin_key(d);
    }
    assert_eq!(
        c.pin_ok(),
        Some(Command::Kiosk(UiInput::AdminPin("7392".into())))
    );
    // The core answers with a screen; the pad is an employee PIN pad again after that.
    pin_screen(&mut c);
    c.pin_key("1");
    assert_eq!(c.pin_ok(), Some(Command::Kiosk(UiInput::Pin("1".into()))));
}

#[test]
fn language_toggles_and_parses() {
    let mut c = Controller::new("HQ", Language::English);
    assert_eq!(
        c.set_language("toggle"),
        Some(Command::Language(Language::SimplifiedChinese))
    );
    assert_eq!(c.state.language.slint_name(), "zh_CN");
    assert_eq!(
        c.set_language("en"),
        Some(Command::Language(Language::English))
    );
    assert_eq!(c.set_language("klingon"), None);
    assert_eq!(c.state.language, Language::English);
}
