//! dnscache's machine-readable statistics: counters the event loop keeps
//! and, when the operator opts in with `STATSFILE`, a file holding them in
//! the Prometheus text format, rewritten atomically (temporary file, then
//! rename) at most once a second and only after something changed.
//!
//! A file rather than a socket because dnscache runs chrooted as its own
//! user: a file inside ROOT needs no new listening port, no access rules and
//! no extra work in the loop, and every monitoring system can read it
//! (node_exporter's textfile collector, a cron job, `cat`). Without
//! STATSFILE nothing is written and dnscache behaves as djbdns does.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The least time between two rewrites of the file.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Totals since start.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counters {
    pub udp_queries: u64,
    pub tcp_queries: u64,
    /// Packets and connections from addresses `root/ip/` does not allow.
    pub refused_clients: u64,
    /// Client queries dropped for room (djbdns' `drop` lines).
    pub dropped: u64,
    pub noerror: u64,
    pub nxdomain: u64,
    pub servfail: u64,
    /// UDP answers cut to the question with TC set.
    pub truncated: u64,
    /// Upstream questions started (identical ones merged count once).
    pub upstream: u64,
}

/// What the loop knows at the moment of writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gauges {
    pub active_udp: usize,
    pub active_tcp: usize,
    pub flights: usize,
    pub cache_used: usize,
    pub cache_size: u64,
    pub cache_motion: u64,
}

/// The opted-in statistics file and when it was last written.
pub struct StatsFile {
    path: PathBuf,
    tmp: PathBuf,
    started: u64,
    last: Option<Instant>,
    dirty: bool,
}

impl StatsFile {
    /// From $STATSFILE (relative to ROOT, which dnscache has chdir'd or
    /// chrooted to), or None when it is unset or empty.
    pub fn from_env() -> Option<StatsFile> {
        let path = PathBuf::from(std::env::var_os("STATSFILE").filter(|v| !v.is_empty())?);
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Some(StatsFile {
            path,
            tmp: tmp.into(),
            started,
            last: None,
            dirty: true,
        })
    }

    /// Something the file reports has changed.
    pub fn touch(&mut self) {
        self.dirty = true;
    }

    /// When the loop must wake to write pending changes, if any are.
    pub fn deadline(&self) -> Option<Instant> {
        if !self.dirty {
            return None;
        }
        Some(self.last.map_or_else(Instant::now, |l| l + INTERVAL))
    }

    /// Write the file if changes are pending and the interval has passed.
    /// A failed write (full disk, missing directory) is retried at the next
    /// interval; it never disturbs the service.
    pub fn maybe_write(&mut self, now: Instant, c: &Counters, g: &Gauges) {
        if !self.dirty || self.last.is_some_and(|l| now < l + INTERVAL) {
            return;
        }
        self.last = Some(now);
        let text = render(c, g, self.started);
        let ok = std::fs::write(&self.tmp, text).is_ok()
            && std::fs::rename(&self.tmp, &self.path).is_ok();
        self.dirty = !ok;
    }
}

/// The statistics in the Prometheus text exposition format.
pub fn render(c: &Counters, g: &Gauges, started: u64) -> String {
    let mut s = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
        let _ = writeln!(s, "# HELP dnscache_{name} {help}");
        let _ = writeln!(s, "# TYPE dnscache_{name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(s, "dnscache_{name}{labels} {v}");
        }
    };
    metric(
        "queries_total",
        "counter",
        "Client queries accepted.",
        &[
            ("{transport=\"udp\"}", c.udp_queries),
            ("{transport=\"tcp\"}", c.tcp_queries),
        ],
    );
    metric(
        "responses_total",
        "counter",
        "Answers sent to clients by response code.",
        &[
            ("{rcode=\"NOERROR\"}", c.noerror),
            ("{rcode=\"NXDOMAIN\"}", c.nxdomain),
            ("{rcode=\"SERVFAIL\"}", c.servfail),
        ],
    );
    metric(
        "truncated_total",
        "counter",
        "UDP answers sent truncated.",
        &[("", c.truncated)],
    );
    metric(
        "refused_clients_total",
        "counter",
        "Packets and connections from addresses not in root/ip.",
        &[("", c.refused_clients)],
    );
    metric(
        "dropped_total",
        "counter",
        "Client queries dropped for room.",
        &[("", c.dropped)],
    );
    metric(
        "upstream_queries_total",
        "counter",
        "Upstream questions started.",
        &[("", c.upstream)],
    );
    metric(
        "active_queries",
        "gauge",
        "Client queries in progress.",
        &[
            ("{transport=\"udp\"}", g.active_udp as u64),
            ("{transport=\"tcp\"}", g.active_tcp as u64),
        ],
    );
    metric(
        "upstream_in_flight",
        "gauge",
        "Upstream questions awaiting an answer.",
        &[("", g.flights as u64)],
    );
    metric(
        "cache_used_bytes",
        "gauge",
        "Bytes charged to cached entries.",
        &[("", g.cache_used as u64)],
    );
    metric(
        "cache_size_bytes",
        "gauge",
        "The cache's budget (CACHESIZE).",
        &[("", g.cache_size)],
    );
    metric(
        "cache_motion_bytes_total",
        "counter",
        "Bytes written to the cache (the stats line's motion).",
        &[("", g.cache_motion)],
    );
    metric(
        "start_time_seconds",
        "gauge",
        "When this dnscache started, in seconds since 1970.",
        &[("", started)],
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauges() -> Gauges {
        Gauges {
            active_udp: 2,
            active_tcp: 1,
            flights: 3,
            cache_used: 4000,
            cache_size: 1_000_000,
            cache_motion: 5000,
        }
    }

    #[test]
    fn render_is_prometheus_text() {
        let c = Counters {
            udp_queries: 7,
            nxdomain: 2,
            ..Counters::default()
        };
        let text = render(&c, &gauges(), 42);
        assert!(text.contains("# TYPE dnscache_queries_total counter\n"));
        assert!(text.contains("dnscache_queries_total{transport=\"udp\"} 7\n"));
        assert!(text.contains("dnscache_responses_total{rcode=\"NXDOMAIN\"} 2\n"));
        assert!(text.contains("dnscache_cache_used_bytes 4000\n"));
        assert!(text.contains("dnscache_start_time_seconds 42\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let mut f = line.rsplitn(2, ' ');
            assert!(f.next().unwrap().parse::<u64>().is_ok(), "{line}");
            assert!(f.next().unwrap().starts_with("dnscache_"), "{line}");
        }
    }

    #[test]
    fn written_at_most_once_an_interval_and_only_when_changed() {
        let dir = std::env::temp_dir().join(format!("dnscache-stats-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stats.prom");
        let mut f = StatsFile {
            path: path.clone(),
            tmp: dir.join("stats.prom.tmp"),
            started: 1,
            last: None,
            dirty: true,
        };
        let now = Instant::now();
        let mut c = Counters::default();
        f.maybe_write(now, &c, &gauges());
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("{transport=\"udp\"} 0\n"));
        assert_eq!(f.deadline(), None, "nothing pending after a write");
        c.udp_queries = 1;
        f.touch();
        f.maybe_write(now + Duration::from_millis(10), &c, &gauges());
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("{transport=\"udp\"} 0\n"),
            "too soon"
        );
        assert_eq!(f.deadline(), Some(now + INTERVAL));
        f.maybe_write(now + INTERVAL, &c, &gauges());
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("{transport=\"udp\"} 1\n"));
        assert!(!dir.join("stats.prom.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
