#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gateway::__fuzz::client_request(data));
