//! Arbitrary bytes as a ring's counters and frames (layout version 2:
//! stamped 8-byte headers, end marks, line padding, jumps to offset 0), with
//! one or two consumers, rewritten by a "peer" between operations while the
//! producer and consumer code keeps working: nothing may panic, read or
//! write out of bounds, or loop for ever.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shmkit::channel::fuzz::ring(data);
});
