"""Auto-tuning with MetaSchedule: tuning entry points, a target-aware resumable database and
distributed measurement over TVM's RPC tracker."""
