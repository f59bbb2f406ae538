-- Destinations petal forwards series to by itself (a PACS by DIMSE or DICOMweb), and the
-- delivery of each series to each destination. A destination's spec is its JSON without
-- the name; it names secret files, never secrets.
CREATE TABLE destinations (
    name        TEXT PRIMARY KEY,
    spec        TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);

CREATE TABLE series_forwards (
    series_uid   TEXT NOT NULL,
    destination  TEXT NOT NULL REFERENCES destinations (name) ON DELETE CASCADE,
    state        TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    sent_ms      BIGINT,
    updated_ms   BIGINT NOT NULL,
    PRIMARY KEY (series_uid, destination)
);
