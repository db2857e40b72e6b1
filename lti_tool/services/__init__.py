"""The services layer: the use cases, one module each. A service takes a ``Session``, raises ``DomainError``s
and never commits: the caller (a view, a command) does.

- ``platforms``: registrations and deployments (add, find, bind to municipalities, status);
  ``registrations``: dynamic registration's approval and rejection.
- ``launch``: the launch use case (``complete_launch``), on ``admission`` (the deployment and home
  municipality of a verified launch, the launch record) and ``seats``.
- ``seats``: orders, seats, waiting lists, withdrawal, the cost of an order and the cost reports.
- ``placement``: deep linking; ``roster``: NRPS sync; ``delivery``: course pages, hand-ins, reviews;
  ``access``: who sees whose work; ``municipal``: who opens the municipal console; ``grades``: the grade
  outbox; ``privacy``: export, erasure, retention and the access log; ``reports``: launch counts.
- ``staff_catalog``: what national staff read of the catalog and the orders (courses, a course's rounds and
  content, orders filtered and paged, each round's places against the seats ordered); ``audit_log``: the audit
  log read (origin, details, pages) and written by the command line.
- ``errors``: ``NotFoundError`` and ``ConflictError``.

This package module holds no logic: import from the module that owns it.
"""
