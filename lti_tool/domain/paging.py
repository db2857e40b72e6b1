"""Long lists in pages: how many pages a list has, the page asked for kept within them, and which page numbers a
pager links to. Standard library only."""

from __future__ import annotations


def pages_for(total: int, page: int, page_size: int) -> tuple[int, int]:
    """The page asked for, kept within the list's pages, and the number of pages (at least one)."""
    pages = max(1, -(-total // page_size))
    return min(max(page, 1), pages), pages


def page_numbers(page: int, pages: int) -> list[int | None]:
    """The pages a pager links to: the first, the last and two either side of this one (None: a gap)."""
    shown = sorted({1, pages, *range(max(1, page - 2), min(pages, page + 2) + 1)})
    numbers: list[int | None] = []
    for number in shown:
        if numbers and number - numbers[-1] > 1:
            numbers.append(None)
        numbers.append(number)
    return numbers
