//! ADMS/iclock push: the kiosk uploads accepted check-ins to an HR server the way ZKTeco
//! terminals do, a second outbox beside the hub's with its own cursor.
//!
//! A round: the handshake `GET /iclock/cdata?SN=…&options=all` (its options win: `ATTLOGStamp`
//! says where the server is, `TimeZone` the offset its times are in, `Delay` how often to
//! poll, `Realtime`, `TransInterval` and `TransTimes` when to upload, `ErrorDelay` how long to
//! wait after an error); uploads `POST /iclock/cdata?table=ATTLOG&Stamp=SEQ` of ATTLOG lines,
//! with the cursor moved only after the server's `OK`; and `GET /iclock/getrequest`, the
//! heartbeat and command poll, whose results go to `POST /iclock/devicecmd`. A kill between a
//! POST and its `OK` re-sends that batch; ADMS servers drop exact duplicates. Nothing is
//! deleted on the kiosk, whatever the server answers.

use std::sync::Arc;
use std::time::Duration;

use chrono::{FixedOffset, NaiveDateTime, TimeZone, Timelike, Utc};
use tokio::sync::{Notify, watch};

use crate::base::clock::Clock;
use crate::base::config::AdmsConfig;
use crate::base::error::{Error, Result};
use crate::base::zone::SiteZone;
use crate::store::record::Record;
use crate::store::{Store, StoreOptions};

/// What the server's handshake said.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The last record seq the server holds (`ATTLOGStamp`; `None` or 0: nothing).
    pub stamp: u64,
    /// Offset the server wants times in, minutes east of UTC (`TimeZone`, in hours).
    pub offset_minutes: Option<i32>,
    /// Seconds between command polls (`Delay`).
    pub delay: u32,
    /// Seconds to wait after an error (`ErrorDelay`).
    pub error_delay: u32,
    /// Upload each punch at once (`Realtime=1`).
    pub realtime: bool,
    /// Minutes between uploads when not real-time (`TransInterval`).
    pub interval_minutes: u32,
    /// Times of day to upload when not real-time (`TransTimes`), minutes after midnight.
    pub trans_times: Vec<u32>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            stamp: 0,
            offset_minutes: None,
            delay: 10,
            error_delay: 30,
            realtime: true,
            interval_minutes: 1,
            trans_times: Vec::new(),
        }
    }
}

/// Parses a handshake reply: `key=value` lines after the `GET OPTION FROM:` line. Unknown keys
/// are ignored; a value that does not parse keeps the default and is logged.
pub fn parse_options(body: &str) -> Result<Options> {
    if !body.contains('=') {
        return Err(Error::invalid(
            "ADMS handshake",
            format!(
                "the reply has no options: {:?}",
                body.chars().take(80).collect::<String>()
            ),
        ));
    }
    let mut o = Options::default();
    for line in body.lines() {
        let Some((k, v)) = line.trim().split_once('=') else {
            continue;
        };
        let v = v.trim();
        let num = |d: u32| v.parse::<u32>().unwrap_or(d);
        match k.trim() {
            "ATTLOGStamp" => o.stamp = v.parse().unwrap_or(0),
            "TimeZone" => {
                o.offset_minutes = v
                    .parse::<f64>()
                    .ok()
                    .filter(|h| h.abs() <= 14.0)
                    .map(|h| (h * 60.0).round() as i32)
            }
            "Delay" => o.delay = num(o.delay).clamp(1, 3600),
            "ErrorDelay" => o.error_delay = num(o.error_delay).clamp(1, 3600),
            "Realtime" => o.realtime = v == "1",
            "TransInterval" => o.interval_minutes = num(o.interval_minutes).clamp(1, 1440),
            "TransTimes" => {
                o.trans_times = v
                    .split(';')
                    .filter_map(|t| {
                        let (h, m) = t.trim().split_once(':')?;
                        Some(h.parse::<u32>().ok()? * 60 + m.parse::<u32>().ok()?)
                    })
                    .filter(|m| *m < 1440)
                    .collect()
            }
            _ => {}
        }
    }
    Ok(o)
}

/// How times are written: the server's offset when it gave one, else the site's zone.
#[derive(Debug, Clone, Copy)]
pub enum Times {
    /// The handshake's `TimeZone`.
    Offset(FixedOffset),
    /// The site's zone.
    Zone(SiteZone),
}

impl Times {
    fn local(&self, ms: i64) -> NaiveDateTime {
        match self {
            Times::Offset(o) => Utc
                .timestamp_millis_opt(ms)
                .single()
                .unwrap_or_default()
                .with_timezone(o)
                .naive_local(),
            Times::Zone(z) => z.local(ms).naive_local(),
        }
    }

