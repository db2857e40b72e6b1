"""Attribute names as ``urn:oid:`` URIs (NameFormat ``uri``, what Skolfederation's identity providers send):
pysaml2's map plus the SIS attributes (SS 12000 attribute profile, OID arc 1.2.752.194.10.2).

pysaml2 knows ``sisLegalGuardianFor`` (…10.2.1) and ``sisSchoolGrade`` (…10.2.2); the school unit code and the
course memberships are added here. A national identity number (``norEduPersonNIN``, ``schacPersonalUniqueID``)
may be in the map, but the tool never reads one (``identity.saml``).
"""

from saml2.attributemaps import saml_uri as _pysaml2_saml_uri

SIS = "urn:oid:1.2.752.194.10.2."
SIS_ATTRIBUTES = {
    f"{SIS}1": "sisLegalGuardianFor",
    f"{SIS}2": "sisSchoolGrade",
    f"{SIS}4": "sisSchoolUnitCode",  # the school unit code Skolverket gave the school unit (8 digits)
    f"{SIS}5": "sisSchoolCourseStudent",
    f"{SIS}6": "sisSchoolCourseTeacher",
}

MAP = {
    "identifier": _pysaml2_saml_uri.MAP["identifier"],
    "fro": {**_pysaml2_saml_uri.MAP["fro"], **SIS_ATTRIBUTES},
    "to": {**_pysaml2_saml_uri.MAP["to"], **{name: uri for uri, name in SIS_ATTRIBUTES.items()}},
}
