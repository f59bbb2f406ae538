-- Which worker ran a job's latest attempt: kept after the job ends (lease_owner is cleared),
-- so the record shows where each job ran.
ALTER TABLE jobs ADD COLUMN ran_by TEXT;