    fn utc_ms(&self, t: NaiveDateTime) -> Option<i64> {
        match self {
            Times::Offset(o) => o
                .from_local_datetime(&t)
                .single()
                .map(|d| d.timestamp_millis()),
            Times::Zone(z) => z.from_local(t).ok(),
        }
    }
}

/// One ATTLOG line: employee id, local time, punch state, verify type, work code, two
/// reserved fields, tab-separated.
pub fn attlog_line(r: &Record, times: Times) -> String {
    format!(
        "{}\t{}\t{}\t{}\t0\t0\t0\n",
        r.employee_id.replace(['\t', '\n', '\r'], " "),
        times.local(r.wall_ms).format("%Y-%m-%d %H:%M:%S"),
        r.punch.zk_state(),
        r.method.zk_verify()
    )
}

/// The ADMS outbox thread, as the kiosk wakes and stops it.
pub type AdmsHandle = crate::base::worker::Worker;

/// The ADMS client over one store.
pub struct Adms {
    store: Store,
    cfg: AdmsConfig,
    serial: String,
    zone: SiteZone,
    http: reqwest::Client,
    base: String,
    /// The last handshake's options.
    pub options: Options,
    /// When the last upload was, for `TransInterval`.
    last_upload_ms: i64,
}

/// What one call of [`Adms::step`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Records the server acknowledged.
    pub sent: u64,
    /// Records still waiting.
    pub waiting: u64,
    /// Server commands answered.
    pub commands: u32,
}

