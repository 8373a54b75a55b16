// Exit codes of `kavka broker` that a supervisor (docker's restart policy, systemd, the chaos
// harness) tells apart. 0: a clean shutdown; 1: start-up or shutdown failed.

/** The metadata log failed (a disk error under its store): the node halted at once, as Kafka halts, and recovers its logs when started again. */
export const EXIT_METADATA_LOG_FAILED = 3;
