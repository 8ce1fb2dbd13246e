"""Kafka consumers of the submissions desk: thin, the rules are in ``submissions.domain``."""

from __future__ import annotations

from typing import Any

from portal_contracts.topics import QUESTION_SUBMITTED, SUBMISSION_REPORTED, SUBMISSION_SUBMITTED
from portal_moderation.submissions.usecases import SubmissionsDesk
from portal_runtime.consumer import Subscription

GROUP = "moderation"


def submission_subscriptions(desk: SubmissionsDesk) -> list[Subscription[Any]]:
    """question.submitted, submission.submitted, submission.reported -> the desk's queues."""
    return [
        Subscription(group=GROUP, topics=[QUESTION_SUBMITTED], handler=desk.receive_questions),
        Subscription(group=GROUP, topics=[SUBMISSION_SUBMITTED], handler=desk.receive_posts),
        Subscription(group=GROUP, topics=[SUBMISSION_REPORTED], handler=desk.receive_reports),
    ]
