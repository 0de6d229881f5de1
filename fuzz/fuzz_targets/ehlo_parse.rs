//! Arbitrary bytes as an EHLO reply: no panic; the capabilities read in
//! one pass agree with the typed set; a parsed extension set, rebuilt into
//! an EHLO reply and parsed again, is the same set.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_proto::ehlo::EhloReply;
use smtp_proto::reply::Reply;

fuzz_target!(|data: &[u8]| {
    let Ok(Some((reply, _))) = Reply::parse(data) else {
        return;
    };
    let Ok(ehlo) = EhloReply::parse(&reply) else {
        return;
    };
    assert_eq!(ehlo.capabilities(), ehlo.extensions().capabilities());
    let Ok(rebuilt) = EhloReply::new(ehlo.domain(), ehlo.greeting(), ehlo.extensions()) else {
        return;
    };
    let wire = rebuilt.to_reply();
    let again = EhloReply::parse(&wire).expect("a built EHLO reply parses");
    assert_eq!(again.extensions(), ehlo.extensions());
    assert_eq!(again.capabilities(), ehlo.capabilities());
});
