"""Hand-in files: checked by content (not by name), kept under a configurable directory, never in the
database. Keys are random; the original name is kept only for display to the pupil, never served: a file is
served as an attachment under a name the tool makes (``download_name``), as the type it was sniffed as."""

from __future__ import annotations

import os
import re
import secrets
import struct
import unicodedata
import zlib
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


# -- what a file is: checked by content, from its signature to the end of its header ------------------

HEAD_BYTES = 4096  # what the sniffer sees: a file's first bytes (all of a smaller file)
MARKUP_WINDOW = 1024  # markup this near the start refuses the file, whatever signature comes before it
_MARKUP = re.compile(rb"<(?:!doctype|!--|\?xml|html|head|body|script|iframe|frame|svg|math|object|embed|meta|"
                     rb"style|link|form|img|title|base)", re.IGNORECASE)

FALLBACK_TYPE = "application/octet-stream"
# The extension a served file is named with, by the type its content was sniffed as.
EXTENSIONS = {
    "application/pdf": "pdf",
    "image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp", "image/heic": "heic",
    "image/avif": "avif",
    "audio/mpeg": "mp3", "audio/wav": "wav", "audio/ogg": "ogg", "audio/flac": "flac", "audio/mp4": "m4a",
    "video/mp4": "mp4", "video/quicktime": "mov", "video/3gpp": "3gp", "video/webm": "webm",
    "video/x-matroska": "mkv", "video/ogg": "ogv",
}


def _u32be(data: bytes, pos: int) -> int:
    return struct.unpack_from(">I", data, pos)[0]


def _u32le(data: bytes, pos: int) -> int:
    return struct.unpack_from("<I", data, pos)[0]


def _pdf(head: bytes) -> str | None:
    """``%PDF-1.x`` (or 2.0) alone on the first line."""
    return "application/pdf" if re.match(rb"%PDF-(?:1\.[0-7]|2\.0)[ \t]*[\r\n]", head) else None


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}


def _png(head: bytes) -> str | None:
    """The signature, then an IHDR chunk of 13 bytes with sane values and its CRC, then another chunk's header."""
    if not head.startswith(_PNG_SIGNATURE) or len(head) < 41:
        return None
    if _u32be(head, 8) != 13 or head[12:16] != b"IHDR" or zlib.crc32(head[12:29]) != _u32be(head, 29):
        return None
    width, height, depth, colour, compression, filtering, interlace = struct.unpack_from(">IIBBBBB", head, 16)
    if not (0 < width < 1 << 31 and 0 < height < 1 << 31) or depth not in _PNG_DEPTHS.get(colour, ()):
        return None
    if compression or filtering or interlace not in (0, 1):
        return None
    if _u32be(head, 33) >= 1 << 31 or not re.fullmatch(rb"[A-Za-z]{4}", head[37:41]):
        return None
    return "image/png"


# The markers a JPEG may begin with after SOI: APPn, DQT, DHT, SOFn, DRI, COM.
_JPEG_FIRST = {*range(0xE0, 0xF0), 0xDB, 0xC4, 0xC0, 0xC1, 0xC2, 0xC3, 0xDD, 0xFE}


def _jpeg(head: bytes) -> str | None:
    """SOI, then a marker segment with a sane length (JFIF or Exif/XMP where APP0/APP1 say so), then the next
    marker where the segment ends inside what was read."""
    if not head.startswith(b"\xff\xd8\xff") or len(head) < 6 or head[3] not in _JPEG_FIRST:
        return None
    length = struct.unpack_from(">H", head, 4)[0]
    if length < 2:
        return None
    payload = head[6:4 + length]
    if head[3] == 0xE0 and not payload.startswith((b"JFIF\x00", b"JFXX\x00")):
        return None
    if head[3] == 0xE1 and not payload.startswith((b"Exif\x00", b"http://ns.adobe.com/xap/1.0/\x00")):
        return None
    end = 4 + length
    if end < len(head) and head[end] != 0xFF:
        return None
    return "image/jpeg"


def _gif(head: bytes) -> str | None:
    """The signature, a logical screen descriptor with a size, its global colour table, then an extension or
    an image descriptor."""
    if head[:6] not in (b"GIF87a", b"GIF89a") or len(head) < 14:
        return None
    width, height, packed = struct.unpack_from("<HHB", head, 6)
    if not width or not height:
        return None
    end = 13 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0)
    if end + 1 >= len(head):
        return None
    if head[end] == 0x2C or (head[end] == 0x21 and head[end + 1] in (0x01, 0xF9, 0xFE, 0xFF)):
        return "image/gif"
    return None


