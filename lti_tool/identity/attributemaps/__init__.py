"""pysaml2 attribute maps of the tool's SAML service provider (and of the sandbox's SAML IdP): pysaml2's own,
with the SIS attributes of the Swedish school federation (Skolfederation) that pysaml2's map lacks.

pysaml2 reads every ``*.py`` of this folder (``attribute_map_dir``) and takes each module-level dict with an
``identifier`` and ``fro``/``to`` as one map, so the modules hold nothing else of that shape.
"""