impl Adms {
    /// A client for `cfg` over `store`; `serial` is the `SN` it reports.
    pub fn new(store: Store, cfg: AdmsConfig, serial: String, zone: SiteZone) -> Result<Adms> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::sync::client::tls_config(None)?)
            .timeout(Duration::from_secs(cfg.timeout_seconds as u64))
            .connect_timeout(Duration::from_secs(cfg.timeout_seconds.min(10) as u64))
            .build()
            .map_err(|e| Error::invalid("ADMS client", e.to_string()))?;
        let base = format!("{}/iclock", cfg.url.trim_end_matches('/'));
        Ok(Adms {
            store,
            cfg,
            serial,
            zone,
            http,
            base,
            options: Options::default(),
            last_upload_ms: 0,
        })
    }

    fn times(&self) -> Times {
        match self
            .options
            .offset_minutes
            .and_then(|m| FixedOffset::east_opt(m * 60))
        {
            Some(o) => Times::Offset(o),
            None => Times::Zone(self.zone),
        }
    }

    fn url(&self, path: &str, query: &[(&str, String)]) -> Result<url::Url> {
        url::Url::parse_with_params(&format!("{}/{path}", self.base), query)
            .map_err(|e| Error::invalid("adms.url", e.to_string()))
    }

    async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<String> {
        let resp = self
            .http
            .get(self.url(path, query)?)
            .send()
            .await
            .map_err(|e| Error::invalid("ADMS server", format!("GET {path}: {e}")))?;
        reply_text(path, resp).await
    }

    async fn post(&self, path: &str, query: &[(&str, String)], body: String) -> Result<String> {
        let resp = self
            .http
            .post(self.url(path, query)?)
            .header("Content-Type", "text/plain")
            .body(body)
            .send()
            .await
            .map_err(|e| Error::invalid("ADMS server", format!("POST {path}: {e}")))?;
        reply_text(path, resp).await
    }

    /// The handshake: reads the server's options and moves the cursor to its stamp.
    pub async fn handshake(&mut self) -> Result<()> {
        let body = self
            .get(
                "cdata",
                &[
                    ("SN", self.serial.clone()),
                    ("options", "all".into()),
                    ("pushver", "2.4.1".into()),
                    ("language", "69".into()),
                ],
            )
            .await?;
        let o = parse_options(&body)?;
        let head = self.store.last_record_seq()?;
        // The server's word wins: where it says it is, the kiosk re-sends from (a server that
        // lost data gets it again); a stamp beyond the chain is not believed.
        let at = o.stamp.min(head);
        if at != self.store.adms_sent()? {
            tracing::info!(
                server = o.stamp,
                cursor = at,
                "ADMS cursor set from the server's stamp"
            );
            self.store.set_adms_sent(at)?;
        }
        self.options = o;
        Ok(())
    }

    /// Uploads what the server does not have yet, batch by batch; each batch's cursor moves
    /// only after the server's `OK`.
    pub async fn upload(&mut self) -> Result<u64> {
        let mut sent = 0;
        loop {
            let after = self.store.adms_sent()?;
            let batch = self
                .store
                .accepted_after(after, self.cfg.batch_size as usize)?;
            let Some(last) = batch.last().map(|r| r.seq) else {
                break;
            };
            self.send_lines(&batch, Some(last)).await?;
            self.store.set_adms_sent(last)?;
            sent += batch.len() as u64;
            self.last_upload_ms = self.store.clock().wall_ms();
            tracing::info!(
                records = batch.len(),
                up_to = last,
                "ADMS upload acknowledged"
            );
        }
        Ok(sent)
    }

    async fn send_lines(&self, batch: &[Record], stamp: Option<u64>) -> Result<()> {
        let times = self.times();
        let body: String = batch.iter().map(|r| attlog_line(r, times)).collect();
        let mut q = vec![("SN", self.serial.clone()), ("table", "ATTLOG".into())];
        if let Some(s) = stamp {
            q.push(("Stamp", s.to_string()));
        }
        let reply = self.post("cdata", &q, body).await?;
        if reply.trim_start().starts_with("OK") {
            Ok(())
        } else {
            Err(Error::invalid(
                "ADMS server",
                format!(
                    "upload not acknowledged: {:?}",
                    reply.chars().take(80).collect::<String>()
                ),
            ))
        }
    }

    /// The heartbeat and command poll; answers each command. Returns how many it answered.
    pub async fn poll(&mut self) -> Result<u32> {
        let (users, records) = (
            self.store.zk_users()?.len(),
            self.store.accepted_count_after(0)?,
        );
        let info = format!(
            "Ver 6.60 Clockface {},{users},0,{records},,0,0,0",
            env!("CARGO_PKG_VERSION")
        );
        let body = self
            .get("getrequest", &[("SN", self.serial.clone()), ("INFO", info)])
            .await?;
        let mut answered = 0;
        for line in body.lines() {
            let Some(rest) = line.trim().strip_prefix("C:") else {
                continue;
            };
            let Some((id, command)) = rest.split_once(':') else {
                continue;
            };
            let (code, extra) = self.run_command(command.trim()).await;
            let cmd_name = command.split_whitespace().next().unwrap_or("");
            let result = format!("ID={id}&Return={code}&CMD={cmd_name}\n{extra}");
            self.post("devicecmd", &[("SN", self.serial.clone())], result)
                .await?;
            answered += 1;
        }
        Ok(answered)
    }

    /// Runs one server command: its return code and any result lines.
    async fn run_command(&mut self, command: &str) -> (i64, String) {
        let words: Vec<&str> = command.split_whitespace().collect();
        match words.as_slice() {
            ["INFO", ..] => {
                let (users, records) = (
                    self.store.zk_user_count().unwrap_or(0),
                    self.store.accepted_count_after(0).unwrap_or(0),
                );
                let info = format!(
                    "~DeviceName=Clockface\nMAC={}\nTransactionCount={records}\nUserCount={users}\nFWVersion=Ver 6.60 Clockface {}\nTimeZone={}\n",
                    super::zk::mac_address(),
                    env!("CARGO_PKG_VERSION"),
                    self.zone.name()
                );
                (0, info)
            }
            ["CHECK", ..] => match self.handshake().await {
                Ok(()) => (0, String::new()),
                Err(e) => {
                    tracing::warn!(error = %e, "ADMS CHECK: handshake failed");
                    (-1, String::new())
                }
            },
            ["LOG", ..] => match self.upload().await {
                Ok(_) => (0, String::new()),
                Err(_) => (-1, String::new()),
            },
            ["DATA", "QUERY", "ATTLOG", ..] => match self.resend(command).await {
                Ok(n) => (n as i64, String::new()),
                Err(e) => {
                    tracing::warn!(error = %e, "ADMS: ATTLOG query failed");
                    (-1, String::new())
                }
            },
            _ => {
                tracing::info!(
                    command = words.first().copied().unwrap_or(""),
                    "ADMS command not supported"
                );
                (-1002, String::new())
            }
        }
    }

    /// `DATA QUERY ATTLOG StartTime=…\tEndTime=…`: re-sends the accepted check-ins in that
    /// local time range (the cursor does not move). Returns how many.
    async fn resend(&self, command: &str) -> Result<u64> {
        let field = |name: &str| -> Option<NaiveDateTime> {
            let at = command.find(&format!("{name}="))? + name.len() + 1;
            let v = command[at..].get(..19)?;
            NaiveDateTime::parse_from_str(v, "%Y-%m-%d %H:%M:%S").ok()
        };
        let (Some(start), Some(end)) = (field("StartTime"), field("EndTime")) else {
            return Err(Error::invalid(
                "ATTLOG query",
                "needs StartTime= and EndTime=",
            ));
        };
        let times = self.times();
        let (Some(from), Some(until)) = (times.utc_ms(start), times.utc_ms(end)) else {
            return Err(Error::invalid("ATTLOG query", "a time does not exist here"));
        };
        let mut after = 0;
        let mut n = 0;
        loop {
            let page = self.store.accepted_after(after, 5000)?;
            let Some(last) = page.last().map(|r| r.seq) else {
                break;
            };
            after = last;
            let hits: Vec<Record> = page
                .into_iter()
                .filter(|r| r.wall_ms >= from && r.wall_ms <= until + 999)
                .collect();
            for chunk in hits.chunks(self.cfg.batch_size as usize) {
                self.send_lines(chunk, None).await?;
                n += chunk.len() as u64;
            }
        }
        Ok(n)
    }

    /// Whether an upload is due now: at once in real-time mode, else every `TransInterval`
    /// minutes or at a `TransTimes` minute.
    pub fn upload_due(&self) -> bool {
        if self.options.realtime {
            return true;
        }
        let now = self.store.clock().wall_ms();
        let minute = self.zone.local(now).num_seconds_from_midnight() / 60;
        now - self.last_upload_ms >= self.options.interval_minutes as i64 * 60_000
            || self.options.trans_times.contains(&minute)
    }

    /// One step: handshake when none succeeded yet, upload when due, then poll.
    pub async fn step(&mut self, handshaken: &mut bool) -> Result<Step> {
        if !*handshaken {
            self.handshake().await?;
            *handshaken = true;
        }
        let sent = if self.upload_due() {
            self.upload().await?
        } else {
            0
        };
        let commands = self.poll().await?;
        let waiting = self.store.accepted_count_after(self.store.adms_sent()?)?;
        Ok(Step {
            sent,
            waiting,
            commands,
        })
    }
}

