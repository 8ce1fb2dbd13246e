"""Kafka consumers of the submissions desk: thin, the rules are in ``submissions.domain``."""

from __future__ import annotations

from typing import Any

from portal_contracts.topics import QUESTION_SUBMITTED, SUBMISSION_REPORTED, SUBMISSION_SUBMITTED
from portal_moderation.submissions.usecases import SubmissionsDesk
from portal_runtime.consumer import Handler


def submission_handlers(desk: SubmissionsDesk) -> dict[str, Handler[Any]]:
    """question.submitted, submission.submitted, submission.reported -> the desk's queues (by
    topic; posts before the reports of a batch, so a report finds a post of the same batch)."""
    return {
        QUESTION_SUBMITTED.name: desk.receive_questions,
        SUBMISSION_SUBMITTED.name: desk.receive_posts,
        SUBMISSION_REPORTED.name: desk.receive_reports,
    }
