"""Kafka handlers of the submissions desk: thin, the rules are in ``submissions_domain``."""

from __future__ import annotations

from faststream.kafka import KafkaBroker, KafkaMessage

from portal_contracts.questions import QuestionSubmittedEvent
from portal_contracts.submissions import SubmissionReportedEvent, SubmissionSubmittedEvent
from portal_contracts.topics import QUESTION_SUBMITTED, SUBMISSION_REPORTED, SUBMISSION_SUBMITTED
from portal_moderation.submissions.domain import PRODUCER
from portal_moderation.submissions.usecases import SubmissionsDesk
from portal_runtime.kafka import subscribe_events

GROUP = "moderation"


def subscribe_submissions(broker: KafkaBroker, desk: SubmissionsDesk) -> None:
    """question.submitted, submission.submitted, submission.reported -> the desk's queues."""

    async def on_question(event: QuestionSubmittedEvent, msg: KafkaMessage) -> None:
        await desk.receive_question(event)

    async def on_post(event: SubmissionSubmittedEvent, msg: KafkaMessage) -> None:
        await desk.receive_post(event)

    async def on_report(event: SubmissionReportedEvent, msg: KafkaMessage) -> None:
        await desk.receive_report(event)

    subscribe_events(
        broker,
        QUESTION_SUBMITTED,
        group=GROUP,
        producer=PRODUCER,
        model=QuestionSubmittedEvent,
        handler=on_question,
    )
    subscribe_events(
        broker,
        SUBMISSION_SUBMITTED,
        group=GROUP,
        producer=PRODUCER,
        model=SubmissionSubmittedEvent,
        handler=on_post,
    )
    subscribe_events(
        broker,
        SUBMISSION_REPORTED,
        group=GROUP,
        producer=PRODUCER,
        model=SubmissionReportedEvent,
        handler=on_report,
    )
