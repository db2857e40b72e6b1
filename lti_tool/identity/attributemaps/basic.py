"""Attribute names of NameFormat ``basic`` (``urn:mace:dir:attribute-def:...``), as pysaml2 has them: kept because
pointing pysaml2 at this folder replaces its own maps, and some identity providers still send these names."""

from saml2.attributemaps import basic as _pysaml2_basic

MAP = {
    "identifier": _pysaml2_basic.MAP["identifier"],
    "fro": dict(_pysaml2_basic.MAP["fro"]),
    "to": dict(_pysaml2_basic.MAP["to"]),
}
