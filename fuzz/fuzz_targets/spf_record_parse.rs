//! SPF record parsing on arbitrary bytes: no panic, and a record that
//! parses prints (canonical form) to text that parses to the same record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_proto::spf::Record;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = Record::parse(data) {
        let text = record.to_string();
        let again = Record::parse(text.as_bytes()).expect("canonical form parses");
        assert_eq!(again, record, "{text}");
    }
});
