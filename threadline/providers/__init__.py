"""Model clients behind one interface (`ModelProvider`)."""

from __future__ import annotations
