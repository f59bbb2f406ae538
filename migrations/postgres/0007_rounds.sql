-- Online-learning rounds (DESIGN.md §1.4–1.5, §2.1): one Noise2Noise + TGD fine-tune of a
-- copy of a patient's model, run as a `fine_tune` job. A round records where its pair came
-- from, its settings, its progress (written every few seconds by the training thread), the
-- version it made and the gate's verdict. Times are epoch milliseconds, as in `jobs`.
CREATE TABLE rounds (
    id                      BIGSERIAL PRIMARY KEY,
    patient_key             TEXT NOT NULL REFERENCES patients (patient_key),
    state                   TEXT NOT NULL CHECK (state IN
                                ('queued', 'running', 'activated', 'rejected', 'cancelled', 'failed')),
    kind                    TEXT NOT NULL,
    -- admin_pair | detected_pair | neighbour_subsampling (series_b is NULL for the last).
    pair_source             TEXT NOT NULL,
    series_a                TEXT NOT NULL,
    series_b                TEXT,
    -- JSON: the round's settings, every default filled in.
    settings                TEXT NOT NULL,
    -- The version the round starts from, fixed when training starts.
    parent_version_id       BIGINT REFERENCES model_versions (id),
    job_id                  TEXT,
    step                    BIGINT NOT NULL DEFAULT 0,
    total_steps             BIGINT NOT NULL,
    loss                    DOUBLE PRECISION,
    validation_loss_parent  DOUBLE PRECISION,
    validation_loss         DOUBLE PRECISION,
    eta_seconds             DOUBLE PRECISION,
    progress_ms             BIGINT,
    cancel_requested_ms     BIGINT,
    cancel_requested_by     TEXT,
    -- The version the round made (activated or rejected), written with the final state.
    version_id              BIGINT REFERENCES model_versions (id),
    -- JSON: the gate's measures, limits, verdict and reasons.
    gate                    TEXT,
    error                   TEXT,
    -- The series re-denoised with the new version after activation.
    redenoised_series_uid   TEXT,
    requested_by            TEXT NOT NULL,
    created_ms              BIGINT NOT NULL,
    started_ms              BIGINT,
    finished_ms             BIGINT
);
-- At most one queued or running round per patient.
CREATE UNIQUE INDEX rounds_one_active ON rounds (patient_key) WHERE state IN ('queued', 'running');
CREATE INDEX rounds_patient ON rounds (patient_key, id);
CREATE INDEX rounds_pair ON rounds (series_a, series_b);

-- Patients erased on request (their studies, rounds and model versions are gone). While a
-- patient is listed here, their model versions, and only theirs, may be deleted.
CREATE TABLE patient_erasures (
    patient_key  TEXT PRIMARY KEY,
    erased_by    TEXT NOT NULL,
    erased_ms    BIGINT NOT NULL
);

CREATE FUNCTION model_versions_guard_delete() RETURNS trigger AS $$
BEGIN
    IF OLD.patient_key IS NOT NULL
       AND EXISTS (SELECT 1 FROM patient_erasures e WHERE e.patient_key = OLD.patient_key) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'model versions are immutable: only erasing their patient removes them';
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER model_versions_no_delete ON model_versions;
CREATE TRIGGER model_versions_no_delete BEFORE DELETE ON model_versions
    FOR EACH ROW EXECUTE FUNCTION model_versions_guard_delete();

-- Which series are Noise2Noise halves (online learning's training material).
ALTER TABLE series_processing ADD COLUMN n2n_half BOOLEAN NOT NULL DEFAULT FALSE;
