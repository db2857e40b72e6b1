"""Small hand-in files of every accepted kind, each well-formed from its signature to the end of its header
(made here byte by byte, so the tests need no media tools), and polyglots that must be refused."""

from __future__ import annotations

import io
import struct
import wave
import zlib

# A real 1x1 picture.
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"
       b"\x00\x00\x00\x0cIDATx\x9cc\xf8\xbf\xc0\x01\x00\x04\x81\x01\xe0r\x1a\x11\x9b\x00\x00\x00\x00IEND\xaeB`\x82")
# A real 1x1 transparent picture.
GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
       b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
# SOI, a JFIF APP0 segment, a quantisation table, a frame, a scan, EOI.
JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010101004800480000"
    "ffdb004300030202020202030202020303030304060404040404080606050609080a0a090809090a0c0f0c0a0b0e0b09090d110d0e0f"
    "101011100a0c12131210130f101010"
    "ffc9000b080001000101011100ffcc000600101005ffda0008010100003f00d2cf20ffd9")
WEBP = bytes.fromhex("524946461a000000574542505650384c0d0000002f00000010071011118888fe0700")
PDF = (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
       b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n")


def _wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(b"\x00\x00" * 80)
    return out.getvalue()


WAV = _wav()

# MPEG-1 layer III, 128 kbit/s, 44.1 kHz: 417-byte frames.
MP3_FRAME = b"\xff\xfb\x90\x00" + b"\x00" * 413
MP3 = MP3_FRAME * 3
MP3_ID3 = b"ID3\x04\x00\x00\x00\x00\x00\x14" + b"TIT2\x00\x00\x00\x0a\x00\x00\x03Uppgift 1" + MP3_FRAME * 2


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) & 0xFFFFFFFF if crc & 0x80000000 else (crc << 1) & 0xFFFFFFFF
    return crc


def _ogg_first_page(packet: bytes) -> bytes:
    header = (b"OggS\x00\x02" + b"\x00" * 8 + struct.pack("<I", 0x1234) + struct.pack("<I", 0) + b"\x00" * 4
              + bytes([1, len(packet)]))
    page = header + packet
    return page[:22] + struct.pack("<I", _ogg_crc(page)) + page[26:]


# A Vorbis identification header: version 0, 1 channel, 8 kHz, block sizes 256/2048, framing bit.
OGG = _ogg_first_page(b"\x01vorbis" + struct.pack("<IBIiii", 0, 1, 8000, 0, 32000, 0) + b"\xb8\x01")

# STREAMINFO: blocks of 4096, 44.1 kHz, 2 channels, 16 bits; the last metadata block.
FLAC = (b"fLaC\x80\x00\x00\x22" + struct.pack(">HH", 4096, 4096) + b"\x00\x00\x00\x00\x00\x00"
        + ((44100 << 44) | (1 << 41) | (15 << 36)).to_bytes(8, "big") + b"\x00" * 16)


def _ebml(element: bytes, payload: bytes) -> bytes:
    return element + bytes([0x80 | len(payload)]) + payload


_EBML_BODY = b"".join([_ebml(b"\x42\x86", b"\x01"), _ebml(b"\x42\xf7", b"\x01"), _ebml(b"\x42\xf2", b"\x04"),
                       _ebml(b"\x42\xf3", b"\x08"), _ebml(b"\x42\x82", b"webm"), _ebml(b"\x42\x87", b"\x04"),
                       _ebml(b"\x42\x85", b"\x02")])
WEBM = b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(_EBML_BODY)]) + _EBML_BODY + b"\x18\x53\x80\x67\x01" + b"\xff" * 7


def _ftyp(major: bytes, minor: int, *compatible: bytes) -> bytes:
    body = major + struct.pack(">I", minor) + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body


FREE = struct.pack(">I", 8) + b"free"
MP4 = _ftyp(b"isom", 0x200, b"isom", b"iso2", b"avc1", b"mp41") + FREE + struct.pack(">I", 8) + b"mdat"
M4A = _ftyp(b"M4A ", 0, b"M4A ", b"mp42", b"isom") + FREE
MOV = _ftyp(b"qt  ", 0x20050300, b"qt  ") + struct.pack(">I", 8) + b"wide" + struct.pack(">I", 8) + b"mdat"

VALID = {
    "image/png": (PNG, "png"), "image/gif": (GIF, "gif"), "image/jpeg": (JPEG, "jpg"), "image/webp": (WEBP, "webp"),
    "application/pdf": (PDF, "pdf"), "audio/wav": (WAV, "wav"), "audio/mpeg": (MP3, "mp3"),
    "audio/ogg": (OGG, "ogg"), "audio/flac": (FLAC, "flac"), "video/webm": (WEBM, "webm"),
    "video/mp4": (MP4, "mp4"), "audio/mp4": (M4A, "m4a"), "video/quicktime": (MOV, "mov"),
}

HTML = b"<html><body><script>alert(document.domain)</script></body></html>"
POLYGLOTS = {
    "gif signature then html": b"GIF89a" + HTML,
    "gif screen descriptor then html": GIF[:13] + HTML,
    "whole gif then html": GIF[:-1] + b"!\xfe" + bytes([len(HTML)]) + HTML + b"\x00;",
    "png header then script": PNG[:33] + b"\x00\x00\x00\x40tEXt<script>alert(1)</script>",
    "pdf then html": b"%PDF-1.4\n" + HTML,
    "jpeg then svg": JPEG[:20] + b"\xff\xfe\x00\x20<svg onload=alert(1)>" + JPEG[20:],
    "id3 then doctype": b"ID3\x03\x00\x00\x00\x00\x00\x00<!DOCTYPE html>" + HTML,
    "mp4 then xml": MP4[:32] + b"<?xml version='1.0'?><html/>",
    "wav then html": WAV[:44] + HTML,
    "html": HTML,
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
}


def png_crc_ok(data: bytes) -> bool:
    """The sample PNG's IHDR CRC, checked independently of the tool's sniffer."""
    return zlib.crc32(data[12:29]) == struct.unpack(">I", data[29:33])[0]
