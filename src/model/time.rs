//! UTC civil dates and Unix seconds (proleptic Gregorian, Howard Hinnant's algorithms):
//! the one conversion every stage that reads or writes a date uses (flow-log windows,
//! `--at`, report times, request signatures).

/// Days since 1970-01-01 of a civil date (negative before it).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date and time of `secs` since the Unix epoch: year, month, day, hour, minute,
/// second.
pub fn civil(secs: i64) -> (i64, i64, i64, i64, i64, i64) {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rem / 3600, rem / 60 % 60, rem % 60)
}

/// Days in `month` of `year`.
pub fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Seconds since the Unix epoch of a date and time, `None` unless it is one (a month of
/// 1 to 12, a day of that month, hours, minutes, and seconds up to a leap second).
pub fn seconds(date: [i64; 3], time: [i64; 3]) -> Option<i64> {
    let [y, mo, d] = date;
    let [h, mi, s] = time;
    let ok = (1..=12).contains(&mo)
        && (1..=days_in_month(y, mo)).contains(&d)
        && (0..24).contains(&h)
        && (0..60).contains(&mi)
        && (0..=60).contains(&s);
    ok.then(|| days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Round trips over four centuries either side of the epoch, leap days included, and
    /// dates that are none.
    #[test]
    fn civil_and_seconds_round_trip_and_refuse_non_dates() {
        for secs in (-12_622_780_800i64..12_622_780_800).step_by(86_400 * 7 + 3_601) {
            let (y, mo, d, h, mi, s) = civil(secs);
            assert_eq!(seconds([y, mo, d], [h, mi, s]), Some(secs));
        }
        assert_eq!(seconds([1970, 1, 1], [0, 0, 0]), Some(0));
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(seconds([1900, 2, 29], [0, 0, 0]), None);
        assert_eq!(seconds([2026, 4, 31], [0, 0, 0]), None);
        assert_eq!(seconds([2026, 13, 1], [0, 0, 0]), None);
        assert_eq!(seconds([2026, 12, 7], [24, 0, 0]), None);
    }
}
