//! Arbitrary bytes as a latest value's header (version, keep, the four
//! buffers' sequence words and lengths, the meta line) and buffers,
//! rewritten by a "peer" between a writer's writes and a reader's reads:
//! nothing may panic, read or write out of bounds, or loop for ever; and a
//! read right after a write with nobody scribbling returns exactly it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shmkit::latest::fuzz::latest(data);
});
