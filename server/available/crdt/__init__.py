"""The CRDT value types of the available plane (pure): the base and the
origin a mutator is called with (`base.py`), counters, registers, sets and
maps, the dots and causal contexts that make removes safe (`causal.py`),
the hybrid logical clock (`hlc.py`), the canonical encoding
(`canonical.py`) and the types by kind with their versioned bytes
(`kinds.py`)."""
