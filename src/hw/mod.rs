//! Hardware seams: GPIO (door relay, LEDs, buzzer, motion sensor) and badge readers.
//!
//! Each seam is a small trait with a real backend (rppal on the Raspberry Pi; evdev and MFRC522
//! readers) and a simulated one that the demo and tests drive and inspect. Nothing here knows
//! about the state machine: it switches pins and delivers normalised badge ids.

pub(crate) mod badge;
pub mod gpio;
