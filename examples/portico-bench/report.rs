use std::time::Duration;

use hdrhistogram::Histogram;

/// One measurement: a workload at one concurrency.
pub struct Report {
    pub connections: usize,
    pub elapsed: Duration,
    pub ok: u64,
    pub errors: u64,
    pub latency_us: Histogram<u64>,
    pub rss_kib: Option<u64>,
}

impl Report {
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    fn ms(&self, quantile: f64) -> f64 {
        self.latency_us.value_at_quantile(quantile) as f64 / 1000.0
    }

    pub fn header() -> &'static str {
        "connections\treq/s\tp50 ms\tp90 ms\tp99 ms\terrors\tserver RSS MiB"
    }

    pub fn row(&self) -> String {
        format!(
            "{}\t{:.0}\t{:.2}\t{:.2}\t{:.2}\t{}\t{}",
            self.connections,
            self.throughput(),
            self.ms(0.50),
            self.ms(0.90),
            self.ms(0.99),
            self.errors,
            self.rss_kib
                .map_or("-".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0)),
        )
    }
}

/// Resident set size of a process on this machine, from /proc.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}
