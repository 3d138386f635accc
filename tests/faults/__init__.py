"""TandemKV's fault-injection harness.

The names exported here are its pure core: recording client histories and
checking them (linearizability per key, final counter and set states,
CRDT convergence, fencing tokens);
they open no socket and start no server. The modules that run a cluster
under faults are imported by name: `network` (private namespace, iptables
partitions), `nodes` (the server processes), `nemesis` (the seeded fault
schedule), `workloads` (SDK clients), `runner` (one experiment, as
`python -m tests.faults.runner`) and `scenarios` (failover and cut-off
node checks). See docs/faults.md."""

from .final_state import (
    ConvergenceVerdict,
    CounterVerdict,
    SetVerdict,
    check_counter_final,
    check_crdt_converged,
    check_set_final,
    subset_sum_reachable,
)
from .history import (
    HISTORY_OPERATIONS_MAX,
    OUTCOME_FAIL,
    OUTCOME_OK,
    OUTCOME_UNKNOWN,
    History,
    HistoryFullError,
    Operation,
    SavedHistory,
    load_history,
    save_history,
)
from .linearizability import (
    SEARCH_STATES_PER_KEY_MAX,
    VERDICT_LINEARIZABLE,
    VERDICT_UNKNOWN,
    VERDICT_VIOLATION,
    CheckResult,
    Explanation,
    KeyVerdict,
    check_key,
    check_linearizable,
)
from .models import (
    CLAIM,
    COUNTER,
    GROW_ONLY_SET,
    REGISTER,
    ClaimModel,
    CounterModel,
    GrowOnlySetModel,
    Model,
    RegisterModel,
)
from .tokens import check_claim_tokens

__all__ = [
    "CLAIM",
    "COUNTER",
    "GROW_ONLY_SET",
    "HISTORY_OPERATIONS_MAX",
    "OUTCOME_FAIL",
    "OUTCOME_OK",
    "OUTCOME_UNKNOWN",
    "REGISTER",
    "SEARCH_STATES_PER_KEY_MAX",
    "VERDICT_LINEARIZABLE",
    "VERDICT_UNKNOWN",
    "VERDICT_VIOLATION",
    "CheckResult",
    "ClaimModel",
    "ConvergenceVerdict",
    "CounterModel",
    "CounterVerdict",
    "Explanation",
    "GrowOnlySetModel",
    "History",
    "HistoryFullError",
    "KeyVerdict",
    "Model",
    "Operation",
    "SavedHistory",
    "SetVerdict",
    "check_claim_tokens",
    "check_counter_final",
    "check_crdt_converged",
    "check_key",
    "check_linearizable",
    "check_set_final",
    "load_history",
    "save_history",
    "subset_sum_reachable",
]
