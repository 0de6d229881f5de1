//! Zone data in the RFC 7208 test suite's YAML form, served to the SPF
//! evaluator from memory, and the suite's file found on disk.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::SystemTime;

use smtp_proto::dns::{Failure, Name, Question, RecordType};
use smtp_proto::spf::{Evaluator, Lookup, SpfConfig, SpfResult};
use yaml_rust2::Yaml;

/// One record of a name in the suite's zone data.
#[derive(Debug, Clone)]
pub enum Rr {
    A(IpAddr),
    Aaaa(IpAddr),
    Mx(String),
    Ptr(String),
    Txt(Vec<u8>),
    /// Type SPF (99): served as TXT when the name has no TXT record, as
    /// the suite's drivers do.
    Spf(Vec<u8>),
    Cname(String),
    /// Lookups of this type time out.
    Timeout(RecordType),
    /// `TXT: NONE`: no TXT record, but none generated from type SPF either.
    NoTxt,
    /// A bare `TIMEOUT`: a lookup times out unless a record of its type
    /// comes before this in the list (the suite's drivers read it so).
    TimeoutRest,
}

impl Rr {
    fn is_of(&self, rt: RecordType) -> bool {
        matches!(
            (self, rt),
            (Self::A(_), RecordType::A)
                | (Self::Aaaa(_), RecordType::Aaaa)
                | (Self::Mx(_), RecordType::Mx)
                | (Self::Ptr(_), RecordType::Ptr)
                | (Self::Txt(_), RecordType::Txt)
        )
    }
}

/// The records of each name, in the suite's order.
#[derive(Debug, Clone, Default)]
pub struct Zone {
    pub names: BTreeMap<String, Vec<Rr>>,
}

fn text(y: &Yaml) -> Vec<u8> {
    match y {
        Yaml::String(s) => s.as_bytes().to_vec(),
        Yaml::Array(parts) => parts.iter().flat_map(text).collect(),
        Yaml::Integer(i) => i.to_string().into_bytes(),
        Yaml::Real(r) => r.as_bytes().to_vec(),
        _ => Vec::new(),
    }
}

fn record_type(t: &str) -> Option<RecordType> {
    Some(match t {
        "A" => RecordType::A,
        "AAAA" => RecordType::Aaaa,
        "MX" => RecordType::Mx,
        "PTR" => RecordType::Ptr,
        "TXT" | "SPF" => RecordType::Txt,
        _ => return None,
    })
}

impl Zone {
    /// Reads a scenario's `zonedata` map.
    pub fn from_yaml(zonedata: &Yaml) -> Self {
        let mut zone = Self::default();
        let Some(map) = zonedata.as_hash() else {
            return zone;
        };
        for (name, records) in map {
            let name = name.as_str().unwrap_or_default().to_ascii_lowercase();
            let name = name.trim_end_matches('.').to_owned();
            let mut rrs = Vec::new();
            for entry in records.as_vec().into_iter().flatten() {
                if entry.as_str() == Some("TIMEOUT") {
                    rrs.push(Rr::TimeoutRest);
                    continue;
                }
                let Some(h) = entry.as_hash() else { continue };
                for (t, v) in h {
                    let t = t.as_str().unwrap_or_default();
                    if v.as_str() == Some("TIMEOUT") {
                        if let Some(rt) = record_type(t) {
                            rrs.push(Rr::Timeout(rt));
                        }
                        continue;
                    }
                    let s = v.as_str().unwrap_or_default().to_owned();
                    let rr = match t {
                        "A" => Rr::A(s.parse().expect("A")),
                        "AAAA" => Rr::Aaaa(s.parse().expect("AAAA")),
                        "MX" => Rr::Mx(v[1].as_str().unwrap_or_default().to_owned()),
                        "PTR" => Rr::Ptr(s),
                        "TXT" if s == "NONE" => Rr::NoTxt,
                        "TXT" => Rr::Txt(text(v)),
                        "SPF" => {
                            if matches!(v, Yaml::Array(a) if a.is_empty()) {
                                continue;
                            }
                            Rr::Spf(text(v))
                        }
                        "CNAME" => Rr::Cname(s),
                        other => panic!("record type {other} in zone data"),
                    };
                    rrs.push(rr);
                }
            }
            zone.names.insert(name, rrs);
        }
        zone
    }

