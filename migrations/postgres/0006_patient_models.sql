-- Each patient's active model version: a pointer, changed only by activation (after a
-- round passes its gate, or an admin's rollback or roll-forward). No row, or a NULL
-- version, means the base model (the patient's version 0).
CREATE TABLE patient_models (
    patient_key        TEXT PRIMARY KEY REFERENCES patients (patient_key) ON DELETE CASCADE,
    active_version_id  BIGINT REFERENCES model_versions (id),
    activated_by       TEXT NOT NULL,
    activated_ms       BIGINT NOT NULL
);
