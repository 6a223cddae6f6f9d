//! Cron schedules as CronJobs read them (`robfig/cron/v3` `ParseStandard`, which
//! kube-controller-manager uses): five fields (minute, hour, day of month, month, day of week)
//! with lists, ranges, steps and `JAN`/`SUN` names, `?` as `*`, 7 as Sunday; the `@yearly`,
//! `@monthly`, `@weekly`, `@daily`, `@hourly` descriptors and `@every <duration>`; an optional
//! `CRON_TZ=`/`TZ=` prefix. Day of month and day of week combine with OR when both are
//! restricted, with AND when either is `*` (Vixie cron, as robfig does).
//!
//! Written here rather than taken from a crate: it is small, and the OR/AND rule, the `?`
//! and `@every` forms and upstream's error wording are what CronJobs depend on.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// A parsed schedule.
#[derive(Clone, Debug)]
pub struct Schedule {
    kind: Kind,
    /// From a `CRON_TZ=`/`TZ=` prefix; overrides the CronJob's `timeZone`.
    pub tz: Option<TimeZone>,
}

#[derive(Clone, Debug)]
enum Kind {
    Fields {
        minute: u64,
        hour: u64,
        dom: u64,
        month: u64,
        dow: u64,
        /// Day of month or day of week was `*`/`?`: the two combine with AND.
        dom_star: bool,
        dow_star: bool,
    },
    Every(SignedDuration),
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn named(s: &str, names: &[&str], first: u32) -> Option<u32> {
    let l = s.to_ascii_lowercase();
    names.iter().position(|n| *n == l).map(|i| i as u32 + first)
}

fn number(s: &str, names: &[&str], first: u32) -> Result<u32, String> {
    if let Some(v) = named(s, names, first) {
        return Ok(v);
    }
    s.parse::<u32>().map_err(|_| {
        format!("failed to parse int from {s}: strconv.Atoi: parsing {s:?}: invalid syntax")
    })
}

/// One field as a bit set; the bool is robfig's star bit (`*` or `?` without a step).
fn field(expr: &str, lo: u32, hi: u32, names: &[&str], first: u32) -> Result<(u64, bool), String> {
    let mut bits = 0u64;
    let mut star = false;
    for part in expr.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let s: u32 = s.parse().map_err(|_| {
                    format!(
                        "failed to parse int from {s}: strconv.Atoi: parsing {s:?}: invalid syntax"
                    )
                })?;
                (r, Some(s))
            }
            None => (part, None),
        };
        let (start, end) = if range == "*" || range == "?" {
            if step.is_none() {
                star = true;
            }
            (lo, hi)
        } else {
            match range.split_once('-') {
                Some((a, b)) => (number(a, names, first)?, number(b, names, first)?),
                None => {
                    let v = number(range, names, first)?;
                    // `5/10` means 5 to the end by 10.
                    (v, if step.is_some() { hi } else { v })
                }
            }
        };
        if start < lo {
            return Err(format!(
                "beginning of range ({start}) below minimum ({lo}): {part}"
            ));
        }
        if end > hi {
            return Err(format!("end of range ({end}) above maximum ({hi}): {part}"));
        }
        if start > end {
            return Err(format!(
                "beginning of range ({start}) beyond end of range ({end}): {part}"
            ));
        }
        let step = step.unwrap_or(1);
        if step == 0 {
            return Err(format!("step of range should be a positive number: {part}"));
        }
        let mut v = start;
        while v <= end {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok((bits, star))
}

