//! The scanner's one-probe lookup table: for a raw token, is it a stop word, and which
//! query term (if any) is it?
//!
//! Tokenising a large repository produces tens of millions of tokens, almost none of
//! them query terms. Checking each against the stop-word list and then a `HashMap<String,
//! _>` cost a linear scan, a `String` and two hashes per token; here the tokenizer hands
//! over the hash it computed while lower-casing ([`token_hash`]), and one open-addressing
//! probe answers both questions. Keys are compared byte for byte, so a hash collision
//! costs only a comparison, never a wrong answer.

use super::bm25::Query;
use super::tokenize::{stop_words, token_hash};

/// What the table knows about one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub stop: bool,
    pub term: Option<u32>,
}

struct Slot {
    hash: u64,
    key: Box<[u8]>,
    entry: Entry,
}

/// Open addressing with linear probing, at most 25 % full.
pub struct Vocab {
    slots: Vec<Option<Slot>>,
    shift: u32,
    terms: usize,
}

impl Vocab {
    /// Holds every stop word and every query term.
    pub fn new(query: &Query) -> Self {
        let n = stop_words().len() + query.terms.len();
        let bits = (n * 4).next_power_of_two().trailing_zeros().max(4);
        let mut v = Vocab {
            slots: (0..1usize << bits).map(|_| None).collect(),
            shift: 64 - bits,
            terms: query.terms.len(),
        };
        for w in stop_words() {
            v.upsert(w.as_bytes()).stop = true;
        }
        for (id, t) in query.terms.iter().enumerate() {
            v.upsert(t.as_bytes()).term = Some(id as u32);
        }
        v
    }

    /// Number of query terms; their ids are `0..term_count()`.
    pub fn term_count(&self) -> usize {
        self.terms
    }

    /// Looks up a token given its [`token_hash`].
    #[inline]
    pub fn get(&self, hash: u64, token: &[u8]) -> Option<Entry> {
        let mask = self.slots.len() - 1;
        let mut i = self.index(hash);
        loop {
            match &self.slots[i] {
                None => return None,
                Some(s) if s.hash == hash && *s.key == *token => return Some(s.entry),
                Some(_) => i = (i + 1) & mask,
            }
        }
    }

    fn index(&self, hash: u64) -> usize {
        // The hash ends with a multiply, so its high bits are the well-mixed ones.
        (hash >> self.shift) as usize
    }

    fn upsert(&mut self, key: &[u8]) -> &mut Entry {
        let hash = token_hash(key);
        let mask = self.slots.len() - 1;
        let mut i = self.index(hash);
        while self.slots[i]
            .as_ref()
            .is_some_and(|s| s.hash != hash || *s.key != *key)
        {
            i = (i + 1) & mask;
        }
        let slot = self.slots[i].get_or_insert_with(|| Slot {
            hash,
            key: key.into(),
            entry: Entry {
                stop: false,
                term: None,
            },
        });
        &mut slot.entry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_stop_words_and_query_terms() {
        let q = Query::from_tokens(["config".into(), "else".into(), "parse".into()], 10);
        let v = Vocab::new(&q);
        let get = |t: &str| v.get(token_hash(t.as_bytes()), t.as_bytes());
        assert_eq!(
            get("config"),
            Some(Entry {
                stop: false,
                term: Some(0)
            })
        );
        // A whole identifier may spell a stop word and still be a query term.
        assert_eq!(
            get("else"),
            Some(Entry {
                stop: true,
                term: Some(1)
            })
        );
        assert_eq!(
            get("the"),
            Some(Entry {
                stop: true,
                term: None
            })
        );
        assert_eq!(get("invoice"), None);
        assert_eq!(get("parse").and_then(|e| e.term), Some(2));
    }
}
