"""The demo's cross-border round: one round of one demo course whose pupils come from three municipalities on the
two sandbox platforms, taught by a round teacher who launches from their own platform (and a second who signs
in by e-mail). ``flask demo`` sets it up (``cli/demo.py``); the sandbox page lists its ready-made launches.

Every launch of the round carries the course and the round (as a placement made by deep linking does), the
person's name (as platforms whose privacy settings share names do; the round's teacher sees the pupils' names),
and a context and resource link of its own municipality's LMS course: a local teacher launching from that course
sees that municipality's pupils, the round's teacher sees them all."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from flask_babel import gettext as _

from .platform import CANVAS, MOODLE, sandbox_deployment_id

COURSE = "GIT-AK-1"
ROUND = "round-1"
PROVIDING_SCHOOL = "Stockholms kulturskola"
TEACHER_NAME = "Sara Strand"
TEACHER_SUB = "teacher-sara"
TEACHER_PLATFORM = MOODLE.key
EMAIL_TEACHER = "teacher@sandbox.example"
EMAIL_TEACHER_NAME = "Erik Ek"
SEATS = 3  # each of the round's municipalities orders this many seats, unless it has an order already

PUPIL = "pupil"
ROUND_TEACHER = "round_teacher"
LOCAL_TEACHER = "local_teacher"
ROLES = {PUPIL: "learner", ROUND_TEACHER: "instructor", LOCAL_TEACHER: "instructor"}


@dataclass(frozen=True)
class DemoLaunch:
    """One ready-made launch from a sandbox platform into the demo round."""

    kind: str  # PUPIL, ROUND_TEACHER or LOCAL_TEACHER
    platform: str  # the sandbox platform's key (PlatformProfile.key)
    municipality: str
    user: str  # the LTI sub
    context: str  # the municipality's LMS course
    link: str  # the placement of the course in it
    name: str = ""  # the person's name, which the platform sends with the launch (the round's teacher sees it)

    @property
    def role(self) -> str:
        return ROLES[self.kind]

    def query(self) -> dict[str, str]:
        """The ``/sandbox/start`` parameters of this launch."""
        query = {"deployment": f"{sandbox_deployment_id(self.municipality)}|", "role": self.role, "user": self.user,
                 "course": COURSE, "round": ROUND, "context": self.context, "link": self.link, "locale": "sv-SE",
                 "storage": "parent", "gradebook": "1"}
        if self.platform:
            query["platform"] = self.platform
        if self.name:
            query["name"] = self.name
        return query

    def path(self) -> str:
        return "/sandbox/start?" + urlencode(self.query())

    def label(self, municipality_name: str, platform_name: str) -> str:
        """What the link is called, in the current locale."""
        values = {"municipality": municipality_name, "platform": platform_name}
        if self.kind == PUPIL:
            return str(_("pupil from %(municipality)s (%(platform)s)", **values))
        if self.kind == ROUND_TEACHER:
            return str(_("the round's teacher, %(name)s (%(platform)s, %(municipality)s)", name=TEACHER_NAME,
                         **values))
        return str(_("a local teacher in %(municipality)s (%(platform)s): the municipality's own pupils, read-only",
                     **values))


# Kiruna and Åre on Sandbox Canvas, Borås on Sandbox Moodle; the round's teacher works for the providing school
# in Stockholm, whose platform is Sandbox Moodle; Kiruna's own teacher follows Kiruna's pupils.
LAUNCHES = (
    DemoLaunch(PUPIL, CANVAS.key, "SE-2584", "pupil-kiruna", "kiruna-kulturskola", "kiruna-gitarr", "Alva Lind"),
    DemoLaunch(PUPIL, CANVAS.key, "SE-2321", "pupil-are", "are-kulturskola", "are-gitarr", "Elias Berg"),
    DemoLaunch(PUPIL, MOODLE.key, "SE-1490", "pupil-boras", "boras-kulturskola", "boras-gitarr", "Maja Holm"),
    DemoLaunch(ROUND_TEACHER, TEACHER_PLATFORM, "SE-0180", TEACHER_SUB, "stockholm-distans", "stockholm-gitarr",
               TEACHER_NAME),
    DemoLaunch(LOCAL_TEACHER, CANVAS.key, "SE-2584", "teacher-kiruna", "kiruna-kulturskola", "kiruna-gitarr"),
)
MUNICIPALITIES = tuple(dict.fromkeys(launch.municipality for launch in LAUNCHES if launch.kind == PUPIL))
