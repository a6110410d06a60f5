"""The decisions of all three kinds, side by side, and pure: each planner takes what its
controller read (typed, with the time read once per reconcile) and returns what to apply.

- training: a TrainingJob's gang (pods, restarts, deadline, TTL);
- compression: a CompressionJob's child Job;
- lineage: whether a job may start, from the job that writes its model;
- rollout: a model's versions (roles, steps, analysis, replicas; rollout.plan_model).

No I/O and no clock anywhere: torchyard.controllers reads, calls a planner and applies
(api -> plans -> controllers -> resources -> workloads).
"""
