"""Hand-in files: accepted only when the bytes are one allowed kind from the signature to the end of its header
(no markup near the start), and always served as an attachment of the sniffed type under a name the tool
makes, never the uploaded one."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from sqlalchemy import func, select

from lti_tool.db import new_session
from lti_tool.models import Submission
from lti_tool.services.delivery import pupil_label
from lti_tool.uploads import HEAD_BYTES, UploadError, UploadStore, download_name, served_type, sniff

from . import sample_files as samples
from .conftest import error_code
from .test_delivery import Person, content  # noqa: F401  (fixture)

ALL_KINDS = ("audio/*", "video/*", "image/*", "application/pdf")


@pytest.mark.parametrize("kind", samples.VALID)
def test_a_well_formed_file_of_each_kind_is_accepted_as_its_type(tmp_path, kind):
    data, _extension = samples.VALID[kind]
    assert sniff(data) == kind
    stored = UploadStore(tmp_path, 1 << 20, ALL_KINDS).save(io.BytesIO(data))
    assert stored.content_type == kind and (tmp_path / stored.key).read_bytes() == data


@pytest.mark.parametrize("name", samples.POLYGLOTS)
def test_markup_after_or_instead_of_a_signature_is_refused(tmp_path, name):
    assert sniff(samples.POLYGLOTS[name]) is None
    with pytest.raises(UploadError) as refused:
        UploadStore(tmp_path, 1 << 20, ALL_KINDS).save(io.BytesIO(samples.POLYGLOTS[name]))
    assert refused.value.code == "upload_type"
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing left behind


def _swap(data: bytes, at: int, new: bytes) -> bytes:
    return data[:at] + new + data[at + len(new):]


BROKEN_HEADERS = {
    "gif of width 0": _swap(samples.GIF, 6, b"\x00\x00"),
    "gif whose colour table runs into text": samples.GIF[:19] + b"hello",
    "png with a wrong IHDR crc": _swap(samples.PNG, 29, b"\x00\x00\x00\x00"),
    "png whose first chunk is not IHDR": _swap(samples.PNG, 12, b"tEXt"),
    "png with an impossible bit depth": _swap(samples.PNG, 24, b"\x03"),
    "jpeg app0 without jfif": _swap(samples.JPEG, 6, b"ABCD"),
    "jpeg segment not followed by a marker": _swap(samples.JPEG, 20, b"\x00"),
    "pdf without a version": b"%PDF-\n1 0 obj",
    "wav with data before fmt": b"RIFF\x24\x00\x00\x00WAVEdata\x04\x00\x00\x00\x00\x00\x00\x00fmt ",
    "wav with no channels": _swap(samples.WAV, 22, b"\x00\x00"),
    "mp3 with one frame then junk": samples.MP3_FRAME + b"junk" * 200,
    "id3 tag with a bad size": _swap(samples.MP3_ID3, 6, b"\x80"),
    "ogg with a wrong crc": _swap(samples.OGG, 22, b"\x00\x00\x00\x00"),
    "ogg of an unknown codec": samples.OGG[:28] + b"\x01notcodec" + samples.OGG[37:],
    "flac without streaminfo": _swap(samples.FLAC, 4, b"\x84"),
    "ebml of another doc type": samples.WEBM.replace(b"webm", b"html"),
    "ebml without a segment": samples.WEBM[:-12] + b"\x00" * 12,
    "ftyp of an unknown brand": samples.MP4.replace(b"isom", b"xxxx").replace(b"iso2", b"yyyy")
    .replace(b"avc1", b"zzzz").replace(b"mp41", b"wwww"),
    "ftyp of an odd size": _swap(samples.MP4, 0, struct.pack(">I", 30)),
    "ftyp followed by no box": samples.MP4[:32] + b"\x00\x00\x00\x02????",
    "webp without a vp8 signature": _swap(samples.WEBP, 20, b"\x00"),
    "a signature alone": b"\x89PNG\r\n\x1a\n",
    "an executable": b"MZ\x90\x00" + b"\x00" * 100,
}


@pytest.mark.parametrize("name", BROKEN_HEADERS)
def test_a_header_broken_anywhere_is_refused(name):
    assert sniff(BROKEN_HEADERS[name]) is None


def test_markup_is_looked_for_near_the_start_only():
    """A marker far into the data is the file's own business (it is served as an attachment of its type);
    near the start, it refuses even a well-formed header."""
    far = samples.MP3 + b"<html>"
    assert sniff(far) == "audio/mpeg"
    assert sniff(samples.PNG[:33] + b"\x00\x00\x00\x0ctEXtcomment<svg" + samples.PNG[33:]) is None


def test_a_stream_that_gives_a_few_bytes_at_a_time_is_sniffed_whole(tmp_path):
    class Trickle(io.RawIOBase):
        def __init__(self, data):
            self.data = io.BytesIO(data)

        def readable(self):
            return True

        def read(self, size=-1):
            return self.data.read(min(size, 7) if size and size > 0 else 7)

    stored = UploadStore(tmp_path, 1 << 20, ALL_KINDS).save(Trickle(samples.MP3))
    assert stored.content_type == "audio/mpeg" and stored.size == len(samples.MP3) and HEAD_BYTES > 7


def test_download_names_are_made_by_the_tool_in_safe_ascii():
    assert download_name(["A1B2C3", "GIT-AK-1-m1-a1"], "image/png") == "A1B2C3-GIT-AK-1-m1-a1.png"
    assert download_name(["A1B2C3", 'Övning "1"/../\r\nx.html'], "audio/mpeg") == "A1B2C3-Ovning-1-x-html.mp3"
    assert download_name(["", "<>"], "text/html") == "hand-in.bin"
    assert served_type("text/html") == ("application/octet-stream", "bin")
    assert served_type("video/quicktime") == ("video/quicktime", "mov")


def test_the_gif_html_polyglot_is_refused_through_the_page(app, client, launches, content):
    pupil = Person(client, launches, "p1")
    refused = pupil.post(f"/assignment/{content['assignment1']}",
                         {"file": (io.BytesIO(samples.POLYGLOTS["gif screen descriptor then html"]), "answer.gif")},
                         content_type="multipart/form-data")
    assert refused.status_code == 400 and error_code(refused) == "upload_type"
    with new_session(app) as session:
        assert session.scalar(select(func.count()).select_from(Submission)) == 0
    upload_dir = Path(app.config["UPLOAD_DIR"])
    assert not upload_dir.exists() or not [p for p in upload_dir.rglob("*") if p.is_file()]


@pytest.mark.parametrize("kind", ["image/gif", "audio/mpeg", "application/pdf", "video/mp4"])
def test_a_hand_in_is_served_as_an_attachment_of_its_sniffed_type_under_the_tools_name(app, client, launches,
                                                                                      content, kind):
    data, extension = samples.VALID[kind]
    pupil = Person(client, launches, "p1")
    teacher = Person(client, launches, "t1", role="instructor")
    uploaded = 'Alva Andersson "svar".html'
    assert pupil.post(f"/assignment/{content['assignment1']}", {"file": (io.BytesIO(data), uploaded)},
                      content_type="multipart/form-data").status_code == 303
    with new_session(app) as session:
        submission = session.scalars(select(Submission)).one()
    expected = f"{pupil_label('p1')}-GIT-AK-1-m1-a1.{extension}"
    for who in (pupil, teacher):
        for query in ("", "?download=1"):
            response = who.get(f"/files/{submission.id}{query}")
            assert response.status_code == 200 and response.data == data
            assert response.headers["Content-Disposition"] == f'attachment; filename="{expected}"'
            assert response.headers["Content-Type"] == kind
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Cache-Control"] == "private, no-store"
            assert "sandbox" in response.headers["Content-Security-Policy"]
            headers = str(response.headers)
            assert "Alva" not in headers and "svar" not in headers and ".html" not in headers
            response.close()
