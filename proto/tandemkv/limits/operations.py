"""Running a node: backups, TLS on the client port, authentication and roles,
the command line, discovery and observability.
"""

# -- backups (Maintenance.Snapshot) --
# Bytes of a backup file in each Maintenance.Snapshot message (well below
# GRPC_MESSAGE_BYTES_MAX).
BACKUP_CHUNK_BYTES = 1 << 20
# Maintenance.Snapshot calls one node serves at once; each holds a copy of
# the node's state on its disk while it streams. More get RESOURCE_EXHAUSTED.
BACKUPS_IN_FLIGHT_MAX = 2
# Bytes of a backup file's JSON header (revision, sizes, section table).
BACKUP_HEADER_BYTES_MAX = 64 << 10

# -- TLS on the client port (serve --tls-cert/--tls-key/--tls-ca) --
# How often, at most, a node looks at its certificate and key files' mtimes
# (at a new connection's handshake) to pick up a renewed certificate.
TLS_RELOAD_CHECK_INTERVAL_MS = 1_000
# Bytes of one PEM file (certificate chain, key or CA bundle) a node or client reads.
TLS_FILE_BYTES_MAX = 1 << 20

# -- authentication and roles (server/strong/auth.py) --
# scrypt's cost parameters for a stored password hash (n = 2**14 takes ~16 MiB and ~50 ms).
AUTH_SCRYPT_N = 1 << 14
# scrypt's block size and parallelism for a stored password hash.
AUTH_SCRYPT_R = 8
AUTH_SCRYPT_P = 1
# Bytes of a password's random salt and of its scrypt hash.
AUTH_SALT_BYTES = 16
AUTH_HASH_BYTES = 32
# Bytes of the HMAC key that signs tokens (kept in the strong plane).
AUTH_TOKEN_KEY_BYTES = 32
# How long a token from Authenticate is valid.
AUTH_TOKEN_TTL_MS = 10 * 60 * 1_000
# Bytes of a user or role name.
AUTH_NAME_BYTES_MAX = 64
# Bytes of a password.
AUTH_PASSWORD_BYTES_MAX = 1_024
# Bytes of one permission's name prefix.
AUTH_PREFIX_BYTES_MAX = 512
# Users, roles, roles per user and permissions per role the auth store holds.
AUTH_USERS_MAX = 10_000
AUTH_ROLES_MAX = 1_000
AUTH_ROLES_PER_USER_MAX = 64
AUTH_PERMISSIONS_PER_ROLE_MAX = 256
# Password hashings (Authenticate, user add, password change) a node runs at once; beyond: RESOURCE_EXHAUSTED.
AUTH_HASHINGS_IN_FLIGHT_MAX = 4
# Bytes `serve` reads of root_password_file (the password on its first line).
ROOT_PASSWORD_FILE_BYTES_MAX = 4_096
# How long one auth bootstrap change (add root, grant, enable) may wait to commit before the next try.
AUTH_BOOTSTRAP_STEP_TIMEOUT_MS = 10_000

# -- the command line --
# Bytes of a transaction `tandemkv txn` reads from stdin (the cluster bounds
# the ops and compares themselves: TXN_OPS_MAX, TXN_COMPARES_MAX).
TXN_INPUT_BYTES_MAX = 8 << 20
# Nodes `tandemkv up --nodes` starts at most.
LOCAL_CLUSTER_NODES_MAX = 9

# -- discovery (serve --discovery dns:NAME / dns-srv:NAME) --
# How often a running node asks DNS for the member list again.
DISCOVERY_POLL_INTERVAL_MS = 5_000
# Longest one DNS question (every nameserver and retry included) may take.
DISCOVERY_RESOLVE_TIMEOUT_MS = 2_000
# Longest pause between two start-up attempts (the pause doubles from 250 ms up to this).
DISCOVERY_RETRY_BACKOFF_MS_MAX = 8_000
# Members one DNS answer may list; a longer answer is refused as a misconfiguration.
DISCOVERY_MEMBERS_MAX = 64

# -- observability (serve --http-address: /metrics, /livez, /readyz, /dashboard) --
# How often a node samples itself for leader changes and the dashboard's rates.
OBSERVE_SAMPLE_INTERVAL_MS = 1_000
# Samples a node keeps for the dashboard (the newest; at one a second, two minutes).
OBSERVE_SAMPLES_MAX = 120
# Longest the dashboard's cluster view waits for one other member's status.
OBSERVE_PEER_STATUS_TIMEOUT_MS = 500
# How long one cluster view is reused, so many open dashboards ask the peers no more often.
OBSERVE_CLUSTER_VIEW_REUSE_MS = 500
# HTTP connections the observability port serves at once; more get 503.
OBSERVE_HTTP_CONNECTIONS_MAX = 64
# Longest a stopping node waits for its HTTP server to close its connections.
OBSERVE_HTTP_STOP_WAIT_MS = 5_000
