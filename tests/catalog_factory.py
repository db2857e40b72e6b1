"""Catalog rows made directly (the sync has tests of its own): a course with rounds and prices."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from lti_tool.models import Course, CoursePrice, CourseRound

TODAY = date.today()


def add_course(session, code="GIT-AK-1", *, rounds=None, capacity=16, min_participants=5, status="active",
               prices=(("SE", "1900", "SEK"), ("NO", "2100", "NOK"))):
    """A course with, by default, one round open for enrolment (closes in 10 days) and one later round."""
    course = Course(code=code, version=1, status=status, subject="music",
                    title={"sv": f"Kurs {code}", "nb": f"Kurs {code} (nb)", "en": f"Course {code}"},
                    summary={"sv": "Sammanfattning"}, languages=["sv"], content_hash="x" * 64)
    session.add(course)
    for country, amount, currency in prices:
        session.add(CoursePrice(course_code=code, country=country, amount=Decimal(amount), currency=currency))
    for spec in rounds if rounds is not None else (
            {"round_id": "now", "closes_in": 10},
            {"round_id": "later", "closes_in": 200}):
        closes = TODAY + timedelta(days=spec.get("closes_in", 10))
        session.add(CourseRound(
            course_code=code, round_id=spec["round_id"], starts_on=closes + timedelta(days=5),
            ends_on=closes + timedelta(days=120), enrolment_closes_on=closes,
            withdrawal_deadline=closes + timedelta(days=spec.get("withdraw_after_close", 14)),
            capacity=spec.get("capacity", capacity), min_participants=spec.get("min_participants", min_participants),
            seats_taken=0, status=spec.get("status", "open")))
    session.flush()
    return course


def add_content(session, code="GIT-AK-1"):
    """Two modules, each with a lesson and an assignment (file in the first, text in the second)."""
    from lti_tool.models import Assignment, CourseModule, Lesson

    made = {}
    for m in (1, 2):
        module = CourseModule(course_code=code, key=f"{code}-m{m}", position=m,
                              title={"sv": f"Modul {m}", "nb": f"Modul {m}", "en": f"Module {m}"})
        session.add(module)
        session.flush()
        lesson = Lesson(module_id=module.id, key=f"{code}-m{m}-l1", position=1,
                        title={"sv": f"Lektion {m}.1", "en": f"Lesson {m}.1"},
                        body_markdown={"sv": "Öva **lugnt**."}, body_html={"sv": "<p>Öva <strong>lugnt</strong>.</p>"},
                        duration_minutes=30, video_url="https://video.example/v1" if m == 1 else None)
        assignment = Assignment(module_id=module.id, key=f"{code}-m{m}-a1", position=1,
                                title={"sv": f"Uppgift {m}", "nb": f"Oppgave {m}"},
                                instructions_markdown={"sv": "Spela in."}, instructions_html={"sv": "<p>Spela in.</p>"},
                                submission="file" if m == 1 else "text", max_score=Decimal("10"))
        session.add_all([lesson, assignment])
        session.flush()
        made[f"lesson{m}"], made[f"assignment{m}"] = lesson.id, assignment.id
    return made
