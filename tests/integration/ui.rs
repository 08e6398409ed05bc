//! The touchscreen rendered headless with Slint's software renderer: every screen in both
//! languages and both panel sizes has real content, and taps (pointer events at the buttons'
//! positions) on the PIN pad and the admin buttons drive the controller and change the screen.

use crate::common;

use clockface::base::config::Language;
use clockface::base::protocol::ConsentScope;
use clockface::kiosk::runner::UiInput;
use clockface::ui::controller::Command;
use clockface::ui::gallery::{SIZES, scenarios};
use clockface::ui::headless::Headless;
use clockface::ui::state::PageId;
use i_slint_backend_testing::ElementHandle;

/// The centre of a named element, for a tap.
fn centre(h: &Headless, id: &str) -> (f32, f32) {
    let e = ElementHandle::find_by_element_id(&h.app, id)
        .next()
        .unwrap_or_else(|| panic!("no element {id}"));
    let (p, s) = (e.absolute_position(), e.size());
    assert!(
        s.width >= 48.0 && s.height >= 48.0,
        "{id} is {}×{}: touch targets must be at least 48 px",
        s.width,
        s.height
    );
    (p.x + s.width / 2.0, p.y + s.height / 2.0)
}

fn tap(h: &Headless, id: &str) {
    let (x, y) = centre(h, id);
    h.tap(x, y);
}

/// Texts on screen (the accessible label of every Text element), as the renderer drew them.
fn texts(h: &Headless) -> Vec<String> {
    ElementHandle::find_by_element_type_name(&h.app, "Text")
        .filter_map(|e| e.accessible_label())
        .map(|s| s.to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Share of pixels that differ clearly from the background colour.
fn ink(img: &image::RgbaImage) -> f64 {
    let bg = image::Rgba([0x10, 0x14, 0x18, 0xff]);
    let n = img
        .pixels()
        .filter(|p| {
            p.0.iter()
                .zip(bg.0)
                .take(3)
                .any(|(a, b)| (i32::from(*a) - b).abs() > 40)
        })
        .count();
    n as f64 / (img.width() * img.height()) as f64
}

#[test]
fn every_screen_renders_real_content_in_both_languages_and_sizes() {
    let out = std::env::var_os("CLOCKFACE_UI_PNG").map(std::path::PathBuf::from);
    for (name, state) in scenarios() {
        for size in SIZES {
            let mut seen = Vec::new();
            for lang in [Language::English, Language::SimplifiedChinese] {
                let mut st = state.clone();
                st.language = lang;
                let h = Headless::new(size.0, size.1, st, None).unwrap();
                let img = h.render().unwrap();
                assert_eq!((img.width(), img.height()), size);
                let share = ink(&img);
                assert!(
                    share > 0.01,
                    "{name} {lang:?} {size:?} looks blank ({share:.4} of pixels drawn)"
                );
                let t = texts(&h);
                assert!(!t.is_empty(), "{name} {lang:?}: no text");
                if lang == Language::SimplifiedChinese {
                    // Something on every screen is translated: a CJK character is shown.
                    assert!(
                        t.iter()
                            .any(|s| s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))),
                        "{name} {size:?}: nothing translated in {t:?}"
                    );
                }
                if let Some(dir) = &out {
                    std::fs::create_dir_all(dir).unwrap();
                    h.save_png(&dir.join(clockface::ui::gallery::file_name(name, lang, size)))
                        .unwrap();
                }
                seen.push((t, img));
            }
            assert_ne!(
                seen[0].0, seen[1].0,
                "{name}: the languages show the same text"
            );
            assert_ne!(
                seen[0].1, seen[1].1,
                "{name}: the languages render the same pixels"
            );
        }
    }
}

