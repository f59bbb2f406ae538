-- Model versions: immutable weights (safetensors bytes), the architecture they belong to
-- (config JSON) and their sha256. The base model has no patient; versions made by a
-- patient's learning rounds name the patient and their parent version.
CREATE TABLE model_versions (
    id           BIGSERIAL PRIMARY KEY,
    -- DICOM UID of this version: the DeviceUID of the derived series it produces.
    device_uid   TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    source       TEXT NOT NULL CHECK (source IN ('base', 'imported', 'round')),
    sha256       TEXT NOT NULL,
    config       TEXT NOT NULL,
    weights      BYTEA NOT NULL,
    parent_id    BIGINT REFERENCES model_versions (id),
    patient_key  TEXT REFERENCES patients (patient_key),
    report       TEXT,
    created_by   TEXT,
    created_ms   BIGINT NOT NULL
);
-- One row per base model content, however many processes register it at start-up.
CREATE UNIQUE INDEX model_versions_base_content ON model_versions (sha256) WHERE patient_key IS NULL;
CREATE INDEX model_versions_patient ON model_versions (patient_key, id);

CREATE FUNCTION model_versions_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'model versions are immutable: weights, config and lineage never change';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER model_versions_no_rewrite BEFORE UPDATE OF weights, sha256, config, parent_id, patient_key, device_uid
    ON model_versions FOR EACH ROW EXECUTE FUNCTION model_versions_immutable();
CREATE TRIGGER model_versions_no_delete BEFORE DELETE ON model_versions
    FOR EACH ROW EXECUTE FUNCTION model_versions_immutable();
