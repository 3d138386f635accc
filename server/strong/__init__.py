"""The strong (CP) plane: a pure, deterministic state machine over a store
view, and the Raft adapter that feeds it committed log entries."""