#[test]
fn key_text_is_on_the_screens_in_each_language() {
    let find = |name: &str| scenarios().into_iter().find(|(n, _)| *n == name).unwrap().1;
    for (name, lang, want) in [
        (
            "idle",
            Language::English,
            "Tap your badge or look at the camera",
        ),
        ("idle", Language::SimplifiedChinese, "请刷工卡或看摄像头"),
        (
            "offline",
            Language::English,
            "Offline: 37 check-ins saved on this kiosk",
        ),
        (
            "offline",
            Language::SimplifiedChinese,
            "离线：37 条打卡记录已保存在本机",
        ),
        (
            "camera-lost",
            Language::English,
            "Camera unavailable: use your badge and PIN",
        ),
        (
            "face-unavailable",
            Language::SimplifiedChinese,
            "人脸打卡暂不可用：请使用工卡和 PIN 码",
        ),
        (
            "rejected",
            Language::English,
            "Face does not match the badge",
        ),
        ("rejected", Language::SimplifiedChinese, "人脸与工卡不匹配"),
        (
            "accepted",
            Language::SimplifiedChinese,
            "08:57 上班打卡成功",
        ),
        (
            "already",
            Language::English,
            "Already checked in 1 min ago: nothing new was recorded",
        ),
        ("capture", Language::SimplifiedChinese, "请保持不动"),
        (
            "challenge",
            Language::English,
            "Turn your head slightly to the left",
        ),
        (
            "pin",
            Language::SimplifiedChinese,
            "未录入人脸：请输入 PIN 码",
        ),
        ("admin-sync", Language::SimplifiedChinese, "待同步打卡记录"),
        (
            "consent",
            Language::English,
            "I agree: every door of the site",
        ),
        (
            "consent",
            Language::SimplifiedChinese,
            "我同意：本园区所有门",
        ),
        ("notice", Language::English, "I agree to the new version"),
        ("notice", Language::SimplifiedChinese, "我同意新版本"),
        (
            "notice-expired",
            Language::English,
            "Consent text version 2026-06. Your earlier consent has run out: without an answer, use your PIN.",
        ),
        (
            "pin-consent-declined",
            Language::SimplifiedChinese,
            "已拒绝授权，人脸数据已删除：请输入 PIN 码",
        ),
        (
            "enrol-guardian-required",
            Language::English,
            "Not enrolled: this person is a minor, and a parent's or guardian's consent must be recorded first. Badge and PIN work meanwhile.",
        ),
    ] {
        let mut st = find(name);
        st.language = lang;
        let h = Headless::new(800, 480, st, None).unwrap();
        let t = texts(&h);
        assert!(
            t.iter().any(|s| s == want),
            "{name} {lang:?}: {want:?} not in {t:?}"
        );
    }
}

#[test]
fn the_site_scope_is_offered_only_where_the_policy_allows_it() {
    let find = |name: &str| scenarios().into_iter().find(|(n, _)| *n == name).unwrap().1;
    for (name, offered) in [("consent", true), ("consent-device-only", false)] {
        for lang in [Language::English, Language::SimplifiedChinese] {
            let mut st = find(name);
            st.language = lang;
            let t = texts(&Headless::new(800, 480, st, None).unwrap());
            let site = t
                .iter()
                .any(|s| s == "I agree: every door of the site" || s == "我同意：本园区所有门");
            assert_eq!(site, offered, "{name} {lang:?}: {t:?}");
        }
    }
}

fn pin_pad() -> Headless {
    let st = scenarios()
        .into_iter()
        .find(|(n, _)| *n == "pin-wrong")
        .unwrap()
        .1;
    Headless::new(800, 480, st, None).unwrap()
}

#[test]
fn taps_on_the_pin_pad_type_digits_and_send_them() {
    let h = pin_pad();
    let before = h.render().unwrap();
    for key in ["key4", "key8", "key2", "key9", "key9"] {
        tap(&h, &format!("PinPage::{key}"));
    }
    tap(&h, "PinPage::back");
    tap(&h, "PinPage::key1");
    assert_eq!(h.controller.borrow().state.pin, "48291");
    // The dots changed on screen.
    assert_ne!(h.render().unwrap(), before);
    tap(&h, "PinPage::ok");
    assert_eq!(
        h.commands.borrow().as_slice(),
        &[Command::Kiosk(UiInput::Pin("48291".into()))]
    );
    assert!(h.controller.borrow().state.pin.is_empty());
    // Larger panel: the same keys, scaled, still hit.
    let st = h.controller.borrow().state.clone();
    let big = Headless::new(1280, 800, st, None).unwrap();
    tap(&big, "PinPage::key7");
    assert_eq!(big.controller.borrow().state.pin, "7");
}

#[test]
fn the_admin_button_asks_for_an_admin_pin() {
    let st = scenarios()
        .into_iter()
        .find(|(n, _)| *n == "idle")
        .unwrap()
        .1;
    let h = Headless::new(800, 480, st, None).unwrap();
    tap(&h, "IdlePage::admin");
    assert_eq!(h.controller.borrow().state.page, PageId::Pin);
    assert!(
        texts(&h)
            .iter()
            .any(|s| s.starts_with("Admin mode: enter your admin PIN"))
    );
    for key in ["key7", "key3", "key9", "key2", "key1", "key4"] {
        tap(&h, &format!("PinPage::{key}"));
    }
    tap(&h, "PinPage::ok");
    assert_eq!(
        h.commands.borrow().as_slice(),
        &[Command::Kiosk(UiInput::AdminPin("739214".into()))]
    );
}

