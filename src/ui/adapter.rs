//! Between the controller and the Slint globals: [`publish`] writes a [`UiState`] into the
//! `Kiosk` global; [`bind`] routes the global's callbacks to the controller and hands the
//! resulting commands to the caller.

use std::cell::RefCell;
use std::rc::Rc;

use slint::{ComponentHandle, Model, ModelRc, SharedString, VecModel};

use super::admin::AdminSource;
use super::controller::{Command, Controller};
use super::state::{PageId, UiState};
use super::{AppWindow, Kiosk, Page, Row};
use crate::base::config::Language;
use crate::base::protocol::ConsentScope;

fn page(p: PageId) -> Page {
    match p {
        PageId::Idle => Page::Idle,
        PageId::Capture => Page::Capture,
        PageId::Challenge => Page::Challenge,
        PageId::Pin => Page::Pin,
        PageId::Accepted => Page::Accepted,
        PageId::Rejected => Page::Rejected,
        PageId::Already => Page::Already,
        PageId::Admin => Page::Admin,
        PageId::Consent => Page::Consent,
        PageId::Notice => Page::Notice,
        PageId::Enrolling => Page::Enrolling,
        PageId::EnrolDone => Page::EnrolDone,
        PageId::AdminRoster => Page::AdminRoster,
        PageId::AdminSync => Page::AdminSync,
        PageId::AdminAudit => Page::AdminAudit,
        PageId::AdminRetention => Page::AdminRetention,
        PageId::AdminSettings => Page::AdminSettings,
        PageId::AdminAbout => Page::AdminAbout,
        PageId::AdminEdit => Page::AdminEdit,
    }
}

fn page_id(p: Page) -> PageId {
    match p {
        Page::Idle => PageId::Idle,
        Page::Capture => PageId::Capture,
        Page::Challenge => PageId::Challenge,
        Page::Pin => PageId::Pin,
        Page::Accepted => PageId::Accepted,
        Page::Rejected => PageId::Rejected,
        Page::Already => PageId::Already,
        Page::Admin => PageId::Admin,
        Page::Consent => PageId::Consent,
        Page::Notice => PageId::Notice,
        Page::Enrolling => PageId::Enrolling,
        Page::EnrolDone => PageId::EnrolDone,
        Page::AdminRoster => PageId::AdminRoster,
        Page::AdminSync => PageId::AdminSync,
        Page::AdminAudit => PageId::AdminAudit,
        Page::AdminRetention => PageId::AdminRetention,
        Page::AdminSettings => PageId::AdminSettings,
        Page::AdminAbout => PageId::AdminAbout,
        Page::AdminEdit => PageId::AdminEdit,
    }
}

/// Selects the screen language. Slint otherwise follows `LANG`, so it is always set.
pub fn select_language(l: Language) {
    if let Err(e) = slint::select_bundled_translation(l.slint_name()) {
        tracing::warn!(error = %e, "cannot switch the screen language");
    }
}

/// Shows a camera frame (RGB) behind the face box on the capture pages.
pub fn set_preview(app: &AppWindow, frame: &crate::base::frame::Frame) {
    let buf = slint::SharedPixelBuffer::<slint::Rgb8Pixel>::clone_from_slice(
        &frame.data,
        frame.width,
        frame.height,
    );
    app.global::<Kiosk>()
        .set_preview(slint::Image::from_rgb8(buf));
}

/// Writes the whole state into the `Kiosk` global.
pub fn publish(app: &AppWindow, s: &UiState) {
    let k = app.global::<Kiosk>();
    let text = |v: &str| SharedString::from(v);
    k.set_page(page(s.page));
    k.set_site(text(&s.site));
    k.set_time(text(&s.time));
    k.set_date(text(&s.date));
    k.set_face_available(s.face_available);
    k.set_camera_live(s.camera_live);
    k.set_online(s.online);
    k.set_queued(s.queued.min(i32::MAX as u64) as i32);
    k.set_name(text(&s.name));
    k.set_code(text(&s.code));
    k.set_direction(text(&s.direction));
    let punches: Vec<SharedString> = s.punches.iter().map(|p| text(p)).collect();
    let current = k.get_punches();
    if current.row_count() != punches.len() || current.iter().zip(&punches).any(|(a, b)| a != *b) {
        k.set_punches(ModelRc::new(VecModel::from(punches)));
    }
    k.set_chosen_punch(text(&s.chosen_punch));
    k.set_paused(s.paused);
    k.set_updating(s.updating);
    k.set_paused_seconds(s.paused_seconds.min(i32::MAX as u32) as i32);
    k.set_minutes_ago(s.minutes_ago.min(i32::MAX as u64) as i32);
    k.set_pin_length(s.pin.len() as i32);
    k.set_face_box_visible(s.face_box.is_some());
    if let Some([x, y, w, h]) = s.face_box {
        k.set_face_x(x);
        k.set_face_y(y);
        k.set_face_w(w);
        k.set_face_h(h);
    }
    k.set_captured(s.captured as i32);
    k.set_needed(s.needed as i32);
    k.set_enrolled(s.enrolled);
    k.set_consent_version(text(&s.consent_version));
    k.set_site_scope(s.site_scope);
    k.set_notice_summary(text(&s.notice_summary));
    k.set_within_grace(s.within_grace);
    k.set_admin_name(text(&s.admin_name));
    k.set_search_text(text(&s.search));
    k.set_notice(text(&s.notice));
    let e = &s.editing;
    k.set_edit_setting(text(&e.key));
    k.set_edit_label(text(super::admin::label_code(&e.key)));
    k.set_edit_kind(text(&e.kind));
    k.set_edit_value(text(&e.value));
    k.set_edit_shift(e.shift);
    let options: Vec<SharedString> = e.options.iter().map(|o| text(o)).collect();
    let current = k.get_edit_options();
    if current.row_count() != options.len() || current.iter().zip(&options).any(|(a, b)| a != *b) {
        k.set_edit_options(ModelRc::new(VecModel::from(options)));
    }
    let rows: Vec<Row> = s
        .rows
        .iter()
        .map(|r| Row {
            id: text(&r.id),
            title: text(&r.title),
            detail: text(&r.detail),
        })
        .collect();
    let current = k.get_rows();
    let same = current.row_count() == rows.len() && current.iter().zip(&rows).all(|(a, b)| &a == b);
    if !same {
        k.set_rows(ModelRc::new(VecModel::from(rows)));
    }
}

