-- What petal does with each received series: whether it is denoised (and why not), when it
-- counts as complete, its denoise job, and the derived series that came of it. Derived
-- series have a row too: they name their source and, once re-denoised, their successor.
-- Times are epoch milliseconds, as in `jobs`.
CREATE TABLE series_processing (
    series_uid          TEXT PRIMARY KEY REFERENCES series (series_uid) ON DELETE CASCADE,
    state               TEXT NOT NULL CHECK (state IN
                            ('receiving', 'complete', 'queued', 'denoising', 'done', 'failed', 'not_denoised')),
    -- Why the series is not denoised, or why denoising failed.
    reason              TEXT,
    -- Instances that complete the series, from the header (NumberOfSlices × time slices × gates).
    expected_instances  INTEGER,
    first_instance_ms   BIGINT NOT NULL,
    last_instance_ms    BIGINT NOT NULL,
    completed_ms        BIGINT,
    job_id              TEXT,
    started_ms          BIGINT,
    finished_ms         BIGINT,
    inference_ms        BIGINT,
    derived_series_uid  TEXT,
    model_version_id    BIGINT,
    -- JSON: how intensities were normalised for the network (SUVbw or a robust scale).
    normalisation       TEXT,
    -- For petal's own series: the series it was derived from, and the one that replaced it.
    source_series_uid   TEXT,
    superseded_by       TEXT
);
CREATE INDEX series_processing_waiting ON series_processing (state, last_instance_ms);
CREATE INDEX series_processing_source ON series_processing (source_series_uid);
