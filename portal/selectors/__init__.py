"""Reads of the control panel, one module per subdomain (mirroring ``portal.services``)."""

from portal.selectors.fleet import (
    device_identity_parse,
)
from portal.selectors.log_config import (
    EffectiveLogConfig,
    log_config_effective,
    log_configs_by_site,
    scope_resolve,
)
from portal.selectors.replication import (
    NOT_RECORDED,
    REPLICA_STATES,
    FileMatrix,
    FileMatrixRow,
    ReplicaCell,
    ServerReplication,
    StateCounts,
    VersionMatrix,
    VersionMatrixRow,
    import_reach,
    import_replication_matrix,
    import_versions,
    replication_overview,
    version_replication_matrix,
)
from portal.selectors.rollouts import (
    GoverningRollout,
    rollout_active,
    rollout_by_id,
    rollouts_governing,
    wave_targets_of,
)
from portal.selectors.rules import (
    rule_by_identity,
    rule_versions,
    rules_list,
    rules_state_q,
)

__all__ = [
    "EffectiveLogConfig",
    "FileMatrix",
    "FileMatrixRow",
    "GoverningRollout",
    "NOT_RECORDED",
    "REPLICA_STATES",
    "ReplicaCell",
    "ServerReplication",
    "StateCounts",
    "VersionMatrix",
    "VersionMatrixRow",
    "device_identity_parse",
    "import_reach",
    "import_replication_matrix",
    "import_versions",
    "log_config_effective",
    "log_configs_by_site",
    "replication_overview",
    "rollout_active",
    "rollout_by_id",
    "rollouts_governing",
    "rule_by_identity",
    "rule_versions",
    "rules_list",
    "rules_state_q",
    "scope_resolve",
    "version_replication_matrix",
    "wave_targets_of",
]