/// Parses a standard spec; errors read as robfig's.
pub fn parse(spec: &str) -> Result<Schedule, String> {
    let spec = spec.trim();
    let (tz, rest) = match spec
        .strip_prefix("CRON_TZ=")
        .or_else(|| spec.strip_prefix("TZ="))
    {
        Some(r) => {
            let (name, rest) = r.split_once(char::is_whitespace).unwrap_or((r, ""));
            let tz = TimeZone::get(name)
                .map_err(|_| format!("provided bad location {name}: unknown time zone {name}"))?;
            (Some(tz), rest.trim())
        }
        None => (None, spec),
    };
    if rest.is_empty() {
        return Err("empty spec string".into());
    }
    if let Some(d) = rest.strip_prefix('@') {
        let fields = match d {
            "yearly" | "annually" => "0 0 1 1 *",
            "monthly" => "0 0 1 * *",
            "weekly" => "0 0 * * 0",
            "daily" | "midnight" => "0 0 * * *",
            "hourly" => "0 * * * *",
            _ => {
                if let Some(dur) = d.strip_prefix("every ") {
                    let dur: SignedDuration = parse_go_duration(dur.trim())
                        .ok_or_else(|| format!("failed to parse duration {rest}"))?;
                    // robfig rounds below a second up to a second.
                    let dur = dur.max(SignedDuration::from_secs(1));
                    return Ok(Schedule {
                        kind: Kind::Every(dur),
                        tz,
                    });
                }
                return Err(format!("unrecognized descriptor: {rest}"));
            }
        };
        return parse_fields(fields, tz);
    }
    parse_fields(rest, tz)
}

fn parse_fields(s: &str, tz: Option<TimeZone>) -> Result<Schedule, String> {
    let f: Vec<&str> = s.split_whitespace().collect();
    if f.len() != 5 {
        return Err(format!("expected exactly 5 fields, found {}: {s}", f.len()));
    }
    let (minute, _) = field(f[0], 0, 59, &[], 0)?;
    let (hour, _) = field(f[1], 0, 23, &[], 0)?;
    let (dom, dom_star) = field(f[2], 1, 31, &[], 0)?;
    let (month, _) = field(f[3], 1, 12, &MONTHS, 1)?;
    let (mut dow, dow_star) = field(f[4], 0, 7, &DAYS, 0)?;
    if dow & (1 << 7) != 0 {
        dow |= 1;
    }
    Ok(Schedule {
        kind: Kind::Fields {
            minute,
            hour,
            dom,
            month,
            dow,
            dom_star,
            dow_star,
        },
        tz,
    })
}

/// Go's `time.ParseDuration` for the units cron specs use (`1h30m`, `90s`, `1.5h`).
fn parse_go_duration(s: &str) -> Option<SignedDuration> {
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .filter(|n| *n > 0)?;
        let v: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let secs = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += v * secs;
        rest = &rest[u..];
    }
    SignedDuration::try_from_secs_f64(total).ok()
}

