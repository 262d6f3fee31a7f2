//! Arbitrary bytes as a channel's header and ring, rewritten by a "peer"
//! between operations, while the sender and receiver code keeps working:
//! nothing may panic, read or write out of bounds, or loop for ever.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shmkit::channel::fuzz::ring(data);
});
