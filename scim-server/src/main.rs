//! The `scim-server` binary: see [`scim_server::cli`].

/// jemalloc instead of the C library's allocator: about 40 % less CPU per `GET`, 15-20 % less
/// per write, at the same peak memory (options in `.cargo/config.toml`; measured in
/// `docs/benchmarks.md`, "The binary's allocator"). It is built without a symbol prefix, so it
/// also serves SQLite's `malloc` calls.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    scim_server::cli::main()
}

#[cfg(all(test, feature = "jemalloc"))]
mod tests {
    /// The memory-bounding options of `.cargo/config.toml` reach the build: without them the
    /// binary would still run, with more arenas and a slower return of freed pages.
    #[test]
    fn the_allocator_carries_the_configured_options() {
        let conf = tikv_jemalloc_ctl::config::malloc_conf::read().expect("jemalloc's config");
        for option in [
            "narenas:2",
            "background_thread:true",
            "dirty_decay_ms:1000",
            "muzzy_decay_ms:0",
        ] {
            assert!(
                conf.contains(option),
                "{option} missing from jemalloc's build options: {conf:?}"
            );
        }
        assert_eq!(
            tikv_jemalloc_ctl::opt::narenas::read().expect("opt.narenas"),
            2
        );
        assert!(tikv_jemalloc_ctl::opt::background_thread::read().expect("opt.background_thread"));
    }

    /// Histogram samples nobody scrapes are folded away by the metrics upkeep thread, so a
    /// server that is never scraped does not grow with its requests. Measured with the
    /// binary's own allocator: 2,000,000 samples (about 40 MB pending) must be gone within a few
    /// upkeep intervals. Without the upkeep thread they stay until a scrape.
    #[test]
    fn unscraped_histogram_samples_do_not_accumulate() {
        use tikv_jemalloc_ctl::{epoch, stats};
        let allocated = || {
            epoch::advance().expect("jemalloc epoch");
            stats::allocated::read().expect("stats.allocated")
        };
        let _handle = scim_server::metrics::handle();
        let before = allocated();
        let histogram = metrics::histogram!("scim_test_unscraped_seconds");
        for i in 0..2_000_000u32 {
            histogram.record(f64::from(i % 1000) / 1000.0);
        }
        let pending = allocated();
        assert!(
            pending > before + 8_000_000,
            "the samples should be pending first: {before} -> {pending} bytes"
        );
        let deadline = std::time::Instant::now() + scim_server::metrics::UPKEEP_INTERVAL * 10;
        loop {
            let now = allocated();
            if now < before + 4_000_000 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "pending samples were not drained: {before} -> {pending} -> {now} bytes"
            );
            // Traffic goes on meanwhile, as in a server: the drained blocks are freed by the
            // recording threads' epoch-based reclamation (crossbeam), not by the drain itself.
            for i in 0..1_000u32 {
                histogram.record(f64::from(i) / 1000.0);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}
