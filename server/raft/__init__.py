"""The only package that knows pysyncobj: the replica (`adapter.py`) that
feeds committed entries to the strong plane, the guard on its port
(`port_guard.py`), and the coalesced read barrier (`read_barrier.py`)."""
