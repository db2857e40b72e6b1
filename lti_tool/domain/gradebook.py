"""What the tool writes into a platform's gradebook: the labels of the columns it creates (in the
municipality's language, with the course title), and the progress a course total reports. Pure."""

from __future__ import annotations

from typing import Mapping

from .texts import pick_text

# Data sent to platforms (not interface text): the label of a column the tool creates for one assignment.
COLUMN_LABELS = {
    "sv": "{course} – uppgift {number}: {title}",
    "nb": "{course} – oppgave {number}: {title}",
    "nn": "{course} – oppgåve {number}: {title}",
    "en": "{course} – assignment {number}: {title}",
}
LABEL_MAX = 255


def column_language(country: str | None, launch_locale: str | None) -> str:
    """The language of a placement's columns: the municipality's (Swedish in Sweden; in Norway bokmål, or
    nynorsk when the platform launches in nynorsk); English only when the platform launches in English."""
    if launch_locale == "en":
        return "en"
    if country == "NO":
        return "nn" if launch_locale == "nn" else "nb"
    return "sv"


def column_label(language: str, course_title: Mapping[str, str] | None, number: int,
                 assignment_title: Mapping[str, str] | None) -> str:
    template = COLUMN_LABELS.get(language, COLUMN_LABELS["sv"])
    label = template.format(course=pick_text(course_title, language).text, number=number,
                            title=pick_text(assignment_title, language).text)
    return label[:LABEL_MAX]


def total_progress(assignments: int, handed_in: int, reviewed: int) -> tuple[str, str]:
    """(activityProgress, gradingProgress) of a course total: ``handed_in`` counts every hand-in of the pupil
    (reviewed or not), ``reviewed`` those with a score."""
    waiting = handed_in - reviewed
    if assignments and reviewed >= assignments:
        return "Completed", "FullyGraded"
    activity = "Submitted" if assignments and handed_in >= assignments else "InProgress"
    return activity, ("PendingManual" if waiting > 0 else "Pending")