#[test]
fn admin_buttons_open_pages_with_store_data_switch_language_and_exit() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = common::open(dir.path());
    store
        .upsert_employee(
            "A1",
            &clockface::store::roster::Employee {
                id: "E7".into(),
                display_name: "Grace Hopper".into(),
                active: true,
                is_admin: false,
            },
        )
        .unwrap();
    let mut config = clockface::base::config::Config::default();
    config.store.data_dir = dir.path().to_owned();
    let admin = clockface::ui::admin::StoreAdmin {
        store,
        config,
        changed: None,
    };
    let st = scenarios()
        .into_iter()
        .find(|(n, _)| *n == "admin")
        .unwrap()
        .1;
    let h = Headless::new(800, 480, st, Some(Box::new(admin))).unwrap();

    tap(&h, "AdminPage::sync");
    assert_eq!(h.controller.borrow().state.page, PageId::AdminSync);
    let t = texts(&h);
    assert!(t.iter().any(|s| s == "Check-ins waiting"), "{t:?}");
    assert!(t.iter().any(|s| s == "not paired"), "{t:?}");

    tap(&h, "ListPage::back");
    assert_eq!(h.controller.borrow().state.page, PageId::Admin);
    tap(&h, "AdminPage::roster");
    assert!(texts(&h).iter().any(|s| s == "Grace Hopper"));
    let rows = h.controller.borrow().state.rows.clone();
    assert_eq!(rows[0].id, "E7");

    tap(&h, "ListPage::back");
    tap(&h, "AdminPage::language");
    assert_eq!(
        h.controller.borrow().state.language,
        Language::SimplifiedChinese
    );
    assert!(
        texts(&h).iter().any(|s| s == "退出管理模式"),
        "{:?}",
        texts(&h)
    );
    tap(&h, "AdminPage::language");
    assert!(texts(&h).iter().any(|s| s == "Exit admin mode"));

    tap(&h, "AdminPage::retention");
    tap(&h, "ListPage::purge");
    assert_eq!(h.controller.borrow().state.notice, "purged");

    tap(&h, "ListPage::back");
    tap(&h, "AdminPage::exit");
    let cmds = h.commands.borrow();
    assert_eq!(cmds.last(), Some(&Command::Kiosk(UiInput::ExitAdmin)));
    assert!(cmds.contains(&Command::Load(PageId::AdminSync)));
    assert!(cmds.contains(&Command::Purge));
}

#[test]
fn consent_buttons_answer_the_core() {
    let st = scenarios()
        .into_iter()
        .find(|(n, _)| *n == "consent")
        .unwrap()
        .1;
    let h = Headless::new(1280, 800, st, None).unwrap();
    tap(&h, "ConsentPage::decline");
    tap(&h, "ConsentPage::accept");
    assert_eq!(
        h.commands.borrow().as_slice(),
        &[
            Command::Kiosk(UiInput::Consent(false, ConsentScope::Device)),
            Command::Kiosk(UiInput::Consent(true, ConsentScope::Device))
        ]
    );
}

/// The keys of the on-screen keyboard in the order they are laid out (ui/pages/admin.slint).
const KEYS: [&str; 41] = [
    "1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "-", "back", "q", "w", "e", "r", "t", "y",
    "u", "i", "o", "p", "/", "a", "s", "d", "f", "g", "h", "j", "k", "l", ":", "_", "z", "x", "c",
    "v", "b", "n", "m",
];

/// Taps one key of the on-screen keyboard by name ("a", ":", "back", ...).
fn press(h: &Headless, key: &str) {
    let mut keys = Vec::new();
    for row in ["digits", "upper", "middle", "lower"] {
        keys.extend(ElementHandle::find_by_element_id(
            &h.app,
            &format!("Keyboard::{row}"),
        ));
    }
    let i = KEYS
        .iter()
        .position(|k| *k == key)
        .or_else(|| {
            [".", "@"]
                .iter()
                .position(|k| *k == key)
                .map(|i| KEYS.len() + i)
        })
        .unwrap_or_else(|| panic!("no key {key:?}"));
    let (p, size) = (keys[i].absolute_position(), keys[i].size());
    assert!(
        size.width >= 48.0 && size.height >= 48.0,
        "key {key:?} is too small"
    );
    h.tap(p.x + size.width / 2.0, p.y + size.height / 2.0);
}