def _riff(head: bytes) -> str | None:
    """RIFF with WEBP (a VP8, VP8L or VP8X chunk, each with its own signature) or WAVE (a fmt chunk with sane
    values before any data)."""
    if head[:4] != b"RIFF" or len(head) < 20 or _u32le(head, 4) < 4:
        return None
    form = head[8:12]
    if form == b"WEBP":
        chunk, size = head[12:16], _u32le(head, 16)
        if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
            return "image/webp"
        if chunk == b"VP8L" and len(head) > 20 and head[20] == 0x2F:
            return "image/webp"
        if chunk == b"VP8X" and size == 10:
            return "image/webp"
        return None
    if form != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(head):
        chunk, size = head[pos:pos + 4], _u32le(head, pos + 4)
        if chunk == b"fmt ":
            if size < 16 or pos + 24 > len(head):
                return None
            tag, channels, rate, _byte_rate, block_align = struct.unpack_from("<HHIIH", head, pos + 8)
            ok = tag != 0 and 0 < channels <= 64 and 0 < rate <= 1_536_000 and block_align > 0
            return "audio/wav" if ok else None
        if chunk == b"data" or not re.fullmatch(rb"[A-Za-z0-9 _-]{4}", chunk):
            return None
        pos += 8 + size + (size & 1)
    return None


