-- Jobs: the no-skip error ledger of each run (jobs/ledger.rs), written when the run ends
-- whatever its outcome; also kept as <data-dir>/artifacts/error-ledger-<run-id>.json.
ALTER TABLE job_runs ADD COLUMN ledger TEXT;
