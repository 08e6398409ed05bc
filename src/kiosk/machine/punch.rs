//! Two things the idle screen holds besides waiting: the punch type a person picked before
//! tapping (with `policy.direction = "ask"`), and a pause an HR client asked for over ZK
//! ("disable device"), which ends by itself.

use super::{Machine, State};
use crate::base::config::DirectionPolicy;
use crate::kiosk::events::{Effect, Now, Screen};
use crate::store::record::Punch;

/// How long a picked punch type waits for the badge before the schedule's pick is back.
pub(super) const CHOICE_MS: u64 = 15_000;

impl Machine {
    /// The punch types the touchscreen offers now: none unless the policy says "ask".
    pub fn punch_choices(&self) -> Vec<Punch> {
        if self.policy.direction != DirectionPolicy::Ask {
            return Vec::new();
        }
        let mut v = vec![Punch::In, Punch::Out];
        if self.policy.break_punches {
            v.extend([Punch::BreakOut, Punch::BreakIn]);
        }
        if self.policy.overtime_punches {
            v.extend([Punch::OvertimeIn, Punch::OvertimeOut]);
        }
        v
    }

    /// The idle screen as it stands: face availability, the punch choices and the pick.
    pub fn idle_screen(&self, now: Now) -> Screen {
        Screen::Idle {
            face_available: self.face_available(),
            punches: self.punch_choices(),
            chosen: self.chosen_punch(now),
        }
    }

    /// The punch type picked on the screen, while it is fresh.
    pub(super) fn chosen_punch(&self, now: Now) -> Option<Punch> {
        self.chosen
            .filter(|(_, until)| now.mono_ms < *until)
            .map(|(p, _)| p)
    }

    /// A tap on a punch button at the idle screen.
    pub(super) fn on_choose(&mut self, now: Now, punch: Punch) -> Vec<Effect> {
        if self.punch_choices().contains(&punch) {
            self.chosen = Some((punch, now.mono_ms + CHOICE_MS));
        }
        vec![Effect::Show(self.idle_screen(now))]
    }

    /// A ZK client paused (`Some(seconds)`) or resumed (`None`) check-ins.
    pub(super) fn on_pause(&mut self, now: Now, seconds: Option<u32>) -> Vec<Effect> {
        self.paused_until = seconds.map(|s| now.mono_ms + s as u64 * 1000);
        if !matches!(self.state, State::Idle) {
            // A check-in under way finishes; the pause shows when it is done.
            return Vec::new();
        }
        vec![Effect::Show(self.pause_or_idle(now))]
    }

    /// The update client is about to reboot (`true`) or gave up (`false`).
    pub(super) fn on_updating(&mut self, now: Now, on: bool) -> Vec<Effect> {
        self.updating = on;
        if !matches!(self.state, State::Idle) {
            // A check-in under way finishes; the update waits for it.
            return Vec::new();
        }
        vec![Effect::Show(self.pause_or_idle(now))]
    }

    /// The update or paused screen while one lasts, else the idle screen.
    pub(super) fn pause_or_idle(&self, now: Now) -> Screen {
        if self.updating {
            return Screen::Updating;
        }
        match self.paused_until {
            Some(until) if now.mono_ms < until => Screen::Paused {
                seconds: (until - now.mono_ms).div_ceil(1000) as u32,
            },
            _ => self.idle_screen(now),
        }
    }

    /// Whether check-ins are paused now; a pause past its time ends here.
    pub(super) fn paused(&mut self, now: Now) -> bool {
        if self.updating {
            return true;
        }
        match self.paused_until {
            Some(until) if now.mono_ms < until => true,
            Some(_) => {
                self.paused_until = None;
                false
            }
            None => false,
        }
    }
}
