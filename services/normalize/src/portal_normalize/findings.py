"""What normalisation found in an article, collected into its quality report and score."""

from __future__ import annotations

from dataclasses import dataclass, field

from portal_contracts.articles import (
    QualityIssue,
    QualityReport,
)

# --- findings -------------------------------------------------------------------------------


@dataclass
class Findings:
    """What the steps repaired and what they could not: becomes the QualityReport."""

    repairs: list[QualityIssue] = field(default_factory=list)
    issues: list[QualityIssue] = field(default_factory=list)

    def repaired(self, code: str, message: str) -> None:
        self.repairs.append(QualityIssue(code=code, message=message, needs_person=False))

    def issue(self, code: str, message: str, *, needs_person: bool = True) -> None:
        self.issues.append(QualityIssue(code=code, message=message, needs_person=needs_person))

    def report(self) -> QualityReport:
        return QualityReport(
            score=quality_score(self.repairs, self.issues),
            repairs=list(self.repairs),
            issues=list(self.issues),
        )


def quality_score(repairs: list[QualityIssue], issues: list[QualityIssue]) -> float:
    """1 is clean. A kind of problem for a person costs most (three missing images are one
    kind: the editor looks once); automatic repairs cost a little."""
    score = 1.0
    score -= 0.25 * len({i.code for i in issues if i.needs_person})
    score -= 0.1 * len({i.code for i in issues if not i.needs_person})
    score -= min(0.2, 0.05 * len({r.code for r in repairs}))
    return round(max(0.0, min(1.0, score)), 2)
