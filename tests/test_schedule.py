"""The round's plan: weeks per module and due days (lti_tool.domain.schedule), pure."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from lti_tool.domain.schedule import ModuleWeeks, is_late, module_schedule, round_weeks


def test_round_weeks_counts_from_the_first_day_and_a_short_last_week():
    assert round_weeks(date(2027, 1, 18), date(2027, 1, 18)) == 1
    assert round_weeks(date(2027, 1, 18), date(2027, 1, 24)) == 1
    assert round_weeks(date(2027, 1, 18), date(2027, 1, 25)) == 2
    assert round_weeks(date(2027, 1, 18), date(2027, 6, 4)) == 20  # 138 days
    with pytest.raises(ValueError):
        round_weeks(date(2027, 2, 1), date(2027, 1, 31))


def test_weeks_shared_in_module_order_and_due_at_the_end_of_each_share():
    plan = module_schedule(date(2027, 1, 18), date(2027, 6, 4), ["m1", "m2", "m3"])
    assert list(plan) == ["m1", "m2", "m3"]
    assert plan["m1"] == ModuleWeeks(1, 6, date(2027, 1, 18), date(2027, 2, 28))
    assert plan["m2"] == ModuleWeeks(7, 13, date(2027, 3, 1), date(2027, 4, 18))
    # The last module ends with the round, its short last week included.
    assert plan["m3"] == ModuleWeeks(14, 20, date(2027, 4, 19), date(2027, 6, 4))


def test_every_week_belongs_to_exactly_one_module_when_there_are_enough_weeks():
    for weeks in range(2, 30):
        for count in range(1, weeks + 1):
            starts = date(2027, 8, 23)
            ends = date.fromordinal(starts.toordinal() + 7 * weeks - 1)
            plan = list(module_schedule(starts, ends, list(range(count))).values())
            covered = [w for share in plan for w in range(share.first_week, share.last_week + 1)]
            assert covered == list(range(1, weeks + 1))
            assert all(a.due_on < b.starts_on for a, b in zip(plan, plan[1:], strict=False))
            assert plan[-1].due_on == ends
            sizes = [share.last_week - share.first_week + 1 for share in plan]
            assert max(sizes) - min(sizes) <= 1


def test_fewer_weeks_than_modules_share_weeks_in_order():
    plan = module_schedule(date(2027, 1, 4), date(2027, 1, 17), ["a", "b", "c", "d", "e"])  # two weeks
    assert [(p.first_week, p.last_week) for p in plan.values()] == [(1, 1), (1, 1), (1, 1), (2, 2), (2, 2)]
    assert [p.due_on for p in plan.values()] == [date(2027, 1, 10)] * 3 + [date(2027, 1, 17)] * 2


def test_a_one_day_round_and_no_modules():
    day = date(2027, 3, 1)
    assert module_schedule(day, day, ["only"]) == {"only": ModuleWeeks(1, 1, day, day)}
    assert module_schedule(day, date(2027, 5, 1), []) == {}


def test_late_is_counted_in_the_pupils_own_day():
    due = date(2027, 2, 28)
    # 23:30 UTC on the due day is already the next day in Stockholm and Oslo: late there.
    assert is_late(due, datetime(2027, 2, 28, 23, 30, tzinfo=timezone.utc), "SE-1490")
    assert is_late(due, datetime(2027, 2, 28, 23, 30, tzinfo=timezone.utc), "NO-0301")
    # 22:00 UTC is 23:00 in Stockholm: still the due day.
    assert not is_late(due, datetime(2027, 2, 28, 22, 0, tzinfo=timezone.utc), "SE-1490")
    assert not is_late(due, datetime(2027, 2, 20, 12, tzinfo=timezone.utc), "SE-1490")
    assert not is_late(None, datetime(2030, 1, 1, tzinfo=timezone.utc), "SE-1490")
    with pytest.raises(ValueError):
        is_late(due, datetime(2027, 3, 1, 12), "SE-1490")
    # A country without a zone of its own: the earliest day among Sweden's and Norway's.
    assert not is_late(due, datetime(2027, 2, 28, 22, 30, tzinfo=timezone.utc), "FI-091")
    assert is_late(due, datetime(2027, 2, 28, 23, 30, tzinfo=timezone.utc), "FI-091")
