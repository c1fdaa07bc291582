"""BM25Okapi as rank-bm25 defines it, computed over whole arrays at once.

For a corpus of N documents with average length avgdl, a term with document
frequency df has idf = ln(N - df + 0.5) - ln(df + 0.5); idfs below zero are
replaced by epsilon * (mean idf over the vocabulary). A document of length dl
in which the term occurs tf times scores idf * tf * (k1 + 1) / (tf + k1 * (1 - b
+ b * dl / avgdl)); a query's score is the sum over its tokens, repeated tokens
counted again. ``tests/test_bm25_parity.py`` checks this against rank-bm25.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class BM25Params:
    """rank-bm25's BM25Okapi defaults."""

    k1: float = 1.5
    b: float = 0.75
    epsilon: float = 0.25


def idf_table(df: np.ndarray, n_docs: int, params: BM25Params) -> np.ndarray:
    """idf for every term id; terms absent from the corpus (df == 0) get 0."""
    present = df > 0
    idf = np.zeros(df.shape[0], dtype=np.float64)
    if n_docs == 0 or not present.any():
        return idf
    d = df[present].astype(np.float64)
    raw = np.log(n_docs - d + 0.5) - np.log(d + 0.5)
    eps = params.epsilon * (raw.sum() / raw.shape[0])
    idf[present] = np.where(raw < 0, eps, raw)
    return idf


def length_norms(doc_len: np.ndarray, avgdl: float, params: BM25Params) -> np.ndarray:
    """k1 * (1 - b + b * dl / avgdl) for every document (the denominator's length part)."""
    if avgdl <= 0:
        return np.full(doc_len.shape[0], params.k1 * (1 - params.b), dtype=np.float64)
    return params.k1 * (1 - params.b + params.b * doc_len.astype(np.float64) / avgdl)


def term_scores(idf: float, tfs: np.ndarray, norms: np.ndarray, params: BM25Params) -> np.ndarray:
    """One term's contribution to each posting's document: ``idf * tf * (k1 + 1) / (tf + norm)``.
    ``norms`` (the postings' documents' length norms, a fresh array) is overwritten."""
    tf = tfs.astype(np.float64)
    norms += tf
    tf *= params.k1 + 1
    tf /= norms
    tf *= idf
    return tf
