//! The RFC 822 date qmail writes in Received and Date fields
//! (`22 Nov 2026 07:05:28 -0000`, always UTC, day without leading zero).

use std::time::{SystemTime, UNIX_EPOCH};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Year, month (1-12) and day of a count of days since 1970-01-01.
fn civil(days: i64) -> (i64, usize, i64) {
    // Howard Hinnant's days-to-civil algorithm (public domain arithmetic).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m as usize, d)
}

/// `D Mon YYYY HH:MM:SS -0000` for `secs` since the epoch, without newline.
pub fn fmt(secs: i64) -> String {
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!(
        "{d} {} {y} {:02}:{:02}:{:02} -0000",
        MONTHS[m - 1],
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_like_date822fmt() {
        assert_eq!(super::fmt(0), "1 Jan 1970 00:00:00 -0000");
        assert_eq!(super::fmt(811_140_414), "15 Sep 1995 04:46:54 -0000");
        assert_eq!(super::fmt(1_795_331_128), "22 Nov 2026 07:05:28 -0000");
    }
}
