-- What DICOMweb needs beyond the foundation index: the referring physician for QIDO,
-- frames per instance, and each instance's metadata as DICOM JSON (without pixel data),
-- so that QIDO includefield and WADO metadata never have to read the blobs.
ALTER TABLE studies ADD COLUMN referring_physician TEXT;
ALTER TABLE instances ADD COLUMN number_of_frames BIGINT;
ALTER TABLE instances ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
CREATE INDEX studies_date ON studies (study_date);
