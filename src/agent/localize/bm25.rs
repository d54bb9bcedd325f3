//! Okapi BM25 over per-document term statistics, with no I/O.
//!
//! Documents are files; a file's "text" is its content plus its path tokens, which the
//! scanner may count several times (a cheap BM25F: a term in the path says more about a
//! file than one occurrence in its body). The scorer only sees counts, so the same code
//! serves the ranked localiser and the plain baseline.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Standard BM25 constants (Robertson & Zaragoza).
const K1: f64 = 1.2;
/// Length normalisation of the textbook BM25 (the baseline uses it).
pub const B_STANDARD: f64 = 0.75;

/// FNV-1a: the scanner hashes millions of short tokens, where SipHash's DoS resistance
/// buys nothing (keys come from the issue text, and a collision costs only speed).
#[derive(Default)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        // FNV's high bits mix poorly for short keys, and hashbrown takes its 7-bit
        // control tag from them; a murmur3 finaliser spreads the bits first.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

/// The query: distinct terms with a weight each (`1 + ln(count)` in the query text).
#[derive(Debug, Default, Clone)]
pub struct Query {
    pub terms: Vec<String>,
    pub weights: Vec<f64>,
    pub ids: FastMap<String, u32>,
}

impl Query {
    /// Builds a query from tokens, keeping at most `max_terms` distinct ones (first seen).
    pub fn from_tokens(tokens: impl IntoIterator<Item = String>, max_terms: usize) -> Self {
        let mut q = Query::default();
        let mut counts: Vec<u32> = Vec::new();
        for t in tokens {
            if let Some(&id) = q.ids.get(&t) {
                counts[id as usize] += 1;
            } else if q.terms.len() < max_terms {
                q.ids.insert(t.clone(), q.terms.len() as u32);
                q.terms.push(t);
                counts.push(1);
            }
        }
        q.weights = counts.iter().map(|&c| 1.0 + f64::from(c).ln()).collect();
        q
    }
}

/// Term statistics of one document: its (weighted) length and sparse term frequencies.
#[derive(Debug, Default, Clone)]
pub struct DocTerms {
    pub len: f64,
    pub tf: Vec<(u32, f64)>,
}

/// One document's score and the query terms that contributed most, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub score: f64,
    pub top_terms: Vec<u32>,
}

/// Scores every document; documents without a query term score 0 with no terms.
/// `b` is the length normalisation (0 = none, 1 = full).
pub fn score_all(query: &Query, docs: &[&DocTerms], b: f64) -> Vec<Scored> {
    let n = docs.len() as f64;
    let avgdl = (docs.iter().map(|d| d.len).sum::<f64>() / n.max(1.0)).max(1.0);
    let mut df = vec![0u32; query.terms.len()];
    for d in docs {
        for &(t, _) in &d.tf {
            df[t as usize] += 1;
        }
    }
    let idf: Vec<f64> = df
        .iter()
        .map(|&f| (1.0 + (n - f64::from(f) + 0.5) / (f64::from(f) + 0.5)).ln())
        .collect();
    docs.iter()
        .map(|d| {
            let norm = K1 * (1.0 - b + b * d.len / avgdl);
            let mut parts: Vec<(u32, f64)> =
                d.tf.iter()
                    .map(|&(t, tf)| {
                        let i = t as usize;
                        (t, query.weights[i] * idf[i] * tf * (K1 + 1.0) / (tf + norm))
                    })
                    .collect();
            let score = parts.iter().map(|p| p.1).sum();
            parts.sort_by(|a, b| b.1.total_cmp(&a.1));
            Scored {
                score,
                top_terms: parts.into_iter().take(4).map(|p| p.0).collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(len: f64, tf: &[(u32, f64)]) -> DocTerms {
        DocTerms {
            len,
            tf: tf.to_vec(),
        }
    }

    #[test]
    fn query_counts_repeats_and_caps_terms() {
        let q = Query::from_tokens(["a".into(), "b".into(), "a".into(), "c".into()], 2);
        assert_eq!(q.terms, ["a", "b"]);
        assert!(q.weights[0] > q.weights[1]);
    }

    #[test]
    fn rare_terms_outweigh_common_ones() {
        let q = Query::from_tokens(["common".into(), "rare".into()], 10);
        let d_common = doc(10.0, &[(0, 1.0)]);
        let d_rare = doc(10.0, &[(1, 1.0)]);
        let d_other = doc(10.0, &[(0, 1.0)]);
        let s = score_all(&q, &[&d_common, &d_rare, &d_other], B_STANDARD);
        assert!(s[1].score > s[0].score);
        assert_eq!(s[1].top_terms, [1]);
    }

    #[test]
    fn shorter_documents_win_at_equal_frequency() {
        let q = Query::from_tokens(["x".into()], 10);
        let short = doc(5.0, &[(0, 2.0)]);
        let long = doc(500.0, &[(0, 2.0)]);
        let empty = doc(50.0, &[]);
        let s = score_all(&q, &[&short, &long, &empty], B_STANDARD);
        assert!(s[0].score > s[1].score);
        assert_eq!(s[2].score, 0.0);
    }

    #[test]
    fn term_frequency_saturates() {
        let q = Query::from_tokens(["x".into()], 10);
        let (a, b, c) = (
            doc(10.0, &[(0, 1.0)]),
            doc(10.0, &[(0, 10.0)]),
            doc(10.0, &[(0, 100.0)]),
        );
        let s = score_all(&q, &[&a, &b, &c, &doc(10.0, &[])], B_STANDARD);
        assert!(s[1].score > s[0].score);
        assert!(s[2].score - s[1].score < s[1].score - s[0].score);
    }
}
