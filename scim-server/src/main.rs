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
}
