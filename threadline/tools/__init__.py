"""Tools a run's model may call: one interface (`base.py`), the run's set of them
(`toolset.py`), and each tool the service runs itself in a module of its own."""
