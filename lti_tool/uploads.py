"""Hand-in files: checked by content (not by name), kept under a configurable directory, never in the
database. Keys are random; the original name is kept only for display."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from .domain.errors import DomainError

CHUNK = 1 << 16


class UploadError(DomainError):
    status = 400


@dataclass(frozen=True)
class StoredFile:
    key: str
    size: int
    content_type: str


def sniff(head: bytes) -> str | None:
    """The media type the bytes are, for the kinds a pupil hands in: audio, video, image, PDF."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"\x1aE\xdf\xa3"):
        return "video/webm"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        if brand in (b"heic", b"heix", b"mif1"):
            return "image/heic"
        if brand == b"qt  ":
            return "video/quicktime"
        return "video/mp4"
    return None


class UploadStore:
    def __init__(self, root: str | os.PathLike[str], max_bytes: int, allowed: tuple[str, ...]):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.allowed = allowed

    def _allowed(self, content_type: str) -> bool:
        return any(content_type == a or (a.endswith("/*") and content_type.startswith(a[:-1])) for a in self.allowed)

    def save(self, stream: BinaryIO) -> StoredFile:
        """Stream to disk, refusing what is too large or not an allowed kind; nothing is left behind."""
        head = stream.read(64)
        content_type = sniff(head)
        if content_type is None or not self._allowed(content_type):
            raise UploadError("file type not allowed (checked by content)", code="upload_type")
        key = f"{secrets.token_hex(2)}/{secrets.token_urlsafe(24)}"
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        size = 0
        try:
            with open(path, "xb") as out:
                chunk = head
                while chunk:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise UploadError(f"file larger than {self.max_bytes} bytes", code="upload_too_large",
                                          status=413)
                    out.write(chunk)
                    chunk = stream.read(CHUNK)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        if size == 0:
            path.unlink(missing_ok=True)
            raise UploadError("empty file", code="upload_empty")
        return StoredFile(key, size, content_type)

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise UploadError("bad file key", code="not_found", status=404)
        return path

    def delete(self, key: str | None) -> None:
        if key:
            self.path(key).unlink(missing_ok=True)

    def keys_older_than(self, moment: datetime) -> list[str]:
        """Keys of the stored files last written before ``moment`` (the retention purge removes those no
        hand-in names: left behind by a crash between the file and its row)."""
        if not self.root.is_dir():
            return []
        limit = moment.timestamp()
        return sorted(path.relative_to(self.root).as_posix() for path in self.root.glob("*/*")
                      if path.is_file() and path.stat().st_mtime < limit)
