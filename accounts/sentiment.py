"""Sentiment of customer feedback, in English and Simplified Chinese.

Libraries: VADER (vaderSentiment, a lexicon and rules tuned for short reviews and social
text) for English and other Latin-script text, SnowNLP (a Naive Bayes model trained on
Chinese product reviews, shipped with the package) for text that contains CJK characters.
Both run offline. Scores are mapped onto one scale, -1 (negative) .. +1 (positive).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .choices import SentimentLabel

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# VADER's own recommended cut-offs on the compound score.
POSITIVE_AT, NEGATIVE_AT = 0.05, -0.05


@dataclass(frozen=True, slots=True)
class Sentiment:
    score: float  # -1 .. 1
    label: str  # SentimentLabel
    language: str  # "zh" or "en"


@lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def _label(score: float) -> str:
    if score >= POSITIVE_AT:
        return SentimentLabel.POSITIVE
    if score <= NEGATIVE_AT:
        return SentimentLabel.NEGATIVE
    return SentimentLabel.NEUTRAL


def analyze(text: str) -> Sentiment | None:
    """Sentiment of `text`, or None for empty text."""
    text = (text or "").strip()
    if not text:
        return None
    cjk = len(_CJK.findall(text))
    if cjk and cjk >= 0.2 * len(re.sub(r"\s", "", text)):
        from snownlp import SnowNLP

        # SnowNLP gives P(positive) in [0, 1]; centre and stretch it onto [-1, 1].
        score = 2.0 * SnowNLP(text).sentiments - 1.0
        # SnowNLP is confident on most sentences; keep a neutral band comparable to VADER's.
        label = SentimentLabel.POSITIVE if score >= 0.2 else SentimentLabel.NEGATIVE if score <= -0.2 else SentimentLabel.NEUTRAL
        return Sentiment(score=round(max(-1.0, min(1.0, score)), 4), label=label, language="zh")
    score = _vader().polarity_scores(text)["compound"]
    return Sentiment(score=round(score, 4), label=_label(score), language="en")
