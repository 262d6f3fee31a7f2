//! Arbitrary bytes as a service's seats: request and response rings per
//! client, rewritten by a "peer" while the server takes requests and
//! answers, clients join and leave, and a client reads its responses.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shmkit::many_to_one::fuzz::service(data);
});
