#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sgsim::fuzz::synthetic(data));
