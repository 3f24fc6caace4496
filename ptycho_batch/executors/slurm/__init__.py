"""The SLURM executor: submitit submission, the node-side entry point, and the one shared sacct poller."""