    /// What a lookup of `question` finds (CNAMEs followed, at most 8).
    pub fn answer(&self, question: &Question) -> Lookup {
        let mut name = question.name().as_str().to_owned();
        for _ in 0..8 {
            let Some(rrs) = self.names.get(&name) else {
                return Lookup::NxDomain;
            };
            let rt = question.record_type();
            if rrs.iter().any(|r| matches!(r, Rr::Timeout(t) if *t == rt)) {
                return Lookup::Failed(Failure::Timeout);
            }
            if let Some(cut) = rrs.iter().position(|r| matches!(r, Rr::TimeoutRest))
                && !rrs[..cut].iter().any(|r| r.is_of(rt))
            {
                return Lookup::Failed(Failure::Timeout);
            }
            let lookup = match rt {
                RecordType::A => {
                    let v: Vec<IpAddr> = rrs
                        .iter()
                        .filter_map(|r| match r {
                            Rr::A(a) => Some(*a),
                            _ => None,
                        })
                        .collect();
                    (!v.is_empty()).then_some(Lookup::Addresses(v))
                }
                RecordType::Aaaa => {
                    let v: Vec<IpAddr> = rrs
                        .iter()
                        .filter_map(|r| match r {
                            Rr::Aaaa(a) => Some(*a),
                            _ => None,
                        })
                        .collect();
                    (!v.is_empty()).then_some(Lookup::Addresses(v))
                }
                RecordType::Mx => {
                    let v: Vec<Name> = rrs
                        .iter()
                        .filter_map(|r| match r {
                            Rr::Mx(n) => Some(n),
                            _ => None,
                        })
                        .filter_map(|n| Name::parse(n).ok())
                        .collect();
                    let any = rrs.iter().any(|r| matches!(r, Rr::Mx(_)));
                    any.then_some(Lookup::Mx(v))
                }
                RecordType::Ptr => {
                    let v: Vec<Name> = rrs
                        .iter()
                        .filter_map(|r| match r {
                            Rr::Ptr(n) => Name::parse(n).ok(),
                            _ => None,
                        })
                        .collect();
                    (!v.is_empty()).then_some(Lookup::Ptr(v))
                }
                RecordType::Txt => {
                    let txt: Vec<Vec<u8>> = rrs
                        .iter()
                        .filter_map(|r| match r {
                            Rr::Txt(t) => Some(t.clone()),
                            _ => None,
                        })
                        .collect();
                    let any_txt = rrs.iter().any(|r| matches!(r, Rr::Txt(_) | Rr::NoTxt));
                    let v = if any_txt {
                        txt
                    } else {
                        rrs.iter()
                            .filter_map(|r| match r {
                                Rr::Spf(t) => Some(t.clone()),
                                _ => None,
                            })
                            .collect()
                    };
                    (!v.is_empty()).then_some(Lookup::Txt(v))
                }
                _ => None,
            };
            if let Some(lookup) = lookup {
                return lookup;
            }
            match rrs.iter().find_map(|r| match r {
                Rr::Cname(target) => Some(target.clone()),
                _ => None,
            }) {
                Some(target) => name = target.trim_end_matches('.').to_ascii_lowercase(),
                None => return Lookup::NoData,
            }
        }
        Lookup::Failed(Failure::Timeout)
    }

    /// Runs an evaluator to its end against this zone.
    pub fn run(&self, mut evaluator: Evaluator) -> SpfResult {
        // The evaluator is bounded; so is this loop (each round answers at
        // least one question, and an evaluation asks a bounded number).
        for _ in 0..10_000 {
            if evaluator.is_done() {
                break;
            }
            let questions: Vec<Question> = evaluator.questions().cloned().collect();
            assert!(!questions.is_empty(), "not done, but no questions");
            for q in questions {
                let lookup = self.answer(&q);
                assert!(evaluator.handle_lookup(&q, lookup));
            }
        }
        evaluator.into_result()
    }

    /// check_host() of the MAIL FROM identity (the HELO identity for an
    /// empty sender), as the suite runs it.
    pub fn check(&self, config: SpfConfig, ip: IpAddr, helo: &str, sender: &str) -> SpfResult {
        let ev = Evaluator::mail_from(config, ip, helo, sender, SystemTime::UNIX_EPOCH);
        self.run(ev)
    }
}

/// The workspace directory.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

/// `None` after printing why (or a panic under SMTP_PEERS_REQUIRED=1).
pub fn skip<T>(what: &str, why: &str) -> Option<T> {
    if std::env::var_os("SMTP_PEERS_REQUIRED").is_some_and(|v| v == "1") {
        panic!("{what} is required (SMTP_PEERS_REQUIRED=1) but {why}");
    }
    eprintln!("SKIP: {what} {why}");
    None
}
