//! The site's time zone. Records keep UTC; every time a person or an integration reads
//! (screen, exports, ZK, ADMS, the hub's timesheet) is local to the site, with the offset where
//! the format can carry one. IANA names come from the tz database bundled in the binary, so a
//! kiosk image without `tzdata` still knows `Asia/Shanghai`.

use chrono::{DateTime, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

use crate::base::error::{Error, Result};

/// An IANA time zone, with the name it was given by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SiteZone {
    tz: Tz,
}

impl Default for SiteZone {
    fn default() -> Self {
        SiteZone { tz: Tz::UTC }
    }
}

impl SiteZone {
    /// A zone by its IANA name (`Europe/Berlin`); an unknown name is an error naming it.
    pub fn parse(name: &str) -> Result<SiteZone> {
        name.trim()
            .parse::<Tz>()
            .map(|tz| SiteZone { tz })
            .map_err(|_| {
                Error::invalid(
                    "time_zone",
                    format!("{name:?} is not an IANA time zone name (e.g. \"Asia/Shanghai\")"),
                )
            })
    }

    /// The configured zone, or the system's when the setting is empty.
    pub fn from_config(name: &str) -> Result<SiteZone> {
        if name.trim().is_empty() {
            Ok(SiteZone::system())
        } else {
            SiteZone::parse(name)
        }
    }

    /// The system's zone: `$TZ`, then `/etc/timezone`, then the target of `/etc/localtime`;
    /// UTC when none names a known zone.
    pub fn system() -> SiteZone {
        let from_env = std::env::var("TZ")
            .ok()
            .map(|v| v.trim_start_matches(':').to_string());
        let from_file = || {
            std::fs::read_to_string("/etc/timezone")
                .ok()
                .map(|s| s.trim().to_string())
        };
        let from_link = || {
            std::fs::read_link("/etc/localtime").ok().and_then(|p| {
                let s = p.to_string_lossy().to_string();
                s.split_once("zoneinfo/").map(|(_, name)| name.to_string())
            })
        };
        [from_env, from_file(), from_link()]
            .into_iter()
            .flatten()
            .find_map(|name| SiteZone::parse(&name).ok())
            .unwrap_or_default()
    }

    /// The IANA name.
    pub fn name(&self) -> &'static str {
        self.tz.name()
    }

    /// Unix milliseconds as a local date and time in this zone.
    pub fn local(&self, ms: i64) -> DateTime<Tz> {
        Utc.timestamp_millis_opt(ms)
            .single()
            .unwrap_or_default()
            .with_timezone(&self.tz)
    }

    /// RFC 3339 local time with milliseconds and the offset: `2026-12-02T18:30:00.123+08:00`.
    pub fn rfc3339_ms(&self, ms: i64) -> String {
        self.local(ms)
            .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
            .to_string()
    }

    /// The offset from UTC at `ms`, in seconds (east positive).
    pub fn offset_seconds(&self, ms: i64) -> i32 {
        self.local(ms).offset().fix().local_minus_utc()
    }

    /// The UTC instant of a wall-clock time in this zone, for protocols that carry no zone
    /// (ZK set-time). In a gap (spring forward) it is refused; in an overlap the earlier
    /// instant is taken.
    pub fn from_local(&self, t: NaiveDateTime) -> Result<i64> {
        self.tz
            .from_local_datetime(&t)
            .earliest()
            .map(|d| d.timestamp_millis())
            .ok_or_else(|| {
                Error::invalid(
                    "local time",
                    format!("{t} does not exist in {} (a clock change)", self.name()),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_carries_the_offset_and_round_trips() {
        let z = SiteZone::parse("Asia/Shanghai").unwrap();
        // 2026-12-02 10:00:00 UTC is 18:00 in Shanghai (UTC+8, no daylight saving).
        let ms = 1_796_205_600_000;
        assert_eq!(z.rfc3339_ms(ms), "2026-12-02T18:00:00.000+08:00");
        assert_eq!(z.offset_seconds(ms), 8 * 3600);
        assert_eq!(z.from_local(z.local(ms).naive_local()).unwrap(), ms);
        let berlin = SiteZone::parse("Europe/Berlin").unwrap();
        // Summer and winter differ by an hour.
        assert_eq!(berlin.offset_seconds(1_782_000_000_000), 7200);
        assert_eq!(berlin.offset_seconds(ms), 3600);
        // 02:30 on the spring-forward night does not exist in Berlin.
        let gap = chrono::NaiveDate::from_ymd_opt(2026, 3, 29)
            .unwrap()
            .and_hms_opt(2, 30, 0)
            .unwrap();
        assert!(berlin.from_local(gap).is_err());
    }

    #[test]
    fn an_unknown_zone_is_named() {
        let err = SiteZone::parse("Mars/Olympus").unwrap_err().to_string();
        assert!(err.contains("Mars/Olympus"), "{err}");
        assert!(SiteZone::from_config("").is_ok());
    }
}
