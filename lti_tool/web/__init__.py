"""Blueprints, one per audience, each named ``bp``. Views are thin: parse, call a service, commit, render."""
