"""Threadline's benchmark harness: `python -m bench.run [--size tiny|full] [--only NAME...]`.

Every measurement starts the processes it needs (a `threadline serve` on loopback, the
scripted model server, a bare ASGI floor app) and drives them over real HTTP; results go to
`bench/RESULTS.md`. See `bench/README.md`.
"""

from __future__ import annotations
