"""Import the official municipality lists (SCB for Sweden, SSB for Norway) from their CSV formats.

Sweden (``municipalities.csv``): ``municipality_code, municipality_name, municipality_name_short,
county_code``. Norway (``kommuner-no-357.csv``): ``kommunenummer, navn_norsk, ..., fylkesnummer,
fylkesnavn, ...``. Codes are read as strings (leading zeros matter). The whole file is checked before
anything is written; the import is one transaction and idempotent.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.domain.resolution import make_municipality_id
from lti_tool.models import Municipality

COLUMNS = {
    # country: (code, name, county code, county name or None)
    "SE": ("municipality_code", "municipality_name_short", "county_code", None),
    "NO": ("kommunenummer", "navn_norsk", "fylkesnummer", "fylkesnavn"),
}


class MunicipalityImportError(ValueError):
    """The file is not a municipality list of the expected format; nothing was written."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class MunicipalityRow:
    id: str
    country: str
    code: str
    name: str
    county_code: str | None
    county_name: str | None


@dataclass
class ImportReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0

    def summary(self) -> str:
        return f"added {len(self.added)}, updated {len(self.updated)}, unchanged {self.unchanged}"


def parse_municipality_csv(text: str, country: str) -> list[MunicipalityRow]:
    country = country.upper()
    if country not in COLUMNS:
        raise MunicipalityImportError([f"unknown country {country!r}: SE or NO"])
    code_col, name_col, county_col, county_name_col = COLUMNS[country]
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = reader.fieldnames or []
    missing = [c for c in (code_col, name_col, county_col, county_name_col) if c and c not in header]
    if missing:
        raise MunicipalityImportError([f"not a {country} municipality list: missing column(s) {', '.join(missing)}"])
    rows: list[MunicipalityRow] = []
    errors: list[str] = []
    seen: set[str] = set()
    for line, record in enumerate(reader, start=2):
        code = (record.get(code_col) or "").strip()
        name = (record.get(name_col) or "").strip()
        if not code.isdigit() or len(code) != 4:
            errors.append(f"line {line}: code {code!r} is not four digits")
            continue
        if not name:
            errors.append(f"line {line}: empty name")
            continue
        mid = make_municipality_id(country, code)
        if mid in seen:
            errors.append(f"line {line}: {mid} appears twice")
            continue
        seen.add(mid)
        county = (record.get(county_col) or "").strip() or None
        county_name = (record.get(county_name_col) or "").strip() or None if county_name_col else None
        rows.append(MunicipalityRow(mid, country, code, name, county, county_name))
    if not rows and not errors:
        errors.append("the file lists no municipality")
    if errors:
        raise MunicipalityImportError(errors)
    return rows


def apply_municipalities(session: Session, rows: list[MunicipalityRow]) -> ImportReport:
    """Insert new municipalities, update changed names; never deletes (launches refer to them)."""
    report = ImportReport()
    existing = {m.id: m for m in session.scalars(select(Municipality).where(
        Municipality.id.in_([r.id for r in rows])))}
    for row in rows:
        current = existing.get(row.id)
        if current is None:
            session.add(Municipality(id=row.id, country=row.country, code=row.code, name=row.name,
                                     county_code=row.county_code, county_name=row.county_name))
            report.added.append(row.id)
        elif (current.name, current.county_code, current.county_name) != (row.name, row.county_code, row.county_name):
            current.name, current.county_code, current.county_name = row.name, row.county_code, row.county_name
            report.updated.append(row.id)
        else:
            report.unchanged += 1
    session.flush()
    return report


def import_municipalities(session: Session, path: str | Path, country: str) -> ImportReport:
    """Read, check and apply one official list. The caller commits."""
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MunicipalityImportError([f"cannot read {path}: {exc}"]) from exc
    return apply_municipalities(session, parse_municipality_csv(text, country))
