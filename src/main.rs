//! `clockface` command line: parses arguments and calls the library. No logic lives here.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use clockface::base::error::Error;
use clockface::commands::{self, ConfigSource};
use clockface::store::export::ExportFormat;

/// Clockface face-attendance kiosk.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Config file [default: /etc/clockface/clockface.toml].
    #[arg(long, global = true, env = "CLOCKFACE_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// Data dir, overriding store.data_dir (enough on its own to inspect a copied store).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the kiosk with the configured camera, badge reader, GPIO and store.
    Run,
    /// Record consent and enrol an employee's face from 1-5 photos (no image is kept).
    Enroll {
        /// Employee id (must be on the roster).
        #[arg(long)]
        employee: String,
        /// Id of the admin who witnessed the employee's consent.
        #[arg(long)]
        consent_witness: String,
        /// Photos of the employee, one face each.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Purge records whose retention period has run out (see [retention] in the config).
    Purge {
        /// Only report what would be purged.
        #[arg(long, conflicts_with = "now", required_unless_present = "now")]
        dry_run: bool,
        /// Purge now.
        #[arg(long)]
        now: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Write everything held about one person as JSON (subject access request).
    ExportPerson {
        /// Employee id.
        employee_id: String,
        /// Write here instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Manage the roster.
    Roster {
        #[command(subcommand)]
        command: RosterCmd,
    },
    /// Run the embedded default: a scripted day on simulated hardware with real models.
    Demo {
        /// Keep the demo store in this directory instead of a temporary one.
        #[arg(long, value_name = "DIR")]
        keep: Option<PathBuf>,
        /// Render the touchscreen headless and write one PNG per screen change here.
        #[arg(long, value_name = "DIR")]
        screens: Option<PathBuf>,
        /// Never open a window, even when a display exists.
        #[arg(long)]
        headless: bool,
    },
    /// Check the config file.
    Config {
        #[command(subcommand)]
        command: ConfigCmd,
    },
    /// Recompute every chain link and signature; name the first bad record.
    Verify {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Export check-ins (records with since <= time < until) to stdout or a file.
    Export {
        /// Start, inclusive: YYYY-MM-DD (UTC) or RFC 3339.
        #[arg(long)]
        since: Option<String>,
        /// End, exclusive: YYYY-MM-DD (UTC) or RFC 3339.
        #[arg(long)]
        until: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "csv")]
        format: ExportFormat,
        /// Write here instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Pair this kiosk with the backend using a one-time code from its admin.
    Pair {
        /// The pairing code.
        #[arg(long)]
        code: String,
        /// Backend URL [default: sync.url from the config].
        #[arg(long)]
        url: Option<String>,
    },
    /// Run one sync round now: heartbeat, upload the queue, download roster and policy.
    Sync {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// The touchscreen UI without a touchscreen.
    Ui {
        #[command(subcommand)]
        command: UiCmd,
    },
    /// Device identity and store figures.
    Device {
        #[command(subcommand)]
        command: DeviceCmd,
    },
    /// Run the face pipeline on image files.
    Vision {
        #[command(subcommand)]
        command: VisionCmd,
    },
    /// Benchmarks that print figures.
    Bench {
        #[command(subcommand)]
        command: BenchCmd,
    },
    /// Apply a provisioning file (backend, pairing code, site, Wi-Fi, host name) at first boot.
    Provision {
        /// The provisioning file (on the appliance: /boot/firmware/clockface-provision.toml).
        file: PathBuf,
        /// Config to write [default: --config or /etc/clockface/clockface.toml].
        #[arg(long, value_name = "PATH")]
        config_out: Option<PathBuf>,
        /// Base config used when the config does not exist yet.
        #[arg(long, value_name = "PATH", default_value = clockface::commands::appliance::IMAGE_BASE_CONFIG)]
        base: PathBuf,
        /// wpa_supplicant configuration to write for [wifi].
        #[arg(
            long,
            value_name = "PATH",
            default_value = "/etc/wpa_supplicant/wpa_supplicant-wlan0.conf"
        )]
        wifi_out: PathBuf,
        /// Host name file to write for `hostname`.
        #[arg(long, value_name = "PATH", default_value = "/etc/hostname")]
        hostname_out: PathBuf,
        /// Group that may read the written config (the kiosk service's group).
        #[arg(long, value_name = "NAME")]
        group: Option<String>,
        /// Remove the file once applied (it holds secrets), leaving FILE.done; on refusal write
        /// the reasons to FILE.error.
        #[arg(long)]
        consume: bool,
    },
    /// Ask the running kiosk's health endpoint; exit 0 only when it is serving.
    Health {
        /// Endpoint address [default: health.listen from the config, else 127.0.0.1:8780].
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Keep asking for up to this many seconds until the kiosk is healthy.
        #[arg(long, value_name = "SECONDS", default_value_t = 0)]
        wait: u64,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum RosterCmd {
    /// Add or update an employee.
    Add {
        /// Employee id.
        #[arg(long)]
        id: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Badge id (repeatable).
        #[arg(long = "badge")]
        badges: Vec<String>,
        /// May enter admin mode.
        #[arg(long)]
        admin: bool,
        /// On the roster but not allowed to check in.
        #[arg(long)]
        inactive: bool,
        /// Read a PIN (4-12 digits) from the first line of standard input.
        #[arg(long)]
        pin_stdin: bool,
    },
}

#[derive(Subcommand)]
enum UiCmd {
    /// Render the screens to PNG in English and Simplified Chinese (software renderer, no display).
    Gallery {
        /// Where to write the PNGs.
        #[arg(long, default_value = "docs/screens")]
        out: PathBuf,
        /// Every screen at both panel sizes, not only the README's set at 800x480.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Report every problem in a config file at once; non-zero exit when there are any.
    Check {
        /// File to check [default: --config or /etc/clockface/clockface.toml].
        path: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum VisionCmd {
    /// Faces in each image: box, score, 5 landmarks.
    Detect {
        /// JPEG or PNG files.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Single-frame liveness of the main face in each image: score, live, reason.
    Liveness {
        /// JPEG or PNG files.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Similarity of the main faces of two images, and whether they match.
    Compare {
        /// First image.
        image_a: PathBuf,
        /// Second image.
        image_b: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Per-stage medians at 1 and 2 threads, 1:N at 100,000 templates, peak RSS, Python ratio.
    Bench {
        /// Rounds over the photos.
        #[arg(long, default_value_t = 10)]
        frames: usize,
        /// Photos to run on [default: the real test photos fetched by models/fetch.py].
        images: Vec<PathBuf>,
        /// Print the figures as JSON at the end.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum DeviceCmd {
    /// Device id, public key and store statistics.
    Show {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Durable check-ins per second, bytes per record, verify time and memory.
    Store {
        /// Durable (one fsync each) appends to time.
        #[arg(long, default_value_t = 2000)]
        durable: u64,
        /// Size of the store to verify.
        #[arg(long, default_value_t = 1_000_000)]
        records: u64,
        /// Keep the stores here and reuse a large store of the right size on the next run.
        #[arg(long, value_name = "DIR")]
        keep: Option<PathBuf>,
    },
    /// Upload a large queue to clockface-hub on loopback: time, records/s, peak RSS of both.
    Sync {
        /// Check-ins to queue and upload.
        #[arg(long, default_value_t = 100_000)]
        records: u64,
        /// Entries per upload (1-1000).
        #[arg(long, default_value_t = 500)]
        batch_size: u32,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Append records one by one to the configured store, printing `ack SEQ` after each.
    Append {
        /// How many records.
        #[arg(long, default_value_t = 1000)]
        count: u64,
        /// Print an acknowledgement line after each durable append.
        #[arg(long)]
        print_acks: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let source = ConfigSource {
        config: cli.config.clone(),
        data_dir: cli.data_dir.clone(),
    };
    match run(cli.command, &source) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("clockface: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(cmd: Cmd, source: &ConfigSource) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    let load = || -> Result<_, Error> {
        let cfg = source.load()?;
        commands::init_logging(&cfg.log.level);
        Ok(cfg)
    };
    match cmd {
        Cmd::Run => commands::kiosk::run(load()?),
        Cmd::Enroll {
            employee,
            consent_witness,
            images,
            json,
        } => commands::kiosk::enroll(
            &load()?,
            &employee,
            &consent_witness,
            &images,
            json,
            &mut stdout,
        )
        .map(drop),
        Cmd::Purge { dry_run, now, json } => {
            let _ = now;
            commands::purge(&load()?, dry_run, json, &mut stdout).map(drop)
        }
        Cmd::ExportPerson {
            employee_id,
            output,
        } => {
            let cfg = load()?;
            let text = commands::export_person(&cfg, &employee_id)?;
            match output {
                Some(path) => std::fs::write(&path, text).map_err(|e| Error::io(&path, e)),
                None => {
                    use std::io::Write;
                    stdout
                        .write_all(text.as_bytes())
                        .map_err(|e| Error::io("stdout", e))
                }
            }
        }
        Cmd::Roster {
            command:
                RosterCmd::Add {
                    id,
                    name,
                    badges,
                    admin,
                    inactive,
                    pin_stdin,
                },
        } => commands::kiosk::roster_add(
            &load()?,
            &id,
            &name,
            &badges,
            admin,
            inactive,
            pin_stdin,
            &mut stdout,
        ),
        Cmd::Demo {
            keep,
            screens,
            headless,
        } => {
            commands::init_logging("warn");
            clockface::kiosk::tune_allocator();
            if !headless && clockface::ui::app::display_available() {
                drop(stdout);
                clockface::demo::run_in_window(keep, screens).map(drop)
            } else {
                clockface::demo::run(keep.as_deref(), screens.as_deref(), &mut stdout).map(drop)
            }
        }
        Cmd::Config {
            command: ConfigCmd::Check { path },
        } => {
            let path = path
                .or_else(|| source.config.clone())
                .unwrap_or_else(|| clockface::base::config::DEFAULT_CONFIG_PATH.into());
            commands::config_check(&path, &mut stdout)
        }
        Cmd::Provision {
            file,
            config_out,
            base,
            wifi_out,
            hostname_out,
            group,
            consume,
        } => {
            commands::init_logging("info");
            let targets = commands::appliance::ProvisionTargets {
                config: config_out
                    .or_else(|| source.config.clone())
                    .unwrap_or_else(|| clockface::base::config::DEFAULT_CONFIG_PATH.into()),
                base,
                wifi: wifi_out,
                hostname: hostname_out,
                group,
            };
            commands::appliance::provision(&file, &targets, consume, &mut stdout).map(drop)
        }
        Cmd::Health { listen, wait, json } => {
            let listen = match listen {
                Some(l) => l,
                None => {
                    let cfg = source.load_or_default()?;
                    if cfg.health.listen.is_empty() {
                        "127.0.0.1:8780".into()
                    } else {
                        cfg.health.listen
                    }
                }
            };
            let healthy = commands::appliance::health(
                &listen,
                std::time::Duration::from_secs(wait),
                json,
                &mut stdout,
            )?;
            if healthy {
                Ok(())
            } else {
                Err(Error::Unhealthy(format!(
                    "the kiosk at {listen} is not serving"
                )))
            }
        }
        Cmd::Verify { json } => commands::verify(&load()?, json, &mut stdout).map(drop),
        Cmd::Export {
            since,
            until,
            format,
            output,
        } => {
            let cfg = load()?;
            match output {
                Some(path) => {
                    let mut f = std::io::BufWriter::new(
                        std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?,
                    );
                    commands::export(&cfg, since.as_deref(), until.as_deref(), format, &mut f)?;
                    use std::io::Write;
                    f.flush().map_err(|e| Error::io(&path, e))
                }
                None => commands::export(
                    &cfg,
                    since.as_deref(),
                    until.as_deref(),
                    format,
                    &mut stdout,
                )
                .map(drop),
            }
        }
        Cmd::Vision { command } => {
            let cfg = source.load_or_default()?;
            commands::init_logging(&cfg.log.level);
            match command {
                VisionCmd::Detect { images, json } => {
                    commands::vision::detect(&cfg, &images, json, &mut stdout).map(drop)
                }
                VisionCmd::Liveness { images, json } => {
                    commands::vision::liveness(&cfg, &images, json, &mut stdout).map(drop)
                }
                VisionCmd::Compare {
                    image_a,
                    image_b,
                    json,
                } => {
                    commands::vision::compare(&cfg, &image_a, &image_b, json, &mut stdout).map(drop)
                }
                VisionCmd::Bench {
                    frames,
                    images,
                    json,
                } => {
                    let images = if images.is_empty() {
                        commands::vision::default_photos()?
                    } else {
                        images
                    };
                    let v = clockface::bench::vision(&cfg.vision, &images, frames, &mut stdout)?;
                    if json {
                        use std::io::Write;
                        let _ = writeln!(
                            stdout,
                            "{}",
                            serde_json::to_string_pretty(&v).expect("serialisable")
                        );
                    }
                    Ok(())
                }
            }
        }
        Cmd::Pair { code, url } => commands::pair(&load()?, url.as_deref(), &code, &mut stdout),
        Cmd::Sync { json } => commands::sync_now(&load()?, json, &mut stdout).map(drop),
        Cmd::Ui {
            command: UiCmd::Gallery { out, all },
        } => {
            let (screens, sizes): (&[&str], &[(u32, u32)]) = if all {
                (&[], &clockface::ui::gallery::SIZES)
            } else {
                (&clockface::ui::gallery::README_SCREENS, &[(800, 480)])
            };
            let files = clockface::ui::gallery::render(&out, screens, sizes)?;
            writeln!(
                stdout,
                "{} screens written to {}",
                files.len(),
                out.display()
            )
            .map_err(|e| Error::io("stdout", e))
        }
        Cmd::Device {
            command: DeviceCmd::Show { json },
        } => commands::device_show(&load()?, json, &mut stdout).map(drop),
        Cmd::Bench {
            command:
                BenchCmd::Store {
                    durable,
                    records,
                    keep,
                },
        } => {
            commands::init_logging("warn");
            clockface::bench::store(durable, records, keep.as_deref(), &mut stdout)
        }
        Cmd::Bench {
            command:
                BenchCmd::Sync {
                    records,
                    batch_size,
                    json,
                },
        } => {
            commands::init_logging("warn");
            clockface::bench::sync(records, batch_size, json, &mut stdout).map(drop)
        }
        Cmd::Bench {
            command: BenchCmd::Append { count, print_acks },
        } => {
            let cfg = load()?;
            let opts = clockface::store::StoreOptions::from_config(&cfg);
            clockface::bench::append(&opts, count, print_acks, &mut stdout)
        }
    }
}
