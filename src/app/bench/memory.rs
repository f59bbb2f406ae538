//! A process's resident memory as benches read it from /proc (Linux): now, the peak, and
//! whether a series of readings stays flat.

use anyhow::Context;

/// Resident memory of a process (KiB): now, and the peak so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Memory {
    pub rss_kib: u64,
    pub peak_kib: u64,
    /// The anonymous part of the RSS now: what the process allocated itself. The rest is
    /// file-backed, mostly the binary's code, shared with the page cache: how much of it is
    /// mapped depends on what the page cache holds (the kernel maps cached neighbours of each
    /// page a process touches), so the same binary doing the same work shows a few MiB more or
    /// less of it from one run to the next.
    pub anonymous_kib: u64,
}

impl Memory {
    /// Of process `pid` (a number, or `self`), from /proc/PID/status.
    pub fn of_process(pid: &str) -> anyhow::Result<Self> {
        let status =
            std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading a process's /proc status")?;
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .with_context(|| format!("{name} in /proc status"))
        };
        Ok(Memory { rss_kib: field("VmRSS:")?, peak_kib: field("VmHWM:")?, anonymous_kib: field("RssAnon:")? })
    }

    /// Starts this process's peak (VmHWM) again from its current RSS, so that what a bench
    /// measures next is not hidden by what it prepared before.
    pub fn reset_own_peak() -> anyhow::Result<()> {
        std::fs::write("/proc/self/clear_refs", "5").context("resetting the peak RSS (/proc/self/clear_refs)")
    }
}

/// MiB, from KiB.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Whether RSS readings taken along a run stay flat: the second half of the run may raise
/// the highest reading of the first half by at most 5 % of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flatness {
    /// How much the second half raised the highest reading (MiB).
    pub growth_mib: f64,
    pub flat: bool,
}

impl Flatness {
    pub fn of(rss_kib: &[u64]) -> Self {
        let half = rss_kib.len() / 2;
        let first = rss_kib[..half.max(1).min(rss_kib.len())].iter().copied().max().unwrap_or(0);
        let second = rss_kib[half..].iter().copied().max().unwrap_or(0);
        let growth_mib = mib(second.saturating_sub(first));
        Self { growth_mib, flat: growth_mib <= 0.05 * mib(first) }
    }

    pub fn verdict(&self) -> &'static str {
        if self.flat { "flat" } else { "growing" }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_allows_five_percent_over_the_first_half() {
        assert!(Flatness::of(&[100_000, 104_000, 103_000, 104_900]).flat);
        let growing = Flatness::of(&[100_000, 100_000, 100_000, 110_000]);
        assert!(!growing.flat);
        assert!((growing.growth_mib - 10_000.0 / 1024.0).abs() < 1e-9);
        assert!(Flatness::of(&[50_000]).flat);
    }

    #[test]
    fn reads_this_process() {
        let own = Memory::of_process("self").expect("/proc/self/status");
        assert!(own.rss_kib > 0 && own.peak_kib >= own.rss_kib);
        assert!(own.anonymous_kib > 0 && own.anonymous_kib <= own.rss_kib);
    }
}
