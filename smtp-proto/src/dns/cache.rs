//! The answer cache: answers by question, each kept for its capped TTL.
//!
//! Time is the caller's (`now` on every call), so expiry is as testable as
//! the rest. Only answers are kept — records, NODATA and NXDOMAIN (RFC 2308
//! §5); failures are not (a SERVFAIL or a timeout is asked again, as the
//! transports always did).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::answer::Answer;
use super::config::CacheConfig;
use super::question::Question;

#[derive(Debug, Clone)]
struct Entry {
    answer: Answer,
    expires: Instant,
}

/// A bounded map from question to answer with expiry times.
#[derive(Debug, Clone)]
pub(crate) struct Cache {
    config: CacheConfig,
    entries: BTreeMap<Question, Entry>,
}

impl Cache {
    pub(crate) fn new(config: CacheConfig) -> Self {
        Self {
            config,
            entries: BTreeMap::new(),
        }
    }

    /// The answer to `question` if one is kept and unexpired at `now`, with
    /// its TTLs lowered to the time left.
    pub(crate) fn get(&mut self, now: Instant, question: &Question) -> Option<Answer> {
        let entry = self.entries.get(question)?;
        let Some(left) = entry
            .expires
            .checked_duration_since(now)
            .filter(|d| !d.is_zero())
        else {
            self.entries.remove(question);
            return None;
        };
        let secs = u32::try_from(left.as_secs()).unwrap_or(u32::MAX);
        Some(entry.answer.clone().with_ttl(secs))
    }

    /// Keeps `answer` for its TTL, capped by the configuration; an answer
    /// whose TTL is zero is not kept, nor is a negative answer without SOA
    /// unless [`CacheConfig::negative_ttl_without_soa`] gives it a time.
    pub(crate) fn insert(&mut self, now: Instant, question: &Question, answer: &Answer) {
        if self.config.max_entries == 0 {
            return;
        }
        let Some(ttl) = answer
            .ttl()
            .or(Some(self.config.negative_ttl_without_soa).filter(|t| *t > 0))
        else {
            return;
        };
        let ttl = match answer {
            Answer::Records(_) => ttl.clamp(self.config.min_ttl, self.config.max_ttl),
            _ => ttl
                .max(self.config.min_ttl)
                .min(self.config.max_negative_ttl),
        };
        if ttl == 0 {
            return;
        }
        let Some(expires) = now.checked_add(Duration::from_secs(u64::from(ttl))) else {
            return;
        };
        if !self.entries.contains_key(question) && self.entries.len() >= self.config.max_entries {
            self.entries.retain(|_, e| e.expires > now);
            if self.entries.len() >= self.config.max_entries
                && let Some(soonest) = self
                    .entries
                    .iter()
                    .min_by_key(|(q, e)| (e.expires, *q))
                    .map(|(q, _)| q.clone())
            {
                self.entries.remove(&soonest);
            }
        }
        self.entries.insert(
            question.clone(),
            Entry {
                answer: answer.clone(),
                expires,
            },
        );
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}
