"""Imports from national sources: the municipality registry (and, later, the course catalog).

Never imports the web layer: fetch/read -> validate -> apply in one transaction -> report.
"""
