"""The local executor: one detached run supervisor per run that schedules the DAG on this machine."""
