"""The bound that spares most events an encoding to be measured: never below the real size."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from portal_contracts.articles import (
    ArticleAction,
    ArticleNormalized,
    ArticleNormalizedEvent,
    MediaRef,
    NormalizedArticle,
    QualityIssue,
    QualityReport,
)
from portal_contracts.codec import encode
from portal_normalize.event_size import certainly_fits

# Text JSON writes longest (control characters, quotes, backslashes), Vietnamese, emoji.
_TEXT = st.text(
    st.one_of(
        st.characters(blacklist_categories=["Cs"]),
        st.sampled_from(['"', "\\", "\x00", "\x1f", "\n", "ệ", "Đ", "😀", "\u2028"]),
    ),
    max_size=200,
)


def _event(texts: list[str], score: float, width: int | None) -> ArticleNormalizedEvent:
    t = [*texts, *[""] * 6]
    image = MediaRef(original_url=t[4], caption=t[5], width=width, renditions={t[0]: t[1]})
    return ArticleNormalizedEvent(
        producer="normalize",
        subject="a" * 36,
        data=ArticleNormalized(
            article_id="a" * 36,
            source="tp-ha-noi",
            external_id=t[0] or "x",
            revision=3,
            action=ArticleAction.UPSERT,
            received_at=datetime(2025, 3, 1, 1, 30, tzinfo=UTC),
            article=NormalizedArticle(
                title=t[0],
                summary=t[1],
                body_html=t[2],
                body_text=t[3],
                categories=t[4:],
                images=[image],
                lead_image=image,
            ),
            quality=QualityReport(
                score=score, issues=[QualityIssue(code=t[1], message=t[2], needs_person=False)]
            ),
            duplicate_of="b" * 36,
        ),
    )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_TEXT, max_size=10),
    st.floats(min_value=0, max_value=1),
    st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1)),
)
def test_an_event_said_to_fit_does_fit(texts: list[str], score: float, width: int | None) -> None:
    event = _event(texts, score, width)
    size = len(encode(event))
    assert certainly_fits(event, size * 6 + 4096)  # what nearly every article is
    for limit in (size - 1, size // 2, 100):
        assert not certainly_fits(event, limit)  # never said to fit when it does not


def test_text_the_encoder_refuses_is_left_to_it() -> None:
    event = _event(["Tin"], 1.0, None).model_copy(update={"producer": "a\ud800b"})
    assert not certainly_fits(event, 10**9)
