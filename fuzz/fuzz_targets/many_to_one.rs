//! Arbitrary bytes as a many-to-one object's seats (control lines with
//! their generations, counters, rings), rewritten by a "peer" while a
//! receiver polls round robin, resets seats and senders join, wait for
//! fresh rings, write and leave: nothing may panic, read or write out of
//! bounds, or loop for ever.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shmkit::many_to_one::fuzz::many_to_one(data);
});