fn type_on_screen(h: &Headless, text: &str) {
    for ch in text.chars() {
        press(h, &ch.to_string());
    }
}

fn tap_row(h: &Headless, key: &str) {
    let i = h
        .controller
        .borrow()
        .state
        .rows
        .iter()
        .position(|r| r.id == key)
        .unwrap_or_else(|| panic!("no row {key}"));
    let rows: Vec<_> = ElementHandle::find_by_element_id(&h.app, "ListPage::row-touch").collect();
    let (p, s) = (rows[i].absolute_position(), rows[i].size());
    h.tap(p.x + s.width / 2.0, p.y + s.height / 2.0);
}

#[test]
fn settings_are_changed_by_taps_checked_stored_audited_and_announced() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = common::open(dir.path());
    let mut config = clockface::base::config::Config::default();
    config.store.data_dir = dir.path().to_owned();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let admin = clockface::ui::admin::StoreAdmin {
        store,
        config: config.clone(),
        changed: Some(tx),
    };
    let mut st = scenarios()
        .into_iter()
        .find(|(n, _)| *n == "admin")
        .unwrap()
        .1;
    st.admin_id = "A0001".into();
    let h = Headless::new(800, 480, st, Some(Box::new(admin))).unwrap();
    tap(&h, "AdminPage::settings");
    assert_eq!(h.controller.borrow().state.page, PageId::AdminSettings);
    assert!(texts(&h).iter().any(|s| s == "1500 ms"), "{:?}", texts(&h));

    // The door relay time: + three times, − once, save.
    tap_row(&h, "gpio.relay_ms");
    assert_eq!(h.controller.borrow().state.page, PageId::AdminEdit);
    assert_eq!(h.controller.borrow().state.editing.value, "1500");
    for _ in 0..3 {
        tap(&h, "EditPage::plus");
    }
    tap(&h, "EditPage::minus");
    assert!(texts(&h).iter().any(|s| s == "1700 ms"), "{:?}", texts(&h));
    tap(&h, "EditPage::save");
    assert_eq!(h.controller.borrow().state.page, PageId::AdminSettings);
    assert!(texts(&h).iter().any(|s| s == "Saved and in effect."));
    assert!(texts(&h).iter().any(|s| s == "1700 ms"), "{:?}", texts(&h));
    assert_eq!(rx.try_recv().ok(), Some(UiInput::SettingsChanged));

    // The backend address typed on the keyboard; plain http to a remote host is refused with
    // the validator's words, on the editor, and nothing is stored or announced.
    tap_row(&h, "sync.url");
    type_on_screen(&h, "http://hub.example.com");
    assert_eq!(
        h.controller.borrow().state.editing.value,
        "http://hub.example.com"
    );
    tap(&h, "EditPage::save");
    let st = h.controller.borrow().state.clone();
    assert_eq!(st.page, PageId::AdminEdit);
    assert!(
        st.notice.contains("sync.url") && st.notice.contains("plain http"),
        "{}",
        st.notice
    );
    assert!(
        texts(&h).iter().any(|s| s.contains("plain http")),
        "{:?}",
        texts(&h)
    );
    assert!(rx.try_recv().is_err());
    // Corrected: erased with the backspace key up to "http", then "s://…:8443" typed: stored.
    for _ in 0.."://hub.example.com".len() {
        press(&h, "back");
    }
    assert_eq!(h.controller.borrow().state.editing.value, "http");
    type_on_screen(&h, "s://hub.example.com:8443");
    tap(&h, "EditPage::save");
    assert_eq!(h.controller.borrow().state.page, PageId::AdminSettings);
    assert_eq!(rx.try_recv().ok(), Some(UiInput::SettingsChanged));

    // In the store: in force after a restart, and audited with the admin as actor.
    let (store, _) = common::open(dir.path());
    let eff = clockface::store::settings::effective(&config, &store).unwrap();
    assert_eq!(eff.gpio.relay_ms, 1700);
    assert_eq!(eff.sync.url, "https://hub.example.com:8443");
    let audit: Vec<_> = store
        .recent_audit(10)
        .unwrap()
        .into_iter()
        .filter(|a| a.action == "setting_changed")
        .map(|a| (a.actor, a.subject))
        .collect();
    assert_eq!(
        audit,
        [
            ("A0001".to_string(), "sync.url".to_string()),
            ("A0001".to_string(), "gpio.relay_ms".to_string())
        ]
    );
}
