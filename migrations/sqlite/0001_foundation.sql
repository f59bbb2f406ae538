-- Foundation schema: the DICOM index (patients → studies → series → instances),
-- API tokens and the append-only audit trail. Timestamps are RFC 3339 text.

CREATE TABLE patients (
    patient_key   TEXT PRIMARY KEY,
    patient_id    TEXT NOT NULL,
    issuer        TEXT NOT NULL DEFAULT '',
    patient_name  TEXT,
    birth_date    TEXT,
    sex           TEXT,
    created_at    TEXT NOT NULL,
    UNIQUE (patient_id, issuer)
);

CREATE TABLE studies (
    study_uid          TEXT PRIMARY KEY,
    patient_key        TEXT NOT NULL REFERENCES patients (patient_key) ON DELETE CASCADE,
    study_date         TEXT,
    study_time         TEXT,
    accession_number   TEXT,
    study_id           TEXT,
    study_description  TEXT,
    created_at         TEXT NOT NULL
);
CREATE INDEX studies_patient ON studies (patient_key);

CREATE TABLE series (
    series_uid              TEXT PRIMARY KEY,
    study_uid               TEXT NOT NULL REFERENCES studies (study_uid) ON DELETE CASCADE,
    modality                TEXT NOT NULL,
    series_number           INTEGER,
    series_description      TEXT,
    frame_of_reference_uid  TEXT,
    created_at              TEXT NOT NULL
);
CREATE INDEX series_study ON series (study_uid);

CREATE TABLE instances (
    sop_instance_uid     TEXT PRIMARY KEY,
    series_uid           TEXT NOT NULL REFERENCES series (series_uid) ON DELETE CASCADE,
    sop_class_uid        TEXT NOT NULL,
    transfer_syntax_uid  TEXT NOT NULL,
    instance_number      INTEGER,
    rows                 INTEGER,
    columns              INTEGER,
    image_position       TEXT,
    image_orientation    TEXT,
    pixel_spacing        TEXT,
    slice_thickness      REAL,
    blob_key             TEXT NOT NULL,
    sha256               TEXT NOT NULL,
    size_bytes           INTEGER NOT NULL,
    received_at          TEXT NOT NULL
);
CREATE INDEX instances_series ON instances (series_uid);

CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('pacs', 'radiologist', 'admin')),
    token_hash    TEXT NOT NULL UNIQUE,
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT,
    last_used_at  TEXT,
    revoked_at    TEXT
);

CREATE TABLE audit_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    resource     TEXT NOT NULL,
    patient_key  TEXT,
    outcome      TEXT NOT NULL,
    request_id   TEXT
);
CREATE INDEX audit_events_patient ON audit_events (patient_key);

-- The audit trail is append-only: the database itself refuses edits.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
