//! MX planning without I/O: DNS queries out, DNS answers in, a host plan
//! to walk (RFC 5321 §5.1, RFC 7505, RFC 974).
//!
//! # Why this lives in the core
//!
//! Which hosts to try, in which order, and when to give up are protocol
//! decisions: RFC 5321 §5.1 fixes the preference order, the implicit MX of a
//! domain without MX records, and the rule that an MX host must not relay to
//! hosts it outranks; RFC 7505 adds the null MX that says "this domain accepts
//! no mail". Getting them wrong loses or loops mail, and they are the same for
//! every transport. So the core asks the DNS ([`crate::dns`]: query bytes,
//! retries, answer matching), judges the answers for delivery here, and keeps
//! the cursor over hosts and addresses; a transport only moves bytes over UDP
//! or TCP and opens connections where the plan points it.
//!
//! Nothing here reads a clock or draws a random number: the DNS message id and
//! the seed that shuffles MX records of equal preference are arguments. The
//! same answer with the same seed always gives the same plan, so every
//! delivery decision can be replayed in a test.
//!
//! # The flow
//!
//! 1. Ask for the MX records: with [`crate::dns::Resolver`] (which owns the
//!    ids, the retries and TCP) and [`MxAnswer::from_answer`] on its answer,
//!    or one message at a time: [`MxQuery::new`] with a fresh id, send
//!    [`MxQuery::to_bytes`] over UDP (or [`MxQuery::to_tcp_bytes`] over TCP).
//! 2. [`MxQuery::decode`] the answer with a seed:
//!    - [`AnswerError::is_unrelated`]: not the answer to this query (wrong
//!      id, not a response, other question) — discard it and keep waiting;
//!    - [`MxAnswer::Truncated`]: ask again over TCP, reading the reply with
//!      [`parse_tcp_frame`];
//!    - [`MxAnswer::NullMx`] or [`MxAnswer::NxDomain`]: permanent failure,
//!      no connection is made;
//!    - [`MxAnswer::Temporary`] or any other error: try again later;
//!    - [`MxAnswer::Hosts`] or [`MxAnswer::Implicit`]: build a
//!      [`HostPlan`] from [`MxAnswer::into_hosts`].
//! 3. Walk the plan: [`HostPlan::next_target`] says [`Next::Resolve`]
//!    (send an [`AddressQuery`] for A and for AAAA, then
//!    [`HostPlan::resolved`] or [`HostPlan::resolution_failed`]),
//!    [`Next::Connect`] (connect; on failure
//!    [`HostPlan::on_connect_failed`], on a 4xx
//!    [`HostPlan::on_temporary_failure`]) or [`Next::Exhausted`].
//!
//! A transport delivering mail does not walk a [`HostPlan`] itself: a
//! [`Walk`] does steps 2 and 3 and everything after them — which recipients
//! a reply settles and which go on to another host, what a connect, setup
//! or TLS failure means, the opportunistic TLS rule, when to stop and what
//! each recipient ends with — so that every transport decides alike. Its
//! documentation holds the rules and their reasons.
//!
//! ```
//! use smtp_proto::mx::{HostPlan, MxAnswer, MxQuery, Next, PlanConfig};
//!
//! let query = MxQuery::new(0x1234, "example.org").unwrap();
//! let udp_payload: Vec<u8> = query.to_bytes();
//! assert_eq!(&udp_payload[..2], &[0x12, 0x34]); // the id we chose
//!
//! // ... the transport sends `udp_payload` and receives `answer` ...
//! # let answer = {
//! #     use hickory_proto::op::{Message, MessageType, OpCode, Query};
//! #     use hickory_proto::rr::{rdata::MX, Name, RData, Record, RecordType};
//! #     let mut m = Message::new(0x1234, MessageType::Response, OpCode::Query);
//! #     let owner = Name::from_ascii("example.org.").unwrap();
//! #     m.add_query(Query::query(owner.clone(), RecordType::MX));
//! #     let mx = MX::new(10, Name::from_ascii("mx.example.org.").unwrap());
//! #     m.add_answer(Record::from_rdata(owner, 300, RData::MX(mx)));
//! #     m.to_vec().unwrap()
//! # };
//! let hosts = match query.decode(&answer, 42) {
//!     Ok(answer @ (MxAnswer::Hosts(_) | MxAnswer::Implicit(_))) => answer.into_hosts().unwrap(),
//!     other => panic!("no delivery: {other:?}"),
//! };
//! let plan = HostPlan::new(hosts, &PlanConfig::default()).unwrap();
//! match plan.next_target() {
//!     Next::Resolve(host) => assert_eq!(host.name().as_str(), "mx.example.org"),
//!     other => panic!("{other:?}"),
//! }
//! ```

mod answer;
mod name;
mod plan;
mod query;
mod walk;

pub use crate::dns::{MAX_CNAME_CHAIN, Severity};
pub use answer::{
    AddressAnswer, AnswerError, Disposition, MAX_HINTS_PER_HOST, MxAnswer, MxHost, Rcode,
    merge_address_lookups,
};
pub use name::{HostName, HostNameError, MAX_HOST_NAME_LEN, MAX_LABEL_LEN};
pub use plan::{FamilyPreference, HostPlan, Next, PlanConfig, PlanError, PlanUsageError, Target};
pub use query::{
    AddressQuery, EDNS_UDP_PAYLOAD, FrameTooLong, MxQuery, QueryType, TcpFrame, parse_tcp_frame,
    write_tcp_frame,
};
pub use walk::{
    AddressLookup, Batch, BatchId, ConnectionFailure, Destination, DestinationError, Endpoint,
    Freshness, Lookup, MAX_ADDRESSES_PER_HOST, MAX_HOSTS, Reason, Step, TlsFailure, TlsPolicy,
    TransactionOutcome, Verdict, Walk, WalkConfig, WalkError,
};
