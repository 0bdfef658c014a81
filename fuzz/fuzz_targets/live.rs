#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sgsim::internal::fuzz::live(data));