impl Schedule {
    /// The first activation strictly after `after`, in `tz` (the prefix's zone wins); `None` when
    /// none falls within five years (`0 0 30 2 *`).
    pub fn next(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let tz = self.tz.as_ref().unwrap_or(tz);
        match &self.kind {
            Kind::Every(d) => {
                // robfig: the next whole second after `after + d`.
                let t = after.checked_add(*d).ok()?;
                let secs = t.as_second();
                Timestamp::from_second(secs).ok()
            }
            Kind::Fields {
                minute,
                hour,
                dom,
                month,
                dow,
                dom_star,
                dow_star,
            } => {
                let start = after.to_zoned(tz.clone()).datetime();
                let start = DateTime::new(
                    start.year(),
                    start.month(),
                    start.day(),
                    start.hour(),
                    start.minute(),
                    0,
                    0,
                )
                .ok()?
                .checked_add(SignedDuration::from_secs(60))
                .ok()?;
                let mut day = start.date();
                for _ in 0..(366 * 5) {
                    let m_ok = month & (1 << day.month()) != 0;
                    let d_ok = dom & (1 << day.day()) != 0;
                    let w_ok = dow & (1 << day.weekday().to_sunday_zero_offset()) != 0;
                    let day_ok = if *dom_star || *dow_star {
                        d_ok && w_ok
                    } else {
                        d_ok || w_ok
                    };
                    if m_ok && day_ok {
                        for h in 0..24i8 {
                            if hour & (1 << h) == 0 {
                                continue;
                            }
                            for mi in 0..60i8 {
                                if minute & (1 << mi) == 0 {
                                    continue;
                                }
                                let dt = day.at(h, mi, 0, 0);
                                if dt < start {
                                    continue;
                                }
                                // A time skipped by a DST jump runs at the shifted instant.
                                let ts = tz.to_ambiguous_timestamp(dt).compatible().ok()?;
                                if ts > after {
                                    return Some(ts);
                                }
                            }
                        }
                    }
                    day = day.tomorrow().ok()?;
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn nexts(spec: &str, from: &str, n: usize) -> Vec<String> {
        let s = parse(spec).unwrap();
        let mut at = t(from);
        (0..n)
            .map(|_| {
                at = s.next(at, &TimeZone::UTC).unwrap();
                at.to_string()
            })
            .collect()
    }

    #[test]
    fn fields_ranges_steps_and_names() {
        assert_eq!(
            nexts("*/15 * * * *", "2026-01-01T00:00:00Z", 3),
            [
                "2026-01-01T00:15:00Z",
                "2026-01-01T00:30:00Z",
                "2026-01-01T00:45:00Z"
            ]
        );
        assert_eq!(
            nexts("30 9-10 * JAN-feb MON,fri", "2026-01-01T00:00:00Z", 3),
            [
                "2026-01-02T09:30:00Z",
                "2026-01-02T10:30:00Z",
                "2026-01-05T09:30:00Z"
            ]
        );
        assert_eq!(
            nexts("0 0 * * 7", "2026-01-01T00:00:00Z", 1),
            ["2026-01-04T00:00:00Z"]
        );
        assert_eq!(nexts("5/20 * * * *", "2026-01-01T00:00:00Z", 3).len(), 3);
        assert_eq!(
            nexts("5/20 * * * *", "2026-01-01T00:00:00Z", 3),
            [
                "2026-01-01T00:05:00Z",
                "2026-01-01T00:25:00Z",
                "2026-01-01T00:45:00Z"
            ]
        );
    }

    #[test]
    fn day_of_month_or_day_of_week_as_vixie_cron() {
        // Both restricted: OR (the 1st, and every Monday).
        assert_eq!(
            nexts("0 0 1 * MON", "2026-11-29T00:00:00Z", 3),
            [
                "2026-11-30T00:00:00Z",
                "2026-12-01T00:00:00Z",
                "2026-12-07T00:00:00Z"
            ]
        );
        // One is `?`: AND.
        assert_eq!(
            nexts("0 0 ? * MON", "2026-11-29T00:00:00Z", 1),
            ["2026-11-30T00:00:00Z"]
        );
    }

    #[test]
    fn descriptors_every_and_time_zones() {
        assert_eq!(
            nexts("@hourly", "2026-01-01T00:10:00Z", 1),
            ["2026-01-01T01:00:00Z"]
        );
        assert_eq!(
            nexts("@monthly", "2026-01-01T00:00:00Z", 1),
            ["2026-02-01T00:00:00Z"]
        );
        assert_eq!(
            nexts("@every 90s", "2026-01-01T00:00:00Z", 1),
            ["2026-01-01T00:01:30Z"]
        );
        // 09:00 in New York is 14:00 UTC in winter.
        assert_eq!(
            nexts(
                "CRON_TZ=America/New_York 0 9 * * *",
                "2026-01-01T00:00:00Z",
                1
            ),
            ["2026-01-01T14:00:00Z"]
        );
        let s = parse("0 9 * * *").unwrap();
        let ny = TimeZone::get("America/New_York").unwrap();
        assert_eq!(
            s.next(t("2026-07-01T00:00:00Z"), &ny).unwrap().to_string(),
            "2026-07-01T13:00:00Z"
        );
        assert!(
            parse("0 0 30 2 *")
                .unwrap()
                .next(t("2026-01-01T00:00:00Z"), &TimeZone::UTC)
                .is_none()
        );
    }

    #[test]
    fn errors_read_as_upstream() {
        assert_eq!(
            parse("* * * *").unwrap_err(),
            "expected exactly 5 fields, found 4: * * * *"
        );
        assert_eq!(
            parse("61 * * * *").unwrap_err(),
            "end of range (61) above maximum (59): 61"
        );
        assert_eq!(
            parse("@fortnightly").unwrap_err(),
            "unrecognized descriptor: @fortnightly"
        );
        assert!(
            parse("CRON_TZ=Mars/Base 0 * * * *")
                .unwrap_err()
                .contains("bad location")
        );
        assert!(
            parse("x * * * *")
                .unwrap_err()
                .starts_with("failed to parse int from x")
        );
        assert_eq!(parse("").unwrap_err(), "empty spec string");
    }
}
