-- Real-mode FedPATE jobs: how SuperNodes join the job's SuperLink (address, expected nodes, the
-- CA certificate's PEM, deadline), set once the SuperLink listens (domain/jobs.py FlowerJoin).

ALTER TABLE federation_jobs ADD COLUMN flower_join jsonb;