/// Routes the `Kiosk` callbacks to `controller`: after each touch the state is published again
/// and any command goes to `on_command` (which may change the controller and publish too).
pub fn bind(app: &AppWindow, controller: Rc<RefCell<Controller>>, on_command: Rc<dyn Fn(Command)>) {
    let k = app.global::<Kiosk>();
    let weak = app.as_weak();
    let ctl = controller.clone();
    let run = Rc::new(move |f: &dyn Fn(&mut Controller) -> Option<Command>| {
        let cmd = f(&mut ctl.borrow_mut());
        if let Some(app) = weak.upgrade() {
            publish(&app, &ctl.borrow().state);
        }
        if let Some(c) = cmd {
            on_command(c);
        }
    });
    let r = run.clone();
    k.on_pin_key(move |d| {
        r(&|c| {
            c.pin_key(&d);
            None
        })
    });
    let r = run.clone();
    k.on_admin_pin(move || {
        r(&|c| {
            c.admin_pin_start();
            None
        })
    });
    let r = run.clone();
    k.on_punch(move |p| r(&|c| c.punch(&p)));
    let r = run.clone();
    k.on_pin_back(move || {
        r(&|c| {
            c.pin_back();
            None
        })
    });
    let r = run.clone();
    k.on_pin_ok(move || r(&|c| c.pin_ok()));
    let r = run.clone();
    k.on_consent(move |given, site| {
        let scope = if site {
            ConsentScope::Site
        } else {
            ConsentScope::Device
        };
        r(&|c| c.consent(given, scope))
    });
    let r = run.clone();
    k.on_admin_open(move |p| r(&|c| c.admin_open(page_id(p))));
    let r = run.clone();
    k.on_admin_exit(move || r(&|c| c.admin_exit()));
    let r = run.clone();
    k.on_enrol(move |id| r(&|c| c.enrol(&id)));
    let r = run.clone();
    k.on_search(move |t| r(&|c| c.search(&t)));
    let r = run.clone();
    k.on_set_language(move |l| r(&|c| c.set_language(&l)));
    let r = run.clone();
    k.on_purge_now(move || r(&|c| c.purge()));
    let r = run.clone();
    k.on_edit(move |key| r(&|c| c.edit(&key)));
    let r = run.clone();
    k.on_edit_step(move |dir| {
        r(&|c| {
            c.edit_step(dir);
            None
        })
    });
    let r = run.clone();
    k.on_edit_choose(move |v| {
        r(&|c| {
            c.edit_choose(&v);
            None
        })
    });
    let r = run.clone();
    k.on_edit_type(move |key| {
        r(&|c| {
            c.edit_key(&key);
            None
        })
    });
    let r = run.clone();
    k.on_edit_save(move || r(&|c| c.edit_save()));
    let r = run;
    k.on_edit_cancel(move || r(&|c| c.edit_cancel()));
}

/// The admin data source, shared by the callbacks of one window.
pub type SharedAdmin = Rc<RefCell<Option<Box<dyn AdminSource>>>>;

/// Does what the UI does itself with a command: language, admin pages, purge. Commands for the
/// kiosk core are left to the caller.
pub fn handle_locally(c: &Command, ctl: &Rc<RefCell<Controller>>, admin: &SharedAdmin) {
    match c {
        Command::Language(l) => select_language(*l),
        Command::Load(page) => {
            let search = ctl.borrow().state.search.clone();
            let (rows, notice) = match admin.borrow_mut().as_mut() {
                Some(a) => a.rows(*page, &search),
                None => (Vec::new(), String::new()),
            };
            ctl.borrow_mut().set_rows(rows, &notice);
        }
        Command::Purge => {
            let page = ctl.borrow().state.page;
            let search = ctl.borrow().state.search.clone();
            if let Some(a) = admin.borrow_mut().as_mut() {
                let notice = a.purge();
                let (rows, _) = a.rows(page, &search);
                ctl.borrow_mut().set_rows(rows, &notice);
            }
        }
        Command::Edit(key) => {
            let value = match admin.borrow_mut().as_mut() {
                Some(a) => a.current(key),
                None => String::new(),
            };
            ctl.borrow_mut().start_edit(key, &value);
        }
        Command::Save { key, value } => {
            let actor = ctl.borrow().state.admin_id.clone();
            let mut admin = admin.borrow_mut();
            let Some(a) = admin.as_mut() else { return };
            let result = a.save(&actor, key, value);
            let ok = result.is_ok();
            ctl.borrow_mut().saved(result);
            if ok {
                if key == "ui.language"
                    && let Some(l) = Language::parse(value)
                {
                    ctl.borrow_mut().state.language = l;
                    select_language(l);
                }
                if key == "device.site" || key == "device.name" {
                    let site = a.current("device.site");
                    ctl.borrow_mut().state.site = if site.is_empty() {
                        a.current("device.name")
                    } else {
                        site
                    };
                }
                let (rows, _) = a.rows(PageId::AdminSettings, "");
                ctl.borrow_mut().set_rows(rows, "saved");
            }
        }
        Command::Kiosk(_) => {}
    }
}
