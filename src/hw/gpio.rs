//! GPIO outputs and the motion input.
//!
//! [`Gpio`] switches named outputs; timing (how long the relay stays open, buzzer patterns) is
//! the caller's, so it can be tested with a simulated clock. [`SimGpio`] records every change
//! with its time for assertions; [`RppalGpio`] drives the Raspberry Pi header through rppal.

use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::base::clock::Clock;
use crate::base::config::GpioConfig;
use crate::base::error::{Error, Result};

/// The kiosk's outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pin {
    /// Door strike relay.
    Relay,
    /// Green LED: accepted.
    Green,
    /// Red LED: refused.
    Red,
    /// Buzzer.
    Buzzer,
}

/// Switches outputs and reads the motion sensor.
pub trait Gpio: Send {
    /// Sets an output on (true) or off.
    fn set(&mut self, pin: Pin, on: bool) -> Result<()>;
    /// Whether the PIR sensor sees motion (false when there is none).
    fn motion(&mut self) -> Result<bool>;
}

/// One recorded pin change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PinChange {
    /// Wall time of the change (Unix ms).
    pub at_ms: i64,
    /// Which output.
    pub pin: Pin,
    /// New level.
    pub on: bool,
}

/// Simulated GPIO: remembers every change with its time; motion is set by the test.
#[derive(Clone)]
pub struct SimGpio {
    clock: Arc<dyn Clock>,
    log: Arc<Mutex<Vec<PinChange>>>,
    motion: Arc<Mutex<bool>>,
}

impl SimGpio {
    /// A simulated header stamped by `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        SimGpio {
            clock,
            log: Arc::default(),
            motion: Arc::default(),
        }
    }

    /// Every change so far.
    pub fn changes(&self) -> Vec<PinChange> {
        self.log.lock().unwrap().clone()
    }

    /// How many times `pin` was switched on.
    pub fn pulses(&self, pin: Pin) -> usize {
        self.changes()
            .iter()
            .filter(|c| c.pin == pin && c.on)
            .count()
    }

    /// Sets what the motion sensor reports.
    pub fn set_motion(&self, on: bool) {
        *self.motion.lock().unwrap() = on;
    }
}

impl Gpio for SimGpio {
    fn set(&mut self, pin: Pin, on: bool) -> Result<()> {
        self.log.lock().unwrap().push(PinChange {
            at_ms: self.clock.wall_ms(),
            pin,
            on,
        });
        Ok(())
    }

    fn motion(&mut self) -> Result<bool> {
        Ok(*self.motion.lock().unwrap())
    }
}

/// Raspberry Pi GPIO through rppal (`/dev/gpiomem` or the gpiochip character device).
pub struct RppalGpio {
    relay: rppal::gpio::OutputPin,
    green: rppal::gpio::OutputPin,
    red: rppal::gpio::OutputPin,
    buzzer: rppal::gpio::OutputPin,
    pir: Option<rppal::gpio::InputPin>,
    relay_active_low: bool,
}

impl RppalGpio {
    /// Claims the configured pins; all outputs start off (door closed).
    pub fn open(cfg: &GpioConfig) -> Result<Self> {
        let err = |what: &str, e: rppal::gpio::Error| {
            Error::invalid(
                format!("gpio {what}"),
                format!("{e} (is this a Raspberry Pi, and is the service in the gpio group?)"),
            )
        };
        let gpio = rppal::gpio::Gpio::new().map_err(|e| err("controller", e))?;
        let out = |pin: u8, what: &str| -> Result<rppal::gpio::OutputPin> {
            Ok(gpio.get(pin).map_err(|e| err(what, e))?.into_output_low())
        };
        let mut relay = out(cfg.relay_pin, "relay_pin")?;
        if cfg.relay_active_low {
            relay.set_high();
        }
        Ok(RppalGpio {
            relay,
            green: out(cfg.green_pin, "green_pin")?,
            red: out(cfg.red_pin, "red_pin")?,
            buzzer: out(cfg.buzzer_pin, "buzzer_pin")?,
            pir: match cfg.pir_pin {
                Some(p) => Some(
                    gpio.get(p)
                        .map_err(|e| err("pir_pin", e))?
                        .into_input_pulldown(),
                ),
                None => None,
            },
            relay_active_low: cfg.relay_active_low,
        })
    }
}

impl Gpio for RppalGpio {
    fn set(&mut self, pin: Pin, on: bool) -> Result<()> {
        let (p, level) = match pin {
            Pin::Relay => (&mut self.relay, on != self.relay_active_low),
            Pin::Green => (&mut self.green, on),
            Pin::Red => (&mut self.red, on),
            Pin::Buzzer => (&mut self.buzzer, on),
        };
        p.write(if level {
            rppal::gpio::Level::High
        } else {
            rppal::gpio::Level::Low
        });
        Ok(())
    }

    fn motion(&mut self) -> Result<bool> {
        Ok(self.pir.as_ref().is_some_and(|p| p.is_high()))
    }
}

/// Opens the configured backend.
pub fn open(cfg: &GpioConfig, clock: Arc<dyn Clock>) -> Result<Box<dyn Gpio>> {
    Ok(match cfg.kind {
        crate::base::config::GpioKind::Rppal => Box::new(RppalGpio::open(cfg)?),
        crate::base::config::GpioKind::Sim => Box::new(SimGpio::new(clock)),
    })
}

/// A buzzer pattern: alternating on and off durations in milliseconds, starting with on.
pub fn buzzer_pattern(ok: bool) -> &'static [u32] {
    if ok { &[80] } else { &[200, 100, 200] }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::clock::SimClock;

    #[test]
    fn sim_gpio_records_changes_with_time() {
        let clock = Arc::new(SimClock::new(1000));
        let mut g = SimGpio::new(clock.clone());
        g.set(Pin::Relay, true).unwrap();
        clock.advance(std::time::Duration::from_millis(1500));
        g.set(Pin::Relay, false).unwrap();
        assert_eq!(
            g.changes(),
            vec![
                PinChange {
                    at_ms: 1000,
                    pin: Pin::Relay,
                    on: true
                },
                PinChange {
                    at_ms: 2500,
                    pin: Pin::Relay,
                    on: false
                }
            ]
        );
        assert_eq!(g.pulses(Pin::Relay), 1);
        assert!(!g.motion().unwrap());
        g.set_motion(true);
        assert!(g.motion().unwrap());
    }

    #[test]
    fn rppal_backend_fails_clearly_without_a_pi() {
        if std::path::Path::new("/dev/gpiomem").exists() {
            return; // on a real Pi this would claim pins
        }
        let e = RppalGpio::open(&GpioConfig::default())
            .err()
            .unwrap()
            .to_string();
        assert!(e.starts_with("gpio controller:"), "{e}");
    }
}
