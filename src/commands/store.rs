//! `clockface store reinit --i-understand`: the way on when the database is lost but the keys
//! are not (see `Store::reinit`); every other command refuses to start over by itself.

use std::io::Write;
use std::sync::Arc;

use super::context::ConfigSource;
use crate::base::clock::SystemClock;
use crate::base::error::{Error, Result};
use crate::store::{Store, StoreOptions};

/// `clockface store …`.
#[derive(Debug, clap::Subcommand)]
pub enum StoreCmd {
    /// Archive the keys of a store whose database is lost and start a new, empty one under a
    /// new device id (audited). A readable database is never touched.
    Reinit {
        /// Say that you know the old device id and its chain are left behind.
        #[arg(long = "i-understand", required = true)]
        i_understand: bool,
    },
}

impl StoreCmd {
    /// Runs the store subcommand.
    pub fn run(self, src: &ConfigSource, out: &mut dyn Write) -> Result<()> {
        let StoreCmd::Reinit { i_understand } = self;
        if !i_understand {
            return Err(Error::invalid("--i-understand", "is required"));
        }
        let cfg = src.load_logged()?;
        let (store, archive) = Store::reinit(
            &StoreOptions::from_config(&cfg),
            Arc::new(SystemClock::new()),
        )?;
        let _ = writeln!(
            out,
            "new store, device id {}; the old keys are in {}",
            store.identity().device_id,
            archive.display()
        );
        Ok(())
    }
}