_MPEG_BITRATES = {  # kbit/s by (MPEG-1 or 2/2.5, layer) and bitrate index
    (1, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (1, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (1, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (2, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (2, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (2, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mpeg_frame(head: bytes, pos: int) -> int | None:
    """The length of the MPEG audio frame whose header starts at ``pos``, when it is a valid one."""
    if pos + 4 > len(head) or head[pos] != 0xFF or head[pos + 1] & 0xE0 != 0xE0:
        return None
    version, layer_bits = (head[pos + 1] >> 3) & 3, (head[pos + 1] >> 1) & 3
    bitrate_index, rate_index, padding = head[pos + 2] >> 4, (head[pos + 2] >> 2) & 3, (head[pos + 2] >> 1) & 1
    if version == 1 or layer_bits == 0 or bitrate_index in (0, 15) or rate_index == 3 or head[pos + 3] & 3 == 2:
        return None
    layer = 4 - layer_bits
    bitrate = _MPEG_BITRATES[(1 if version == 3 else 2, layer)][bitrate_index] * 1000
    rate = _MPEG_RATES[version][rate_index]
    if layer == 1:
        return (12 * bitrate // rate + padding) * 4
    return (72 if layer == 3 and version != 3 else 144) * bitrate // rate + padding


def _mp3(head: bytes) -> str | None:
    """An ID3v2 tag with a valid header followed by audio frames, or two MPEG audio frames in a row."""
    if head.startswith(b"ID3"):
        if len(head) < 10 or head[3] not in (2, 3, 4) or head[4] == 0xFF or any(b & 0x80 for b in head[6:10]):
            return None
        if head[5] & ~{2: 0xC0, 3: 0xE0, 4: 0xF0}[head[3]] & 0xFF:
            return None
        size = 0
        for byte in head[6:10]:  # a "synchsafe" integer: 7 bits a byte
            size = size << 7 | byte
        pos = 10 + size + (10 if head[3] == 4 and head[5] & 0x10 else 0)
        while pos < len(head) and head[pos] == 0:  # padding some writers leave after the tag
            pos += 1
        if pos + 4 > len(head) or head.startswith(b"ID3", pos) or _mpeg_frame(head, pos):
            return "audio/mpeg"
        return None
    length = _mpeg_frame(head, 0)
    return "audio/mpeg" if length and _mpeg_frame(head, length) else None


def _ogg_crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return tuple(table)


_OGG_CRC = _ogg_crc_table()


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_CRC[(crc >> 24) ^ byte]
    return crc


def _ogg(head: bytes) -> str | None:
    """The OggS capture pattern on a first page (version 0, beginning of stream, sequence 0) whose CRC holds,
    carrying a known codec's identification header."""
    if not head.startswith(b"OggS") or len(head) < 28 or head[4] != 0 or head[5] & 0x02 == 0 or head[5] & ~0x07:
        return None
    if _u32le(head, 18) != 0:
        return None
    table_end = 27 + head[26]
    page_end = table_end + sum(head[27:table_end])
    if page_end > len(head) or _ogg_crc(head[:22] + b"\x00" * 4 + head[26:page_end]) != _u32le(head, 22):
        return None
    packet = head[table_end:page_end]
    if packet.startswith(b"\x80theora"):
        return "video/ogg"
    if packet.startswith((b"\x01vorbis", b"OpusHead", b"\x7fFLAC", b"Speex   ")):
        return "audio/ogg"
    return None


def _flac(head: bytes) -> str | None:
    """``fLaC`` and a STREAMINFO block of 34 bytes with sane values."""
    if not head.startswith(b"fLaC") or len(head) < 42 or head[4] & 0x7F != 0 or head[5:8] != b"\x00\x00\x22":
        return None
    min_block, max_block = struct.unpack_from(">HH", head, 8)
    packed = int.from_bytes(head[18:26], "big")
    rate, bits = packed >> 44, ((packed >> 36) & 0x1F) + 1
    return "audio/flac" if 16 <= min_block <= max_block and 0 < rate <= 655350 and bits >= 4 else None


def _vint(data: bytes, pos: int, *, marker: bool) -> tuple[int, int]:
    """An EBML variable-length integer at ``pos`` (an element id keeps its length marker): value, next pos."""
    first = data[pos]
    length = 9 - first.bit_length()
    if not first or pos + length > len(data):
        raise ValueError("bad EBML number")
    value = first if marker else first & ((1 << (8 - length)) - 1)
    for byte in data[pos + 1:pos + length]:
        value = value << 8 | byte
    return value, pos + length


_DOC_TYPES = {b"webm": "video/webm", b"matroska": "video/x-matroska"}


def _matroska(head: bytes) -> str | None:
    """An EBML header whose elements fit it and whose DocType is webm or matroska, then the Segment."""
    if not head.startswith(b"\x1a\x45\xdf\xa3"):
        return None
    size, pos = _vint(head, 4, marker=False)
    end = pos + size
    if end + 4 > len(head):
        return None
    doc_type = None
    while pos < end:
        element, pos = _vint(head, pos, marker=True)
        size, pos = _vint(head, pos, marker=False)
        if pos + size > end:
            return None
        if element == 0x4282:
            doc_type = head[pos:pos + size].rstrip(b"\x00")
        pos += size
    if head[end:end + 4] != b"\x18\x53\x80\x67":
        return None
    return _DOC_TYPES.get(doc_type)


_FTYP_BRANDS = {
    **dict.fromkeys((b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"mp71", b"avc1",
                     b"dash", b"MSNV", b"M4V ", b"M4VH", b"M4VP", b"f4v "), "video/mp4"),
    b"qt  ": "video/quicktime",
    **dict.fromkeys((b"M4A ", b"M4B ", b"M4P ", b"F4A "), "audio/mp4"),
    **dict.fromkeys((b"3gp4", b"3gp5", b"3gp6", b"3gp7", b"3ge6", b"3ge7", b"3gg6", b"3g2a", b"3g2b", b"3g2c"),
                    "video/3gpp"),
    **dict.fromkeys((b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"), "image/heic"),
    **dict.fromkeys((b"avif", b"avis"), "image/avif"),
}


def _iso_media(head: bytes) -> str | None:
    """MP4, MOV, M4A, 3GP, HEIC, AVIF: an ``ftyp`` box of a sane size with a known brand, then another box."""
    if len(head) < 24 or head[4:8] != b"ftyp":
        return None
    size = _u32be(head, 0)
    if size < 16 or (size - 16) % 4 or size + 8 > len(head):
        return None
    brands = [head[8:12]] + [head[i:i + 4] for i in range(16, size, 4)]
    kind = next((_FTYP_BRANDS[b] for b in brands if b in _FTYP_BRANDS), None)
    following = _u32be(head, size)
    if (following not in (0, 1) and following < 8) or not re.fullmatch(rb"[A-Za-z0-9 ]{4}", head[size + 4:size + 8]):
        return None
    return kind


_SNIFFERS = (_pdf, _png, _jpeg, _gif, _riff, _mp3, _ogg, _flac, _matroska, _iso_media)


def sniff(head: bytes) -> str | None:
    """The media type of a file from its first :data:`HEAD_BYTES` (all of a smaller file): the one kind a pupil
    hands in (audio, video, image, PDF) whose structure the bytes follow from the signature to the end of its
    header. None for anything else, and for markup (HTML, SVG, XML, script) near the start, whatever
    signature comes before it."""
    head = bytes(head[:HEAD_BYTES])
    if _MARKUP.search(head[:MARKUP_WINDOW]):
        return None
    kinds = set()
    for check in _SNIFFERS:
        try:
            kind = check(head)
        except (IndexError, KeyError, ValueError, struct.error):
            kind = None
        if kind:
            kinds.add(kind)
    return kinds.pop() if len(kinds) == 1 else None


def served_type(content_type: str | None) -> tuple[str, str]:
    """The type a stored hand-in is served as and the extension of its name: the sniffed type, or an opaque
    download for a type the tool does not know."""
    if content_type in EXTENSIONS:
        return content_type, EXTENSIONS[content_type]
    return FALLBACK_TYPE, "bin"


def _ascii_word(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^A-Za-z0-9_-]+", "-", plain).strip("-_")


def download_name(parts: list[str], content_type: str | None) -> str:
    """The name a hand-in is served under: made by the tool from ``parts`` (safe ASCII letters, digits, ``-``
    and ``_`` only) and the extension of its sniffed type; never the name it was uploaded with."""
    stem = "-".join(word for word in (_ascii_word(part) for part in parts) if word)[:120] or "hand-in"
    return f"{stem}.{served_type(content_type)[1]}"


def _read_head(stream: BinaryIO) -> bytes:
    """The first :data:`HEAD_BYTES` of the stream (fewer only at its end)."""
    parts, size = [], 0
    while size < HEAD_BYTES:
        chunk = stream.read(HEAD_BYTES - size)
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


def kind_allowed(content_type: str, allowed: tuple[str, ...]) -> bool:
    """Is ``content_type`` one of the ``allowed`` kinds (``UPLOAD_TYPES``: exact types or ``audio/*``)?"""
    return any(content_type == a or (a.endswith("/*") and content_type.startswith(a[:-1])) for a in allowed)


PARTIAL_DIR = "partial"  # a chunked upload's bytes on their way in: partial/<token[:2]>/<token>


class UploadStore:
    def __init__(self, root: str | os.PathLike[str], max_bytes: int, allowed: tuple[str, ...]):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.allowed = allowed

    def _allowed(self, content_type: str) -> bool:
        return kind_allowed(content_type, self.allowed)

    def _refuse_too_large(self) -> UploadError:
        return UploadError(f"file larger than {self.max_bytes} bytes", code="upload_too_large", status=413)

    def save(self, stream: BinaryIO) -> StoredFile:
        """Stream to disk, refusing what is too large or not an allowed kind; nothing is left behind."""
        head = _read_head(stream)
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
                        raise self._refuse_too_large()
                    out.write(chunk)
                    chunk = stream.read(CHUNK)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        if size == 0:
            path.unlink(missing_ok=True)
            raise UploadError("empty file", code="upload_empty")
        return StoredFile(key, size, content_type)

    def adopt(self, source: Path) -> StoredFile:
        """A file assembled under the upload directory (a chunked upload's pieces, :meth:`partial_path`) becomes a
        stored file: checked as :meth:`save` checks a stream (by content, then its size), then moved under a new
        key, never copied. A refused file stays where it was, for the caller to remove."""
        with open(source, "rb") as handle:
            head = _read_head(handle)
        content_type = sniff(head)
        if content_type is None or not self._allowed(content_type):
            raise UploadError("file type not allowed (checked by content)", code="upload_type")
        size = source.stat().st_size
        if size == 0:
            raise UploadError("empty file", code="upload_empty")
        if size > self.max_bytes:
            raise self._refuse_too_large()
        key = f"{secrets.token_hex(2)}/{secrets.token_urlsafe(24)}"
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)  # the same directory tree, so the same file system: a rename
        return StoredFile(key, size, content_type)

    def partial_path(self, token: str) -> Path:
        """Where the bytes of the chunked upload ``token`` wait (a level deeper than stored files, so never
        taken for one)."""
        if not re.fullmatch(r"[A-Za-z0-9_-]{16,64}", token or ""):
            raise UploadError("bad upload token", code="not_found", status=404)
        return self.root / PARTIAL_DIR / token[:2] / token

    def delete_partial(self, token: str) -> None:
        self.partial_path(token).unlink(missing_ok=True)

    def partial_tokens_older_than(self, moment: datetime) -> list[str]:
        """Tokens of the partial uploads last written before ``moment`` (the purge removes those no upload
        session names: left behind by a crash between the file and its row)."""
        folder = self.root / PARTIAL_DIR
        if not folder.is_dir():
            return []
        limit = moment.timestamp()
        return sorted(path.name for path in folder.glob("*/*") if path.is_file() and path.stat().st_mtime < limit)

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
