//! `clockface` command line: parses arguments and hands each command to its code in
//! `clockface::commands`. No logic lives here.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use clockface::commands::context::ConfigSource;
use clockface::commands::{
    bench, config, demo, device, health, hr, kiosk, provision, records, roster, store, ui, update,
    vision,
};

/// Clockface face-attendance kiosk.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Config file [default: /etc/clockface/clockface.toml].
    #[arg(long, global = true, env = "CLOCKFACE_CONFIG", value_name = "PATH")]
    config: Option<std::path::PathBuf>,
    /// Data dir, overriding store.data_dir (enough on its own to inspect a copied store).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the kiosk with the configured camera, badge reader, GPIO and store.
    Run(kiosk::RunArgs),
    /// Record consent and enrol an employee's face from 1-5 photos (no image is kept).
    Enroll(kiosk::EnrollArgs),
    /// Purge records whose retention period has run out (see [retention] in the config).
    Purge(records::PurgeArgs),
    /// Write everything held about one person as JSON (subject access request).
    ExportPerson(records::ExportPersonArgs),
    /// Manage the roster.
    #[command(subcommand)]
    Roster(roster::RosterCmd),
    /// Run the embedded default: a scripted day on simulated hardware with real models.
    Demo(demo::DemoArgs),
    /// Check the config file.
    #[command(subcommand)]
    Config(config::ConfigCmd),
    /// Recompute every chain link and signature; name the first bad record.
    Verify(records::VerifyArgs),
    /// Export check-ins (records with since <= time < until) to stdout or a file.
    Export(records::ExportArgs),
    /// Pair this kiosk with the backend using a one-time code from its admin.
    Pair(device::PairArgs),
    /// Run one sync round now: heartbeat, upload the queue, download roster and policy.
    Sync(device::SyncArgs),
    /// The touchscreen UI without a touchscreen.
    #[command(subcommand)]
    Ui(ui::UiCmd),
    /// Start over when the database is lost but the keys are not.
    #[command(subcommand)]
    Store(store::StoreCmd),
    /// Device identity and store figures.
    #[command(subcommand)]
    Device(device::DeviceCmd),
    /// Run the face pipeline on image files.
    #[command(subcommand)]
    Vision(vision::VisionCmd),
    /// Benchmarks that print figures.
    #[command(subcommand)]
    Bench(bench::BenchCmd),
    /// Apply a provisioning file (backend, pairing code, site, Wi-Fi, host name) at first boot.
    Provision(provision::ProvisionArgs),
    /// Ask the running kiosk's health endpoint; exit 0 only when it is serving.
    Health(health::HealthArgs),
    /// The ZK terminal protocol (TCP 4370) that HR tools pull punches with.
    #[command(subcommand)]
    Zk(hr::ZkCmd),
    /// ADMS/iclock push of punches to an HR server.
    #[command(subcommand)]
    Adms(hr::AdmsCmd),
    /// Updates from a hawkBit DDI fleet server (hawkBit, gooseBit).
    #[command(subcommand)]
    Update(update::UpdateCmd),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let src = ConfigSource {
        config: cli.config,
        data_dir: cli.data_dir,
    };
    let out = &mut std::io::stdout();
    let result = match cli.command {
        Cmd::Run(a) => a.run(&src, out),
        Cmd::Enroll(a) => a.run(&src, out),
        Cmd::Purge(a) => a.run(&src, out),
        Cmd::ExportPerson(a) => a.run(&src, out),
        Cmd::Roster(a) => a.run(&src, out),
        Cmd::Demo(a) => a.run(&src, out),
        Cmd::Config(a) => a.run(&src, out),
        Cmd::Verify(a) => a.run(&src, out),
        Cmd::Export(a) => a.run(&src, out),
        Cmd::Pair(a) => a.run(&src, out),
        Cmd::Sync(a) => a.run(&src, out),
        Cmd::Ui(a) => a.run(&src, out),
        Cmd::Store(a) => a.run(&src, out),
        Cmd::Device(a) => a.run(&src, out),
        Cmd::Vision(a) => a.run(&src, out),
        Cmd::Bench(a) => a.run(&src, out),
        Cmd::Provision(a) => a.run(&src, out),
        Cmd::Health(a) => a.run(&src, out),
        Cmd::Zk(a) => a.run(&src, out),
        Cmd::Adms(a) => a.run(&src, out),
        Cmd::Update(a) => a.run(&src, out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("clockface: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
