//! Fuzzes the broadcast ring (topics): arbitrary bytes as the ring's memory,
//! subscriber seats and publisher marks, rewritten by a "peer" between
//! operations while a publisher and subscribers join, leave, publish and
//! read. Run with `cargo +nightly fuzz run topic` from `fuzz/`. The same
//! harness runs over random bytes in `cargo test` (the broadcast ring's
//! `arbitrary_memory_never_crashes` property test).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shmkit::topic::fuzz::topic(data);
});