async fn reply_text(path: &str, resp: reqwest::Response) -> Result<String> {
    let status = resp.status();
    let body = resp
        .text()
        .await
        .map_err(|e| Error::invalid("ADMS server", format!("{path}: reading the reply: {e}")))?;
    if !status.is_success() {
        return Err(Error::invalid(
            "ADMS server",
            format!(
                "{path}: HTTP {status}: {:?}",
                body.chars().take(80).collect::<String>()
            ),
        ));
    }
    Ok(body)
}

/// Runs the ADMS outbox until `stop`: steps every `Delay` seconds (at once when woken by a
/// check-in in real-time mode), backing off after errors up to `backoff_max_seconds`.
pub async fn run(mut a: Adms, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    let mut handshaken = false;
    let mut failures: u32 = 0;
    loop {
        if *stop.borrow() {
            break;
        }
        let delay = match a.step(&mut handshaken).await {
            Ok(_) => {
                failures = 0;
                Duration::from_secs(a.options.delay as u64)
            }
            Err(e) => {
                handshaken = false;
                failures += 1;
                let base = a.options.error_delay.min(a.cfg.backoff_max_seconds) as u64;
                let d = Duration::from_secs(
                    (base.max(1) << (failures - 1).min(6)).min(a.cfg.backoff_max_seconds as u64),
                );
                tracing::warn!(error = %e, failures, retry_in_s = d.as_secs(), "ADMS round failed; nothing is lost, it retries");
                d
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = wake.notified(), if a.options.realtime && failures == 0 => {}
            _ = stop.changed() => {}
        }
    }
}

/// Starts the ADMS outbox on its own thread with its own store connection.
pub fn spawn(
    opts: &StoreOptions,
    cfg: AdmsConfig,
    serial: String,
    zone: SiteZone,
    clock: Arc<dyn Clock>,
) -> Result<AdmsHandle> {
    let store = Store::open(opts, clock)?;
    let adms = Adms::new(store, cfg, serial, zone)?;
    crate::base::worker::Worker::spawn("adms", move |wake, stop| {
        super::background_priority();
        run(adms, wake, stop)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_options_are_read_and_garbage_is_refused() {
        let o = parse_options(
            "GET OPTION FROM: CF1\nATTLOGStamp=412\nTimeZone=8\nDelay=5\nRealtime=0\nTransInterval=2\nTransTimes=00:00;14:05\nErrorDelay=7\n",
        )
        .unwrap();
        assert_eq!(o.stamp, 412);
        assert_eq!(o.offset_minutes, Some(480));
        assert_eq!(
            (o.delay, o.error_delay, o.realtime, o.interval_minutes),
            (5, 7, false, 2)
        );
        assert_eq!(o.trans_times, vec![0, 14 * 60 + 5]);
        assert_eq!(parse_options("ATTLOGStamp=None\n").unwrap().stamp, 0);
        assert!(parse_options("<html>oops</html>").is_err());
    }
}
