//! Arbitrary bytes as an `Authentication-Results` value: no panic; a value
//! that parses is written back as a field that parses to the same results;
//! the forged-field filter, fed the same bytes as a message cut in two,
//! never panics, copies the body untouched and only ever removes octets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_proto::auth_results::{AuthenticationResults, ForgedFilter, authserv_id};

fuzz_target!(|data: &[u8]| {
    let _ = authserv_id(data);
    if let Ok(field) = AuthenticationResults::parse(data) {
        // Comments are not kept, so the written field parses to the same
        // value; and folding keeps lines short where white space allows.
        if let Ok(again) = AuthenticationResults::new(field.authserv_id()) {
            let mut again = again;
            for r in field.results() {
                again.push(r.clone());
            }
            let text = again.to_field();
            let value = &text.as_bytes()["Authentication-Results:".len()..];
            let back = AuthenticationResults::parse(value).expect("written fields parse");
            assert_eq!(back.results(), field.results());
        }
    }
    let cut = data.first().map_or(0, |&b| b as usize % (data.len() + 1));
    let mut filter = ForgedFilter::new("mx.example.org");
    let mut out = Vec::new();
    filter.update(&data[..cut], &mut out);
    filter.update(&data[cut..], &mut out);
    filter.finish(&mut out);
    assert!(out.len() <= data.len());
    if let Some(i) = memchr::memmem::find(data, b"\r\n\r\n") {
        assert!(out.ends_with(&data[i + 4..]));
    }
});
