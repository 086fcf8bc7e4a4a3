//! Time values in `ha.cf` (`keepalive`, `deadtime`, `warntime`, `initdead`,
//! `deadping`, `conn_logd_time`) and in heartbeatd's `agent_timeout`.
//!
//! heartbeat 3.0.6 (cluster-glue's `cl_get_msec`) reads:
//!
//! * a plain number: seconds, fractions allowed (`1`, `1.5`, `0.2`, `.5`);
//! * a number followed by `ms` (or `msec`): milliseconds (`200ms`);
//! * a number followed by `us` (or `usec`): microseconds (`500000us`);
//!
//! units are case-insensitive, the result is rounded to whole milliseconds
//! (half up: `499us` is 0 ms, `501us` is 1 ms) and anything else is an error,
//! notably `2s` — `s` is not a unit there. `ha.cf` splits values on blanks
//! and commas, so `2 s` is two values and `s` alone is an error too.
//!
//! Deliberately stricter than 3.0.6 (which uses `atof` and compares only the
//! first two letters of the unit): `1.2.3`, `.`, and suffixes that merely
//! start with `ms`/`us` (`200msfoo`) are errors here instead of being read
//! as `1.2`, `0` and `200ms`.

use std::time::Duration;

/// Parses a heartbeat time value (see the module documentation).
pub fn parse_time(s: &str) -> Result<Duration, String> {
    let bad = |why: &str| {
        format!(
            "invalid time {s:?}: {why}; write seconds (1, 1.5, 0.2), \
             milliseconds (200ms) or microseconds (500000us)"
        )
    };
    if s.is_empty() {
        return Err(bad("empty value"));
    }
    if s.chars().any(char::is_whitespace) {
        return Err(bad("no blanks allowed inside a time"));
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    // microseconds per unit of the number
    let per_unit: u128 = match unit.to_ascii_lowercase().as_str() {
        "" => 1_000_000,
        "ms" | "msec" => 1_000,
        "us" | "usec" => 1,
        "s" | "sec" | "secs" | "seconds" => {
            return Err(bad(
                "heartbeat has no \"s\" unit (a plain number is seconds)",
            ))
        }
        _ => return Err(bad(&format!("unknown unit {unit:?}"))),
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if frac.contains('.') {
        return Err(bad("more than one decimal point"));
    }
    if int.is_empty() && frac.is_empty() {
        return Err(bad("no digits"));
    }
    // value = int.frac * per_unit microseconds, computed exactly: all digits
    // as one integer, scaled down by 10^len(frac).
    let digits = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 24 || frac.len() > 24 {
        return Err(bad("too large or too precise"));
    }
    let mantissa: u128 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| bad("not a number"))?
    };
    let denom = 10u128.pow(frac.len() as u32) * 1000;
    // whole milliseconds, rounded half up as 3.0.6 does (`+ 0.5`, truncate)
    let ms = (mantissa * per_unit + denom / 2) / denom;
    let ms = u64::try_from(ms)
        .ok()
        .filter(|ms| *ms < u64::MAX / 2)
        .ok_or_else(|| bad("too large"))?;
    Ok(Duration::from_millis(ms))
}

/// Formats a duration the way `--check` and messages show times: whole
/// milliseconds (`1500ms`).
pub(crate) fn fmt_ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> u128 {
        parse_time(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .as_millis()
    }

    #[test]
    fn seconds_with_fractions() {
        assert_eq!(ms("1"), 1000);
        assert_eq!(ms("30"), 30_000);
        assert_eq!(ms("1.5"), 1500);
        assert_eq!(ms("0.2"), 200);
        assert_eq!(ms(".5"), 500);
        assert_eq!(ms("2."), 2000);
        assert_eq!(ms("0.001"), 1);
        assert_eq!(ms("0"), 0);
        assert_eq!(ms("007"), 7000);
    }

    #[test]
    fn milli_and_micro_seconds() {
        assert_eq!(ms("200ms"), 200);
        assert_eq!(ms("200MS"), 200);
        assert_eq!(ms("200msec"), 200);
        assert_eq!(ms("1.5ms"), 2); // rounded half up like 3.0.6
        assert_eq!(ms("500000us"), 500);
        assert_eq!(ms("500000usec"), 500);
        assert_eq!(ms("1000us"), 1);
        assert_eq!(ms("499us"), 0);
        assert_eq!(ms("500us"), 1);
        assert_eq!(ms("501us"), 1);
        assert_eq!(ms("100000US"), 100);
    }

    #[test]
    fn rejected_like_3_0_6() {
        for bad in [
            "2s", "2S", "s", "ms", "", "-1", "+1", "1e3", "abc", "2 s", " 2", "2sec",
        ] {
            assert!(parse_time(bad).is_err(), "{bad:?} must be rejected");
        }
        let e = parse_time("2s").unwrap_err();
        assert!(e.contains("\"s\" unit"), "{e}");
    }

    #[test]
    fn rejected_where_3_0_6_is_lax() {
        for bad in [
            "1.2.3",
            ".",
            "200msfoo",
            "1usx",
            "99999999999999999999999999999999999",
        ] {
            assert!(parse_time(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn fmt_is_milliseconds() {
        assert_eq!(fmt_ms(Duration::from_millis(1500)), "1500ms");
    }
}
